//! One machine's supervision core: everything the runtime decides about a
//! machine's life, as a plain struct driven with `now` passed in.
//!
//! A [`Node`] owns the machine ([`Hsm`] and its [`Context`]) and the
//! bookkeeping around it: the lifecycle it tells its parent (`started`,
//! `pulsed`, `errored`, `exited`), its registration with its server, the
//! children it spawned (by request id until they say `started`, then by
//! address), their heartbeats, the children it wrote off (whose `stop` it
//! retries until their server answers), scheduled sends, and the end of
//! its life (an exit, an error, a stop, or the loss of its parent). It
//! reads and writes control words only through [`crate::control`].
//!
//! It has no socket, clock or process inside, in the style of the
//! transport: the driver (the runtime, [`crate::testing::Harness`], the
//! simulator) hands it what happened and carries out what it asks:
//!
//! - [`Node::start`], [`Node::handle_message`], [`Node::handle_timeout`],
//!   [`Node::handle_event`] (what the transport reports),
//!   [`Node::handle_heard`] (when the parent was last heard from),
//!   [`Node::stop`] (a signal);
//! - [`Node::poll_transmit`] yields the messages to send,
//!   [`Node::poll_timeout`] when to call [`Node::handle_timeout`] next;
//! - [`Node::ending`] says how it ended, once it has: its last messages
//!   are then queued, and the driver lingers until they are delivered.
//!
//! The rules (the long form is `docs/semantics.md`, "Supervision"):
//!
//! - Control words are accepted only from senders entitled to them (see
//!   `docs/operations.md`); anything else with a control word first is
//!   dropped and counted, never delivered, never an error.
//! - A child that dies without a word is reported by its server (`died`),
//!   one silent for the heartbeat timeout is written off: either way the
//!   machine's receivers get `errored <name> <why>` and
//!   `exited <name> <reason>` as if from the child, once.
//! - A written-off child is stopped through its server, the `stop` retried
//!   every pulse until the server answers (for ten heartbeat timeouts).
//! - A machine that hears nothing from its parent for the heartbeat
//!   timeout, or sees its parent restart, exits with reason `orphaned`.

mod children;
#[cfg(test)]
mod request_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod upgrade_tests;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use slog::{info, warn, Logger};

use crate::address::Address;
use crate::control::{
    Control, ExitReason, Kind, Lifecycle, Parent, Reply, Request, RequestId, Target, UpgradeOrder,
    MAX_GRACE_MS,
};
use crate::hsm::{Context, Effect, Hsm, Machine, MachineError, Step, TimerId};
use crate::name::MachineName;
use crate::supervisor::{Action, Supervisor};
use crate::transport::TransportEvent;
use crate::upgrade::{Carried, CarriedRequest, CarriedTimer};
use crate::wire::{self, MAX_MESSAGE_LEN};
use children::{Children, Lost};

/// The timings of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// How often the machine says `pulsed` to its parent (and to its
    /// server). Seed: 10 s.
    pub pulse: Duration,
    /// Silence after which a child is written off, and after which a
    /// machine that heard nothing from its parent exits. Seed: 60 s.
    pub heartbeat_timeout: Duration,
    /// Whether every message sent and received is logged.
    pub log_messages: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            pulse: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(60),
            log_messages: true,
        }
    }
}

/// Who a machine is and where it belongs.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The machine's name.
    pub name: MachineName,
    /// Its parent's address: lifecycle messages go there.
    pub parent: Address,
    /// Its host's server: `register`, `unregister` and spawns go there.
    pub server: Address,
    /// The arguments after name, address and parent.
    pub args: Vec<String>,
    /// The id of the `start` that made it (`WINK_START_ID`), if a server
    /// started it.
    pub start: Option<RequestId>,
    /// Its process id, for `register`.
    pub pid: u32,
}

/// How a machine's life ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The reason its `exited` carries.
    pub reason: ExitReason,
    /// For [`ExitReason::Error`], the error its `errored` carried.
    pub error: Option<String>,
}

impl Ending {
    fn new(reason: ExitReason) -> Self {
        Ending {
            reason,
            error: None,
        }
    }

    fn errored(error: String) -> Self {
        Ending {
            reason: ExitReason::Error,
            error: Some(error),
        }
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error {
            Some(error) => write!(f, "{}: {error}", self.reason),
            None => write!(f, "{}", self.reason),
        }
    }
}

/// A message for the driver to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The recipient.
    pub to: Address,
    /// The message text.
    pub text: String,
}

/// Counters, all since the node started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Messages handed to the machine's receivers.
    pub delivered: u64,
    /// Control words from senders not entitled to them, or that did not
    /// parse: dropped.
    pub dropped: u64,
    /// Children reported lost (died, heartbeat, unstarted).
    pub lost: u64,
    /// `stop` requests sent for written-off children, retries included.
    pub stops_sent: u64,
    /// Messages the transport gave up on.
    pub gave_up: u64,
    /// Messages that arrived after the machine had ended.
    pub after_end: u64,
}

/// A message to send at a time; ordered by time, then by when it was asked
/// for.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Scheduled {
    at: Instant,
    order: u64,
    id: TimerId,
    to: Address,
    message: String,
}

/// A request of this machine ([`Context::request`]) awaiting its answer.
#[derive(Debug)]
struct Pending {
    to: Address,
    /// The request's first word.
    name: String,
    timeout: Duration,
    deadline: Instant,
}

/// The machine the program before carried over (if it carried one and
/// this program's machine takes it: [`Machine::restore`]), else `fresh`,
/// and how the node takes it over ([`Node::resume`]).
pub fn restore<M: Machine>(fresh: M, carried: &Carried) -> (Hsm<M>, Takeover) {
    let Some((state, data)) = &carried.machine else {
        return (Hsm::new(fresh), Takeover::Fresh);
    };
    match M::restore(data) {
        None => (Hsm::new(fresh), Takeover::Fresh),
        Some(Err(why)) => (Hsm::new(fresh), Takeover::Failed(why)),
        Some(Ok(restored)) => match <M::State as crate::hsm::StateId>::from_name(state) {
            Some(state) => (Hsm::starting_in(restored, state), Takeover::Resumed),
            None => {
                let why = format!(
                    "the program before was in state `{state}`, which {} does not have",
                    M::description().machine
                );
                (Hsm::new(fresh), Takeover::Failed(why))
            }
        },
    }
}

/// How a program that a machine was upgraded to takes it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Takeover {
    /// With the machine's data and state from the program before.
    Resumed,
    /// Afresh: its initial state is entered.
    Fresh,
    /// It cannot (the data did not decode, the state is gone): the
    /// machine errors with this.
    Failed(String),
}

/// A request this machine took and has not answered.
#[derive(Debug)]
struct Open {
    from: Address,
    id: RequestId,
    name: String,
}

/// Most requests of one machine awaiting answers: one more is its error.
pub const MAX_PENDING: usize = 4096;

/// Most unanswered requests a machine remembers, to tell their senders
/// `failed` when it ends; past it, the oldest are forgotten (their
/// requesters time out).
pub const MAX_OPEN: usize = 1024;

/// Most addresses remembered as told `orphaned` (for the once-a-pulse
/// limit); the oldest go first.
const MAX_TOLD: usize = 1024;

/// Longest `errored` message sent: longer errors are cut.
const MAX_ERROR: usize = 4096;

