//! The control words: requests to a server, its replies, and the lifecycle
//! messages machines and servers tell parents, as typed values.
//!
//! Every control word is an ordinary message on the wire (`name arg arg…`);
//! this module is the one place that spells and parses them, so the server,
//! the `wink` command and the machine runtime cannot disagree. Each type
//! parses with [`str::parse`] and prints back the same text with
//! [`Display`](fmt::Display). The grammar, word by word, is in
//! `docs/operations.md`; a test checks that document against [`GRAMMAR`].
//!
//! ```
//! use wink::control::{Control, Reply, Request, RequestId};
//!
//! let request: Request = "start 7 echo/Echo :0 requester".parse()?;
//! assert_eq!(request.id(), RequestId(7));
//! assert_eq!(request.to_string(), "start 7 echo/Echo :0 requester");
//!
//! // A reply repeats its request's id.
//! let reply = Reply::Starting { id: RequestId(7), pid: 4242 };
//! assert_eq!(reply.to_string(), "starting 7 4242");
//!
//! // Anything that is not a control word is an ordinary message.
//! assert_eq!(Control::parse("add 1 2")?, None);
//! # Ok::<(), wink::control::ControlError>(())
//! ```
//!
//! Requests carry an id chosen by the requester (any number; the runtime and
//! the command count from 1); every reply to a request starts with the
//! request's word's answer and that id, so a requester matches replies to
//! requests, never guesses. A request whose id could not be read is
//! answered with `-` in its place.

use std::fmt;
use std::str::FromStr;

use crate::address::{Address, AddressError};
use crate::name::{MachineName, NameError};

/// Identifies a request; its replies repeat it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for RequestId {
    type Err = ControlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Digits only: `+1` and ` 1` are not ids.
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ControlError::BadId(cut(text)));
        }
        text.parse()
            .map(RequestId)
            .map_err(|_| ControlError::BadId(cut(text)))
    }
}

/// Where a machine is to listen: `:<port>` on the server's own IP, or an
/// explicit `<ip>:<port>`. Port 0 means any free port.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Target {
    /// `:<port>`.
    Port(u16),
    /// `<ip>:<port>`.
    Address(Address),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Port(port) => write!(f, ":{port}"),
            Target::Address(address) => write!(f, "{address}"),
        }
    }
}

impl FromStr for Target {
    type Err = ControlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.strip_prefix(':') {
            Some(port) => port
                .parse()
                .ok()
                .filter(|_| port.bytes().all(|b| b.is_ascii_digit()))
                .map(Target::Port)
                .ok_or_else(|| ControlError::BadPort(cut(text))),
            None => Ok(Target::Address(text.parse()?)),
        }
    }
}

/// Who is the parent of a machine a `start` asks for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Parent {
    /// `requester`: whoever sent the `start` (a machine spawning a child).
    Requester,
    /// `server`: the server itself, which outlives the requester (the
    /// `wink` command). The server relays the machine's lifecycle to the
    /// requester for as long as the requester acknowledges it.
    Server,
}

impl fmt::Display for Parent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Parent::Requester => "requester",
            Parent::Server => "server",
        })
    }
}

impl FromStr for Parent {
    type Err = ControlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "requester" => Ok(Parent::Requester),
            "server" => Ok(Parent::Server),
            other => Err(ControlError::BadParent(cut(other))),
        }
    }
}

/// The longest grace period a `stop` may ask for: an hour.
pub const MAX_GRACE_MS: u64 = 3_600_000;

/// A request to a server.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Request {
    /// `start <id> <name> <target> <parent> [args…]`: fork
    /// `<dir>/<package>/<executable> <name> <address> <parent-address>
    /// [args…]`.
    Start {
        /// The request's id.
        id: RequestId,
        /// The machine to start.
        name: MachineName,
        /// Where it listens.
        target: Target,
        /// Who its parent is.
        parent: Parent,
        /// Its arguments, one word each.
        args: Vec<String>,
    },
    /// `stop <id> <port> [<grace-ms>]`: stop the machine this server runs
    /// on that port, with SIGKILL after `<grace-ms>` (the server's grace
    /// period if absent, at most [`MAX_GRACE_MS`]).
    Stop {
        /// The request's id.
        id: RequestId,
        /// The machine's port.
        port: u16,
        /// How long the machine has to exit before SIGKILL, in
        /// milliseconds; `None`: the server's grace period.
        grace_ms: Option<u64>,
    },
    /// `list <id>`: which machines the server runs.
    List {
        /// The request's id.
        id: RequestId,
    },
    /// `register <id> <name> <pid> <parent> <start-id|->`: a machine says
    /// where it listens (its address is the sender's), which process it is,
    /// who its parent is and which `start` made it. Sent when a machine
    /// starts, and again when it sees its server restarted.
    Register {
        /// The request's id.
        id: RequestId,
        /// The machine's name.
        name: MachineName,
        /// Its process id.
        pid: u32,
        /// Its parent's address.
        parent: Address,
        /// The id of the `start` that made it, if a server started it.
        start: Option<RequestId>,
    },
    /// `unregister <id>`: the sender is exiting in order.
    Unregister {
        /// The request's id.
        id: RequestId,
    },
    /// `upgrade <id> <port> [<name>]`: replace the program of the machine
    /// this server runs on that port with the binary of `<name>` (its own
    /// name's if absent), live: same process, address and parent.
    Upgrade {
        /// The request's id.
        id: RequestId,
        /// The machine's port.
        port: u16,
        /// The machine it becomes; `None`: its own name (a new build).
        name: Option<MachineName>,
    },
}

