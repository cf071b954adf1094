//! The server as plain bookkeeping: which machines run, who may say what
//! about them, when to stop and kill them, what to tell whom when they end.
//! No socket, no clock, no process, no file: the caller passes messages,
//! process results and the time in, and carries out the effects, in the
//! style of [`transport`](crate::transport):
//!
//! - [`ServerCore::handle_message`] takes a message from the network;
//! - [`ServerCore::handle_spawned`], [`ServerCore::handle_adopted`] and
//!   [`ServerCore::handle_exited`] report what happened to processes;
//! - [`ServerCore::handle_gave_up`] reports a peer that stopped answering;
//! - [`ServerCore::poll_timeout`] / [`ServerCore::handle_timeout`] drive
//!   SIGKILL after the grace period and the end of a shutdown;
//! - [`ServerCore::poll_effect`] yields what to do: a [`ServerEffect`].
//!
//! `wink::runtime::serve` drives it with a socket, processes and signals;
//! `docs/operations.md` describes the server's behaviour as a whole.
//!
//! ```
//! use std::time::Instant;
//! use wink::server::{ProcessExit, ServerConfig, ServerCore, ServerEffect};
//!
//! let me = "127.0.0.1:42000".parse()?;
//! let cli = "127.0.0.1:50000".parse()?;
//! let now = Instant::now();
//! let mut server = ServerCore::new(me, ServerConfig::default(), wink::log::discard(), now);
//!
//! server.handle_message(now, cli, "start 1 echo/Echo :7000 requester");
//! let Some(ServerEffect::Spawn { token, .. }) = server.poll_effect() else { panic!() };
//! server.handle_spawned(now, token, Ok(4242));
//! assert_eq!(
//!     server.poll_effect(),
//!     Some(ServerEffect::Send { to: cli, text: "starting 1 4242".into() })
//! );
//!
//! // It dies without a word: its parent (the requester) is told.
//! server.handle_exited(now, 4242, ProcessExit::Signal(9));
//! assert_eq!(
//!     server.poll_effect(),
//!     Some(ServerEffect::Send { to: cli, text: "died 1 - echo/Echo signal:9".into() })
//! );
//! # Ok::<(), wink::address::AddressError>(())
//! ```

mod pace;
mod registry;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use slog::{info, warn, Logger};

use crate::address::Address;
use crate::control::{
    Control, ExitReason, Kind, Lifecycle, Parent, Reply, Request, RequestId, Row, Target,
    UpgradeOrder,
};
use crate::name::MachineName;
use pace::Pace;
use registry::{may_listen_at, Follower, NewMachine, Registry, Stopper};

/// Followers of one machine at most (those who asked with `start <id> …
/// server`).
pub const MAX_FOLLOWERS: usize = 4;
/// `stop` requests waiting for one machine at most.
pub const MAX_STOPPERS: usize = 16;
/// Messages from a machine held until its fork is reported, per spawn.
const MAX_EARLY: usize = 8;
/// `started` messages held until their sender registers (when several
/// machines could have sent them).
const MAX_UNPLACED: usize = 64;
/// `register` requests waiting for one adoption at most.
const MAX_ADOPT_WAITERS: usize = 4;
/// Bytes of a message shown in a log line.
const MAX_LOGGED: usize = 512;

/// How a server is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// How long a machine has to exit after SIGTERM before SIGKILL; a
    /// shutdown waits at most twice as long. Default 5 s.
    pub grace: Duration,
    /// Machines on this server at most, counting starts not yet forked,
    /// starts waiting for a port and adoptions being checked. Default 2000.
    pub max_machines: usize,
    /// Starts admitted per second, in bursts of as many. Default 500.
    pub starts_per_second: u32,
    /// Whether every request received and reply sent is logged (`<` and
    /// `>` lines; `WINK_LOG_MESSAGES`). Default yes.
    pub log_messages: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            grace: Duration::from_secs(5),
            max_machines: 2000,
            starts_per_second: 500,
            log_messages: true,
        }
    }
}

/// Names one spawn asked of the driver; its result comes back with it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct SpawnToken(pub u64);

/// Names one adoption asked of the driver; its result comes back with it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct AdoptToken(pub u64);

/// A signal the server sends a machine.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Signal {
    /// SIGTERM: exit in order.
    Term,
    /// SIGKILL, after the grace period.
    Kill,
}

/// How a machine's process ended.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ProcessExit {
    /// It exited with this status.
    Status(i32),
    /// A signal killed it.
    Signal(i32),
    /// Unknown: it was not this process's child (adopted after a server
    /// restart), so its status cannot be read.
    Unknown,
}

impl ProcessExit {
    /// The exit reason a `died` or relayed `exited` carries.
    pub fn reason(self) -> ExitReason {
        match self {
            ProcessExit::Status(n) => ExitReason::Status(n),
            ProcessExit::Signal(n) => ExitReason::Signal(n),
            ProcessExit::Unknown => ExitReason::Unknown,
        }
    }
}

/// `exit status 1`, `killed by signal 9 (SIGKILL)`, `ended (status
/// unknown: recovered after a server restart)`.
impl fmt::Display for ProcessExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessExit::Status(n) => write!(f, "exit status {n}"),
            ProcessExit::Signal(n) => write!(f, "killed by signal {n}{}", signal_name(*n)),
            ProcessExit::Unknown => {
                f.write_str("ended (status unknown: recovered after a server restart)")
            }
        }
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => " (SIGHUP)",
        2 => " (SIGINT)",
        3 => " (SIGQUIT)",
        4 => " (SIGILL)",
        6 => " (SIGABRT)",
        7 => " (SIGBUS)",
        8 => " (SIGFPE)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        13 => " (SIGPIPE)",
        14 => " (SIGALRM)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

