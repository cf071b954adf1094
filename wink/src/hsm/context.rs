//! What a machine's actions and receivers can see and ask for.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Machine, MachineError};
use crate::address::Address;
use crate::control::RequestId;
use crate::name::MachineName;
use crate::supervisor::Supervision;

/// Something a machine asked for that the runtime (or a test harness)
/// carries out after the action or receiver returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send `message` to `to`, reliably.
    Send {
        /// The recipient.
        to: Address,
        /// The message text, `name arg arg…`.
        message: String,
    },
    /// Send `message` to `to` at `at`, unless timer `id` is cancelled
    /// first.
    SendAt {
        /// The timer, for [`Context::cancel`].
        id: TimerId,
        /// When to send it.
        at: Instant,
        /// The recipient.
        to: Address,
        /// The message text.
        message: String,
    },
    /// Send `message` to the machine itself at `at`, unless it leaves the
    /// state it is in once the handler returns (or timer `id` is
    /// cancelled, or another state timeout replaces it) first.
    StateTimeout {
        /// The timer, for [`Context::cancel`].
        id: TimerId,
        /// When to deliver it.
        at: Instant,
        /// The message text.
        message: String,
    },
    /// Forget timer `id`: its message is not sent (nothing, if it was sent
    /// already).
    Cancel(TimerId),
    /// Send `message` to `to` as request `id` (`request <id> <message>`):
    /// its answer, a `failed` or `refused` of it, or `timeout` after
    /// `timeout` comes back to the machine with [`Context::in_reply_to`]
    /// saying `id`.
    Request {
        /// The request, for [`Context::in_reply_to`].
        id: RequestId,
        /// The recipient.
        to: Address,
        /// The message text.
        message: String,
        /// How long to wait for the answer.
        timeout: Duration,
    },
    /// Tell the sender of the message being handled that it is refused,
    /// and why (`refused <name> <why>`); the machine goes on.
    Refuse(String),
    /// Ask a server to start a child machine whose parent is this machine.
    Spawn {
        /// The name of the machine to start.
        name: MachineName,
        /// Where the child should listen; `None` for any free port on the
        /// server's host.
        address: Option<Address>,
        /// Arguments passed to the child after its name, address and parent.
        args: Vec<String>,
    },
    /// Exit in order: exit actions, `exited` to the parent.
    Exit,
    /// Supervise these children: start them, restart them, stop them
    /// ([`crate::supervisor`]).
    Supervise(Box<Supervision>),
}

/// A timer of [`Context::send_after`], [`Context::send_at`] or
/// [`Context::state_timeout`], to [`Context::cancel`] it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub u64);