/// `status <id>`: to a machine, which its runtime answers with a
/// [`StatusReport`] (`status-report <id> …`); never handed to receivers.
pub const STATUS: &str = "status";

/// What a machine's runtime says of it when asked `status <id>`:
/// `status-report <id> <name> <state> <parent> <uptime-ms> <children>
/// <restarts> <in> <out> <retransmitted> <duplicates> <gave-up>
/// <rss-bytes> <cpu-ms>`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StatusReport {
    /// The `status` request's id.
    pub id: RequestId,
    /// The machine's name.
    pub name: MachineName,
    /// Its current state's lineage, root first, joined by `/`
    /// (`Powered/Active/Playing`).
    pub state: String,
    /// Its parent's address.
    pub parent: Address,
    /// Milliseconds since it started (since this program took over, after
    /// a live upgrade).
    pub uptime_ms: u64,
    /// Children alive or being started.
    pub children: u64,
    /// Restarts of its children its supervisor made.
    pub restarts: u64,
    /// Messages handed to its receivers.
    pub received: u64,
    /// Messages its transport sent (retransmissions not counted).
    pub sent: u64,
    /// Messages its transport sent again.
    pub retransmitted: u64,
    /// Duplicates its transport dropped.
    pub duplicates: u64,
    /// Messages its transport gave up on.
    pub gave_up: u64,
    /// Its process's resident memory, bytes.
    pub rss_bytes: u64,
    /// Its process's CPU time (user and system), milliseconds.
    pub cpu_ms: u64,
}

/// The reply word of a [`StatusReport`].
pub const STATUS_REPORT: &str = "status-report";

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{STATUS_REPORT} {} {} {} {} {} {} {} {} {} {} {} {} {} {}",
            self.id,
            self.name,
            self.state,
            self.parent,
            self.uptime_ms,
            self.children,
            self.restarts,
            self.received,
            self.sent,
            self.retransmitted,
            self.duplicates,
            self.gave_up,
            self.rss_bytes,
            self.cpu_ms
        )
    }
}

impl FromStr for StatusReport {
    type Err = ControlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut words = Words::new(text);
        if words.next() != Some(STATUS_REPORT) {
            return Err(ControlError::UnknownReply(cut(text)));
        }
        let report = StatusReport {
            id: words.id()?,
            name: words.name()?,
            state: words.required("a state")?.to_owned(),
            parent: words.required("a parent address")?.parse()?,
            uptime_ms: words.number("an uptime in milliseconds")?,
            children: words.number("a count of children")?,
            restarts: words.number("a count of restarts")?,
            received: words.number("a count of messages received")?,
            sent: words.number("a count of messages sent")?,
            retransmitted: words.number("a count of retransmissions")?,
            duplicates: words.number("a count of duplicates")?,
            gave_up: words.number("a count of messages given up")?,
            rss_bytes: words.number("a resident size in bytes")?,
            cpu_ms: words.number("a CPU time in milliseconds")?,
        };
        words.end()?;
        Ok(report)
    }
}

/// `upgrade <id> <name> <path…>`: from a server to a machine it runs,
/// the order to become `<name>` by running the binary at `<path…>` (the
/// rest of the message), which the server resolved in its served
/// directory. Answered with `error <id> upgrade <reason…>` if the machine
/// cannot; otherwise the program at `<path…>` registers as `<name>`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct UpgradeOrder {
    /// The id of the `upgrade` request it carries out.
    pub id: RequestId,
    /// The name the machine takes.
    pub name: MachineName,
    /// The binary to run.
    pub path: std::path::PathBuf,
}

impl fmt::Display for UpgradeOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "upgrade {} {} {}",
            self.id,
            self.name,
            self.path.display()
        )
    }
}

impl FromStr for UpgradeOrder {
    type Err = ControlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut words = Words::new(text);
        if words.next() != Some("upgrade") {
            return Err(ControlError::UnknownRequest(cut(text)));
        }
        let id = words.id()?;
        let name = words.name()?;
        let path = words.rest();
        if path.is_empty() {
            return Err(ControlError::Missing("a path"));
        }
        Ok(UpgradeOrder {
            id,
            name,
            path: path.into(),
        })
    }
}