/// Something the driver is to do for the core.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ServerEffect {
    /// Send `text` to `to`.
    Send {
        /// The recipient.
        to: Address,
        /// The message.
        text: String,
    },
    /// Fork `<dir>/<package>/<executable> <name> <address> <parent>
    /// [args…]` with `WINK_SERVER` (the server's address), `WINK_START_ID`
    /// (`start`) and, if configured, `WINK_LOG_DIR` in its environment,
    /// after checking that the executable is inside the served directory
    /// (after symlinks) and executable; then call
    /// [`ServerCore::handle_spawned`] with the pid, or why not.
    Spawn {
        /// Passed back to [`ServerCore::handle_spawned`].
        token: SpawnToken,
        /// The machine's name.
        name: MachineName,
        /// Where it is to listen.
        address: Address,
        /// Its parent's address.
        parent: Address,
        /// The `start` request's id.
        start: RequestId,
        /// Its arguments.
        args: Vec<String>,
    },
    /// Send `signal` to the machine process `pid` (only ever a process the
    /// core knows, and only while the driver watches it, so a reused pid is
    /// never signalled).
    Signal {
        /// The process.
        pid: u32,
        /// The signal.
        signal: Signal,
    },
    /// The machine that was at `address` is gone and no other is there:
    /// the driver may forget everything its transport keeps for it.
    Forget {
        /// Its address.
        address: Address,
    },
    /// Resolve `name`'s executable in the served directory, as for a
    /// spawn, for the upgrade of the machine process `pid`; then call
    /// [`ServerCore::handle_resolved`].
    Resolve {
        /// The machine's process.
        pid: u32,
        /// The machine it is to become.
        name: MachineName,
    },
    /// A machine this server did not fork says it is process `pid`,
    /// listening at `address` (after a server restart). Check that `pid`
    /// runs an executable of the served directory and holds a UDP socket
    /// on `address`'s port, start watching it, and call
    /// [`ServerCore::handle_adopted`].
    Adopt {
        /// Passed back to [`ServerCore::handle_adopted`].
        token: AdoptToken,
        /// The process.
        pid: u32,
        /// Where it says it listens (the sender of its `register`).
        address: Address,
        /// The name it gave.
        name: MachineName,
    },
}

/// Counters, all since the core was made.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct ServerStats {
    /// Requests read.
    pub requests: u64,
    /// Messages that were meant as requests but could not be read
    /// (answered with one `error`).
    pub bad_requests: u64,
    /// Requests refused with an `error` reply.
    pub refused: u64,
    /// Words dropped without a reply: lifecycle words from senders not
    /// entitled to them, replies, `unregister` from strangers.
    pub dropped: u64,
    /// `pulsed` from machines, accepted.
    pub pulses: u64,
    /// `relayed` replies sent to followers.
    pub relayed: u64,
    /// Processes forked.
    pub spawned: u64,
    /// Spawns that failed (refused by the driver's checks, or fork failed).
    pub spawn_failures: u64,
    /// Machines adopted after a restart.
    pub adopted: u64,
    /// Adoptions refused by the driver's checks.
    pub adopt_failures: u64,
    /// Machine processes that ended.
    pub reaped: u64,
    /// Deaths reported: `died` to a parent, or `errored` and `exited`
    /// relayed to followers.
    pub deaths: u64,
    /// SIGKILLs after the grace period.
    pub kills: u64,
    /// Machines stopped because their parent's process ended.
    pub orphans_stopped: u64,
}

/// A start that is to be forked, now or once its port is free.
#[derive(Debug)]
struct PendingStart {
    from: Address,
    id: RequestId,
    name: MachineName,
    address: Address,
    parent: Parent,
    args: Vec<String>,
}

/// What a machine said before its fork was reported (it can run before
/// the driver hears back from `fork`).
#[derive(Debug)]
enum Early {
    Register(Request),
    Started(Lifecycle),
    /// What came from the same address after its `register` or `started`
    /// (an `unregister`, lifecycle words), so an orderly exit that beats
    /// the fork's report is not taken for a death.
    Later(Request),
    LaterLifecycle(Lifecycle),
}

/// A spawn the driver has not reported yet.
#[derive(Debug)]
struct Spawning {
    from: Address,
    id: RequestId,
    name: MachineName,
    address: Address,
    parent: Address,
    follower: Option<Follower>,
    early: Vec<(Address, Early)>,
}

/// An upgrade asked for and not yet done.
#[derive(Debug)]
struct Upgrading {
    /// Who asked, with which id.
    from: Address,
    id: RequestId,
    /// What the machine becomes.
    name: MachineName,
    /// The machine got its order (the driver resolved the binary).
    ordered: bool,
    /// When the requester is told it failed, if it is not done by then.
    deadline: Instant,
}

/// How long an upgrade may take, from the request to the new program's
/// `upgraded`: the old program lingers up to 2 s for its last acks, and
/// the new one starts in milliseconds.
pub const UPGRADE_TIMEOUT: Duration = Duration::from_secs(30);

/// An adoption the driver has not reported yet.
#[derive(Debug)]
struct Adopting {
    pid: u32,
    name: MachineName,
    address: Address,
    parent: Address,
    start: Option<RequestId>,
    waiters: Vec<Stopper>,
}

/// A SIGKILL deadline; stale when its machine is gone or was killed
/// (lazy deletion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct KillTimer {
    at: Instant,
    pid: u32,
    serial: u64,
}

/// The server's bookkeeping: see the [module documentation](self).
pub struct ServerCore {
    me: Address,
    config: ServerConfig,
    log: Logger,
    machines: Registry,
    spawning: HashMap<SpawnToken, Spawning>,
    /// The spawn in flight on each (nonzero) port: at most one.
    spawning_ports: HashMap<u16, SpawnToken>,
    /// Starts waiting for their port, in order, per port.
    deferred: HashMap<u16, VecDeque<PendingStart>>,
    deferred_count: usize,
    adopting: HashMap<AdoptToken, Adopting>,
    adopting_pids: HashMap<u32, AdoptToken>,
    /// Upgrades under way, by the machine's pid: at most one each.
    upgrades: HashMap<u32, Upgrading>,
    /// `started` from an address that several machines could be at.
    unplaced: VecDeque<(Address, Lifecycle)>,
    timers: BinaryHeap<Reverse<KillTimer>>,
    pace: Pace,
    next_token: u64,
    shutdown_at: Option<Instant>,
    effects: VecDeque<ServerEffect>,
    stats: ServerStats,
}

