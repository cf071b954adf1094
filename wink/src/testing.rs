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
use crate::hsm::{Effect, Hsm, Machine, MachineError, StateId, Step};
use crate::node::{Ending, Identity, Node, NodeConfig, Transmit};

/// Feeds messages to a machine and records what it did: the states it
/// entered and exited, the requests (sends, spawns, exit) it made, and the
/// messages the runtime sent for it.
///
/// It drives the runtime's own supervision core ([`Node`]) on a clock of
/// its own, so a machine behaves here as it does in a process: once it
/// has errored or exited it receives nothing more (every later
/// [`Harness::receive`] is an error), lifecycle words from strangers are
/// dropped, and [`Harness::advance`] fires scheduled sends, pulses and
/// heartbeat checks as time passes; a message the machine sends itself
/// comes back to it. The parent counts as reachable unless
/// [`Harness::cut_off_parent`] says otherwise.
pub struct Harness<M: Machine> {
    node: Node<M>,
    now: Instant,
    effects: Vec<Effect>,
    steps: Vec<Step>,
    sent: Vec<Transmit>,
    parent_reachable: bool,
    /// Spawns [`Harness::child_started`] answered.
    started: Vec<crate::control::RequestId>,
    /// Every spawn asked for, kept through [`Harness::clear`].
    spawns: Vec<(crate::control::RequestId, String)>,
}

impl<M: Machine> std::fmt::Debug for Harness<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// The address a harness gives its machine (`127.0.0.1:50000`).
pub const MACHINE: Address = local(50000);
/// The address of the machine's parent (`127.0.0.1:50001`).
pub const PARENT: Address = local(50001);
/// The address of the machine's server (`127.0.0.1:42000`).
pub const SERVER: Address = local(42000);

/// How many rounds of messages to itself one call delivers, so a machine
/// that answers itself forever does not hang a test.
const MAX_LOOPBACK: usize = 10_000;

