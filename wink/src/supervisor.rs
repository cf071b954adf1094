//! Declared supervision, as OTP's `supervisor` gives it: a machine names
//! its children, how each is restarted, a strategy, and a restart
//! intensity; the runtime starts them, restarts them, stops them, and
//! escalates when they fail too often.
//!
//! A machine declares it with [`Context::supervise`](crate::hsm::Context::supervise),
//! usually in its initial state's entry action:
//!
//! ```
//! use std::time::Duration;
//! use wink::supervisor::{ChildSpec, Supervision};
//!
//! let supervision = Supervision::one_for_all()
//!     .intensity(3, Duration::from_secs(5))
//!     .child(ChildSpec::new("crew/Worker#a")?)
//!     .child(ChildSpec::new("crew/Worker#b")?.transient().args(["fast"]))
//!     .child(ChildSpec::new("echo/Echo")?.temporary().shutdown(Duration::ZERO));
//! assert_eq!(supervision.children.len(), 3);
//! # Ok::<(), wink::name::NameError>(())
//! ```
//!
//! The rules (`docs/guide.md`, "Supervisors", has the long form):
//!
//! - Children start one at a time, in the order declared: each once the
//!   one before said `started`.
//! - A child that exits is restarted by its [`Restart`]: `permanent`
//!   always, `transient` unless it exited `normal`, `temporary` never.
//! - By the [`Strategy`], a restart also stops (in reverse order, each
//!   waited for) and starts again (in order) its siblings: none
//!   (`one_for_one`), all (`one_for_all`), or those declared after it
//!   (`rest_for_one`). A temporary sibling stopped this way is not started
//!   again.
//! - More than `intensity` restarts within `period`: the supervisor
//!   stops its children and errors (`too many restarts …`), so its own
//!   parent decides.
//! - When the supervisor ends, for any reason, it stops its children in
//!   reverse order, each given its shutdown time (the server's SIGKILL
//!   comes after it), before its own exit actions run and its parent
//!   hears `exited`.
//!
//! [`Supervisor`] is the decision logic alone, driven with `now` passed
//! in, in the style of [`crate::transport`]: the node asks it what to do
//! and tells it what happened.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::address::Address;
use crate::control::{ExitReason, RequestId};
use crate::name::{MachineName, NameError};

/// Which siblings a restart takes along: OTP's strategies, same names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Only the child that exited is restarted.
    OneForOne,
    /// Every other child is stopped, and all are started again.
    OneForAll,
    /// The children declared after the one that exited are stopped, and
    /// it and they are started again.
    RestForOne,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::OneForOne => "one_for_one",
            Strategy::OneForAll => "one_for_all",
            Strategy::RestForOne => "rest_for_one",
        })
    }
}

/// When a child that exited is started again: OTP's restart types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Always.
    Permanent,
    /// Unless it exited `normal`.
    Transient,
    /// Never.
    Temporary,
}

impl Restart {
    /// Whether a child that exited for `reason` is started again.
    pub fn restarts(self, reason: ExitReason) -> bool {
        match self {
            Restart::Permanent => true,
            Restart::Transient => !reason.is_normal(),
            Restart::Temporary => false,
        }
    }
}

/// How long a child has to exit when stopped, unless its spec says:
/// OTP's default for workers.
pub const DEFAULT_SHUTDOWN: Duration = Duration::from_secs(5);

/// One child: what to start, where, and what to do when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSpec {
    /// The machine to start, with its tag (`crew/Worker#a`).
    pub name: MachineName,
    /// Where it listens: `None` for any port on this host; an address on
    /// another host is started by that host's server.
    pub at: Option<Address>,
    /// Its arguments.
    pub args: Vec<String>,
    /// When it is started again.
    pub restart: Restart,
    /// How long it has to exit in order when stopped, before its server
    /// kills it (`Duration::ZERO`: at once, OTP's `brutal_kill`).
    pub shutdown: Duration,
}