impl fmt::Debug for ServerCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCore")
            .field("me", &self.me)
            .field("machines", &self.machines.len())
            .field("spawning", &self.spawning.len())
            .field("deferred", &self.deferred_count)
            .field("adopting", &self.adopting.len())
            .field("shutdown_at", &self.shutdown_at)
            .finish_non_exhaustive()
    }
}

impl ServerCore {
    /// A server listening at `me`, with no machines.
    pub fn new(me: Address, config: ServerConfig, log: Logger, _now: Instant) -> Self {
        ServerCore {
            me,
            pace: Pace::new(config.starts_per_second),
            config,
            log,
            machines: Registry::default(),
            spawning: HashMap::new(),
            spawning_ports: HashMap::new(),
            deferred: HashMap::new(),
            deferred_count: 0,
            adopting: HashMap::new(),
            adopting_pids: HashMap::new(),
            upgrades: HashMap::new(),
            unplaced: VecDeque::new(),
            timers: BinaryHeap::new(),
            next_token: 0,
            shutdown_at: None,
            effects: VecDeque::new(),
            stats: ServerStats::default(),
        }
    }

    /// The server's own address.
    pub fn address(&self) -> Address {
        self.me
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }

    /// How many machine processes the server watches.
    pub fn machines(&self) -> usize {
        self.machines.len()
    }

    /// Whether process `pid` is one of its machines.
    pub fn has_machine(&self, pid: u32) -> bool {
        self.machines.contains(pid)
    }

