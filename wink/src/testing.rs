//! Drive a machine in a test, without sockets or clocks.
//!
//! ```
//! use wink::testing::Harness;
//!
//! #[wink::machine]
//! mod counter {
//!     #[derive(Default)]
//!     pub struct Counter { pub total: i64 }
//!
//!     pub enum State { #[initial] Counting }
//!
//!     impl Counter {
//!         #[receive(Counting, "add")]
//!         fn add(&mut self, cx: &mut Context<Self>, n: i64) {
//!             self.total += n;
//!             cx.reply(format!("total {}", self.total));
//!         }
//!     }
//! }
//!
//! let mut h = Harness::new(counter::Counter::default());
//! h.start().unwrap();
//! h.receive("add 2").unwrap();
//! h.receive("add 3").unwrap();
//! assert_eq!(h.machine().total, 5);
//! assert_eq!(h.sent_texts(), ["total 2", "total 5"]);
//! assert!(h.receive("add two").is_err());
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::address::Address;
use crate::hsm::{Context, Effect, Hsm, Machine, MachineError, StateId, Step};

/// Feeds messages to a machine and records what it did: the states it
/// entered and exited, and the requests (sends, spawns, exit) it made.
pub struct Harness<M: Machine> {
    hsm: Hsm<M>,
    cx: Context<M>,
    effects: Vec<Effect>,
    steps: Vec<Step>,
}

impl<M: Machine> std::fmt::Debug for Harness<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("hsm", &self.hsm)
            .finish_non_exhaustive()
    }
}

/// The address a harness gives its machine (`127.0.0.1:50000`).
pub const MACHINE: Address = local(50000);
/// The address of the machine's parent (`127.0.0.1:50001`).
pub const PARENT: Address = local(50001);
/// The address of the machine's server (`127.0.0.1:42000`).
pub const SERVER: Address = local(42000);

const fn local(port: u16) -> Address {
    Address::new(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
}

impl<M: Machine> Harness<M> {
    /// A harness for `machine`, named `test/Machine`, at [`MACHINE`], child
    /// of [`PARENT`]. Nothing runs until [`Harness::start`].
    pub fn new(machine: M) -> Self {
        Self::with_hsm(Hsm::new(machine))
    }

    /// Like [`Harness::new`], starting in `state` instead of the initial
    /// state.
    pub fn starting_in(machine: M, state: M::State) -> Self {
        Self::with_hsm(Hsm::starting_in(machine, state))
    }

    fn with_hsm(hsm: Hsm<M>) -> Self {
        let name = "test/Machine"
            .parse()
            .unwrap_or_else(|_| unreachable!("a valid name"));
        let mut cx = Context::new(
            MACHINE,
            name,
            PARENT,
            SERVER,
            Vec::new(),
            crate::log::discard(),
            Instant::now(),
        );
        cx.set_keep_steps(true);
        Harness {
            hsm,
            cx,
            effects: Vec::new(),
            steps: Vec::new(),
        }
    }

    /// Sets the arguments the machine sees in [`Context::args`].
    pub fn with_args<A: Into<String>>(mut self, args: impl IntoIterator<Item = A>) -> Self {
        self.cx.set_args(args.into_iter().map(Into::into).collect());
        self
    }

    /// Enters the starting state's lineage.
    pub fn start(&mut self) -> Result<(), MachineError> {
        let result = self.hsm.start(&mut self.cx);
        self.collect();
        result
    }

    /// Delivers `text` as if sent by the parent.
    pub fn receive(&mut self, text: &str) -> Result<(), MachineError> {
        self.receive_from(PARENT, text)
    }

    /// Delivers `text` as if sent by `sender`.
    pub fn receive_from(&mut self, sender: Address, text: &str) -> Result<(), MachineError> {
        self.cx.set_sender(sender);
        let result = self.hsm.dispatch(&mut self.cx, text);
        self.collect();
        result
    }

    /// Exits the current lineage.
    pub fn stop(&mut self) -> Result<(), MachineError> {
        let result = self.hsm.stop(&mut self.cx);
        self.collect();
        result
    }

    /// Moves the clock the machine sees forward.
    pub fn advance(&mut self, by: Duration) {
        let now = self.cx.now() + by;
        self.cx.set_now(now);
    }

    /// The current state's name.
    pub fn state(&self) -> &'static str {
        self.hsm.current().name()
    }

    /// The current state.
    pub fn current(&self) -> M::State {
        self.hsm.current()
    }

    /// The machine's data.
    pub fn machine(&self) -> &M {
        self.hsm.machine()
    }

    /// Everything the machine asked for so far, oldest first.
    pub fn effects(&self) -> &[Effect] {
        &self.effects
    }

    /// The texts of the messages the machine sent (now or later), oldest
    /// first.
    pub fn sent_texts(&self) -> Vec<&str> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send { message, .. } | Effect::SendAt { message, .. } => {
                    Some(message.as_str())
                }
                _ => None,
            })
            .collect()
    }

    /// The steps taken so far, oldest first.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The states entered and exited so far, as `+Name` and `-Name`, oldest
    /// first: the order of entry and exit actions.
    pub fn trace(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::Entered(name) => Some(format!("+{name}")),
                Step::Exited(name) => Some(format!("-{name}")),
                Step::Transition { .. } => None,
            })
            .collect()
    }

    /// Forgets the steps and effects recorded so far.
    pub fn clear(&mut self) {
        self.steps.clear();
        self.effects.clear();
    }

    fn collect(&mut self) {
        self.cx.move_records(&mut self.steps, &mut self.effects);
    }
}