/// `127.0.0.1:<port>`: an address for a child or a peer in a test.
pub const fn local(port: u16) -> Address {
    Address::new(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
}

impl<M: Machine> Harness<M> {
    /// A harness for `machine`, named `test/Machine`, at [`MACHINE`], child
    /// of [`PARENT`], with the default timings. Nothing runs until
    /// [`Harness::start`].
    pub fn new(machine: M) -> Self {
        Self::with_hsm(Hsm::new(machine), NodeConfig::default())
    }

    /// Like [`Harness::new`], starting in `state` instead of the initial
    /// state.
    pub fn starting_in(machine: M, state: M::State) -> Self {
        Self::with_hsm(Hsm::starting_in(machine, state), NodeConfig::default())
    }

    /// Like [`Harness::new`], with other timings.
    pub fn with_config(machine: M, config: NodeConfig) -> Self {
        Self::with_hsm(Hsm::new(machine), config)
    }

    fn with_hsm(hsm: Hsm<M>, config: NodeConfig) -> Self {
        let name = "test/Machine"
            .parse()
            .unwrap_or_else(|_| unreachable!("a valid name"));
        let identity = Identity {
            name,
            parent: PARENT,
            server: SERVER,
            args: Vec::new(),
            start: None,
            pid: 1,
        };
        let now = Instant::now();
        let config = NodeConfig {
            log_messages: false,
            ..config
        };
        let mut node = Node::new(hsm, MACHINE, identity, config, crate::log::discard(), now);
        node.keep_records();
        Harness {
            node,
            now,
            effects: Vec::new(),
            steps: Vec::new(),
            sent: Vec::new(),
            parent_reachable: true,
            started: Vec::new(),
            spawns: Vec::new(),
        }
    }

    /// Sets the arguments the machine sees in [`Context::args`](crate::Context::args).
    pub fn with_args<A: Into<String>>(mut self, args: impl IntoIterator<Item = A>) -> Self {
        self.node
            .context_mut()
            .set_args(args.into_iter().map(Into::into).collect());
        self
    }

    /// Starts the machine: `started` and `register` are sent, the starting
    /// state's lineage is entered.
    pub fn start(&mut self) -> Result<(), MachineError> {
        let result = self.node.start(self.now);
        self.collect();
        result
    }

    /// Delivers `text` as if sent by the parent.
    pub fn receive(&mut self, text: &str) -> Result<(), MachineError> {
        self.receive_from(PARENT, text)
    }

    /// Delivers `text` as if sent by `sender`. An error if the machine
    /// errored on it, or had already ended.
    pub fn receive_from(&mut self, sender: Address, text: &str) -> Result<(), MachineError> {
        let result = self.node.handle_message(self.now, sender, text);
        self.collect();
        result
    }

    /// Delivers, from `at`, the `started` of the latest child spawned with
    /// `name` that has not started yet, as the child would send it: the
    /// machine's runtime then knows it as a child, and takes its `pulsed`,
    /// `errored` and `exited`. An error if the machine spawned no such
    /// child.
    pub fn child_started(&mut self, name: &str, at: Address) -> Result<(), MachineError> {
        let start = self
            .spawns
            .iter()
            .rev()
            .find(|(id, n)| n == name && !self.started.contains(id))
            .map(|(id, _)| *id)
            .ok_or(MachineError::Lifecycle("without a spawn of that name"))?;
        self.started.push(start);
        self.receive_from(at, &format!("started {name} {start}"))
    }

    /// Orders the machine upgraded to `name`, as its server would (the
    /// path is made up: nothing runs): what it carries over, for
    /// [`Harness::upgraded`], or why it refused (the `error` it sent its
    /// server).
    pub fn upgrade(&mut self, name: &str) -> Result<crate::upgrade::Carried, String> {
        let sent = self.sent.len();
        let order = format!("upgrade 1 {name} /upgraded/{name}");
        let _ = self.node.handle_message(self.now, SERVER, &order);
        self.collect();
        if let Some((_, carried)) = self.node.take_upgrade() {
            return Ok(carried);
        }
        let refusal = self.sent[sent..]
            .iter()
            .find(|t| t.to == SERVER && t.text.starts_with("error "))
            .map(|t| t.text.clone());
        Err(refusal.unwrap_or_else(|| format!("`{order}` was not taken as an upgrade")))
    }

    /// A harness for the program a machine was upgraded to: `fresh` is
    /// this program's machine, `carried` what [`Harness::upgrade`] gave.
    /// It takes over as `wink::run` would (the machine's data and state
    /// if both programs carry them, else afresh), so
    /// [`Harness::ending`] shows a takeover that failed.
    pub fn upgraded(fresh: M, carried: &crate::upgrade::Carried) -> Self {
        let (hsm, takeover) = crate::node::restore(fresh, carried);
        let mut h = Self::with_hsm(hsm, NodeConfig::default());
        let _ = h.node.resume(h.now, carried, takeover);
        h.collect();
        h
    }

    /// Asks the machine to exit in order, as a signal would: exit actions,
    /// `exited <name> stopped`.
    pub fn stop(&mut self) -> Result<(), MachineError> {
        let result = self.node.stop(self.now);
        self.collect();
        result
    }

    /// Moves the clock forward by `by`, doing what falls due on the way
    /// (scheduled sends, pulses, heartbeat checks) at the time it is due.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.node.poll_timeout().filter(|&at| at <= until) {
            self.now = self.now.max(at);
            if self.parent_reachable {
                self.node.handle_heard(self.now);
            }
            self.node.handle_timeout(self.now);
            self.collect();
        }
        self.now = until;
        if self.parent_reachable {
            self.node.handle_heard(self.now);
        }
    }

    /// Plays the transport giving up on `message` to `to` (the recipient
    /// answered nothing for the whole retry budget): the machine gets
    /// `undelivered <to> <message>` if it has a receiver for it.
    pub fn give_up(&mut self, to: Address, message: &str) {
        let event = crate::transport::TransportEvent::GaveUp {
            to: to.socket_addr(),
            seq: 0,
            message: message.to_owned(),
        };
        self.node.handle_event(self.now, &event);
        self.collect();
    }

    /// From now on the parent answers nothing (as in a partition): after
    /// the heartbeat timeout the machine exits, `orphaned`.
    pub fn cut_off_parent(&mut self) {
        self.parent_reachable = false;
    }

    /// The harness's clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The current state's name.
    pub fn state(&self) -> &'static str {
        self.node.hsm().current().name()
    }

    /// The current state.
    pub fn current(&self) -> M::State {
        self.node.hsm().current()
    }

    /// The machine's data.
    pub fn machine(&self) -> &M {
        self.node.machine()
    }

    /// How the machine ended, once it has.
    pub fn ending(&self) -> Option<&Ending> {
        self.node.ending()
    }

    /// The supervision core underneath.
    pub fn node(&self) -> &Node<M> {
        &self.node
    }

    /// Everything the machine asked for so far, oldest first.
    pub fn effects(&self) -> &[Effect] {
        &self.effects
    }

    /// Every message the runtime sent for the machine so far (lifecycle,
    /// registration, spawns, the machine's own sends once due), oldest
    /// first.
    pub fn sent(&self) -> &[Transmit] {
        &self.sent
    }

    /// The texts of the messages the machine asked to send (now or later),
    /// oldest first.
    pub fn sent_texts(&self) -> Vec<&str> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send { message, .. }
                | Effect::SendAt { message, .. }
                | Effect::StateTimeout { message, .. } => Some(message.as_str()),
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

    /// Forgets the steps, effects and sent messages recorded so far.
    pub fn clear(&mut self) {
        self.steps.clear();
        self.effects.clear();
        self.sent.clear();
    }

    /// Moves what the machine did into the records; messages it sent to
    /// itself come back to it, as they would over the network.
    fn collect(&mut self) {
        let mut loops = 0;
        loop {
            self.node.take_records(&mut self.effects, &mut self.steps);
            // The runtime answers `status`; here with the core's figures
            // alone (no transport, no process).
            while let Some((to, id)) = self.node.poll_status() {
                let text = self.node.status(self.now, id).to_string();
                self.sent.push(Transmit { to, text });
            }
            let mut to_self = Vec::new();
            while let Some(t) = self.node.poll_transmit() {
                if t.to == MACHINE {
                    to_self.push(t.text.clone());
                }
                if t.text.starts_with("start ") {
                    if let Ok(crate::control::Request::Start { id, name, .. }) = t.text.parse() {
                        self.spawns.push((id, name.to_string()));
                    }
                }
                self.sent.push(t);
            }
            if to_self.is_empty() || loops >= MAX_LOOPBACK {
                return;
            }
            loops += 1;
            for text in to_self {
                let _ = self.node.handle_message(self.now, MACHINE, &text);
            }
        }
    }
}