impl ChildSpec {
    /// A permanent child `name` on any port, without arguments, with
    /// [`DEFAULT_SHUTDOWN`].
    pub fn new(name: &str) -> Result<Self, NameError> {
        Ok(ChildSpec {
            name: name.parse()?,
            at: None,
            args: Vec::new(),
            restart: Restart::Permanent,
            shutdown: DEFAULT_SHUTDOWN,
        })
    }

    /// Listens at `at` (a port here, or an address on another host).
    #[must_use]
    pub fn at(mut self, at: Address) -> Self {
        self.at = Some(at);
        self
    }

    /// Started with `args`.
    #[must_use]
    pub fn args<A: AsRef<str>>(mut self, args: impl IntoIterator<Item = A>) -> Self {
        self.args = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        self
    }

    /// Restarted always (the default).
    #[must_use]
    pub fn permanent(mut self) -> Self {
        self.restart = Restart::Permanent;
        self
    }

    /// Restarted unless it exits `normal`.
    #[must_use]
    pub fn transient(mut self) -> Self {
        self.restart = Restart::Transient;
        self
    }

    /// Never restarted.
    #[must_use]
    pub fn temporary(mut self) -> Self {
        self.restart = Restart::Temporary;
        self
    }

    /// Has `shutdown` to exit when stopped.
    #[must_use]
    pub fn shutdown(mut self, shutdown: Duration) -> Self {
        self.shutdown = shutdown;
        self
    }
}

/// A supervisor's declaration: strategy, intensity, children in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supervision {
    /// Which siblings a restart takes along.
    pub strategy: Strategy,
    /// Most restarts within `period`; one more and the supervisor errors.
    pub intensity: u32,
    /// The window `intensity` counts over.
    pub period: Duration,
    /// The children, in start order.
    pub children: Vec<ChildSpec>,
}

impl Supervision {
    /// No children yet; intensity 1 in 5 s, as OTP's defaults.
    pub fn new(strategy: Strategy) -> Self {
        Supervision {
            strategy,
            intensity: 1,
            period: Duration::from_secs(5),
            children: Vec::new(),
        }
    }

    /// [`Strategy::OneForOne`].
    pub fn one_for_one() -> Self {
        Supervision::new(Strategy::OneForOne)
    }

    /// [`Strategy::OneForAll`].
    pub fn one_for_all() -> Self {
        Supervision::new(Strategy::OneForAll)
    }

    /// [`Strategy::RestForOne`].
    pub fn rest_for_one() -> Self {
        Supervision::new(Strategy::RestForOne)
    }

    /// At most `restarts` within `period`.
    #[must_use]
    pub fn intensity(mut self, restarts: u32, period: Duration) -> Self {
        self.intensity = restarts;
        self.period = period;
        self
    }

    /// Adds `child` after the others.
    #[must_use]
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }
}

/// What the supervisor asks of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Spawn child `i` and report its request id with
    /// [`Supervisor::spawned`].
    Start(usize),
    /// Ask child `i`'s server to stop it, with its shutdown time.
    Stop(usize),
    /// Child `i` did not exit within its shutdown time (and the slack):
    /// write it off and report it lost, as if it had exited.
    Abandon(usize),
    /// Too many restarts: the supervisor errors with this text.
    Escalate(String),
}

/// What became of one child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Not running; may be started.
    Idle,
    /// Asked for; its spawn's id once known.
    Starting(Option<RequestId>),
    Running(RequestId),
    Stopping(RequestId),
    /// Ended and not to be started again.
    Done,
}