impl Request {
    /// The request's id.
    pub fn id(&self) -> RequestId {
        match self {
            Request::Start { id, .. }
            | Request::Stop { id, .. }
            | Request::List { id }
            | Request::Register { id, .. }
            | Request::Unregister { id }
            | Request::Upgrade { id, .. } => *id,
        }
    }

    /// The request's word: `start`, `stop`, `list`, `register`, `unregister`.
    pub fn word(&self) -> &'static str {
        match self {
            Request::Start { .. } => "start",
            Request::Stop { .. } => "stop",
            Request::List { .. } => "list",
            Request::Register { .. } => "register",
            Request::Unregister { .. } => "unregister",
            Request::Upgrade { .. } => "upgrade",
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Start {
                id,
                name,
                target,
                parent,
                args,
            } => {
                write!(f, "start {id} {name} {target} {parent}")?;
                for arg in args {
                    write!(f, " {}", crate::words::quote(arg))?;
                }
                Ok(())
            }
            Request::Stop {
                id,
                port,
                grace_ms: None,
            } => write!(f, "stop {id} {port}"),
            Request::Stop {
                id,
                port,
                grace_ms: Some(grace),
            } => write!(f, "stop {id} {port} {grace}"),
            Request::List { id } => write!(f, "list {id}"),
            Request::Register {
                id,
                name,
                pid,
                parent,
                start,
            } => write!(f, "register {id} {name} {pid} {parent} {}", Dash(start)),
            Request::Unregister { id } => write!(f, "unregister {id}"),
            Request::Upgrade {
                id,
                port,
                name: None,
            } => write!(f, "upgrade {id} {port}"),
            Request::Upgrade {
                id,
                port,
                name: Some(name),
            } => write!(f, "upgrade {id} {port} {name}"),
        }
    }
}

/// Why a request could not be read, with the id when it could be read, so
/// the error reply can repeat it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BadRequest {
    /// The request's word as sent, `-` if empty or longer than
    /// [`MAX_WORD`] bytes.
    pub word: String,
    /// Its id, if the id could be read.
    pub id: Option<RequestId>,
    /// What is wrong.
    pub error: ControlError,
}

impl BadRequest {
    /// The `error` reply that answers it.
    pub fn reply(&self) -> Reply {
        Reply::error(self.id, &self.word, self.error.to_string())
    }
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.word, self.error)
    }
}

impl std::error::Error for BadRequest {}

impl Request {
    /// Parses a request, keeping its word and id (when they can be read)
    /// for the error reply.
    pub fn parse_request(text: &str) -> Result<Request, BadRequest> {
        let mut words = Words::new(text);
        let word = words.next().unwrap_or("");
        let bad = |id, error| BadRequest {
            word: wire_word(word),
            id,
            error,
        };
        if !REQUESTS.contains(&word) {
            let error = if word.is_empty() {
                ControlError::Empty
            } else {
                ControlError::UnknownRequest(cut(word))
            };
            return Err(bad(None, error));
        }
        let id = match words.id() {
            Ok(id) => id,
            Err(e) => return Err(bad(None, e)),
        };
        parse_request_body(word, id, &mut words).map_err(|e| bad(Some(id), e))
    }
}

fn parse_request_body(
    word: &str,
    id: RequestId,
    words: &mut Words<'_>,
) -> Result<Request, ControlError> {
    let request = match word {
        "start" => {
            let name = words.name()?;
            let target = words
                .required("a target (:<port> or <ip>:<port>)")?
                .parse()?;
            let parent = words.required("a parent (requester or server)")?.parse()?;
            let args = crate::words::split(words.rest())
                .map_err(|e| ControlError::BadArgs(e.to_string()))?;
            return Ok(Request::Start {
                id,
                name,
                target,
                parent,
                args,
            });
        }
        "stop" => {
            let port = words.port()?;
            let grace_ms = if words.is_empty() {
                None
            } else {
                let what = "a grace period in milliseconds, at most 3600000";
                let grace: u64 = words.number(what)?;
                if grace > MAX_GRACE_MS {
                    return Err(ControlError::BadNumber {
                        what,
                        text: grace.to_string(),
                    });
                }
                Some(grace)
            };
            Request::Stop { id, port, grace_ms }
        }
        "list" => Request::List { id },
        "register" => Request::Register {
            id,
            name: words.name()?,
            pid: words.number("a pid")?,
            parent: words.required("a parent address")?.parse()?,
            start: words.optional_id()?,
        },
        "unregister" => Request::Unregister { id },
        "upgrade" => {
            let port = words.port()?;
            let name = if words.is_empty() {
                None
            } else {
                Some(words.name()?)
            };
            Request::Upgrade { id, port, name }
        }
        _ => return Err(ControlError::UnknownRequest(cut(word))),
    };
    words.end()?;
    Ok(request)
}

