//! Live upgrade: what a machine carries into the program it becomes.
//!
//! A server's `upgrade` order reaches the machine's runtime
//! ([`crate::node`]), which stops taking messages, puts what it must keep
//! in a [`Carried`] and hands it, with the socket, to the new program: the
//! same process (`execve`), so the address, the process id, the parent and
//! the server's books all stay; the transport keeps its incarnation and
//! every stream where it stood ([`crate::transport::Handover`]), so a
//! message sent meanwhile waits in the socket or is sent again, and is
//! delivered once, to the new program. A machine of `#[machine(upgrade)]`
//! carries its data (serde, encoded with postcard by [`save`]) and its
//! current state, timers, requests and unanswered requests; any other
//! starts afresh in the new program (its exit actions ran in the old).

use std::net::SocketAddr;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::transport::Handover;

/// The environment variable that names the descriptor a [`Carried`] is
/// read from, in the program a machine is upgraded to.
pub const CARRIED_FD_ENV: &str = "WINK_UPGRADE_FD";

/// The environment variable that names the descriptor of the socket the
/// upgraded machine goes on listening on.
pub const SOCKET_FD_ENV: &str = "WINK_SOCKET_FD";

/// The layout of [`Carried`]: a program refuses another's.
pub const FORMAT: u32 = 2;

/// The machine's data, encoded for [`crate::hsm::Machine::restore`] in
/// the next program (`#[machine(upgrade)]` calls it).
pub fn save<M: Serialize>(machine: &M) -> Result<Vec<u8>, String> {
    postcard::to_stdvec(machine).map_err(|e| format!("cannot encode the machine's data: {e}"))
}

/// The machine's data from [`save`] in the program before.
pub fn restore<M: DeserializeOwned>(data: &[u8]) -> Result<M, String> {
    let what = "cannot decode the data carried over from the program before";
    let (machine, rest) = postcard::take_from_bytes(data).map_err(|e| format!("{what}: {e}"))?;
    if !rest.is_empty() {
        // The old struct had more to it than this one reads.
        return Err(format!("{what}: {} bytes left over", rest.len()));
    }
    Ok(machine)
}

/// Everything a machine hands the program it becomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    /// [`FORMAT`].
    pub format: u32,
    /// The id of the `upgrade` it carries out.
    pub order: u64,
    /// The machine's name before.
    pub from: String,
    /// The current state's name and the machine's data, for a machine
    /// that carries them over; `None`: the new program starts afresh.
    pub machine: Option<(String, Vec<u8>)>,
    /// The next id the runtime gives a request of its own.
    pub next_id: u64,
    /// The next id a timer or request of the machine gets.
    pub next_timer: u64,
    /// Timers not fired yet.
    pub timers: Vec<CarriedTimer>,
    /// Requests of the machine awaiting their answer.
    pub requests: Vec<CarriedRequest>,
    /// Requests the machine took and has not answered: sender, id, name.
    pub open: Vec<(SocketAddr, u64, String)>,
    /// Messages the transport delivered (and acknowledged) that the
    /// machine had not handled when it stopped: the new program handles
    /// them first, in order.
    pub inbox: Vec<(SocketAddr, String)>,
    /// Messages the machine sent that were still unacknowledged when it
    /// handed over: given up, and reported to the new program as
    /// `undelivered`.
    pub undelivered: Vec<(SocketAddr, String)>,
    /// The transport's streams.
    pub transport: Handover,
}

/// A timer carried over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedTimer {
    /// Its id.
    pub id: u64,
    /// Microseconds until it fires, from the hand-over.
    pub in_us: u64,
    /// The recipient.
    pub to: SocketAddr,
    /// The message.
    pub message: String,
    /// Whether it is the state timeout.
    pub state_timeout: bool,
}

/// A request awaiting its answer, carried over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedRequest {
    /// Its id.
    pub id: u64,
    /// The callee.
    pub to: SocketAddr,
    /// Its first word.
    pub name: String,
    /// Its timeout, in milliseconds.
    pub timeout_ms: u64,
    /// Microseconds until it times out, from the hand-over.
    pub in_us: u64,
}

impl Carried {
    /// The bytes of it.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        postcard::to_stdvec(self)
            .map_err(|e| format!("cannot encode what the upgrade carries: {e}"))
    }

    /// It, from [`Carried::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<Carried, String> {
        let carried: Carried = postcard::from_bytes(bytes)
            .map_err(|e| format!("cannot decode what the program before carried over: {e}"))?;
        if carried.format != FORMAT {
            return Err(format!(
                "the program before carried format {}, this one reads format {FORMAT}",
                carried.format
            ));
        }
        Ok(carried)
    }
}