    /// Whether [`ServerCore::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown_at.is_some()
    }

    /// Handles one message from `from`: a request (answered), a lifecycle
    /// word from a machine (accepted, relayed or dropped), or anything else
    /// (dropped, or answered with one `error` when it was meant as a
    /// request).
    pub fn handle_message(&mut self, now: Instant, from: Address, text: &str) {
        if self.config.log_messages {
            info!(self.log, "< {} {}", from, Clip(text));
        }
        let word = text.split_ascii_whitespace().next().unwrap_or("");
        match Control::kind(word) {
            Some(Kind::Reply) => match text.parse::<Reply>() {
                Ok(reply @ Reply::Error { .. }) => self.machine_error(from, reply),
                _ => self.drop_word(from, word, "a reply, and the server asked nothing"),
            },
            Some(Kind::Lifecycle) => match text.parse::<Lifecycle>() {
                Ok(lifecycle) => self.lifecycle(from, lifecycle),
                Err(_) => self.drop_word(from, word, "unreadable"),
            },
            Some(Kind::Request) | None => match Request::parse_request(text) {
                Ok(request) => {
                    self.stats.requests += 1;
                    self.request(now, from, request);
                }
                Err(bad) => {
                    self.stats.bad_requests += 1;
                    self.send(from, bad.reply());
                }
            },
        }
    }

    /// The driver forked the process of `token` (`Ok(pid)`), or could not
    /// (`Err(reason)`, refused to the requester as given).
    pub fn handle_spawned(&mut self, now: Instant, token: SpawnToken, result: Result<u32, String>) {
        let Some(spawn) = self.spawning.remove(&token) else {
            return;
        };
        let port = spawn.address.port();
        if self.spawning_ports.get(&port) == Some(&token) {
            self.spawning_ports.remove(&port);
        }
        match result {
            Err(reason) => {
                self.stats.spawn_failures += 1;
                warn!(self.log, "cannot start {}: {}", spawn.name, reason);
                self.refuse(spawn.from, spawn.id, "start", reason);
            }
            Ok(pid) => {
                if self.machines.contains(pid) {
                    // The kernel gave the pid again, so the process the
                    // record is about is gone (the driver reports such an
                    // end first; this is the fallback).
                    self.exited(now, pid, ProcessExit::Unknown);
                }
                self.stats.spawned += 1;
                info!(self.log, "Forked: {} {} {}", pid, spawn.name, spawn.address);
                self.send(spawn.from, Reply::Starting { id: spawn.id, pid });
                self.machines.insert(NewMachine {
                    pid,
                    name: spawn.name,
                    requested: spawn.address,
                    address: None,
                    parent: spawn.parent,
                    server_parented: spawn.parent == self.me,
                    start: Some(spawn.id),
                    since: now,
                    follower: spawn.follower,
                });
                if self.is_shutting_down() {
                    self.terminate(now, pid, self.config.grace);
                }
                for (from, early) in spawn.early {
                    match early {
                        Early::Register(request) | Early::Later(request) => {
                            self.request(now, from, request)
                        }
                        Early::Started(lifecycle) | Early::LaterLifecycle(lifecycle) => {
                            self.lifecycle(from, lifecycle)
                        }
                    }
                }
            }
        }
        self.advance(now, port);
    }

    /// The driver checked the process of adoption `token` and watches it
    /// (`Ok`), or refused it (`Err(reason)`, refused to the registering
    /// machine as given).
    pub fn handle_adopted(&mut self, now: Instant, token: AdoptToken, result: Result<(), String>) {
        let Some(adopting) = self.adopting.remove(&token) else {
            return;
        };
        if self.adopting_pids.get(&adopting.pid) == Some(&token) {
            self.adopting_pids.remove(&adopting.pid);
        }
        let refusal = match result {
            Err(reason) => {
                self.stats.adopt_failures += 1;
                Some(reason)
            }
            Ok(()) => self.adoption_refusal(&adopting),
        };
        if let Some(reason) = refusal {
            warn!(
                self.log,
                "not adopting {} {} at {}: {}",
                adopting.pid,
                adopting.name,
                adopting.address,
                reason
            );
            for waiter in adopting.waiters {
                self.refuse(waiter.to, waiter.id, "register", reason.clone());
            }
            return;
        }
        if !self.machines.contains(adopting.pid) {
            self.stats.adopted += 1;
            info!(
                self.log,
                "Adopted: {} {} {}", adopting.pid, adopting.name, adopting.address
            );
            self.machines.insert(NewMachine {
                pid: adopting.pid,
                name: adopting.name,
                requested: adopting.address,
                address: Some(adopting.address),
                parent: adopting.parent,
                server_parented: adopting.parent == self.me,
                start: adopting.start,
                since: now,
                follower: None,
            });
        }
        for waiter in adopting.waiters {
            self.send(waiter.to, Reply::Registered { id: waiter.id });
        }
        self.place_unplaced(adopting.address);
    }

    /// Why an adoption that passed the driver's checks is refused now, if
    /// it is.
    fn adoption_refusal(&self, adopting: &Adopting) -> Option<String> {
        if self.is_shutting_down() {
            return Some(SHUTTING_DOWN.to_owned());
        }
        if let Some(machine) = self.machines.get(adopting.pid) {
            // Known by now (forked, or adopted twice over).
            return (machine.name != adopting.name || !machine.may_be_at(adopting.address))
                .then(|| format!("pid {} is {}", adopting.pid, machine.name));
        }
        None
    }

    /// The process `pid` ended, `how`. Its parent (or, for a machine whose
    /// parent is the server, its followers) hears of it unless it exited in
    /// order with a status; whoever stopped it hears `stopped`; its
    /// children on this host are stopped; starts waiting for its port run.
    pub fn handle_exited(&mut self, now: Instant, pid: u32, how: ProcessExit) {
        self.exited(now, pid, how);
    }

    /// The transport gave up on a message to `to`: the `wink` command
    /// that followed a machine is gone, so nothing more is relayed to it.
    pub fn handle_gave_up(&mut self, _now: Instant, to: Address) {
        let followed = self.machines.drop_follower(to);
        if followed > 0 {
            info!(
                self.log,
                "{} stopped answering: no more relays to it ({} machines)", to, followed
            );
        }
    }

    /// Sends SIGKILL to every machine whose grace period is over at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.upgrades.values().any(|u| u.deadline <= now) {
            self.expire_upgrades(now);
        }
        while let Some(&Reverse(timer)) = self.timers.peek() {
            if timer.at > now {
                break;
            }
            self.timers.pop();
            let Some(machine) = self.machines.get_mut(timer.pid) else {
                continue;
            };
            if machine.serial != timer.serial || machine.killed || machine.kill_at != Some(timer.at)
            {
                continue;
            }
            machine.killed = true;
            warn!(
                self.log,
                "{} {} ignored SIGTERM: SIGKILL", machine.pid, machine.name
            );
            self.stats.kills += 1;
            self.effects.push_back(ServerEffect::Signal {
                pid: timer.pid,
                signal: Signal::Kill,
            });
        }
        self.prune_timers();
    }

    /// SIGTERM or SIGINT: refuse starts and adoptions from now on, refuse
    /// the starts waiting for a port, and stop every machine (SIGTERM, then
    /// SIGKILL after the grace period).
    pub fn shutdown(&mut self, now: Instant) {
        if self.is_shutting_down() {
            return;
        }
        self.shutdown_at = Some(now);
        info!(self.log, "stopping {} machines", self.machines.len());
        let deferred: Vec<PendingStart> = self.deferred.drain().flat_map(|(_, q)| q).collect();
        self.deferred_count = 0;
        for start in deferred {
            self.refuse(start.from, start.id, "start", SHUTTING_DOWN);
        }
        for pid in self.machines.pids() {
            self.terminate(now, pid, self.config.grace);
        }
    }

    /// After [`ServerCore::shutdown`]: whether the server may exit, because
    /// no machine is left (and no fork is outstanding), or twice the grace
    /// period has passed.
    pub fn is_done(&self, now: Instant) -> bool {
        self.shutdown_at.is_some_and(|at| {
            (self.machines.is_empty() && self.spawning.is_empty())
                || now >= deadline(at, self.config.grace.saturating_mul(2))
        })
    }

    /// When [`ServerCore::handle_timeout`] is next due (a SIGKILL, or the
    /// end of a shutdown).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let kill = self.timers.peek().map(|Reverse(timer)| timer.at);
        let end = self
            .shutdown_at
            .map(|at| deadline(at, self.config.grace.saturating_mul(2)));
        let upgrade = self.upgrades.values().map(|u| u.deadline).min();
        [kill, end, upgrade].into_iter().flatten().min()
    }

    /// The next thing to do, in order.
    #[must_use]
    pub fn poll_effect(&mut self) -> Option<ServerEffect> {
        self.effects.pop_front()
    }

    fn request(&mut self, now: Instant, from: Address, request: Request) {
        match request {
            Request::Start {
                id,
                name,
                target,
                parent,
                args,
            } => {
                let address = match target {
                    Target::Port(port) => self.me.with_port(port),
                    Target::Address(address) => address,
                };
                let start = PendingStart {
                    from,
                    id,
                    name,
                    address,
                    parent,
                    args,
                };
                self.start(now, start);
            }
            Request::Stop { id, port, grace_ms } => {
                let grace = grace_ms.map_or(self.config.grace, Duration::from_millis);
                self.stop(now, from, id, port, grace)
            }
            Request::List { id } => self.list(now, from, id),
            Request::Register {
                id,
                name,
                pid,
                parent,
                start,
            } => self.register(from, id, name, pid, parent, start),
            Request::Upgrade { id, port, name } => self.upgrade(now, from, id, port, name),
            Request::Unregister { .. } => match self.machines.at(from) {
                Some(pid) => {
                    if let Some(machine) = self.machines.get_mut(pid) {
                        machine.orderly = true;
                    }
                }
                None if self.hold_later(from, Early::Later(request.clone())) => {}
                None => self.drop_word(
                    from,
                    "unregister",
                    "no machine of this server listens there",
                ),
            },
        }
    }

    /// Holds `early` for the spawn not yet reported whose machine already
    /// spoke from `from`; true if there is one.
    fn hold_later(&mut self, from: Address, early: Early) -> bool {
        let held = self
            .spawning
            .values_mut()
            .find(|s| s.early.iter().any(|(at, _)| *at == from));
        match held {
            Some(spawn) if spawn.early.len() < MAX_EARLY => {
                spawn.early.push((from, early));
                true
            }
            _ => false,
        }
    }

    /// Machines, forks outstanding, starts waiting for a port and
    /// adoptions being checked: what [`ServerConfig::max_machines`] bounds.
    fn load(&self) -> usize {
        self.machines.len() + self.spawning.len() + self.deferred_count + self.adopting.len()
    }

    fn start(&mut self, now: Instant, start: PendingStart) {
        let refusal = if self.is_shutting_down() {
            Some(SHUTTING_DOWN.to_owned())
        } else if self.load() >= self.config.max_machines {
            Some(format!(
                "limit: at most {} machines on this server (--max-machines)",
                self.config.max_machines
            ))
        } else if self.is_own(start.address) {
            Some(format!("{} is where this server listens", start.address))
        } else if !self.pace.admit(now) {
            Some(format!(
                "limit: at most {} starts per second (--max-starts-per-second)",
                self.config.starts_per_second
            ))
        } else {
            None
        };
        if let Some(reason) = refusal {
            return self.refuse(start.from, start.id, "start", reason);
        }
        let port = start.address.port();
        let busy = port != 0
            && (self.spawning_ports.contains_key(&port)
                || self.deferred.contains_key(&port)
                || self.machines.on_port(port).next().is_some());
        if busy {
            self.deferred.entry(port).or_default().push_back(start);
            self.deferred_count += 1;
            self.advance(now, port);
        } else {
            self.spawn(start);
        }
    }

    /// Whether a machine at `address` would take the server's own socket.
    fn is_own(&self, address: Address) -> bool {
        address.port() == self.me.port()
            && (address.ip() == self.me.ip()
                || address.ip().is_unspecified()
                || self.me.ip().is_unspecified())
    }

    /// Moves the starts waiting for `port` along: stops the machines that
    /// hold it, and forks the first start once it is free.
    fn advance(&mut self, now: Instant, port: u16) {
        if port == 0 || self.spawning_ports.contains_key(&port) {
            return;
        }
        let holders: Vec<u32> = self.machines.on_port(port).collect();
        if !holders.is_empty() {
            if self.deferred.contains_key(&port) {
                for pid in holders {
                    if self.machines.get(pid).is_some_and(|m| m.kill_at.is_none()) {
                        info!(
                            self.log,
                            "port {} is taken by {}: stopping it first", port, pid
                        );
                        self.terminate(now, pid, self.config.grace);
                    }
                }
            }
            return;
        }
        let Some(queue) = self.deferred.get_mut(&port) else {
            return;
        };
        let next = queue.pop_front();
        if queue.is_empty() {
            self.deferred.remove(&port);
        }
        if let Some(start) = next {
            self.deferred_count -= 1;
            self.spawn(start);
        }
    }

    fn spawn(&mut self, start: PendingStart) {
        self.next_token += 1;
        let token = SpawnToken(self.next_token);
        let (parent, follower) = match start.parent {
            Parent::Requester => (start.from, None),
            Parent::Server => (
                self.me,
                Some(Follower {
                    to: start.from,
                    id: start.id,
                }),
            ),
        };
        let port = start.address.port();
        if port != 0 {
            self.spawning_ports.insert(port, token);
        }
        self.effects.push_back(ServerEffect::Spawn {
            token,
            name: start.name.clone(),
            address: start.address,
            parent,
            start: start.id,
            args: start.args,
        });
        self.spawning.insert(
            token,
            Spawning {
                from: start.from,
                id: start.id,
                name: start.name,
                address: start.address,
                parent,
                follower,
                early: Vec::new(),
            },
        );
    }

    /// The spawn in flight that a machine saying it is `name`, made by
    /// `start`, at `from`, could belong to.
    fn spawn_for(&self, start: RequestId, name: &MachineName, from: Address) -> Option<SpawnToken> {
        self.spawning
            .iter()
            .filter(|(_, s)| s.id == start && s.name == *name && may_listen_at(s.address, from))
            .map(|(token, _)| *token)
            .min()
    }

    fn stop(&mut self, now: Instant, from: Address, id: RequestId, port: u16, grace: Duration) {
        let found = (port != 0)
            .then(|| self.machines.on_port(port).next())
            .flatten();
        let Some(pid) = found else {
            return self.refuse(
                from,
                id,
                "stop",
                format!("no machine started by this server listens on port {port}"),
            );
        };
        let Some(machine) = self.machines.get_mut(pid) else {
            return;
        };
        let stopper = Stopper { to: from, id };
        if !machine.stoppers.contains(&stopper) {
            if machine.stoppers.len() >= MAX_STOPPERS {
                return self.refuse(
                    from,
                    id,
                    "stop",
                    format!(
                        "{MAX_STOPPERS} stop requests already wait for the machine on port {port}"
                    ),
                );
            }
            machine.stoppers.push(stopper);
        }
        let grace = self.terminate(now, pid, grace);
        let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        self.send(from, Reply::Stopping { id, port, grace_ms });
    }

    /// `upgrade <id> <port> [<name>]`: the path of the binary is asked of
    /// the driver, then the machine gets the order.
    fn upgrade(
        &mut self,
        now: Instant,
        from: Address,
        id: RequestId,
        port: u16,
        name: Option<MachineName>,
    ) {
        let found = (port != 0)
            .then(|| self.machines.on_port(port).next())
            .flatten();
        let refusal = match found.and_then(|pid| self.machines.get(pid)) {
            None => Some(format!(
                "no machine started by this server listens on port {port}"
            )),
            Some(m) if m.address().is_none() => {
                Some(format!("the machine on port {port} has not registered yet"))
            }
            Some(m) if self.upgrades.contains_key(&m.pid) => Some(format!(
                "the machine on port {port} is being upgraded already"
            )),
            Some(_) if self.is_shutting_down() => Some(SHUTTING_DOWN.to_owned()),
            Some(_) => None,
        };
        if let Some(reason) = refusal {
            return self.refuse(from, id, "upgrade", reason);
        }
        let Some(machine) = found.and_then(|pid| self.machines.get(pid)) else {
            return;
        };
        let (pid, name) = (machine.pid, name.unwrap_or_else(|| machine.name.clone()));
        info!(self.log, "Upgrading {} {} to {}", pid, machine.name, name);
        self.upgrades.insert(
            pid,
            Upgrading {
                from,
                id,
                name: name.clone(),
                ordered: false,
                deadline: deadline(now, UPGRADE_TIMEOUT),
            },
        );
        self.effects.push_back(ServerEffect::Resolve { pid, name });
    }

    /// The driver resolved the binary for the upgrade of `pid` (or could
    /// not, and the upgrade is refused to its requester).
    pub fn handle_resolved(&mut self, _now: Instant, pid: u32, path: Result<PathBuf, String>) {
        let Some(upgrading) = self.upgrades.get_mut(&pid) else {
            return;
        };
        let address = self.machines.get(pid).and_then(|m| m.address());
        // The order carries the path as text: one that is no UTF-8 could
        // not be run as resolved.
        let path = path.and_then(|p| match p.to_str() {
            Some(_) => Ok(p),
            None => Err(format!("{} is no UTF-8 path", p.display())),
        });
        match (path, address) {
            (Ok(path), Some(address)) => {
                upgrading.ordered = true;
                let order = UpgradeOrder {
                    id: upgrading.id,
                    name: upgrading.name.clone(),
                    path,
                };
                self.send(address, order);
            }
            (Err(reason), _) => {
                if let Some(u) = self.upgrades.remove(&pid) {
                    self.refuse(u.from, u.id, "upgrade", reason);
                }
            }
            (Ok(_), None) => {
                if let Some(u) = self.upgrades.remove(&pid) {
                    self.refuse(u.from, u.id, "upgrade", "the machine is gone");
                }
            }
        }
    }

    /// Whether machine `pid` is being upgraded to `name` and got its
    /// order: its new program may say so.
    fn is_upgrading_to(&self, pid: u32, name: &MachineName) -> bool {
        self.upgrades
            .get(&pid)
            .is_some_and(|u| u.ordered && u.name == *name)
    }

    /// The machine `pid` runs the program of its upgrade and said
    /// `upgraded <name> <from>`: it is `name` now, and the requester hears
    /// it, relayed.
    fn upgraded(&mut self, pid: u32, name: &MachineName, from: &MachineName) {
        let Some(u) = self.upgrades.remove(&pid) else {
            return;
        };
        let Some(machine) = self.machines.get_mut(pid) else {
            return;
        };
        machine.name = name.clone();
        let address = machine.address();
        info!(self.log, "Upgraded {} {} to {}", pid, from, name);
        let lifecycle = Lifecycle::Upgraded {
            name: name.clone(),
            from: from.clone(),
        };
        self.send(
            u.from,
            Reply::Relayed {
                id: u.id,
                address,
                lifecycle,
            },
        );
    }

    /// Upgrades not done by their deadline fail.
    fn expire_upgrades(&mut self, now: Instant) {
        let late: Vec<u32> = self
            .upgrades
            .iter()
            .filter(|(_, u)| u.deadline <= now)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in late {
            if let Some(u) = self.upgrades.remove(&pid) {
                let reason = format!(
                    "no word from the machine's new program within {} s",
                    UPGRADE_TIMEOUT.as_secs()
                );
                self.refuse(u.from, u.id, "upgrade", reason);
            }
        }
    }

    /// An `error` from a machine: its refusal of an upgrade, passed on to
    /// whoever asked for it.
    fn machine_error(&mut self, from: Address, reply: Reply) {
        let Reply::Error {
            id: Some(id),
            request,
            reason,
        } = reply
        else {
            return self.drop_word(from, "error", "a reply, and the server asked nothing");
        };
        let pid = self.machines.at(from);
        let ours = pid.and_then(|pid| self.upgrades.get(&pid).map(|u| (pid, u)));
        match ours {
            Some((pid, u)) if request == "upgrade" && u.id == id && u.ordered => {
                if let Some(u) = self.upgrades.remove(&pid) {
                    self.refuse(u.from, u.id, "upgrade", reason);
                }
            }
            _ => self.drop_word(from, "error", "not about an upgrade of that machine"),
        }
    }

    fn list(&mut self, now: Instant, from: Address, id: RequestId) {
        let rows: Vec<Row> = self
            .machines
            .by_port()
            .map(|m| Row {
                address: m.address(),
                pid: m.pid,
                name: m.name.clone(),
                parent: m.parent(),
                uptime: now.saturating_duration_since(m.since).as_secs(),
            })
            .collect();
        let count = rows.len() as u64;
        for row in rows {
            self.send(from, Reply::Machine { id, row });
        }
        self.send(from, Reply::Listed { id, count });
    }

    fn register(
        &mut self,
        from: Address,
        id: RequestId,
        name: MachineName,
        pid: u32,
        parent: Address,
        start: Option<RequestId>,
    ) {
        // The new program of an upgrade registers under its new name.
        if self.machines.get(pid).is_some_and(|m| m.may_be_at(from))
            && self.is_upgrading_to(pid, &name)
        {
            if let Some(machine) = self.machines.get_mut(pid) {
                machine.name = name.clone();
            }
        }
        if let Some(machine) = self.machines.get(pid) {
            if machine.name != name {
                let reason = format!("pid {pid} is {}, not {name}", machine.name);
                return self.refuse(from, id, "register", reason);
            }
            if !machine.may_be_at(from) {
                let at = machine.address().unwrap_or(machine.requested);
                let reason = format!("pid {pid} is registered at {at}");
                return self.refuse(from, id, "register", reason);
            }
            if machine.address() != Some(from) {
                self.machines.confirm(pid, from);
            }
            self.send(from, Reply::Registered { id });
            return self.place_unplaced(from);
        }
        // It may be a machine whose fork the driver has not reported yet.
        if let Some(token) = start.and_then(|start| self.spawn_for(start, &name, from)) {
            if let Some(spawn) = self.spawning.get_mut(&token) {
                if spawn.early.len() < MAX_EARLY {
                    let request = Request::Register {
                        id,
                        name,
                        pid,
                        parent,
                        start,
                    };
                    spawn.early.push((from, Early::Register(request)));
                    return;
                }
            }
        }
        self.adopt(from, id, name, pid, parent, start);
    }

    /// A `register` for a process this server did not fork: a machine of
    /// an earlier life of the server, re-registering.
    fn adopt(
        &mut self,
        from: Address,
        id: RequestId,
        name: MachineName,
        pid: u32,
        parent: Address,
        start: Option<RequestId>,
    ) {
        if let Some(&token) = self.adopting_pids.get(&pid) {
            if let Some(adopting) = self.adopting.get_mut(&token) {
                if adopting.name == name
                    && adopting.address == from
                    && adopting.waiters.len() < MAX_ADOPT_WAITERS
                {
                    adopting.waiters.push(Stopper { to: from, id });
                    return;
                }
            }
            let reason = format!("pid {pid} is being checked for another register");
            return self.refuse(from, id, "register", reason);
        }
        let refusal = if self.is_shutting_down() {
            Some(SHUTTING_DOWN.to_owned())
        } else if self.load() >= self.config.max_machines {
            Some(format!(
                "limit: at most {} machines on this server (--max-machines)",
                self.config.max_machines
            ))
        } else {
            self.machines
                .at(from)
                .map(|other| format!("{from} is registered to pid {other}"))
        };
        if let Some(reason) = refusal {
            return self.refuse(from, id, "register", reason);
        }
        self.next_token += 1;
        let token = AdoptToken(self.next_token);
        info!(
            self.log,
            "{} {} at {} was not started by this server: checking it", pid, name, from
        );
        self.effects.push_back(ServerEffect::Adopt {
            token,
            pid,
            address: from,
            name: name.clone(),
        });
        self.adopting_pids.insert(pid, token);
        self.adopting.insert(
            token,
            Adopting {
                pid,
                name,
                address: from,
                parent,
                start,
                waiters: vec![Stopper { to: from, id }],
            },
        );
    }

    fn lifecycle(&mut self, from: Address, lifecycle: Lifecycle) {
        let word = lifecycle_word(&lifecycle);
        if let (Lifecycle::Upgraded { name, from: old }, Some(pid)) =
            (&lifecycle, self.machines.at(from))
        {
            if self.is_upgrading_to(pid, name) {
                self.upgraded(pid, name, old);
            }
        }
        if let Some(pid) = self.machines.at(from) {
            let Some(machine) = self.machines.get(pid) else {
                return;
            };
            if machine.name != *lifecycle.name() {
                return self.drop_word(from, word, "not the name of the machine there");
            }
            match (&lifecycle, machine.server_parented) {
                (Lifecycle::Died { .. }, _) => self.drop_word(from, word, "only servers say died"),
                (Lifecycle::Orphaned { .. }, _) => {
                    self.drop_word(from, word, "only a parent says orphaned, to its child")
                }
                (Lifecycle::Pulsed { .. }, false) => self.stats.pulses += 1,
                // Said to the server, which ordered the upgrade.
                (Lifecycle::Upgraded { .. }, false) => {}
                (_, false) => self.drop_word(from, word, "the server is not its parent"),
                (_, true) => {
                    match &lifecycle {
                        Lifecycle::Exited { .. } => {
                            if let Some(machine) = self.machines.get_mut(pid) {
                                machine.orderly = true;
                            }
                        }
                        Lifecycle::Pulsed { .. } => self.stats.pulses += 1,
                        _ => {}
                    }
                    self.relay(pid, &lifecycle);
                }
            }
            return;
        }
        // A machine whose parent is the server says `started` to it, maybe
        // before `register`: that tells where it listens.
        if let Lifecycle::Started {
            name,
            start: Some(start),
        } = &lifecycle
        {
            let machines: Vec<u32> = self
                .machines
                .unconfirmed(*start)
                .filter(|m| m.name == *name && m.may_be_at(from))
                .map(|m| m.pid)
                .collect();
            let spawn = self.spawn_for(*start, name, from).filter(|token| {
                self.spawning
                    .get(token)
                    .is_some_and(|s| s.parent == self.me)
            });
            match (machines.as_slice(), spawn) {
                ([pid], None) => {
                    self.machines.confirm(*pid, from);
                    return self.relay(*pid, &lifecycle);
                }
                ([], Some(token)) => {
                    if let Some(spawn) = self.spawning.get_mut(&token) {
                        if spawn.early.len() < MAX_EARLY {
                            spawn.early.push((from, Early::Started(lifecycle)));
                            return;
                        }
                    }
                }
                ([], None) => {}
                _ => {
                    // Several machines could be at `from`: its `register`
                    // (which names its pid) will tell which.
                    if self.unplaced.len() >= MAX_UNPLACED {
                        self.unplaced.pop_front();
                    }
                    self.unplaced.push_back((from, lifecycle));
                    return;
                }
            }
        }
        if !matches!(
            lifecycle,
            Lifecycle::Started { .. } | Lifecycle::Died { .. }
        ) && self.hold_later(from, Early::LaterLifecycle(lifecycle.clone()))
        {
            return;
        }
        self.drop_word(
            from,
            word,
            "no machine of this server with the server as parent listens there",
        );
    }

    /// A machine registered at `from`: a `started` held for it is relayed.
    fn place_unplaced(&mut self, from: Address) {
        let Some(i) = self.unplaced.iter().position(|(at, _)| *at == from) else {
            return;
        };
        let Some((_, lifecycle)) = self.unplaced.remove(i) else {
            return;
        };
        let Some(pid) = self.machines.at(from) else {
            return;
        };
        let fits = self.machines.get(pid).is_some_and(|m| {
            m.server_parented
                && m.name == *lifecycle.name()
                && matches!(lifecycle, Lifecycle::Started { start, .. } if start == m.start)
        });
        if fits {
            self.relay(pid, &lifecycle);
        }
    }

    /// Tells the followers of `pid` about `lifecycle`.
    fn relay(&mut self, pid: u32, lifecycle: &Lifecycle) {
        let Some(machine) = self.machines.get(pid) else {
            return;
        };
        let address = machine.address();
        let followers = machine.followers().to_vec();
        for follower in followers {
            self.stats.relayed += 1;
            self.send(
                follower.to,
                Reply::Relayed {
                    id: follower.id,
                    address,
                    lifecycle: lifecycle.clone(),
                },
            );
        }
    }

    fn exited(&mut self, now: Instant, pid: u32, how: ProcessExit) {
        let Some(machine) = self.machines.remove(pid) else {
            return;
        };
        self.stats.reaped += 1;
        info!(self.log, "Reaped: {} {} {}", pid, machine.name, how);
        if let Some(u) = self.upgrades.remove(&pid) {
            let reason = format!("the machine exited during its upgrade: {how}");
            self.refuse(u.from, u.id, "upgrade", reason);
        }
        let address = machine.address();
        // Its process is gone: nothing more can come from it, so what the
        // transport keeps for it (a reply it will never ack, retried for
        // the whole retry budget) can go now.
        if let Some(at) = address {
            if self.machines.at(at).is_none() {
                self.effects.push_back(ServerEffect::Forget { address: at });
            }
        }
        if !(machine.orderly && matches!(how, ProcessExit::Status(_))) {
            self.stats.deaths += 1;
            if machine.server_parented {
                let errored = Lifecycle::Errored {
                    name: machine.name.clone(),
                    message: how.to_string(),
                };
                let exited = Lifecycle::Exited {
                    name: machine.name.clone(),
                    reason: how.reason(),
                };
                for follower in machine.followers() {
                    for lifecycle in [&errored, &exited] {
                        self.stats.relayed += 1;
                        self.send(
                            follower.to,
                            Reply::Relayed {
                                id: follower.id,
                                address,
                                lifecycle: lifecycle.clone(),
                            },
                        );
                    }
                }
            } else {
                let died = Lifecycle::Died {
                    start: machine.start,
                    address,
                    name: machine.name.clone(),
                    reason: how.reason(),
                };
                self.send(machine.parent(), died);
            }
        }
        let port = machine.port();
        for stopper in &machine.stoppers {
            self.send(
                stopper.to,
                Reply::Stopped {
                    id: stopper.id,
                    port,
                },
            );
        }
        // Its children on this host lose their parent with it: stop them
        // rather than leave them pulsing into the void. (Unless another
        // machine listens at that address by now: they may be its.)
        if let Some(address) = address.filter(|a| self.machines.at(*a).is_none()) {
            for orphan in self.machines.children_of(address) {
                info!(
                    self.log,
                    "{} lost its parent {}: stopping it", orphan, address
                );
                self.stats.orphans_stopped += 1;
                self.terminate(now, orphan, self.config.grace);
            }
        }
        self.prune_timers();
        self.advance(now, port);
    }

    /// SIGTERM now, SIGKILL after `grace` (once per machine): returns how
    /// long the machine has from now.
    fn terminate(&mut self, now: Instant, pid: u32, grace: Duration) -> Duration {
        let Some(machine) = self.machines.get_mut(pid) else {
            return grace;
        };
        if let Some(at) = machine.kill_at {
            return at.saturating_duration_since(now);
        }
        let at = deadline(now, grace);
        machine.kill_at = Some(at);
        let serial = machine.serial;
        self.effects.push_back(ServerEffect::Signal {
            pid,
            signal: Signal::Term,
        });
        self.timers.push(Reverse(KillTimer { at, pid, serial }));
        // Reaped machines leave their timers behind until due; rebuild the
        // heap when those dominate it, so it stays proportional to the
        // machines (amortised O(1) per timer).
        if self.timers.len() > 64 && self.timers.len() > 2 * self.machines.len() {
            let machines = &self.machines;
            self.timers
                .retain(|Reverse(timer)| is_live(machines, timer));
        }
        grace
    }

    /// Discards stale timers at the top of the heap, so that
    /// [`ServerCore::poll_timeout`] names a live deadline when it can.
    fn prune_timers(&mut self) {
        while let Some(Reverse(timer)) = self.timers.peek() {
            if is_live(&self.machines, timer) {
                break;
            }
            self.timers.pop();
        }
    }

    fn send(&mut self, to: Address, text: impl fmt::Display) {
        let text = text.to_string();
        if self.config.log_messages {
            info!(self.log, "> {} {}", to, Clip(&text));
        }
        self.effects.push_back(ServerEffect::Send { to, text });
    }

    fn refuse(&mut self, to: Address, id: RequestId, word: &str, reason: impl Into<String>) {
        self.stats.refused += 1;
        self.send(to, Reply::error(Some(id), word, reason));
    }

    fn drop_word(&mut self, from: Address, word: &str, why: &str) {
        self.stats.dropped += 1;
        info!(self.log, "dropped {} from {}: {}", Clip(word), from, why);
    }

    /// The size of every table, for tests of boundedness.
    #[cfg(test)]
    fn table_sizes(&self) -> Vec<usize> {
        let mut sizes = self.machines.sizes().to_vec();
        sizes.extend([
            self.spawning.len(),
            self.spawning_ports.len(),
            self.deferred.len(),
            self.deferred_count,
            self.adopting.len(),
            self.adopting_pids.len(),
            self.upgrades.len(),
            self.unplaced.len(),
            self.timers.len(),
            self.effects.len(),
        ]);
        sizes
    }
}