impl FromStr for Request {
    type Err = ControlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Request::parse_request(text).map_err(|bad| bad.error)
    }
}

/// One machine in a server's `list` answer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Row {
    /// Where it listens, once known.
    pub address: Option<Address>,
    /// Its process id.
    pub pid: u32,
    /// Its name.
    pub name: MachineName,
    /// Its parent's address (the server's own for machines whose parent is
    /// the server).
    pub parent: Address,
    /// Seconds since it was started (or, for a machine the server
    /// recovered after a restart, since the server learnt of it).
    pub uptime: u64,
}

/// A server's reply to a request.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Reply {
    /// `starting <id> <pid>`: the machine's process was forked; the machine
    /// itself says `started` to its parent once it runs.
    Starting {
        /// The `start`'s id.
        id: RequestId,
        /// The new process.
        pid: u32,
    },
    /// `stopping <id> <port> <grace-ms>`: the machine was asked to exit
    /// (SIGTERM); it is killed if it has not exited after `grace-ms`.
    Stopping {
        /// The `stop`'s id.
        id: RequestId,
        /// The machine's port.
        port: u16,
        /// Milliseconds before SIGKILL.
        grace_ms: u64,
    },
    /// `stopped <id> <port>`: the machine's process is gone.
    Stopped {
        /// The `stop`'s id.
        id: RequestId,
        /// The machine's port.
        port: u16,
    },
    /// `machine <id> <address|-> <pid> <name> <parent> <uptime-s>`: one row
    /// of a `list` answer.
    Machine {
        /// The `list`'s id.
        id: RequestId,
        /// The row.
        row: Row,
    },
    /// `listed <id> <count>`: the end of a `list` answer.
    Listed {
        /// The `list`'s id.
        id: RequestId,
        /// How many `machine` rows came before.
        count: u64,
    },
    /// `registered <id>`: the server knows the machine.
    Registered {
        /// The `register`'s id.
        id: RequestId,
    },
    /// `relayed <id> <address|-> <lifecycle message>`: for a machine whose
    /// parent is the server, a lifecycle message of the machine (as a
    /// parent's runtime would deliver it) relayed to whoever asked for it
    /// with `start <id> … server`.
    Relayed {
        /// The `start`'s id.
        id: RequestId,
        /// The machine's address, once known.
        address: Option<Address>,
        /// The lifecycle message.
        lifecycle: Lifecycle,
    },
    /// `error <id|-> <request-word> <reason…>`: the request was refused.
    Error {
        /// The request's id, if it could be read.
        id: Option<RequestId>,
        /// The request's word as sent, or `-`.
        request: String,
        /// Why, in words for a person.
        reason: String,
    },
}

impl Reply {
    /// An `error` reply, with the request word and reason cut so the reply
    /// always fits one datagram.
    pub fn error(id: Option<RequestId>, request: &str, reason: impl Into<String>) -> Reply {
        let reason = reason.into();
        Reply::Error {
            id,
            request: wire_word(request),
            reason: cut_text(reason.trim(), MAX_REASON),
        }
    }