/// One machine's supervision core: see the [module documentation](self).
pub struct Node<M: Machine> {
    hsm: Hsm<M>,
    cx: Context<M>,
    config: NodeConfig,
    identity: Identity,
    log: Logger,
    /// `<address> <name>`, the start of every log line.
    who: String,
    out: VecDeque<Transmit>,
    /// Messages for the machine's own receivers (lifecycle stand-ins),
    /// delivered after the current handler.
    internal: VecDeque<(Address, String, Option<RequestId>)>,
    scheduled: BinaryHeap<Reverse<Scheduled>>,
    /// The timers of `scheduled` not cancelled: one fires only if it is
    /// still here.
    timers: HashSet<TimerId>,
    /// The state timeout, and the state it belongs to.
    state_timeout: Option<(TimerId, M::State)>,
    /// Why the handler that just ran refused its message, if it did.
    refused: Option<String>,
    /// Requests of this machine awaiting their answer.
    pending: BTreeMap<RequestId, Pending>,
    /// When each pending request times out (answered ones linger until
    /// their time, or until they outnumber the pending twice).
    deadlines: BinaryHeap<Reverse<(Instant, RequestId)>>,
    /// Requests this machine took and has not answered: each gets `failed`
    /// when it ends. The oldest go past [`MAX_OPEN`].
    open: VecDeque<Open>,
    /// The declared supervisor, once the machine asked for one.
    supervisor: Option<Supervisor>,
    /// The upgrade under way, and what it carries, once ordered.
    upgrade: Option<(UpgradeOrder, Carried)>,
    /// `status` requests to answer: who asked, with which id.
    status_asked: VecDeque<(Address, RequestId)>,
    /// When the machine started (this program took it over).
    started_at: Instant,
    order: u64,
    next_id: u64,
    children: Children,
    /// The id of the latest `register`, until `registered` answers it.
    registering: Option<RequestId>,
    next_register: Option<Instant>,
    parent_heard: Instant,
    next_pulse: Instant,
    next_check: Instant,
    started: bool,
    ending: Option<Ending>,
    /// The final messages are queued: nothing more happens.
    finished: bool,
    /// Keep each hsm effect and step for [`Node::take_records`].
    keep_records: bool,
    effects: Vec<Effect>,
    steps: Vec<Step>,
    stats: NodeStats,
    watch: bool,
    notices: VecDeque<Notice>,
    /// Strangers told `orphaned`, and until when not to tell them again.
    told: BTreeMap<Address, Instant>,
}

/// A lifecycle message handed to a machine's receivers, from a child (or
/// its stand-in), seen by a driver that asked with [`Node::watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The child (or its server, for a child never heard from).
    pub from: Address,
    /// The message, as the receivers saw it.
    pub lifecycle: Lifecycle,
    /// The id of the spawn the child came from.
    pub start: Option<RequestId>,
}

impl<M: Machine> fmt::Debug for Node<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("who", &self.who)
            .field("hsm", &self.hsm)
            .field("ending", &self.ending)
            .finish_non_exhaustive()
    }
}

/// The word of the message a machine gets when one of its messages is
/// given up: `undelivered <to> <message>`.
pub const UNDELIVERED: &str = "undelivered";

/// The word of the message a machine sends the sender of a message it
/// errored on, before it exits: `failed <message-name> <why>`. A machine
/// that gets one hands it to its receiver for it, if any (none is no
/// error).
pub const FAILED: &str = "failed";

/// The word of the message a machine sends the sender of a message it
/// refused ([`Context::refuse`]): `refused <message-name> <why>`. Like
/// `failed`, news for a receiver if there is one.
pub const REFUSED: &str = "refused";

/// The word of a server's order to upgrade ([`UpgradeOrder`]), which the
/// runtime takes only from its own server.
pub const UPGRADE: &str = "upgrade";

/// The word of a request ([`Context::request`]): `request <id>
/// <message…>`. The runtime hands `<message…>` to the receivers, and
/// [`Context::reply`] answers it.
pub const REQUEST: &str = "request";

/// The word of an answer to a request: `reply <id> <message…>`, accepted
/// only from the address the request went to, while it waits.
pub const REPLY: &str = "reply";

/// The word a machine gets when its request went unanswered for its
/// timeout: `timeout <name> <ms>`.
pub const TIMEOUT: &str = "timeout";

/// `<id> <message…>` after the first word of `text`: a request's or a
/// reply's id and message, if both are there.
fn split_id(text: &str) -> Option<(RequestId, &str)> {
    let text = text.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (_, rest) = text.split_once(|c: char| c.is_ascii_whitespace())?;
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (id, message) = rest.split_once(|c: char| c.is_ascii_whitespace())?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id = RequestId(id.parse().ok()?);
    let message = message.trim_start_matches(|c: char| c.is_ascii_whitespace());
    (!message.is_empty()).then_some((id, message))
}

/// Most `status` requests waiting for their answer; more are dropped.
const MAX_STATUS_ASKED: usize = 64;

/// The id of `status <id>`, if that is all `text` says.
fn split_status(text: &str) -> Option<RequestId> {
    let mut words = text.split_ascii_whitespace();
    let (_, id, extra) = (words.next(), words.next()?, words.next());
    if extra.is_some() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok().map(RequestId)
}

/// The first word of `text`.
fn first_word(text: &str) -> &str {
    text.split_ascii_whitespace().next().unwrap_or("")
}

/// Whether `word` is news of a message of ours (`failed`, `refused`): for
/// a receiver if there is one, never an error, never answered.
fn is_news(word: &str) -> bool {
    word == FAILED || word == REFUSED
}

impl<M: Machine> Node<M> {
    /// A node for `hsm` at `me`; nothing happens until [`Node::start`].
    pub fn new(
        hsm: Hsm<M>,
        me: Address,
        identity: Identity,
        config: NodeConfig,
        log: Logger,
        now: Instant,
    ) -> Self {
        let mut cx = Context::new(
            me,
            identity.name.clone(),
            identity.parent,
            identity.server,
            identity.args.clone(),
            log.clone(),
            now,
        );
        cx.set_log_steps(config.log_messages);
        Node {
            who: format!("{me} {}", identity.name),
            hsm,
            cx,
            next_pulse: now + config.pulse,
            next_check: now + config.heartbeat_timeout,
            parent_heard: now,
            children: Children::new(config.heartbeat_timeout, config.pulse),
            config,
            identity,
            log,
            out: VecDeque::new(),
            internal: VecDeque::new(),
            scheduled: BinaryHeap::new(),
            timers: HashSet::new(),
            state_timeout: None,
            refused: None,
            pending: BTreeMap::new(),
            deadlines: BinaryHeap::new(),
            open: VecDeque::new(),
            supervisor: None,
            upgrade: None,
            status_asked: VecDeque::new(),
            started_at: now,
            order: 0,
            next_id: 1,
            registering: None,
            next_register: None,
            started: false,
            ending: None,
            finished: false,
            keep_records: false,
            effects: Vec::new(),
            steps: Vec::new(),
            stats: NodeStats::default(),
            watch: false,
            notices: VecDeque::new(),
            told: BTreeMap::new(),
        }
    }

    /// Keeps every effect the machine asks for and every step it takes,
    /// for [`Node::take_records`] (the test harness reads them).
    pub fn keep_records(&mut self) {
        self.keep_records = true;
        self.cx.set_keep_steps(true);
    }

    /// Moves the effects and steps kept since the last call to the end of
    /// `effects` and `steps`.
    pub fn take_records(&mut self, effects: &mut Vec<Effect>, steps: &mut Vec<Step>) {
        effects.append(&mut self.effects);
        steps.append(&mut self.steps);
    }

    /// The machine's data.
    pub fn machine(&self) -> &M {
        self.hsm.machine()
    }

    /// The machine and its state semantics.
    pub fn hsm(&self) -> &Hsm<M> {
        &self.hsm
    }

    /// The context handlers see (its arguments, for instance).
    pub fn context_mut(&mut self) -> &mut Context<M> {
        &mut self.cx
    }

    /// How the machine ended, once it has.
    pub fn ending(&self) -> Option<&Ending> {
        self.ending.as_ref()
    }