/// The refusal while shutting down.
const SHUTTING_DOWN: &str = "the server is shutting down";

/// `timer` is still the SIGKILL deadline of a live machine.
fn is_live(machines: &Registry, timer: &KillTimer) -> bool {
    machines
        .get(timer.pid)
        .is_some_and(|m| m.serial == timer.serial && !m.killed && m.kill_at == Some(timer.at))
}

/// `at + after`, or a year after `at` if that overflows.
fn deadline(at: Instant, after: Duration) -> Instant {
    at.checked_add(after)
        .or_else(|| at.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(at)
}

fn lifecycle_word(lifecycle: &Lifecycle) -> &'static str {
    match lifecycle {
        Lifecycle::Started { .. } => "started",
        Lifecycle::Pulsed { .. } => "pulsed",
        Lifecycle::Errored { .. } => "errored",
        Lifecycle::Exited { .. } => "exited",
        Lifecycle::Orphaned { .. } => "orphaned",
        Lifecycle::Upgraded { .. } => "upgraded",
        Lifecycle::Died { .. } => "died",
    }
}

/// A message for a log line: at most [`MAX_LOGGED`] bytes, then its length.
struct Clip<'a>(&'a str);

impl fmt::Display for Clip<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        if text.len() <= MAX_LOGGED {
            return f.write_str(text);
        }
        let mut end = MAX_LOGGED;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        write!(f, "{}… ({} bytes)", &text[..end], text.len())
    }
}