    /// The id of the request this answers, if known.
    pub fn id(&self) -> Option<RequestId> {
        match self {
            Reply::Starting { id, .. }
            | Reply::Stopping { id, .. }
            | Reply::Stopped { id, .. }
            | Reply::Machine { id, .. }
            | Reply::Listed { id, .. }
            | Reply::Registered { id }
            | Reply::Relayed { id, .. } => Some(*id),
            Reply::Error { id, .. } => *id,
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Starting { id, pid } => write!(f, "starting {id} {pid}"),
            Reply::Stopping { id, port, grace_ms } => {
                write!(f, "stopping {id} {port} {grace_ms}")
            }
            Reply::Stopped { id, port } => write!(f, "stopped {id} {port}"),
            Reply::Machine { id, row } => write!(
                f,
                "machine {id} {} {} {} {} {}",
                Dash(&row.address),
                row.pid,
                row.name,
                row.parent,
                row.uptime
            ),
            Reply::Listed { id, count } => write!(f, "listed {id} {count}"),
            Reply::Registered { id } => write!(f, "registered {id}"),
            Reply::Relayed {
                id,
                address,
                lifecycle,
            } => write!(f, "relayed {id} {} {lifecycle}", Dash(address)),
            Reply::Error {
                id,
                request,
                reason,
            } => {
                write!(f, "error {} {request}", Dash(id))?;
                if !reason.is_empty() {
                    write!(f, " {reason}")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for Reply {
    type Err = ControlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut words = Words::new(text);
        let word = words.next().ok_or(ControlError::Empty)?;
        let reply = match word {
            "starting" => Reply::Starting {
                id: words.id()?,
                pid: words.number("a pid")?,
            },
            "stopping" => Reply::Stopping {
                id: words.id()?,
                port: words.port()?,
                grace_ms: words.number("a grace period in milliseconds")?,
            },
            "stopped" => Reply::Stopped {
                id: words.id()?,
                port: words.port()?,
            },
            "machine" => Reply::Machine {
                id: words.id()?,
                row: Row {
                    address: words.optional_address()?,
                    pid: words.number("a pid")?,
                    name: words.name()?,
                    parent: words.required("a parent address")?.parse()?,
                    uptime: words.number("an uptime in seconds")?,
                },
            },
            "listed" => Reply::Listed {
                id: words.id()?,
                count: words.number("a count")?,
            },
            "registered" => Reply::Registered { id: words.id()? },
            "relayed" => {
                let id = words.id()?;
                let address = words.optional_address()?;
                let lifecycle = words.rest().parse()?;
                return Ok(Reply::Relayed {
                    id,
                    address,
                    lifecycle,
                });
            }
            "error" => {
                let id = words.optional_id()?;
                let request = words.required("a request word")?.to_owned();
                let reason = words.rest().to_owned();
                return Ok(Reply::Error {
                    id,
                    request,
                    reason,
                });
            }
            other => return Err(ControlError::UnknownReply(cut(other))),
        };
        words.end()?;
        Ok(reply)
    }
}

/// Why a machine exited, as `exited <name> <reason>` says: one word.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ExitReason {
    /// `normal`: the machine asked to exit (`cx.exit()`).
    Normal,
    /// `stopped`: it was asked to stop (SIGTERM or SIGINT, which is how a
    /// server's `stop` asks).
    Stopped,
    /// `error`: it errored (an `errored` came before).
    Error,
    /// `orphaned`: it could not reach its parent for the heartbeat timeout,
    /// or its parent restarted.
    Orphaned,
    /// `heartbeat`: (the parent's runtime) nothing heard from the child for
    /// the heartbeat timeout; it was written off and asked to stop.
    Heartbeat,
    /// `unstarted`: (the parent's runtime) the server refused the start,
    /// or the child did not say `started` within the heartbeat timeout.
    Unstarted,
    /// `signal:<n>`: (from the server) its process was killed by signal
    /// `n` before it exited in order.
    Signal(i32),
    /// `status:<n>`: (from the server) its process ended with status `n`
    /// without exiting in order.
    Status(i32),
    /// `unknown`: (from the server) its process ended without exiting in
    /// order, and how is unknown (a machine the server recovered after a
    /// restart: not its child, so its status cannot be read).
    Unknown,
}

impl ExitReason {
    /// Whether the machine ended of its own accord without a failure:
    /// `normal` only. A supervisor restarts a `transient` child for any
    /// other reason.
    pub fn is_normal(self) -> bool {
        self == ExitReason::Normal
    }

    /// Whether the machine exited in order (`normal`, `stopped`, `error`,
    /// `orphaned`): its own runtime said so. The others are stand-ins from
    /// a parent's runtime or a server.
    pub fn is_orderly(self) -> bool {
        matches!(
            self,
            ExitReason::Normal | ExitReason::Stopped | ExitReason::Error | ExitReason::Orphaned
        )
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Stopped => f.write_str("stopped"),
            ExitReason::Error => f.write_str("error"),
            ExitReason::Orphaned => f.write_str("orphaned"),
            ExitReason::Heartbeat => f.write_str("heartbeat"),
            ExitReason::Unstarted => f.write_str("unstarted"),
            ExitReason::Signal(n) => write!(f, "signal:{n}"),
            ExitReason::Status(n) => write!(f, "status:{n}"),
            ExitReason::Unknown => f.write_str("unknown"),
        }
    }
}

impl FromStr for ExitReason {
    type Err = ControlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || ControlError::BadReason(cut(text));
        let number = |n: &str| -> Result<i32, ControlError> {
            let digits = n.strip_prefix('-').unwrap_or(n);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            n.parse().map_err(|_| bad())
        };
        Ok(match text {
            "normal" => ExitReason::Normal,
            "stopped" => ExitReason::Stopped,
            "error" => ExitReason::Error,
            "orphaned" => ExitReason::Orphaned,
            "heartbeat" => ExitReason::Heartbeat,
            "unstarted" => ExitReason::Unstarted,
            "unknown" => ExitReason::Unknown,
            _ => match text.split_once(':') {
                Some(("signal", n)) => ExitReason::Signal(number(n)?),
                Some(("status", n)) => ExitReason::Status(number(n)?),
                _ => return Err(bad()),
            },
        })
    }
}

/// A lifecycle message: what a child tells its parent, and what a server
/// tells a parent whose child died without a word.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Lifecycle {
    /// `started <name> <start-id|->`: the child runs. The id is the one of
    /// the `start` that made it (the server passes it on), `-` for a
    /// machine started by hand. A parent's receivers see `started <name>`.
    Started {
        /// The child's name.
        name: MachineName,
        /// The `start` that made it.
        start: Option<RequestId>,
    },
    /// `pulsed <name>`: the child is alive (every pulse interval).
    Pulsed {
        /// The child's name.
        name: MachineName,
    },
    /// `errored <name> <message…>`: the child errored; `exited` follows.
    Errored {
        /// The child's name.
        name: MachineName,
        /// What went wrong.
        message: String,
    },
    /// `exited <name> <reason>`: the child is gone.
    Exited {
        /// The child's name.
        name: MachineName,
        /// Why.
        reason: ExitReason,
    },
    /// `orphaned <name>`: from a parent to a child it wrote off (silent for
    /// the heartbeat timeout) that still speaks: the child exits, reason
    /// `orphaned`.
    Orphaned {
        /// The child's name.
        name: MachineName,
    },
    /// `upgraded <name> <from-name>`: the child, once it runs the program
    /// it was upgraded to (live: same process and address), as `<name>`;
    /// it was `<from-name>`. No `exited` came before, none follows.
    Upgraded {
        /// The child's name now.
        name: MachineName,
        /// Its name before.
        from: MachineName,
    },
    /// `died <start-id|-> <address|-> <name> <reason>`: from a server, a
    /// machine it ran died without exiting in order. The reason is
    /// `signal:<n>`, `status:<n>` or `unknown`. A parent's runtime turns it
    /// into `errored` and `exited`; receivers never see `died`.
    Died {
        /// The `start` that made it.
        start: Option<RequestId>,
        /// Where it listened, if it had said so.
        address: Option<Address>,
        /// Its name.
        name: MachineName,
        /// How it ended.
        reason: ExitReason,
    },
}