    /// The counters.
    pub fn stats(&self) -> &NodeStats {
        &self.stats
    }

    /// Children alive (heard from) and spawns in flight.
    pub fn children(&self) -> (usize, usize) {
        (self.children.alive(), self.children.spawning())
    }

    /// The children heard from: address and name.
    pub fn child_addresses(&self) -> impl Iterator<Item = (Address, &MachineName)> + '_ {
        self.children.addresses()
    }

    /// Asks for a [`Notice`] of every lifecycle message handed to the
    /// machine's receivers (for simulations and tests).
    pub fn watch(&mut self) {
        self.watch = true;
    }

    /// The next notice, after [`Node::watch`].
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// The machine's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Entries of every bounded table: children, spawns in flight,
    /// written-off children, late spawns, scheduled sends.
    pub fn table_sizes(&self) -> usize {
        self.children.table_sizes()
            + self.scheduled.len()
            + self.told.len()
            + self.pending.len()
            + self.deadlines.len()
            + self.open.len()
    }

    /// Starts the machine: `started` to its parent, `register` to its
    /// server, then its initial state's entry actions.
    pub fn start(&mut self, now: Instant) -> Result<(), MachineError> {
        self.begin(now)?;
        info!(self.log, "{} started", self.who);
        let started = Lifecycle::Started {
            name: self.identity.name.clone(),
            start: self.identity.start,
        };
        self.send(self.identity.parent, started.to_string());
        self.register(now);
        let result = self.hsm.start(&mut self.cx);
        self.after_handler(now, result.clone(), None);
        self.settle(now);
        result
    }

    /// Handles one message from `from`: control words are checked and
    /// acted on, everything else goes to the machine's receivers. Returns
    /// what the machine's receivers made of it (`Ok` for a control word
    /// handled by the runtime or dropped), or an error if the machine has
    /// ended.
    pub fn handle_message(
        &mut self,
        now: Instant,
        from: Address,
        text: &str,
    ) -> Result<(), MachineError> {
        if self.finished || !self.started {
            self.stats.after_end += 1;
            return Err(MachineError::Lifecycle("not running"));
        }
        self.cx.set_now(now);
        if self.config.log_messages {
            info!(self.log, "{} < {} {}", self.who, from, text);
        }
        if from == self.identity.parent {
            self.parent_heard = self.parent_heard.max(now);
        }
        // One `match` on the first word: the runtime's own words, then the
        // control words, then an ordinary message for the receivers.
        let word = first_word(text);
        let result = match word {
            UNDELIVERED => {
                // Only this machine's own runtime says it, of its own messages.
                self.drop_word(from, text, "only the runtime reports messages undelivered");
                Ok(())
            }
            crate::control::STATUS => {
                self.on_status(from, text);
                Ok(())
            }
            UPGRADE if from == self.identity.server => {
                match text.parse::<UpgradeOrder>() {
                    Ok(order) => self.on_upgrade(now, order),
                    Err(e) => self.drop_word(from, text, &e.to_string()),
                }
                Ok(())
            }
            REQUEST | REPLY => match split_id(text) {
                Some((id, message)) if word == REQUEST => {
                    self.dispatch(now, from, message, Some(id))
                }
                Some((id, answer)) => self.on_answer(now, from, id, answer, text),
                None => {
                    self.drop_word(from, text, "no id, or no message after it");
                    Ok(())
                }
            },
            _ => self.on_control_or_ordinary(now, from, word, text),
        };
        self.settle(now);
        result
    }

    /// `status <id>`: the runtime's to answer, whoever asks (a machine's
    /// vitals are no secret within its cluster); the driver answers it.
    fn on_status(&mut self, from: Address, text: &str) {
        match split_status(text) {
            Some(id) if self.status_asked.len() < MAX_STATUS_ASKED => {
                self.status_asked.push_back((from, id));
            }
            Some(_) => self.drop_word(from, text, "too many status requests waiting"),
            None => self.drop_word(from, text, "status takes one id"),
        }
    }

    /// A control word (only replies and lifecycle words are the runtime's;
    /// requests sent to a machine are ordinary messages), or an ordinary
    /// message.
    fn on_control_or_ordinary(
        &mut self,
        now: Instant,
        from: Address,
        word: &str,
        text: &str,
    ) -> Result<(), MachineError> {
        let parsed = match Control::kind(word) {
            Some(Kind::Reply | Kind::Lifecycle) => Control::parse(text),
            _ => Ok(None),
        };
        match parsed {
            Ok(None) | Ok(Some(Control::Request(_))) => self.dispatch(now, from, text, None),
            Ok(Some(Control::Reply(reply))) => {
                self.on_reply(now, from, reply);
                Ok(())
            }
            Ok(Some(Control::Lifecycle(lifecycle))) => self.on_lifecycle(now, from, lifecycle),
            Err(e) => {
                // A control word that does not parse: nobody entitled to
                // it sends that.
                self.drop_word(from, text, &e.to_string());
                Ok(())
            }
        }
    }

    /// Does what is due at `now`: scheduled sends, the pulse, heartbeats,
    /// stop retries, the parent check.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.finished || !self.started {
            return;
        }
        self.cx.set_now(now);
        while self.ending.is_none() && self.scheduled.peek().is_some_and(|Reverse(s)| s.at <= now) {
            if let Some(Reverse(due)) = self.scheduled.pop() {
                if self.timers.remove(&due.id) {
                    if self.state_timeout.is_some_and(|(id, _)| id == due.id) {
                        self.state_timeout = None;
                    }
                    self.send_checked(due.to, due.message);
                }
            }
        }
        while self.ending.is_none()
            && self
                .deadlines
                .peek()
                .is_some_and(|Reverse((at, _))| *at <= now)
        {
            if let Some(Reverse((_, id))) = self.deadlines.pop() {
                if let Some(pending) = self.pending.remove(&id) {
                    let text =
                        format!("{TIMEOUT} {} {}", pending.name, pending.timeout.as_millis());
                    let _ = self.deliver_answer(now, pending.to, id, &text);
                }
            }
        }
        if let Some(supervisor) = self.supervisor.as_mut() {
            supervisor.handle_timeout(now);
            self.drive_supervisor(now);
        }
        // While its children stop, a supervisor still pulses and watches.
        let alive = self.ending.is_none() || self.is_draining();
        if alive && now >= self.next_pulse {
            self.next_pulse = now + self.config.pulse;
            let pulsed = Lifecycle::Pulsed {
                name: self.identity.name.clone(),
            }
            .to_string();
            if self.identity.server != self.identity.parent {
                self.send(self.identity.server, pulsed.clone());
            }
            self.send(self.identity.parent, pulsed);
        }
        if self.ending.is_none() && self.next_register.is_some_and(|at| now >= at) {
            self.register(now);
        }
        if alive && now >= self.next_check {
            self.check(now);
        }
        if !self.told.is_empty() {
            self.told.retain(|_, until| *until > now);
        }
        self.settle(now);
    }

    /// What the transport reported: a message given up on, or a peer that
    /// restarted (the parent: this machine is orphaned; the server: it
    /// registers again with the new one).
    pub fn handle_event(&mut self, now: Instant, event: &TransportEvent) {
        if self.finished || !self.started {
            return;
        }
        self.cx.set_now(now);
        match event {
            TransportEvent::GaveUp { to, seq, message } => {
                self.stats.gave_up += 1;
                warn!(
                    self.log,
                    "{} gave up on message {} to {}: {}",
                    self.who,
                    seq,
                    Address::from(*to),
                    message
                );
                self.tell_undelivered(now, Address::from(*to), message);
            }
            TransportEvent::WrongVersion { peer, version } => {
                warn!(
                    self.log,
                    "{} dropped datagrams from {} of protocol version {} (this is version {})",
                    self.who,
                    Address::from(*peer),
                    version,
                    crate::wire::VERSION
                );
            }
            TransportEvent::Refused { peer, why } => {
                warn!(
                    self.log,
                    "{} dropped datagrams from {}: {} (each counted; said once per address)",
                    self.who,
                    Address::from(*peer),
                    why
                );
            }
            TransportEvent::PeerRestarted { peer, .. } => {
                let peer = Address::from(*peer);
                info!(self.log, "{} peer {} restarted", self.who, peer);
                if peer == self.identity.server {
                    // A new server on the same address: tell it about us.
                    self.register(now);
                } else if peer == self.identity.parent {
                    warn!(
                        self.log,
                        "{} parent {} restarted: this machine is orphaned", self.who, peer
                    );
                    self.end(Ending::new(ExitReason::Orphaned));
                }
            }
        }
        self.settle(now);
    }

    /// The parent was last heard from (a message or an ack) at `at`.
    pub fn handle_heard(&mut self, at: Instant) {
        self.parent_heard = self.parent_heard.max(at);
    }

    /// Asks the machine to exit in order (a signal): exit actions,
    /// `exited <name> stopped`. Returns what the exit actions made of it.
    pub fn stop(&mut self, now: Instant) -> Result<(), MachineError> {
        if self.finished {
            return Ok(());
        }
        self.cx.set_now(now);
        info!(self.log, "{} stopping", self.who);
        self.end(Ending::new(ExitReason::Stopped));
        if self.supervisor.is_some() {
            // Its children stop first, one by one.
            self.settle(now);
            return Ok(());
        }
        self.finish(now)
    }

    /// The machine's life begins at `now` (once: a second start is an
    /// error), whether started or taken over after an upgrade.
    fn begin(&mut self, now: Instant) -> Result<(), MachineError> {
        if self.started {
            return Err(MachineError::Lifecycle("already started"));
        }
        self.started = true;
        self.started_at = now;
        self.cx.set_now(now);
        self.parent_heard = now;
        Ok(())
    }

    /// The next `status` request to answer: who asked, with which id. The
    /// driver answers it with [`Node::status`] and its transport's and
    /// process's figures.
    pub fn poll_status(&mut self) -> Option<(Address, RequestId)> {
        self.status_asked.pop_front()
    }

    /// What this node knows of the machine for a `status` answer: name,
    /// state lineage, parent, uptime, children, restarts and messages
    /// handed to its receivers. The transport's and the process's figures
    /// are zero: the driver has them.
    pub fn status(&self, now: Instant, id: RequestId) -> crate::control::StatusReport {
        let lineage: Vec<&str> = crate::hsm::StateId::lineage(self.hsm.current())
            .iter()
            .map(|s| crate::hsm::StateId::name(*s))
            .collect();
        let (alive, spawning) = self.children();
        crate::control::StatusReport {
            id,
            name: self.identity.name.clone(),
            state: lineage.join("/"),
            parent: self.identity.parent,
            uptime_ms: u64::try_from(now.saturating_duration_since(self.started_at).as_millis())
                .unwrap_or(u64::MAX),
            children: (alive + spawning) as u64,
            restarts: self.supervisor.as_ref().map_or(0, Supervisor::restarted),
            received: self.stats.delivered,
            sent: 0,
            retransmitted: 0,
            duplicates: 0,
            gave_up: 0,
            rss_bytes: 0,
            cpu_ms: 0,
        }
    }

    /// The upgrade ordered, once the machine has stopped for it: the
    /// order, and what the new program takes over (its transport part is
    /// the driver's to fill in). The node is finished; it says nothing
    /// more, neither `exited` nor `unregister`.
    pub fn take_upgrade(&mut self) -> Option<(UpgradeOrder, Carried)> {
        self.upgrade.take()
    }

    /// The server ordered an upgrade: the machine stops taking messages
    /// and puts together what the new program takes over, or refuses.
    fn on_upgrade(&mut self, now: Instant, order: UpgradeOrder) {
        let refusal = if self.ending.is_some() {
            Some("it is ending".to_owned())
        } else if self.supervisor.is_some() || self.children.alive() + self.children.spawning() > 0
        {
            Some("it has children; a machine with children cannot be upgraded (yet): stop them first".to_owned())
        } else {
            None
        };
        let machine = match refusal {
            Some(why) => Err(why),
            None => match self.hsm.machine().save() {
                None => Ok(None),
                Some(Ok(data)) => Ok(Some((
                    crate::hsm::StateId::name(self.hsm.current()).to_owned(),
                    data,
                ))),
                Some(Err(why)) => Err(why),
            },
        };
        let machine = match machine {
            Ok(machine) => machine,
            Err(why) => {
                warn!(self.log, "{} cannot be upgraded: {}", self.who, why);
                let error = Reply::error(Some(order.id), "upgrade", why);
                return self.send(self.identity.server, error.to_string());
            }
        };
        info!(
            self.log,
            "{} upgrading to {} ({}), {}",
            self.who,
            order.name,
            order.path.display(),
            if machine.is_some() {
                "carrying its data and state"
            } else {
                "to start afresh"
            }
        );
        let carry = machine.is_some();
        if !carry {
            // This program's machine ends here: its exit actions run, and
            // what it was asked and never answered fails.
            let _ = self.hsm.stop(&mut self.cx);
            let effects: Vec<Effect> = self.cx.drain_effects().collect();
            for effect in effects {
                if let Effect::Send { to, message } = effect {
                    self.send_checked(to, message);
                }
            }
            for open in std::mem::take(&mut self.open) {
                let failed = format!("{FAILED} {} upgraded before answering", open.name);
                self.answer(open.from, Some(open.id), failed);
            }
        }
        let timers = if carry {
            self.scheduled
                .iter()
                .filter(|Reverse(s)| self.timers.contains(&s.id))
                .map(|Reverse(s)| CarriedTimer {
                    id: s.id.0,
                    in_us: micros(s.at.saturating_duration_since(now)),
                    to: s.to.socket_addr(),
                    message: s.message.clone(),
                    state_timeout: self.state_timeout.is_some_and(|(id, _)| id == s.id),
                })
                .collect()
        } else {
            Vec::new()
        };
        let requests = if carry {
            self.pending
                .iter()
                .map(|(id, p)| CarriedRequest {
                    id: id.0,
                    to: p.to.socket_addr(),
                    name: p.name.clone(),
                    timeout_ms: u64::try_from(p.timeout.as_millis()).unwrap_or(u64::MAX),
                    in_us: micros(p.deadline.saturating_duration_since(now)),
                })
                .collect()
        } else {
            Vec::new()
        };
        let open = std::mem::take(&mut self.open)
            .into_iter()
            .map(|o| (o.from.socket_addr(), o.id.0, o.name))
            .collect();
        let carried = Carried {
            format: crate::upgrade::FORMAT,
            order: order.id.0,
            from: self.identity.name.to_string(),
            machine,
            next_id: self.next_id,
            next_timer: self.cx.next_timer(),
            timers,
            requests,
            open,
            inbox: Vec::new(),
            undelivered: Vec::new(),
            transport: crate::transport::Handover::default(),
        };
        self.scheduled.clear();
        self.timers.clear();
        self.pending.clear();
        self.deadlines.clear();
        self.upgrade = Some((order, carried));
        self.finished = true;
    }

    /// Starts the machine in the program it was upgraded to, from what the
    /// program before carried: `register` (under its name now) to its
    /// server, `upgraded <name> <from>` to its parent, then the machine
    /// goes on where it was ([`Takeover::Resumed`]: its timers and
    /// requests too), starts afresh, or errors. Then it handles what the
    /// program before had taken off the socket and not handled, and hears
    /// what it had sent and not seen acknowledged as given up.
    pub fn resume(
        &mut self,
        now: Instant,
        carried: &Carried,
        takeover: Takeover,
    ) -> Result<(), MachineError> {
        self.begin(now)?;
        self.next_id = self.next_id.max(carried.next_id);
        self.cx.set_next_timer(carried.next_timer);
        info!(
            self.log,
            "{} upgraded from {} ({:?})", self.who, carried.from, takeover
        );
        self.register(now);
        let from = carried
            .from
            .parse()
            .unwrap_or_else(|_| self.identity.name.clone());
        let upgraded = Lifecycle::Upgraded {
            name: self.identity.name.clone(),
            from,
        }
        .to_string();
        // The server hears it too: that the new program runs is what
        // completes the upgrade it ordered.
        if self.identity.server != self.identity.parent {
            self.send(self.identity.server, upgraded.clone());
        }
        self.send(self.identity.parent, upgraded);
        let takeover_fresh = takeover != Takeover::Resumed;
        let result = match takeover {
            Takeover::Failed(why) => Err(MachineError::Raised(why)),
            Takeover::Fresh => self.hsm.start(&mut self.cx),
            Takeover::Resumed => {
                for t in &carried.timers {
                    let id = TimerId(t.id);
                    let at = now + Duration::from_micros(t.in_us);
                    self.schedule(id, at, Address::from(t.to), t.message.clone());
                    if t.state_timeout {
                        self.state_timeout = Some((id, self.hsm.current()));
                    }
                }
                for r in &carried.requests {
                    let id = RequestId(r.id);
                    let deadline = now + Duration::from_micros(r.in_us);
                    let pending = Pending {
                        to: Address::from(r.to),
                        name: r.name.clone(),
                        timeout: Duration::from_millis(r.timeout_ms),
                        deadline,
                    };
                    self.pending.insert(id, pending);
                    self.deadlines.push(Reverse((deadline, id)));
                }
                for (from, id, name) in &carried.open {
                    self.open.push_back(Open {
                        from: Address::from(*from),
                        id: RequestId(*id),
                        name: name.clone(),
                    });
                }
                self.hsm.resume()
            }
        };
        if takeover_fresh {
            // This machine never took them: they fail, as the old program
            // would have failed them.
            for (from, id, name) in &carried.open {
                let failed = format!("{FAILED} {name} upgraded before answering");
                self.answer(Address::from(*from), Some(RequestId(*id)), failed);
            }
        }
        self.after_handler(now, result.clone(), None);
        self.settle(now);
        for (from, text) in &carried.inbox {
            let _ = self.handle_message(now, Address::from(*from), text);
        }
        for (to, message) in &carried.undelivered {
            let event = TransportEvent::GaveUp {
                to: *to,
                seq: 0,
                message: message.clone(),
            };
            self.handle_event(now, &event);
        }
        result
    }

    /// When [`Node::handle_timeout`] should be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.finished || !self.started {
            return None;
        }
        let mut at = self.next_pulse.min(self.next_check);
        if let Some(stop) = self.supervisor.as_ref().and_then(Supervisor::poll_timeout) {
            at = at.min(stop);
        }
        if self.ending.is_some() {
            // Draining: only pulses, checks and the children's stops.
            return Some(at);
        }
        if let Some(Reverse(first)) = self.scheduled.peek() {
            at = at.min(first.at);
        }
        if let Some(register) = self.next_register {
            at = at.min(register);
        }
        if let Some(Reverse((deadline, _))) = self.deadlines.peek() {
            at = at.min(*deadline);
        }
        Some(at)
    }

    /// The next message to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// Whether the machine has ended and queued its last messages.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn next_request_id(&mut self) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        id
    }

    fn register(&mut self, now: Instant) {
        let id = self.next_request_id();
        self.registering = Some(id);
        // Until `registered` answers (a server that restarted and missed
        // the first one), again every pulse.
        self.next_register = Some(now + self.config.pulse);
        let register = Request::Register {
            id,
            name: self.identity.name.clone(),
            pid: self.identity.pid,
            parent: self.identity.parent,
            start: self.identity.start,
        };
        self.send(self.identity.server, register.to_string());
    }

    fn on_reply(&mut self, now: Instant, from: Address, reply: Reply) {
        let Some(id) = reply.id() else {
            return self.drop_word(from, &reply.to_string(), "a reply to no request");
        };
        if self.registering == Some(id) && from == self.identity.server {
            match reply {
                Reply::Registered { .. } => {
                    self.registering = None;
                    self.next_register = None;
                }
                Reply::Error { reason, .. } => {
                    warn!(
                        self.log,
                        "{} server {} refused to register it: {}", self.who, from, reason
                    );
                    self.registering = None;
                    self.next_register = None;
                }
                other => self.drop_word(from, &other.to_string(), "not an answer to register"),
            }
            return;
        }
        if !self.children.knows_request(id, from) {
            return self.drop_word(from, &reply.to_string(), "a reply to no request of ours");
        }
        if let Some(lost) = self.children.on_reply(now, from, &reply) {
            self.report_lost(lost);
        }
    }

    fn on_lifecycle(
        &mut self,
        now: Instant,
        from: Address,
        lifecycle: Lifecycle,
    ) -> Result<(), MachineError> {
        match &lifecycle {
            Lifecycle::Started { name, start } => {
                match self.children.on_started(now, from, name, *start) {
                    children::Started::Child => {
                        // The receivers hear it first, then the supervisor
                        // goes on.
                        let start = self.children.start_of(from);
                        let result =
                            self.dispatch_lifecycle(from, &lifecycle.for_receivers(), start);
                        if let (Some(supervisor), Some(start)) = (self.supervisor.as_mut(), start) {
                            supervisor.on_started(now, start);
                            self.drive_supervisor(now);
                        }
                        return result;
                    }
                    children::Started::Late { server } => {
                        // Written off before it said `started`: stop it now
                        // that its port is known.
                        info!(
                            self.log,
                            "{} child {} {} started too late: stopping it", self.who, from, name
                        );
                        let id = self.next_request_id();
                        self.children.write_off(now, from, name.clone(), server, id);
                        self.send_stop(server, id, from.port());
                        return Ok(());
                    }
                    children::Started::Stranger => {
                        self.drop_word(from, &lifecycle.to_string(), "not a spawn of ours");
                        return Ok(());
                    }
                }
            }
            Lifecycle::Pulsed { name } | Lifecycle::Errored { name, .. } => {
                if !self.children.heard(now, from, name) {
                    if let Some((server, id, port)) = self.children.still_alive(now, from) {
                        self.send_stop(server, id, port);
                    }
                    if matches!(lifecycle, Lifecycle::Pulsed { .. }) {
                        self.tell_orphaned(now, from, name);
                    }
                    self.drop_word(from, &lifecycle.to_string(), "not a child of ours");
                    return Ok(());
                }
            }
            Lifecycle::Exited { name, reason } => match self.children.exited(from, name) {
                Some(start) => {
                    let result =
                        self.dispatch_lifecycle(from, &lifecycle.for_receivers(), Some(start));
                    if let Some(supervisor) = self.supervisor.as_mut() {
                        supervisor.on_exited(now, start, *reason);
                        self.drive_supervisor(now);
                    }
                    return result;
                }
                None => {
                    self.drop_word(from, &lifecycle.to_string(), "not a child of ours");
                    return Ok(());
                }
            },
            Lifecycle::Upgraded { name, from: old } => {
                match self.children.upgraded(now, from, old, name) {
                    Some(start) => {
                        info!(
                            self.log,
                            "{} child {} {} upgraded to {}", self.who, from, old, name
                        );
                        return self.dispatch_lifecycle(from, &lifecycle.to_string(), Some(start));
                    }
                    None => {
                        self.drop_word(from, &lifecycle.to_string(), "not a child of ours");
                        return Ok(());
                    }
                }
            }
            Lifecycle::Orphaned { name } => {
                if from == self.identity.parent && *name == self.identity.name {
                    warn!(
                        self.log,
                        "{} its parent {} wrote it off: this machine is orphaned", self.who, from
                    );
                    self.end(Ending::new(ExitReason::Orphaned));
                } else {
                    self.drop_word(
                        from,
                        &lifecycle.to_string(),
                        "not from our parent, about us",
                    );
                }
                return Ok(());
            }
            Lifecycle::Died {
                start,
                address,
                name,
                reason,
            } => {
                match self.children.died(from, *start, *address, name, *reason) {
                    children::Died::Lost(lost) => self.report_lost(lost),
                    children::Died::Gone => {}
                    children::Died::Stranger => {
                        self.drop_word(from, &lifecycle.to_string(), "not a child of ours")
                    }
                }
                return Ok(());
            }
        }
        let start = self.children.start_of(from);
        self.dispatch_lifecycle(from, &lifecycle.for_receivers(), start)
    }

    /// A child gone without its own `exited`: the receivers hear
    /// `errored` and `exited` as if from it.
    fn report_lost(&mut self, lost: Lost) {
        self.stats.lost += 1;
        warn!(
            self.log,
            "{} child {} {} lost: {}", self.who, lost.from, lost.name, lost.why
        );
        if let Some((server, id, port)) = lost.stop {
            self.send_stop(server, id, port);
        }
        if let (Some(supervisor), Some(start)) = (self.supervisor.as_mut(), lost.start) {
            let now = self.cx.now();
            supervisor.on_exited(now, start, lost.reason);
            self.drive_supervisor(now);
        }
        let errored = Lifecycle::Errored {
            name: lost.name.clone(),
            message: lost.why,
        };
        let exited = Lifecycle::Exited {
            name: lost.name,
            reason: lost.reason,
        };
        self.internal
            .push_back((lost.from, errored.to_string(), lost.start));
        self.internal
            .push_back((lost.from, exited.to_string(), lost.start));
    }

    /// `from` pulses as if this machine were its parent, but it is no
    /// child of ours (written off, a spawn given up on, a child of an
    /// earlier process at our address): it is told `orphaned`, at most
    /// once a pulse, and exits if we are indeed its parent. Its server may
    /// be out of reach; the child is not.
    fn tell_orphaned(&mut self, now: Instant, from: Address, name: &MachineName) {
        if self.told.get(&from).is_some_and(|&until| now < until) {
            return;
        }
        if self.told.len() >= MAX_TOLD {
            let oldest = self.told.iter().min_by_key(|(_, t)| **t).map(|(a, _)| *a);
            if let Some(oldest) = oldest {
                self.told.remove(&oldest);
            }
        }
        self.told.insert(from, now + self.config.pulse);
        info!(
            self.log,
            "{} {} {} pulses as our child but is none: telling it it is orphaned",
            self.who,
            from,
            name
        );
        let orphaned = Lifecycle::Orphaned { name: name.clone() };
        self.send(from, orphaned.to_string());
    }

    fn send_stop(&mut self, server: Address, id: RequestId, port: u16) {
        self.send_stop_within(server, id, port, None);
    }

    /// A `stop` that gives the machine `grace` (capped at
    /// [`MAX_GRACE_MS`]) before SIGKILL, or the server's grace period.
    fn send_stop_within(
        &mut self,
        server: Address,
        id: RequestId,
        port: u16,
        grace: Option<Duration>,
    ) {
        self.stats.stops_sent += 1;
        let grace_ms = grace
            .map(|g| u64::try_from(g.as_millis()).map_or(MAX_GRACE_MS, |ms| ms.min(MAX_GRACE_MS)));
        let stop = Request::Stop { id, port, grace_ms };
        self.send(server, stop.to_string());
    }

    fn drop_word(&mut self, from: Address, text: &str, why: &str) {
        self.stats.dropped += 1;
        info!(
            self.log,
            "{} dropped `{}` from {}: {}",
            self.who,
            cut(text, 200),
            from,
            why
        );
    }

    /// Tells the machine that `message` to `to` was given up: it gets
    /// `undelivered <to> <message>` if it has a receiver for it (none is
    /// no error). The runtime's own control words are not its business.
    fn tell_undelivered(&mut self, now: Instant, to: Address, message: &str) {
        let word = first_word(message);
        if self.ending.is_some() || Control::kind(word).is_some() || word == REPLY {
            return;
        }
        if word == REQUEST {
            // The request fails: its outcome, not an `undelivered`.
            if let Some((id, _)) = split_id(message) {
                if let Some(pending) = self.pending.remove(&id) {
                    let text = format!(
                        "{FAILED} {} undelivered: {to} answered nothing for the retry budget",
                        pending.name
                    );
                    let _ = self.deliver_answer(now, to, id, &text);
                    self.settle(now);
                }
            }
            return;
        }
        let text = format!("{UNDELIVERED} {to} {message}");
        let me = self.cx.address();
        self.cx.set_sender(me);
        let result = self.dispatch_if_handled(&text);
        self.after_handler(now, result, None);
        self.settle(now);
    }

    /// Delivers an ordinary message to the receivers, one that came as
    /// `request` if `request` says so. If the machine errors on it, its
    /// sender is told first: `failed <name> <why>` (as the answer to the
    /// request, if it was one).
    fn dispatch(
        &mut self,
        now: Instant,
        from: Address,
        text: &str,
        request: Option<RequestId>,
    ) -> Result<(), MachineError> {
        if self.ending.is_some() {
            return Err(MachineError::Lifecycle("not running"));
        }
        self.stats.delivered += 1;
        self.cx.set_sender(from);
        self.cx.set_request(request);
        let word = first_word(text);
        let result = if is_news(word) {
            // Told that a message of ours failed: news, like a lifecycle
            // word, for a receiver if there is one.
            self.dispatch_if_handled(text)
        } else {
            self.hsm.dispatch(&mut self.cx, text)
        };
        if let Err(e) = &result {
            if from != self.cx.address() && !is_news(word) {
                let why = cut(&e.to_string(), MAX_ERROR);
                let failed = format!("{FAILED} {} {why}", cut(word, 200));
                self.answer(from, request, failed);
            }
        }
        let took = Took {
            from,
            word,
            request: request.filter(|_| result.is_ok() && !self.cx.answered()),
        };
        self.cx.set_request(None);
        self.after_handler(now, result.clone(), Some(took));
        result
    }

    /// Sends `message` to `to`: as the answer to request `id` of theirs,
    /// if there is one.
    fn answer(&mut self, to: Address, id: Option<RequestId>, message: String) {
        match id {
            Some(id) => self.send(to, format!("{REPLY} {id} {message}")),
            None => self.send(to, message),
        }
    }

    /// `reply <id> <answer…>` from `from`: the answer to a request of ours,
    /// if it is one still waiting, from where it went.
    fn on_answer(
        &mut self,
        now: Instant,
        from: Address,
        id: RequestId,
        answer: &str,
        text: &str,
    ) -> Result<(), MachineError> {
        if self.pending.get(&id).is_none_or(|p| p.to != from) {
            self.drop_word(from, text, "a reply to no request of ours still waiting");
            return Ok(());
        }
        self.pending.remove(&id);
        self.deliver_answer(now, from, id, answer)
    }

    /// Hands the receivers the outcome of request `id` of ours: its
    /// answer, `failed`, `refused` or `timeout`. It is nobody's to answer.
    fn deliver_answer(
        &mut self,
        now: Instant,
        from: Address,
        id: RequestId,
        text: &str,
    ) -> Result<(), MachineError> {
        if self.ending.is_some() {
            return Err(MachineError::Lifecycle("not running"));
        }
        self.stats.delivered += 1;
        self.cx.set_sender(from);
        self.cx.set_in_reply_to(Some(id));
        let result = if is_news(first_word(text)) {
            self.dispatch_if_handled(text)
        } else {
            self.hsm.dispatch(&mut self.cx, text)
        };
        self.cx.set_in_reply_to(None);
        self.after_handler(now, result.clone(), None);
        result
    }

    /// Delivers a lifecycle message: one the machine has no receiver for
    /// is ignored, not an error.
    fn dispatch_lifecycle(
        &mut self,
        from: Address,
        text: &str,
        start: Option<RequestId>,
    ) -> Result<(), MachineError> {
        if self.ending.is_some() || self.finished {
            return Ok(());
        }
        if self.watch {
            if let Ok(lifecycle) = text.parse() {
                self.notices.push_back(Notice {
                    from,
                    lifecycle,
                    start,
                });
            }
        }
        self.stats.delivered += 1;
        self.cx.set_sender(from);
        let now = self.cx.now();
        let result = self.dispatch_if_handled(text);
        self.after_handler(now, result.clone(), None);
        result
    }

    /// Hands `text` to the receivers; a message the machine has no
    /// receiver for (a lifecycle word, `undelivered`) is no error.
    fn dispatch_if_handled(&mut self, text: &str) -> Result<(), MachineError> {
        match self.hsm.dispatch(&mut self.cx, text) {
            Err(MachineError::Unhandled { .. }) => Ok(()),
            result => result,
        }
    }

    /// Carries out what the last handler asked for, or records its error.
    /// `message` is the ordinary message the handler took, if it took one:
    /// a refusal is said to its sender, and a request it left unanswered
    /// is kept open.
    fn after_handler(
        &mut self,
        now: Instant,
        result: Result<(), MachineError>,
        message: Option<Took<'_>>,
    ) {
        let effects: Vec<Effect> = self.cx.drain_effects().collect();
        if self.keep_records {
            self.effects.extend(effects.iter().cloned());
            self.cx.move_records(&mut self.steps, &mut Vec::new());
        }
        for effect in effects {
            self.apply(now, effect);
        }
        if let Some(why) = self.refused.take() {
            match message {
                Some(took) if took.from != self.cx.address() => {
                    let why = cut(&why, MAX_ERROR);
                    let refused = format!("{REFUSED} {} {why}", cut(took.word, 200));
                    self.answer(took.from, took.request, refused);
                }
                _ => info!(
                    self.log,
                    "{} refused with no sender to tell: {}", self.who, why
                ),
            }
        } else if let Some(Took {
            from,
            word,
            request: Some(id),
        }) = message
        {
            if self.open.len() >= MAX_OPEN {
                self.open.pop_front();
            }
            self.open.push_back(Open {
                from,
                id,
                name: cut(word, 200),
            });
        }
        // A state timeout belongs to the state it was set for.
        if let Some((id, state)) = self.state_timeout {
            if self.hsm.current() != state {
                self.timers.remove(&id);
                self.state_timeout = None;
            }
        }
        if let Err(e) = result {
            self.end(Ending::errored(e.to_string()));
        }
    }

    fn apply(&mut self, now: Instant, effect: Effect) {
        match effect {
            Effect::Send { to, message } => self.send_checked(to, message),
            Effect::SendAt {
                id,
                at,
                to,
                message,
            } => self.schedule(id, at, to, message),
            Effect::StateTimeout { id, at, message } => {
                if let Some((previous, _)) = self.state_timeout.take() {
                    self.timers.remove(&previous);
                }
                self.state_timeout = Some((id, self.hsm.current()));
                let me = self.cx.address();
                self.schedule(id, at, me, message);
            }
            Effect::Refuse(why) => self.refused = Some(why),
            Effect::Request {
                id,
                to,
                message,
                timeout,
            } => {
                if self.pending.len() >= MAX_PENDING {
                    return self.end(Ending::errored(format!(
                        "cannot request `{}` of {to}: {MAX_PENDING} requests already wait for an answer",
                        cut(first_word(&message), 200)
                    )));
                }
                if message.trim().is_empty() {
                    return self.end(Ending::errored(format!(
                        "cannot request of {to}: empty message"
                    )));
                }
                let name = cut(first_word(&message), 200);
                self.send_checked(to, format!("{REQUEST} {id} {message}"));
                if self.deadlines.len() > 2 * self.pending.len() + 64 {
                    let pending = &self.pending;
                    self.deadlines
                        .retain(|Reverse((_, id))| pending.contains_key(id));
                }
                let deadline = now + timeout;
                self.pending.insert(
                    id,
                    Pending {
                        to,
                        name,
                        timeout,
                        deadline,
                    },
                );
                self.deadlines.push(Reverse((deadline, id)));
            }
            Effect::Cancel(id) => {
                self.timers.remove(&id);
                if self.state_timeout.is_some_and(|(timeout, _)| timeout == id) {
                    self.state_timeout = None;
                }
            }
            Effect::Spawn {
                name,
                address,
                args,
            } => self.spawn(now, name, address, args),
            Effect::Exit => self.end(Ending::new(ExitReason::Normal)),
            Effect::Supervise(supervision) => {
                if self.supervisor.is_some() {
                    return self.end(Ending::errored(
                        "supervise called twice: a machine supervises once".to_owned(),
                    ));
                }
                info!(
                    self.log,
                    "{} supervises {} children, {}, at most {} restarts in {} ms",
                    self.who,
                    supervision.children.len(),
                    supervision.strategy,
                    supervision.intensity,
                    supervision.period.as_millis()
                );
                let mut supervisor = Supervisor::new(*supervision, self.config.pulse);
                supervisor.start(now);
                self.supervisor = Some(supervisor);
                self.drive_supervisor(now);
            }
        }
    }

    /// Whether the machine has ended but waits for its supervised
    /// children to stop before it finishes.
    fn is_draining(&self) -> bool {
        self.ending.is_some()
            && !self.finished
            && self.supervisor.as_ref().is_some_and(|s| !s.is_settled())
    }

    /// Supervised child `i` is no child of ours any more: the supervisor
    /// hears it gone.
    fn forget_supervised(&mut self, now: Instant, i: usize) {
        if let Some(supervisor) = self.supervisor.as_mut() {
            if let Some(start) = supervisor.started_as(i) {
                supervisor.on_exited(now, start, ExitReason::Unknown);
            }
        }
    }

    /// Carries out what the supervisor asks.
    fn drive_supervisor(&mut self, now: Instant) {
        while let Some(action) = self.supervisor.as_mut().and_then(Supervisor::poll_action) {
            let Some(supervisor) = self.supervisor.as_ref() else {
                return;
            };
            match action {
                Action::Start(i) => {
                    let child = supervisor.spec().children[i].clone();
                    info!(self.log, "{} starting child {}", self.who, child.name);
                    let id = self.next_request_id();
                    if let Some(supervisor) = self.supervisor.as_mut() {
                        supervisor.spawned(i, id);
                    }
                    self.spawn_as(now, id, child.name, child.at, child.args);
                }
                Action::Stop(i) => {
                    let child = &supervisor.spec().children[i];
                    let (name, shutdown) = (child.name.clone(), child.shutdown);
                    let found = supervisor
                        .started_as(i)
                        .and_then(|start| self.children.find(start));
                    let Some((address, server)) = found else {
                        // Gone already, its report handled: nothing to
                        // wait for.
                        self.forget_supervised(now, i);
                        continue;
                    };
                    info!(self.log, "{} stopping child {} {}", self.who, address, name);
                    let id = self.next_request_id();
                    self.children.asked_stop(id, server);
                    self.send_stop_within(server, id, address.port(), Some(shutdown));
                }
                Action::Abandon(i) => {
                    let start = supervisor.started_as(i);
                    let id = self.next_request_id();
                    let lost = start.and_then(|start| self.children.abandon(now, start, id));
                    match lost {
                        Some(lost) => self.report_lost(lost),
                        None => self.forget_supervised(now, i),
                    }
                }
                Action::Escalate(why) => {
                    warn!(self.log, "{} {}: escalating", self.who, why);
                    self.end(Ending::errored(why));
                }
            }
        }
    }

    /// Sends `message` to `to` at `at`, unless timer `id` is cancelled.
    fn schedule(&mut self, id: TimerId, at: Instant, to: Address, message: String) {
        // Cancelled timers wait in the heap until their time; so many that
        // they outnumber the live ones twice, they go (amortised O(1)).
        if self.scheduled.len() > 2 * self.timers.len() + 64 {
            let timers = &self.timers;
            self.scheduled.retain(|Reverse(s)| timers.contains(&s.id));
        }
        self.order += 1;
        self.timers.insert(id);
        self.scheduled.push(Reverse(Scheduled {
            at,
            order: self.order,
            id,
            to,
            message,
        }));
    }

    fn spawn(&mut self, now: Instant, name: MachineName, at: Option<Address>, args: Vec<String>) {
        let id = self.next_request_id();
        self.spawn_as(now, id, name, at, args);
    }

    /// Asks for a child whose spawn is request `id`.
    fn spawn_as(
        &mut self,
        now: Instant,
        id: RequestId,
        name: MachineName,
        at: Option<Address>,
        args: Vec<String>,
    ) {
        let me = self.cx.address();
        // A child on another host is started by that host's server (on the
        // port this host's server uses).
        let (server, target) = match at {
            Some(a) if a.ip().is_unspecified() || a.ip().is_loopback() || a.ip() == me.ip() => {
                (self.identity.server, Target::Port(a.port()))
            }
            Some(a) => (a.with_port(self.identity.server.port()), Target::Address(a)),
            None => (self.identity.server, Target::Port(0)),
        };
        if let Err(limit) = self.children.spawn(now, id, name.clone(), server) {
            let lost = Lost {
                from: self.identity.server,
                name,
                why: format!("not started: {limit}"),
                reason: ExitReason::Unstarted,
                stop: None,
                start: Some(id),
            };
            return self.report_lost(lost);
        }
        let request = Request::Start {
            id,
            name,
            target,
            parent: Parent::Requester,
            args,
        };
        self.send(server, request.to_string());
    }

    /// Runs what the last steps queued: lifecycle stand-ins for the
    /// receivers, then the end if one was decided.
    fn settle(&mut self, now: Instant) {
        while self.ending.is_none() {
            let Some((from, text, start)) = self.internal.pop_front() else {
                break;
            };
            let _ = self.dispatch_lifecycle(from, &text, start);
        }
        self.internal.clear();
        if self.ending.is_some() && !self.finished {
            if let Some(supervisor) = self.supervisor.as_mut() {
                supervisor.shut_down(now);
                self.drive_supervisor(now);
                if self.is_draining() {
                    return;
                }
            }
            let _ = self.finish(now);
        }
    }

    fn check(&mut self, now: Instant) {
        let timeout = self.config.heartbeat_timeout;
        // A machine already ending (a supervisor stopping its children)
        // has no more use for its parent's silence.
        if self.ending.is_none() && now.saturating_duration_since(self.parent_heard) >= timeout {
            warn!(
                self.log,
                "{} nothing from its parent {} for {} ms: this machine is orphaned",
                self.who,
                self.identity.parent,
                timeout.as_millis()
            );
            self.end(Ending::new(ExitReason::Orphaned));
            return;
        }
        let next_id = &mut self.next_id;
        let silent = self.children.silent(now, || {
            let id = RequestId(*next_id);
            *next_id += 1;
            id
        });
        for lost in silent {
            self.report_lost(lost);
        }
        for (server, id, port) in self.children.due_stops(now) {
            self.send_stop(server, id, port);
        }
        let next = self
            .children
            .next_deadline()
            .unwrap_or(now + timeout)
            .min(self.parent_heard + timeout);
        // Never sooner than a few times per heartbeat timeout: a deadline
        // in the past would spin.
        self.next_check = next.max(now + timeout / 16);
    }

    fn end(&mut self, ending: Ending) {
        if self.ending.is_none() {
            self.ending = Some(ending);
        }
    }

    /// The end: error report, exit actions, `exited`, `unregister`, stop
    /// the children.
    fn finish(&mut self, now: Instant) -> Result<(), MachineError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let ending = self
            .ending
            .clone()
            .unwrap_or(Ending::new(ExitReason::Stopped));
        let name = self.identity.name.clone();
        if let Some(error) = &ending.error {
            info!(self.log, "{} errored: {}", self.who, error);
            let errored = Lifecycle::Errored {
                name: name.clone(),
                message: cut(error, MAX_ERROR),
            };
            self.send(self.identity.parent, errored.to_string());
        }
        let stopped = self.hsm.stop(&mut self.cx);
        if let Err(e) = &stopped {
            warn!(self.log, "{} while exiting: {}", self.who, e);
        }
        // Exit actions may still send; they cannot exit, spawn or error
        // twice.
        let effects: Vec<Effect> = self.cx.drain_effects().collect();
        if self.keep_records {
            self.effects.extend(effects.iter().cloned());
            self.cx.move_records(&mut self.steps, &mut Vec::new());
        }
        for effect in effects {
            if let Effect::Send { to, message } = effect {
                self.send_checked(to, message);
            }
        }
        self.scheduled.clear();
        self.timers.clear();
        self.state_timeout = None;
        self.pending.clear();
        self.deadlines.clear();
        for open in std::mem::take(&mut self.open) {
            let failed = format!("{FAILED} {} exited {}", open.name, ending.reason);
            self.answer(open.from, Some(open.id), failed);
        }
        info!(self.log, "{} exited: {}", self.who, ending.reason);
        let exited = Lifecycle::Exited {
            name,
            reason: ending.reason,
        };
        self.send(self.identity.parent, exited.to_string());
        let id = self.next_request_id();
        self.send(self.identity.server, Request::Unregister { id }.to_string());
        let mut stops = Vec::new();
        let next_id = &mut self.next_id;
        let ids = || {
            let id = RequestId(*next_id);
            *next_id += 1;
            id
        };
        self.children.stop_all(now, ids, &mut stops);
        for (server, id, port) in stops {
            self.send_stop(server, id, port);
        }
        stopped
    }

    /// Queues a message the machine asked for, after checking it fits on
    /// the wire: one that does not is the machine's error.
    fn send_checked(&mut self, to: Address, message: String) {
        if message.is_empty() {
            return self.end(Ending::errored(format!(
                "cannot send to {to}: empty message"
            )));
        }
        if let Err(e) = wire::check_message_len(&message) {
            return self.end(Ending::errored(format!("cannot send to {to}: {e}")));
        }
        self.send(to, message);
    }

    fn send(&mut self, to: Address, text: String) {
        debug_assert!(text.len() <= MAX_MESSAGE_LEN);
        if self.config.log_messages {
            info!(self.log, "{} > {} {}", self.who, to, text);
        }
        self.out.push_back(Transmit { to, text });
    }
}

/// Whole microseconds of `d`, saturating.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `text` cut to at most `max` bytes on a character boundary, with `…`.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The ordinary message a handler took: its sender, its first word, and
/// the request it came as, if it came as one not answered yet.
#[derive(Debug, Clone, Copy)]
struct Took<'a> {
    from: Address,
    word: &'a str,
    request: Option<RequestId>,
}
