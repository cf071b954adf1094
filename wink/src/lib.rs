//! Wink: fault-tolerant systems from independent hierarchical state
//! machines.
//!
//! Each machine is its own process with its own UDP address. Machines share
//! nothing and talk by messages (`name arg arg…`) delivered reliably, in
//! order, once. A parent starts children through a per-host server and hears
//! their lifecycle: `started`, `pulsed`, `errored`, `exited`.
//!
//! A machine is a module with a states enum and an `impl` of handlers:
//!
//! ```
//! #[wink::machine]
//! mod switch {
//!     #[derive(Default)]
//!     pub struct Switch { pub flips: u32 }
//!
//!     pub enum State {
//!         #[initial] Off,
//!         #[parent(Off)] On,
//!     }
//!
//!     impl Switch {
//!         #[entry(Off)]
//!         fn off(&mut self, cx: &mut Context<Self>) { info!(cx.log(), "Switch is OFF"); }
//!         #[entry(On)]
//!         fn on(&mut self, cx: &mut Context<Self>) { self.flips += 1; info!(cx.log(), "Switch is ON"); }
//!         #[receive(Off, "on")]
//!         fn turn_on(&mut self, cx: &mut Context<Self>) { cx.transition(State::On) }
//!         #[receive(Off, "off")]
//!         fn turn_off(&mut self, cx: &mut Context<Self>) { cx.transition(State::Off) }
//!     }
//! }
//!
//! // In a machine binary: `fn main() -> ExitCode { wink::run(switch::Switch::default()) }`.
//! // In a test, without sockets:
//! let mut h = wink::testing::Harness::new(switch::Switch::default());
//! h.start().unwrap();
//! h.receive("on").unwrap();
//! assert_eq!(h.state(), "On");
//! h.receive("off").unwrap(); // handled by On's parent, Off
//! assert_eq!(h.trace(), ["+Off", "+On", "-On"]);
//! ```
//!
//! The parts, each depending only on those before it: [`address`] and
//! [`name`]; [`hsm`], the state semantics; [`wire`], the bytes of a packet;
//! [`transport`], reliable delivery bookkeeping; [`control`], the typed
//! control words; [`server`], the server's bookkeeping; and the
//! [`runtime`] that runs a machine, or a server, on a socket.
#![deny(missing_docs)]

// The macro names `::wink`, which inside this crate is this crate.
#[allow(unused_extern_crates)]
extern crate self as wink;

pub mod address;
pub mod auth;
pub mod control;
pub mod hsm;
pub mod log;
pub mod name;
pub mod node;
pub mod runtime;
pub mod server;
pub mod sim;
pub mod supervisor;
pub mod testing;
pub mod transport;
pub mod upgrade;
pub mod wire;
pub mod words;

pub use address::Address;
pub use hsm::{Context, Machine, MachineError};
pub use name::MachineName;
pub use runtime::run;

/// Turns a module into a machine: see the crate documentation and
/// `docs/guide.md`.
///
/// In the module:
/// - `enum State { … }` lists the states: plain names; `#[initial]` marks the
///   one the machine starts in, `#[parent(P)]` puts a state inside `P`.
/// - `impl` blocks of the machine type (one or several, not generic)
///   hold the handlers:
///   `#[entry(S)]` and `#[exit(S)]` actions, `fn(&mut self, cx: &mut Context<Self>)`;
///   `#[receive(S, "name")]` receivers, `fn(&mut self, cx: &mut Context<Self>, args…)`
///   where each argument is parsed from one word of the message with
///   `FromStr` (a word in double quotes may hold spaces: [`words`]),
///   `Option<T>` takes the next word if any, a last `Vec<T>` every word
///   left and a last `&str` the rest; `#[receive(S)]` is the
///   state's empty receiver, which sees the whole message. Handlers return
///   `()` or `Result<(), E: Display>`.
///
/// `#[machine(upgrade)]` carries the machine's data (its struct derives
/// serde's `Serialize` and `Deserialize`) and current state over a live
/// upgrade (`wink upgrade`; see [`upgrade`]).
pub use wink_macros::machine;

/// What a machine module needs in scope; `#[machine]` imports it.
pub mod prelude {
    pub use crate::address::Address;
    pub use crate::control::{ExitReason, RequestId};
    pub use crate::hsm::{Context, Machine, StateId};
    pub use crate::name::MachineName;
    pub use slog::{crit, debug, error, info, o, trace, warn};
}