impl Run {
    fn id(self) -> Option<RequestId> {
        match self {
            Run::Starting(id) => id,
            Run::Running(id) | Run::Stopping(id) => Some(id),
            Run::Idle | Run::Done => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Start(usize),
    Stop(usize),
}

/// The decision logic of a declared supervisor: see the
/// [module documentation](self).
#[derive(Debug)]
pub struct Supervisor {
    spec: Supervision,
    runs: Vec<Run>,
    /// What to do next, one at a time: the head is in progress.
    plan: VecDeque<Op>,
    restarts: VecDeque<Instant>,
    /// Restarts since the supervisor started, all children together.
    restarted: u64,
    actions: VecDeque<Action>,
    shutting_down: bool,
    /// Added to a child's shutdown time before it is abandoned: its
    /// server's SIGKILL and `died` have that long to arrive.
    slack: Duration,
    /// Until when the stop in progress is waited for.
    stop_until: Option<Instant>,
}

impl Supervisor {
    /// How many restarts it made since it started, all children together.
    pub fn restarted(&self) -> u64 {
        self.restarted
    }

    /// A supervisor of `spec`'s children, none started yet; a child
    /// stopped is abandoned after its shutdown time plus `slack`.
    pub fn new(spec: Supervision, slack: Duration) -> Self {
        let runs = vec![Run::Idle; spec.children.len()];
        Supervisor {
            spec,
            runs,
            plan: VecDeque::new(),
            restarts: VecDeque::new(),
            restarted: 0,
            actions: VecDeque::new(),
            shutting_down: false,
            slack,
            stop_until: None,
        }
    }

    /// The declaration.
    pub fn spec(&self) -> &Supervision {
        &self.spec
    }

    /// Starts every child, in order.
    pub fn start(&mut self, now: Instant) {
        self.plan = (0..self.runs.len()).map(Op::Start).collect();
        self.advance(now);
    }

    /// The request id of child `i`'s spawn, just made.
    pub fn spawned(&mut self, i: usize, id: RequestId) {
        if let Some(run @ Run::Starting(None)) = self.runs.get_mut(i) {
            *run = Run::Starting(Some(id));
        }
    }

    /// The request id of child `i`'s spawn, once known and while it runs.
    pub fn started_as(&self, i: usize) -> Option<RequestId> {
        self.runs.get(i).and_then(|r| r.id())
    }

    /// Which child the spawn `id` made, if one of ours.
    pub fn child_of(&self, id: RequestId) -> Option<usize> {
        self.runs.iter().position(|r| r.id() == Some(id))
    }

    /// The child of spawn `id` said `started`.
    pub fn on_started(&mut self, now: Instant, id: RequestId) {
        let Some(i) = self.child_of(id) else {
            return;
        };
        if let Run::Starting(_) = self.runs[i] {
            self.runs[i] = Run::Running(id);
        }
        if self.plan.front() == Some(&Op::Start(i)) {
            self.plan.pop_front();
        }
        self.advance(now);
    }

    /// The child of spawn `id` exited (or was reported lost) for `reason`.
    pub fn on_exited(&mut self, now: Instant, id: RequestId, reason: ExitReason) {
        let Some(i) = self.child_of(id) else {
            return;
        };
        let was = std::mem::replace(&mut self.runs[i], Run::Idle);
        match self.plan.front() {
            // Stopped by us: what we waited for.
            Some(&Op::Stop(j)) if j == i && was == Run::Stopping(id) => {
                self.plan.pop_front();
                // A temporary child stopped ends for good.
                if self.spec.children[i].restart == Restart::Temporary {
                    self.runs[i] = Run::Done;
                }
                self.stop_until = None;
                return self.advance(now);
            }
            // Its start failed, or it ended at once.
            Some(&Op::Start(j)) if j == i => {
                self.plan.pop_front();
            }
            _ => {}
        }
        if self.shutting_down {
            return self.advance(now);
        }
        let restart = self.spec.children[i].restart;
        if !restart.restarts(reason) {
            self.runs[i] = Run::Done;
            return self.advance(now);
        }
        while self
            .restarts
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) >= self.spec.period)
        {
            self.restarts.pop_front();
        }
        self.restarts.push_back(now);
        self.restarted += 1;
        if self.restarts.len() > self.spec.intensity as usize {
            self.actions.push_back(Action::Escalate(format!(
                "too many restarts: {} within {} ms (intensity {}); {} exited {}",
                self.restarts.len(),
                self.spec.period.as_millis(),
                self.spec.intensity,
                self.spec.children[i].name,
                reason
            )));
            return;
        }
        let n = self.runs.len();
        let siblings: Vec<usize> = match self.spec.strategy {
            Strategy::OneForOne => Vec::new(),
            Strategy::OneForAll => (0..n).filter(|&j| j != i).collect(),
            Strategy::RestForOne => (i + 1..n).collect(),
        };
        // The op in progress finishes first; then the stops, latest
        // declared first; then the starts, in order; then the rest.
        let mut plan: Vec<Op> = Vec::new();
        if let Some(&head) = self.plan.front() {
            if self.in_progress(head) {
                plan.push(head);
                self.plan.pop_front();
            }
        }
        let live = |r: Run| matches!(r, Run::Starting(_) | Run::Running(_) | Run::Stopping(_));
        plan.extend(
            siblings
                .iter()
                .rev()
                .filter(|&&j| live(self.runs[j]))
                .map(|&j| Op::Stop(j)),
        );
        let mut starts: Vec<usize> = siblings
            .into_iter()
            .filter(|&j| live(self.runs[j]) && self.spec.children[j].restart != Restart::Temporary)
            .collect();
        starts.push(i);
        starts.sort_unstable();
        plan.extend(starts.into_iter().map(Op::Start));
        plan.extend(self.plan.drain(..));
        let mut seen = Vec::new();
        for op in plan {
            if !seen.contains(&op) {
                seen.push(op);
            }
        }
        self.plan = seen.into();
        self.advance(now);
    }