impl Lifecycle {
    /// The machine it is about.
    pub fn name(&self) -> &MachineName {
        match self {
            Lifecycle::Started { name, .. }
            | Lifecycle::Pulsed { name }
            | Lifecycle::Errored { name, .. }
            | Lifecycle::Exited { name, .. }
            | Lifecycle::Orphaned { name }
            | Lifecycle::Upgraded { name, .. }
            | Lifecycle::Died { name, .. } => name,
        }
    }

    /// The message a parent's receivers see: `started <name>` without the
    /// start id, the others as they are.
    pub fn for_receivers(&self) -> String {
        match self {
            Lifecycle::Started { name, .. } => format!("started {name}"),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lifecycle::Started { name, start } => write!(f, "started {name} {}", Dash(start)),
            Lifecycle::Pulsed { name } => write!(f, "pulsed {name}"),
            Lifecycle::Errored { name, message } => {
                write!(f, "errored {name}")?;
                if !message.is_empty() {
                    write!(f, " {message}")?;
                }
                Ok(())
            }
            Lifecycle::Exited { name, reason } => write!(f, "exited {name} {reason}"),
            Lifecycle::Orphaned { name } => write!(f, "orphaned {name}"),
            Lifecycle::Upgraded { name, from } => write!(f, "upgraded {name} {from}"),
            Lifecycle::Died {
                start,
                address,
                name,
                reason,
            } => write!(f, "died {} {} {name} {reason}", Dash(start), Dash(address)),
        }
    }
}

impl FromStr for Lifecycle {
    type Err = ControlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut words = Words::new(text);
        let word = words.next().ok_or(ControlError::Empty)?;
        let lifecycle = match word {
            "started" => Lifecycle::Started {
                name: words.name()?,
                start: words.optional_id()?,
            },
            "pulsed" => Lifecycle::Pulsed {
                name: words.name()?,
            },
            "errored" => {
                let name = words.name()?;
                let message = words.rest().to_owned();
                return Ok(Lifecycle::Errored { name, message });
            }
            "exited" => Lifecycle::Exited {
                name: words.name()?,
                reason: words.required("a reason")?.parse()?,
            },
            "orphaned" => Lifecycle::Orphaned {
                name: words.name()?,
            },
            "upgraded" => Lifecycle::Upgraded {
                name: words.name()?,
                from: words.name()?,
            },
            "died" => Lifecycle::Died {
                start: words.optional_id()?,
                address: words.optional_address()?,
                name: words.name()?,
                reason: words.required("a reason")?.parse()?,
            },
            other => return Err(ControlError::UnknownLifecycle(cut(other))),
        };
        words.end()?;
        Ok(lifecycle)
    }
}

/// Any control word a machine's runtime or the `wink` command may be
/// handed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Control {
    /// A request (only servers act on these).
    Request(Request),
    /// A reply from a server.
    Reply(Reply),
    /// A lifecycle message.
    Lifecycle(Lifecycle),
}