/// A machine's state table alone, with no runtime around it: messages go
/// straight to [`Hsm::dispatch`] on a context of its own, and what the
/// handlers ask for (sends, timers, spawns) is dropped. For measuring
/// dispatch (the `dispatch` bench) and for tests of the table alone; a
/// test of a machine's behaviour wants [`Harness`].
pub struct Dispatcher<M: Machine> {
    hsm: Hsm<M>,
    cx: crate::hsm::Context<M>,
}

impl<M: Machine> std::fmt::Debug for Dispatcher<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("hsm", &self.hsm)
            .finish_non_exhaustive()
    }
}

impl<M: Machine> Dispatcher<M> {
    /// The table of `machine`, at [`MACHINE`], child of [`PARENT`].
    pub fn new(machine: M) -> Self {
        let name = "test/Machine"
            .parse()
            .unwrap_or_else(|_| unreachable!("a valid name"));
        let cx = crate::hsm::Context::new(
            MACHINE,
            name,
            PARENT,
            SERVER,
            Vec::new(),
            crate::log::discard(),
            Instant::now(),
        );
        Dispatcher {
            hsm: Hsm::new(machine),
            cx,
        }
    }

    /// Enters the initial state's lineage.
    pub fn start(&mut self) -> Result<(), MachineError> {
        let result = self.hsm.start(&mut self.cx);
        self.cx.drain_effects();
        result
    }

    /// Dispatches `text` as if from the parent.
    pub fn receive(&mut self, text: &str) -> Result<(), MachineError> {
        let result = self.hsm.dispatch(&mut self.cx, text);
        self.cx.clear_effects();
        result
    }

    /// The current state's name.
    pub fn state(&self) -> &'static str {
        StateId::name(self.hsm.current())
    }

    /// The machine's data.
    pub fn machine(&self) -> &M {
        self.hsm.machine()
    }
}