    /// The supervisor is ending: every child still running is stopped,
    /// the last declared first, and nothing is started again.
    pub fn shut_down(&mut self, now: Instant) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        let mut plan: Vec<Op> = Vec::new();
        if let Some(&head) = self.plan.front() {
            if self.in_progress(head) {
                plan.push(head);
            }
        }
        plan.extend((0..self.runs.len()).rev().map(Op::Stop));
        self.plan = plan.into();
        self.advance(now);
    }

    /// Whether nothing is in progress: all started, or (shutting down) all
    /// stopped.
    pub fn is_settled(&self) -> bool {
        self.plan.is_empty()
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Supervisor::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.stop_until
    }

    /// A stop waited for too long: the child is abandoned.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.stop_until.is_some_and(|until| now >= until) {
            self.stop_until = None;
            if let Some(&Op::Stop(i)) = self.plan.front() {
                self.actions.push_back(Action::Abandon(i));
            }
        }
    }

    fn in_progress(&self, op: Op) -> bool {
        match op {
            Op::Start(i) => matches!(self.runs[i], Run::Starting(_)),
            Op::Stop(i) => matches!(self.runs[i], Run::Stopping(_)),
        }
    }

    /// Carries the plan on until it must wait for a child.
    fn advance(&mut self, now: Instant) {
        while let Some(&op) = self.plan.front() {
            match op {
                Op::Stop(i) => match self.runs[i] {
                    Run::Running(id) => {
                        self.runs[i] = Run::Stopping(id);
                        self.stop_until = Some(now + self.spec.children[i].shutdown + self.slack);
                        self.actions.push_back(Action::Stop(i));
                        return;
                    }
                    // Its stop, or its start, is awaited.
                    Run::Stopping(_) | Run::Starting(_) => return,
                    Run::Idle | Run::Done => {}
                },
                Op::Start(i) => match self.runs[i] {
                    Run::Idle if !self.shutting_down => {
                        self.runs[i] = Run::Starting(None);
                        self.actions.push_back(Action::Start(i));
                        return;
                    }
                    Run::Starting(_) | Run::Stopping(_) => return,
                    Run::Idle | Run::Running(_) | Run::Done => {}
                },
            }
            self.plan.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(strategy: Strategy, restarts: &[Restart]) -> Supervision {
        let mut s = Supervision::new(strategy).intensity(10, Duration::from_secs(1));
        for (i, r) in restarts.iter().enumerate() {
            let mut c = ChildSpec::new(&format!("crew/Worker#{i}")).unwrap();
            c.restart = *r;
            s = s.child(c);
        }
        s
    }

    /// Drives a supervisor like a node whose children start and stop at
    /// once: the log of what happened, `start 0`, `stop 2`, …
    struct Rig {
        sup: Supervisor,
        now: Instant,
        next: u64,
        ids: Vec<Option<RequestId>>,
        log: Vec<String>,
    }

    impl Rig {
        fn new(spec: Supervision) -> Self {
            let n = spec.children.len();
            Rig {
                sup: Supervisor::new(spec, Duration::from_secs(1)),
                now: Instant::now(),
                next: 1,
                ids: vec![None; n],
                log: Vec::new(),
            }
        }

        /// A rig whose children all started.
        fn started(spec: Supervision) -> Self {
            let mut rig = Rig::new(spec);
            rig.sup.start(rig.now);
            rig.run();
            rig
        }

        /// Carries out every action, each child answering at once.
        fn run(&mut self) {
            while let Some(action) = self.sup.poll_action() {
                match action {
                    Action::Start(i) => {
                        self.log.push(format!("start {i}"));
                        let id = RequestId(self.next);
                        self.next += 1;
                        self.ids[i] = Some(id);
                        self.sup.spawned(i, id);
                        self.sup.on_started(self.now, id);
                    }
                    Action::Stop(i) => {
                        self.log.push(format!("stop {i}"));
                        let id = self.ids[i].unwrap();
                        self.sup.on_exited(self.now, id, ExitReason::Stopped);
                    }
                    Action::Abandon(i) => self.log.push(format!("abandon {i}")),
                    Action::Escalate(why) => self.log.push(format!("escalate: {why}")),
                }
            }
        }

        fn exit(&mut self, i: usize, reason: ExitReason) -> Vec<String> {
            self.log.clear();
            self.sup.on_exited(self.now, self.ids[i].unwrap(), reason);
            self.run();
            std::mem::take(&mut self.log)
        }
    }

    use Restart::{Permanent, Temporary, Transient};

    #[test]
    fn children_start_in_order_and_stop_in_reverse() {
        let mut rig = Rig::new(spec(Strategy::OneForOne, &[Permanent; 3]));
        rig.sup.start(rig.now);
        rig.run();
        assert_eq!(rig.log, ["start 0", "start 1", "start 2"]);
        rig.log.clear();
        rig.sup.shut_down(rig.now);
        rig.run();
        assert_eq!(rig.log, ["stop 2", "stop 1", "stop 0"]);
        assert!(rig.sup.is_settled());
    }

    #[test]
    fn each_strategy_restarts_its_siblings() {
        let cases = [
            (Strategy::OneForOne, vec!["start 1"]),
            (
                Strategy::OneForAll,
                vec![
                    "stop 3", "stop 2", "stop 0", "start 0", "start 1", "start 2", "start 3",
                ],
            ),
            (
                Strategy::RestForOne,
                vec!["stop 3", "stop 2", "start 1", "start 2", "start 3"],
            ),
        ];
        for (strategy, expected) in cases {
            let mut rig = Rig::started(spec(strategy, &[Permanent; 4]));
            assert_eq!(rig.exit(1, ExitReason::Error), expected, "{strategy}");
        }
    }

    #[test]
    fn restart_types_decide_by_the_reason() {
        let mut rig = Rig::started(spec(
            Strategy::OneForOne,
            &[Permanent, Transient, Temporary],
        ));
        assert_eq!(rig.exit(0, ExitReason::Normal), ["start 0"]);
        assert!(rig.exit(1, ExitReason::Normal).is_empty());
        assert!(rig.exit(2, ExitReason::Error).is_empty());
        let mut rig = Rig::started(spec(Strategy::OneForOne, &[Transient]));
        assert_eq!(rig.exit(0, ExitReason::Heartbeat), ["start 0"]);
    }

    #[test]
    fn a_temporary_sibling_stopped_by_a_restart_is_not_started_again() {
        let mut rig = Rig::started(spec(
            Strategy::OneForAll,
            &[Permanent, Temporary, Permanent],
        ));
        assert_eq!(
            rig.exit(0, ExitReason::Error),
            ["stop 2", "stop 1", "start 0", "start 2"]
        );
    }

    #[test]
    fn too_many_restarts_within_the_period_escalate() {
        let s = spec(Strategy::OneForOne, &[Permanent]).intensity(2, Duration::from_secs(1));
        let mut rig = Rig::started(s);
        assert_eq!(rig.exit(0, ExitReason::Error), ["start 0"]);
        rig.now += Duration::from_millis(600);
        assert_eq!(rig.exit(0, ExitReason::Error), ["start 0"]);
        // The first restart is 1.2 s old: out of the window.
        rig.now += Duration::from_millis(600);
        assert_eq!(rig.exit(0, ExitReason::Error), ["start 0"]);
        let log = rig.exit(0, ExitReason::Error);
        assert_eq!(log.len(), 1);
        assert!(
            log[0].starts_with("escalate: too many restarts: 3 within 1000 ms (intensity 2)"),
            "{log:?}"
        );
    }

    #[test]
    fn a_child_that_does_not_exit_is_abandoned_after_its_shutdown() {
        let s = spec(Strategy::OneForOne, &[Permanent, Permanent]);
        let mut sup = Supervisor::new(s, Duration::from_secs(1));
        let now = Instant::now();
        sup.start(now);
        for i in 0..2 {
            assert_eq!(sup.poll_action(), Some(Action::Start(i)));
            sup.spawned(i, RequestId(i as u64 + 1));
            sup.on_started(now, RequestId(i as u64 + 1));
        }
        sup.shut_down(now);
        assert_eq!(sup.poll_action(), Some(Action::Stop(1)));
        assert_eq!(
            sup.poll_timeout(),
            Some(now + DEFAULT_SHUTDOWN + Duration::from_secs(1))
        );
        sup.handle_timeout(now + DEFAULT_SHUTDOWN);
        assert_eq!(sup.poll_action(), None);
        sup.handle_timeout(now + DEFAULT_SHUTDOWN + Duration::from_secs(1));
        assert_eq!(sup.poll_action(), Some(Action::Abandon(1)));
        // The node reports it lost, which the supervisor hears as an exit.
        sup.on_exited(now, RequestId(2), ExitReason::Heartbeat);
        assert_eq!(sup.poll_action(), Some(Action::Stop(0)));
        sup.on_exited(now, RequestId(1), ExitReason::Stopped);
        assert!(sup.is_settled());
    }

    #[test]
    fn a_child_failing_to_start_is_restarted_then_escalates() {
        let s =
            spec(Strategy::OneForOne, &[Permanent, Permanent]).intensity(1, Duration::from_secs(5));
        let mut sup = Supervisor::new(s, Duration::from_secs(1));
        let now = Instant::now();
        sup.start(now);
        assert_eq!(sup.poll_action(), Some(Action::Start(0)));
        sup.spawned(0, RequestId(1));
        sup.on_exited(now, RequestId(1), ExitReason::Unstarted);
        assert_eq!(sup.poll_action(), Some(Action::Start(0)));
        sup.spawned(0, RequestId(2));
        sup.on_exited(now, RequestId(2), ExitReason::Unstarted);
        assert!(matches!(sup.poll_action(), Some(Action::Escalate(_))));
    }
}