/// What kind of control word a message's first word is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// A request word.
    Request,
    /// A reply word.
    Reply,
    /// A lifecycle word.
    Lifecycle,
}

impl Control {
    /// The kind of control word `word` is, if it is one.
    pub fn kind(word: &str) -> Option<Kind> {
        // One `match` (length, then bytes), since every message a machine
        // gets is asked this first.
        match word {
            "start" | "stop" | "list" | "register" | "unregister" | "upgrade" => {
                Some(Kind::Request)
            }
            "starting" | "stopping" | "stopped" | "machine" | "listed" | "registered"
            | "relayed" | "error" => Some(Kind::Reply),
            "started" | "pulsed" | "errored" | "exited" | "orphaned" | "upgraded" | "died" => {
                Some(Kind::Lifecycle)
            }
            _ => None,
        }
    }

    /// Reads `text`: `Ok(None)` for an ordinary message (its first word is
    /// no control word), an error for a control word with bad arguments.
    pub fn parse(text: &str) -> Result<Option<Control>, ControlError> {
        let word = Words::new(text).next().unwrap_or("");
        Ok(Some(match Control::kind(word) {
            None => return Ok(None),
            Some(Kind::Request) => Control::Request(text.parse()?),
            Some(Kind::Reply) => Control::Reply(text.parse()?),
            Some(Kind::Lifecycle) => Control::Lifecycle(text.parse()?),
        }))
    }
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Control::Request(r) => r.fmt(f),
            Control::Reply(r) => r.fmt(f),
            Control::Lifecycle(l) => l.fmt(f),
        }
    }
}

/// The request words.
pub const REQUESTS: [&str; 6] = ["start", "stop", "list", "register", "unregister", "upgrade"];
/// The reply words.
pub const REPLIES: [&str; 7] = [
    "starting",
    "stopping",
    "stopped",
    "machine",
    "listed",
    "registered",
    "relayed",
];
/// The reply word `error`, kept apart so [`REPLIES`] reads as the answers
/// that mean success.
pub const ERROR: &str = "error";
/// The lifecycle words.
pub const LIFECYCLE: [&str; 7] = [
    "started", "pulsed", "errored", "exited", "orphaned", "upgraded", "died",
];

/// Every control word and its form, as `docs/operations.md` gives them.
pub const GRAMMAR: [(&str, &str); 21] = [
    ("start", "start <id> <name> <target> <parent> [<arg>…]"),
    ("stop", "stop <id> <port> [<grace-ms>]"),
    ("list", "list <id>"),
    (
        "register",
        "register <id> <name> <pid> <parent-address> <start-id|->",
    ),
    ("unregister", "unregister <id>"),
    ("upgrade", "upgrade <id> <port> [<name>]"),
    ("starting", "starting <id> <pid>"),
    ("stopping", "stopping <id> <port> <grace-ms>"),
    ("stopped", "stopped <id> <port>"),
    (
        "machine",
        "machine <id> <address|-> <pid> <name> <parent-address> <uptime-s>",
    ),
    ("listed", "listed <id> <count>"),
    ("registered", "registered <id>"),
    ("relayed", "relayed <id> <address|-> <lifecycle message>"),
    ("error", "error <id|-> <request-word|-> <reason…>"),
    ("started", "started <name> <start-id|->"),
    ("pulsed", "pulsed <name>"),
    ("errored", "errored <name> <message…>"),
    ("exited", "exited <name> <reason>"),
    ("orphaned", "orphaned <name>"),
    ("upgraded", "upgraded <name> <from-name>"),
    ("died", "died <start-id|-> <address|-> <name> <reason>"),
];

/// Longest word an error reply repeats; longer ones are cut and their
/// length given.
pub const MAX_WORD: usize = 64;
/// Longest reason an `error` reply carries.
pub const MAX_REASON: usize = 1024;