/// A step the machine took, recorded for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A transition started.
    Transition {
        /// The state it started from.
        from: &'static str,
        /// The state it goes to.
        to: &'static str,
    },
    /// A state was entered (its entry action, if any, ran).
    Entered(&'static str),
    /// A state was exited (its exit action, if any, ran).
    Exited(&'static str),
}

/// The machine's view of the world while one of its actions or receivers
/// runs: who it is, who sent the message, and what it wants done next.
///
/// Requests (transitions, sends, spawns, exit) are queued and carried out in
/// order after the handler returns, so a handler never re-enters the machine.
pub struct Context<M: Machine> {
    me: Address,
    name: MachineName,
    parent: Address,
    server: Address,
    sender: Address,
    args: Vec<String>,
    log: slog::Logger,
    now: Instant,
    transitions: VecDeque<M::State>,
    effects: Vec<Effect>,
    steps: Vec<Step>,
    keep_steps: bool,
    log_steps: bool,
    raised: Option<String>,
    /// The id the next timer or request gets.
    next_timer: u64,
    /// The request being handled, if the message came as one.
    request: Option<RequestId>,
    /// Whether [`Context::reply`] answered it.
    answered: bool,
    /// The request of ours the message being handled answers.
    in_reply_to: Option<RequestId>,
}

impl<M: Machine> std::fmt::Debug for Context<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("me", &self.me)
            .field("name", &self.name)
            .field("parent", &self.parent)
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

impl<M: Machine> Context<M> {
    /// A context for a machine called `name` at `me`, child of `parent`,
    /// whose host's server is `server`.
    pub(crate) fn new(
        me: Address,
        name: MachineName,
        parent: Address,
        server: Address,
        args: Vec<String>,
        log: slog::Logger,
        now: Instant,
    ) -> Self {
        Context {
            me,
            name,
            parent,
            server,
            sender: parent,
            args,
            log,
            now,
            transitions: VecDeque::new(),
            effects: Vec::new(),
            steps: Vec::new(),
            keep_steps: false,
            log_steps: false,
            raised: None,
            next_timer: 0,
            request: None,
            answered: false,
            in_reply_to: None,
        }
    }

    /// Moves to `state` once the current handler returns.
    pub fn transition(&mut self, state: M::State) {
        self.transitions.push_back(state);
    }

    /// Sends `message` (`name arg arg…`) to `to`.
    pub fn send(&mut self, to: Address, message: impl Into<String>) {
        self.effects.push(Effect::Send {
            to,
            message: message.into(),
        });
    }

    /// Replies to the sender of the message being handled. If that
    /// message came as a request ([`Context::request`]), the reply answers
    /// it: it goes as `reply <id> <message>` and reaches the requester
    /// with [`Context::in_reply_to`] set.
    pub fn reply(&mut self, message: impl Into<String>) {
        let to = self.sender;
        match self.request {
            Some(id) => {
                self.answered = true;
                let message = message.into();
                if message.trim().is_empty() {
                    // `reply <id>` alone is no answer: the requester would
                    // drop it and time out.
                    return self.error(format!("cannot answer request {id} with an empty message"));
                }
                self.send(to, format!("reply {id} {message}"));
            }
            None => self.send(to, message),
        }
    }

    /// Sends `message` to `to` as a request, and returns its id. Exactly
    /// one of these comes back, with [`Context::in_reply_to`] giving the
    /// id: the answer (whatever the callee's [`Context::reply`] said, as
    /// a message of its own name); `failed <name> <why>` if the callee
    /// errored or exited before answering, or the message could not be
    /// delivered; `refused <name> <why>` if the callee refused it; or,
    /// when nothing came within `timeout`, `timeout <name> <ms>` (`<name>`
    /// the request's first word). An answer after the timeout is dropped.
    pub fn request(
        &mut self,
        to: Address,
        message: impl Into<String>,
        timeout: Duration,
    ) -> RequestId {
        self.next_timer += 1;
        let id = RequestId(self.next_timer);
        self.effects.push(Effect::Request {
            id,
            to,
            message: message.into(),
            timeout,
        });
        id
    }

    /// The request of this machine ([`Context::request`]) that the message
    /// being handled answers: its answer, `failed`, `refused` or
    /// `timeout`. `None` for any other message.
    pub fn in_reply_to(&self) -> Option<RequestId> {
        self.in_reply_to
    }

    /// Sends `message` to `to` after `delay`; the timer can be cancelled
    /// until then ([`Context::cancel`]).
    pub fn send_after(
        &mut self,
        delay: Duration,
        to: Address,
        message: impl Into<String>,
    ) -> TimerId {
        let at = self.now + delay;
        self.send_at(at, to, message)
    }

    /// Sends `message` to `to` at `at`; the timer can be cancelled until
    /// then ([`Context::cancel`]).
    pub fn send_at(&mut self, at: Instant, to: Address, message: impl Into<String>) -> TimerId {
        let id = self.timer();
        self.effects.push(Effect::SendAt {
            id,
            at,
            to,
            message: message.into(),
        });
        id
    }

    /// Delivers `message` to this machine after `delay`, unless it has left
    /// the state it is in when this handler returns (gen_statem's state
    /// timeout): set in a state's entry action, or in a receiver that then
    /// transitions, it belongs to the state the machine ends up in. A
    /// machine has one state timeout at most: a new one replaces the last.
    /// Leaving the state (any transition to another current state) cancels
    /// it, as does [`Context::cancel`].
    pub fn state_timeout(&mut self, delay: Duration, message: impl Into<String>) -> TimerId {
        let id = self.timer();
        self.effects.push(Effect::StateTimeout {
            id,
            at: self.now + delay,
            message: message.into(),
        });
        id
    }

    /// Refuses the message being handled without failing: its sender gets
    /// `refused <name> <why>`, and the machine goes on, in whatever state
    /// the handler leaves it (a handler that refuses usually changes
    /// nothing). Outside a receiver (an entry action at start, say) there
    /// is no sender, and nothing is sent.
    pub fn refuse(&mut self, why: impl std::fmt::Display) {
        self.effects.push(Effect::Refuse(why.to_string()));
    }

    /// Cancels timer `id`: its message will not be sent. Cancelling a timer
    /// that already fired, or twice, does nothing.
    pub fn cancel(&mut self, id: TimerId) {
        self.effects.push(Effect::Cancel(id));
    }

    fn timer(&mut self) -> TimerId {
        self.next_timer += 1;
        TimerId(self.next_timer)
    }

    /// Asks this host's server to start the machine `name` as a child of
    /// this one, on any free port. The child's lifecycle messages
    /// (`started`, `pulsed`, `errored`, `exited`) then arrive as messages.
    pub fn spawn(&mut self, name: &str) -> Result<(), <MachineName as std::str::FromStr>::Err> {
        self.spawn_with(name, None, &[] as &[&str])
    }

    /// Like [`Context::spawn`], with the child's address and arguments. A
    /// child on another host is started by that host's server.
    pub fn spawn_with<A: AsRef<str>>(
        &mut self,
        name: &str,
        address: Option<Address>,
        args: &[A],
    ) -> Result<(), <MachineName as std::str::FromStr>::Err> {
        let name = name.parse()?;
        self.effects.push(Effect::Spawn {
            name,
            address,
            args: args.iter().map(|a| a.as_ref().to_owned()).collect(),
        });
        Ok(())
    }

    /// Makes this machine the supervisor of `supervision`'s children, once
    /// the current handler returns: the runtime starts them in order,
    /// restarts them by their restart type and the strategy, escalates
    /// (this machine errors) past the intensity, and stops them in
    /// reverse order when this machine ends. See [`crate::supervisor`].
    /// Their `started`, `errored` and `exited` still reach this machine's
    /// receivers. A machine supervises once: a second call is its error.
    pub fn supervise(&mut self, supervision: Supervision) {
        self.effects.push(Effect::Supervise(Box::new(supervision)));
    }

    /// Exits in order once the current handler returns.
    pub fn exit(&mut self) {
        self.effects.push(Effect::Exit);
    }

    /// Errors: the machine stops handling messages, tells its parent
    /// `errored <name> <message>` and exits.
    pub fn error(&mut self, message: impl Into<String>) {
        self.raised.get_or_insert_with(|| message.into());
    }

    /// The machine's logger.
    pub fn log(&self) -> &slog::Logger {
        &self.log
    }

    /// This machine's address.
    pub fn address(&self) -> Address {
        self.me
    }

    /// This machine's name.
    pub fn name(&self) -> &MachineName {
        &self.name
    }

    /// The parent's address (whoever asked for this machine to start).
    pub fn parent(&self) -> Address {
        self.parent
    }

    /// The address of this host's server.
    pub fn server(&self) -> Address {
        self.server
    }

    /// Who sent the message being handled. In entry and exit actions, the
    /// sender of the message that caused the transition (the parent during
    /// start).
    pub fn sender(&self) -> Address {
        self.sender
    }

    /// The arguments the machine was started with, after its name, address
    /// and parent.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The time the current message or timer was handled.
    pub fn now(&self) -> Instant {
        self.now
    }

    pub(crate) fn set_args(&mut self, args: Vec<String>) {
        self.args = args;
    }

    pub(crate) fn set_sender(&mut self, sender: Address) {
        self.sender = sender;
    }

    pub(crate) fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    /// The id the next timer or request gets, less one.
    pub(crate) fn next_timer(&self) -> u64 {
        self.next_timer
    }

    /// Goes on counting timers and requests from `next`, as a program
    /// before this one did.
    pub(crate) fn set_next_timer(&mut self, next: u64) {
        self.next_timer = next;
    }

    /// The message about to be handled came as request `id` (or not):
    /// [`Context::reply`] answers it.
    pub(crate) fn set_request(&mut self, id: Option<RequestId>) {
        self.request = id;
        self.answered = false;
    }

    /// Whether the request being handled was answered.
    pub(crate) fn answered(&self) -> bool {
        self.answered
    }

    /// The message about to be handled answers request `id` of ours (or
    /// not).
    pub(crate) fn set_in_reply_to(&mut self, id: Option<RequestId>) {
        self.in_reply_to = id;
    }

    #[inline]
    pub(crate) fn next_transition(&mut self) -> Option<M::State> {
        self.transitions.pop_front()
    }

    pub(crate) fn clear_transitions(&mut self) {
        self.transitions.clear();
    }

    /// Logs each transition as it starts (before its exit and entry
    /// actions log anything), in the runtime's `<address> <name>` shape.
    pub(crate) fn set_log_steps(&mut self, on: bool) {
        self.log_steps = on;
    }

    /// Keeps every step for [`Context::move_records`] (the test harness
    /// reads them; the runtime only logs transitions).
    pub(crate) fn set_keep_steps(&mut self, on: bool) {
        self.keep_steps = on;
    }

    /// Records the step `step()` makes, if steps are logged or kept (the
    /// step is not even made otherwise).
    #[inline]
    pub(crate) fn record(&mut self, step: impl FnOnce() -> Step) {
        if self.log_steps || self.keep_steps {
            self.record_step(step());
        }
    }

    #[cold]
    fn record_step(&mut self, step: Step) {
        if self.log_steps {
            if let Step::Transition { from, to } = step {
                slog::info!(self.log, "{} {} {} -> {}", self.me, self.name, from, to);
            }
        }
        if self.keep_steps {
            self.steps.push(step);
        }
    }

    #[inline]
    pub(crate) fn check_raised(&mut self) -> Result<(), MachineError> {
        if self.raised.is_none() {
            return Ok(());
        }
        self.take_raised()
    }

    #[cold]
    fn take_raised(&mut self) -> Result<(), MachineError> {
        match self.raised.take() {
            Some(message) => Err(MachineError::Raised(message)),
            None => Ok(()),
        }
    }

    /// Forgets the requests queued so far.
    pub(crate) fn clear_effects(&mut self) {
        self.effects.clear();
    }

    /// Takes the requests queued so far, oldest first.
    pub(crate) fn drain_effects(&mut self) -> std::vec::Drain<'_, Effect> {
        self.effects.drain(..)
    }

    /// Moves the steps and requests recorded so far to the end of `steps`
    /// and `effects` (a move of memory, no iteration).
    pub(crate) fn move_records(&mut self, steps: &mut Vec<Step>, effects: &mut Vec<Effect>) {
        steps.append(&mut self.steps);
        effects.append(&mut self.effects);
    }
}