/// What is wrong with a control word.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ControlError {
    /// Machine arguments whose words cannot be read.
    #[error("machine arguments: {0}")]
    BadArgs(String),
    /// Nothing but whitespace.
    #[error("empty request; expected one of start, stop, list, register, unregister")]
    Empty,
    /// The first word is not a request.
    #[error("unknown request {0}; expected one of start, stop, list, register, unregister")]
    UnknownRequest(String),
    /// The first word is not a reply.
    #[error("unknown reply {0}")]
    UnknownReply(String),
    /// The first word is not a lifecycle word.
    #[error("unknown lifecycle message {0}")]
    UnknownLifecycle(String),
    /// A word is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// Words after the last argument.
    #[error("unexpected words after the last argument: {0}")]
    Extra(String),
    /// An id that is not a number.
    #[error("{0} is not a request id (a number from 0 to 2^64-1)")]
    BadId(String),
    /// A port that is not one.
    #[error("{0} is not a port (0-65535)")]
    BadPort(String),
    /// A number that is not one.
    #[error("{text} is not {what}")]
    BadNumber {
        /// What was expected.
        what: &'static str,
        /// The word.
        text: String,
    },
    /// A parent that is neither `requester` nor `server`.
    #[error("{0} is not a parent; expected requester or server")]
    BadParent(String),
    /// An exit reason that is not one.
    #[error(
        "{0} is not an exit reason; expected normal, stopped, error, orphaned, heartbeat, \
         unstarted, signal:<n>, status:<n> or unknown"
    )]
    BadReason(String),
    /// A machine name that is not one (the text says "machine name …").
    #[error("{0}")]
    BadName(String),
    /// An address that is not one.
    #[error("{0}")]
    BadAddress(#[from] AddressError),
}

/// The words of a message, split on ASCII whitespace as receivers split
/// them.
struct Words<'a> {
    rest: &'a str,
}

impl<'a> Words<'a> {
    fn new(text: &'a str) -> Self {
        Words { rest: text }
    }

    /// The text after the words taken so far, without leading and trailing
    /// whitespace.
    fn rest(&mut self) -> &'a str {
        std::mem::take(&mut self.rest).trim_matches(|c: char| c.is_ascii_whitespace())
    }

    fn required(&mut self, what: &'static str) -> Result<&'a str, ControlError> {
        self.next().ok_or(ControlError::Missing(what))
    }

    /// Whether no word is left.
    fn is_empty(&self) -> bool {
        self.rest
            .trim_start_matches(|c: char| c.is_ascii_whitespace())
            .is_empty()
    }

    fn id(&mut self) -> Result<RequestId, ControlError> {
        self.required("a request id")?.parse()
    }

    fn optional_id(&mut self) -> Result<Option<RequestId>, ControlError> {
        match self.required("a request id or -")? {
            "-" => Ok(None),
            id => id.parse().map(Some),
        }
    }

    fn optional_address(&mut self) -> Result<Option<Address>, ControlError> {
        match self.required("an address or -")? {
            "-" => Ok(None),
            address => Ok(Some(address.parse()?)),
        }
    }

    fn name(&mut self) -> Result<MachineName, ControlError> {
        let text = self.required("a machine name (package/executable[#tag])")?;
        text.parse()
            .map_err(|e: NameError| ControlError::BadName(cut_text(&e.to_string(), MAX_REASON)))
    }

    fn port(&mut self) -> Result<u16, ControlError> {
        let text = self.required("a port")?;
        let digits = text.strip_prefix(':').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ControlError::BadPort(cut(text)));
        }
        digits.parse().map_err(|_| ControlError::BadPort(cut(text)))
    }

    fn number<T: FromStr>(&mut self, what: &'static str) -> Result<T, ControlError> {
        let text = self.required(what)?;
        let bad = || ControlError::BadNumber {
            what,
            text: cut(text),
        };
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        text.parse().map_err(|_| bad())
    }

    fn end(&mut self) -> Result<(), ControlError> {
        match self.rest() {
            "" => Ok(()),
            extra => Err(ControlError::Extra(cut_text(extra, MAX_WORD))),
        }
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let text = self
            .rest
            .trim_start_matches(|c: char| c.is_ascii_whitespace());
        if text.is_empty() {
            self.rest = text;
            return None;
        }
        let end = text
            .bytes()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(text.len());
        let (word, rest) = text.split_at(end);
        self.rest = rest;
        Some(word)
    }
}

/// `word` as an `error` reply repeats it: itself if it is one short word,
/// else `-`.
fn wire_word(word: &str) -> String {
    if word.is_empty() || word.len() > MAX_WORD || word.bytes().any(|b| b.is_ascii_whitespace()) {
        "-".to_owned()
    } else {
        word.to_owned()
    }
}

/// `-` for `None`, the value for `Some`.
struct Dash<'a, T>(&'a Option<T>);

impl<T: fmt::Display> fmt::Display for Dash<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => value.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// A word for an error message: quoted in backticks, cut to [`MAX_WORD`]
/// bytes with its length when longer (`` `xxxx…` (60000 bytes) ``).
fn cut(word: &str) -> String {
    if word.len() <= MAX_WORD {
        format!("`{word}`")
    } else {
        format!("`{}…` ({} bytes)", prefix(word, MAX_WORD), word.len())
    }
}

/// `text`, cut to about `max` bytes with `… (<n> bytes)` when longer.
fn cut_text(text: &str, max: usize) -> String {
    if text.len() <= max {
        text.to_owned()
    } else {
        format!("{}… ({} bytes)", prefix(text, max), text.len())
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary.
fn prefix(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests;
