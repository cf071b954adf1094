//! A deterministic simulator of whole Wink clusters, in the spirit of
//! FoundationDB's simulator and TigerBeetle's VOPR.
//!
//! Several hosts, each with a server ([`ServerCore`]) and real machines
//! ([`Node`]s of `#[machine]` types), run in one process on simulated
//! time. Every process has a real [`Transport`]; the datagrams between
//! them cross a simulated network that loses, duplicates, delays and
//! reorders them and partitions hosts, all from one seed. Machines are
//! killed (`kill -9`), servers crash and restart on the same address. After
//! every step the simulator checks the invariants of supervision:
//!
//! - every child death is reported to its (live) parent exactly once, with
//!   a reason that fits how it died;
//! - no machine outlives its parent, or a partition from it, by more than
//!   the heartbeat timeout plus the grace period (and a few pulses);
//! - no child is controlled by two parents;
//! - nothing is delivered twice or out of order;
//! - every table stays bounded.
//!
//! The same seed gives the same run, step for step; a violation says which
//! seed, when, and what the processes were doing just before.
//!
//! ```
//! use std::time::Duration;
//! use wink::sim::{Registry, Scenario, Sim};
//!
//! #[wink::machine]
//! mod idle {
//!     #[derive(Default)]
//!     pub struct Idle;
//!     pub enum State { #[initial] Waiting }
//!     impl Idle {
//!         #[receive(Waiting)]
//!         fn any(&mut self, _cx: &mut Context<Self>, _m: &str) {}
//!     }
//! }
//!
//! let mut registry = Registry::new();
//! registry.add("idle/Idle", || idle::Idle);
//! let mut scenario = Scenario::new(2);
//! scenario.start(0, "idle/Idle", &[]);
//! scenario.faults = false;
//! scenario.run_for = Duration::from_secs(2);
//! let report = Sim::new(7, scenario, registry).run().map_err(|v| v.to_string())?;
//! assert_eq!(report.machines_alive, 1);
//! # Ok::<(), String>(())
//! ```

mod network;
mod process;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::address::Address;
use crate::control::{ExitReason, Lifecycle, Parent, Request, RequestId, Target};
use crate::hsm::{Hsm, Machine};
use crate::name::MachineName;
use crate::node::{Identity, Node, NodeConfig};
use crate::server::{ProcessExit, ServerConfig, ServerCore, ServerEffect, Signal};
use crate::transport::{Transport, TransportConfig};
use crate::wire::MAX_DATAGRAM;
use network::Network;
pub use process::SimNode;

/// The machines a simulated server can start, by binary name
/// (`package/executable`).
#[derive(Default)]
pub struct Registry {
    factories: BTreeMap<String, Box<dyn Fn() -> Box<dyn MakeNode>>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.factories.keys()).finish()
    }
}

/// Makes a node from an identity: a machine type, boxed.
pub trait MakeNode {
    /// The node for a machine at `me`.
    fn make(
        self: Box<Self>,
        me: Address,
        identity: Identity,
        config: NodeConfig,
        log: slog::Logger,
        now: Instant,
    ) -> Box<dyn SimNode>;
}

struct Maker<M>(M);

impl<M: Machine> MakeNode for Maker<M> {
    fn make(
        self: Box<Self>,
        me: Address,
        identity: Identity,
        config: NodeConfig,
        log: slog::Logger,
        now: Instant,
    ) -> Box<dyn SimNode> {
        let mut node = Node::new(Hsm::new(self.0), me, identity, config, log, now);
        node.watch();
        Box::new(node)
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// `binary` (`package/executable`) runs the machine `make` returns.
    pub fn add<M: Machine>(&mut self, binary: &str, make: impl Fn() -> M + 'static) {
        self.factories.insert(
            binary.to_owned(),
            Box::new(move || Box::new(Maker(make())) as Box<dyn MakeNode>),
        );
    }

    fn make(&self, name: &MachineName) -> Option<Box<dyn MakeNode>> {
        let binary = format!("{}/{}", name.package(), name.executable());
        self.factories.get(&binary).map(|f| f())
    }
}

/// What to simulate: the hosts, what runs on them at first, the timings,
/// the faults and for how long.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// How many hosts: `10.0.0.1`, `10.0.0.2`, …, each with a server on
    /// port 42000.
    pub hosts: usize,
    /// Machines started at time 0, each by a `start … server` from a
    /// client on host 0: host, name, arguments.
    pub starts: Vec<(usize, String, Vec<String>)>,
    /// The machines' timings.
    pub node: NodeConfig,
    /// Every process's transport timings.
    pub transport: TransportConfig,
    /// The servers' limits and grace period.
    pub server: ServerConfig,
    /// How long a finished machine lingers for its last messages.
    pub linger: Duration,
    /// Chance that a datagram is lost.
    pub loss: f64,
    /// Chance that a datagram is delivered twice.
    pub duplication: f64,
    /// Each datagram is delayed by a time in this range (so later ones may
    /// overtake earlier ones).
    pub delay: (Duration, Duration),
    /// Whether to inject faults: kills, partitions, server crashes.
    pub faults: bool,
    /// Mean faults per simulated second while faults are injected.
    pub faults_per_second: f64,
    /// How long faults are injected.
    pub fault_phase: Duration,
    /// Whether servers and machines log to stdout (default: when
    /// `WINK_SIM_LOG` is set).
    pub log: bool,
    /// Faults at chosen times, whether or not random ones are injected.
    pub script: Vec<(Duration, Fault)>,
    /// The whole run; after the fault phase the network is kept whole so
    /// the cluster can settle, and the final checks run at the end.
    pub run_for: Duration,
}

impl Scenario {
    /// `hosts` hosts, nothing started, fast timings (pulse 100 ms,
    /// heartbeat 600 ms, grace 200 ms), a mildly lossy network, faults for
    /// 20 s of a 30 s run.
    pub fn new(hosts: usize) -> Self {
        Scenario {
            hosts: hosts.max(1),
            starts: Vec::new(),
            node: NodeConfig {
                pulse: Duration::from_millis(100),
                heartbeat_timeout: Duration::from_millis(600),
                log_messages: false,
            },
            transport: TransportConfig {
                initial_rto: Duration::from_millis(20),
                min_rto: Duration::from_millis(5),
                max_rto: Duration::from_millis(200),
                retries: 3,
                retired_for: Duration::from_millis(500),
                peer_idle: Duration::from_secs(3),
                ..TransportConfig::default()
            },
            server: ServerConfig {
                grace: Duration::from_millis(200),
                ..ServerConfig::default()
            },
            linger: Duration::from_millis(100),
            loss: 0.05,
            duplication: 0.02,
            delay: (Duration::from_micros(50), Duration::from_millis(3)),
            faults: true,
            faults_per_second: 1.0,
            fault_phase: Duration::from_secs(20),
            script: Vec::new(),
            log: std::env::var_os("WINK_SIM_LOG").is_some(),
            run_for: Duration::from_secs(30),
        }
    }

    /// Injects `fault` at `at`.
    pub fn at(&mut self, at: Duration, fault: Fault) {
        self.script.push((at, fault));
    }

    /// Starts `name` with `args` on `host` at time 0.
    pub fn start(&mut self, host: usize, name: &str, args: &[&str]) {
        self.starts.push((
            host,
            name.to_owned(),
            args.iter().map(|a| (*a).to_owned()).collect(),
        ));
    }

    /// The address of host `i`'s server.
    pub fn server_address(i: usize) -> Address {
        Address::new(SocketAddr::new(host_ip(i), SERVER_PORT))
    }
}

/// A fault to inject at a chosen time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `kill -9` of the live machines whose name starts with this.
    Kill(String),
    /// Cuts two hosts apart for a while.
    Partition {
        /// One host.
        a: usize,
        /// The other.
        b: usize,
        /// How long.
        length: Duration,
    },
    /// `kill -9` of a host's server; a new one starts on its address after
    /// a while.
    CrashServer {
        /// The host.
        host: usize,
        /// When the new server starts.
        back_after: Duration,
    },
    /// A message from a stranger (a process on host 0 that is no server
    /// and no machine) to the live machines whose name starts with this.
    Forge {
        /// Who gets it.
        to: String,
        /// The text.
        text: String,
    },
    /// The client sends `count` `start <name> :0 server` requests to a
    /// host's server at once.
    Burst {
        /// The host.
        host: usize,
        /// The machine to start.
        name: String,
        /// How many.
        count: u64,
    },
}

/// The IP of host `i`: `10.0.0.<i+1>`.
pub fn host_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250) as u8 + 1))
}

const SERVER_PORT: u16 = 42000;
/// The client that asks for the scenario's starts, on host 0.
const CLIENT: Address = Address::new(SocketAddr::new(
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
    9000,
));
/// A stranger that forges messages, on host 0.
const STRANGER: Address = Address::new(SocketAddr::new(
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
    9999,
));

/// What a run came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Steps taken (events and timers handled).
    pub steps: u64,
    /// Datagrams put on the network.
    pub datagrams: u64,
    /// Machines started, restarts included.
    pub machines_started: u64,
    /// Machines alive at the end.
    pub machines_alive: usize,
    /// Faults injected, by kind: kills, partitions, server crashes.
    pub kills: u64,
    /// Partitions injected.
    pub partitions: u64,
    /// Server crashes (each followed by a restart).
    pub server_crashes: u64,
    /// Child deaths reported to parents.
    pub deaths_reported: u64,
    /// What happened to the machines, one line each: `<name> ended
    /// <how>` when a process ends, `<parent> told <lifecycle>` when a
    /// parent's receivers hear of a child's exit.
    pub log: Vec<String>,
    /// Machines each host's server counts at the end.
    pub server_machines: Vec<usize>,
    /// Requests each host's server refused, over all its lives.
    pub refused: Vec<u64>,
    /// Control words machines dropped as not entitled to them.
    pub dropped: u64,
    /// The most entries any node's tables held, and the most peers any
    /// transport remembered, at any check.
    pub max_tables: usize,
    /// See [`Report::max_tables`].
    pub max_peers: usize,
}

/// An invariant that did not hold.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The seed of the run.
    pub seed: u64,
    /// Simulated time since the start.
    pub at: Duration,
    /// What went wrong.
    pub what: String,
    /// What happened just before, oldest first.
    pub trace: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} at {:.3}s: {}",
            self.seed,
            self.at.as_secs_f64(),
            self.what
        )?;
        writeln!(f, "the last events before it:")?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violation {}

/// How a machine process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Death {
    /// Its runtime exited with this reason.
    Exited(ExitReason),
    /// `kill -9`.
    Killed,
    /// It could not bind its address (exit status 1, no node).
    Unbound,
}

/// Who watches a machine's process: the server that forked it (and can
/// read its exit status) or one that adopted it after a restart.
#[derive(Debug, Clone, Copy)]
struct Watcher {
    server: u32,
    child: bool,
}

enum Body {
    Server(Box<ServerCore>),
    Machine(Box<MachineProc>),
    Client,
}

struct MachineProc {
    node: Option<Box<dyn SimNode>>,
    name: MachineName,
    parent: Address,
    /// The pid of the parent process when this one started.
    parent_pid: Option<u32>,
    server_parented: bool,
    watcher: Option<Watcher>,
    finished_at: Option<Instant>,
    /// When the parent stopped being reachable, if it is not.
    unreachable_since: Option<Instant>,
    /// Its parent's receivers heard its `started`: the parent counts it as
    /// a child. (A spawn request a restarted server got again starts a
    /// second machine the parent never counts; that one must end.)
    accepted: bool,
    /// Since when its live parent has not counted it as a child.
    unsupervised_since: Option<Instant>,
    /// When the parent was told it is gone while it still ran.
    written_off_at: Option<Instant>,
    /// Deaths of it reported to its parent.
    reports: u32,
    /// The reason its own `exited` gave, if it sent one.
    said: Option<ExitReason>,
    death: Option<Death>,
}

struct Proc {
    pid: u32,
    host: usize,
    address: Address,
    transport: Transport,
    body: Body,
    alive: bool,
}

#[derive(Debug)]
enum Event {
    Deliver {
        from: Address,
        to: Address,
        bytes: Vec<u8>,
    },
    Spawned {
        server: u32,
        token: crate::server::SpawnToken,
        result: Result<u32, String>,
    },
    Adopted {
        server: u32,
        token: crate::server::AdoptToken,
        result: Result<(), String>,
    },
    Terminate {
        pid: u32,
    },
    Fault,
    Heal {
        a: usize,
        b: usize,
    },
    Scripted(Fault),
    RestartServer {
        host: usize,
    },
}

/// The simulator: see the [module documentation](self).
pub struct Sim {
    seed: u64,
    rng: fastrand::Rng,
    scenario: Scenario,
    registry: Registry,
    start: Instant,
    now: Instant,
    procs: BTreeMap<u32, Proc>,
    /// Which process is at each address now.
    bound: BTreeMap<Address, u32>,
    next_pid: u32,
    next_port: Vec<u16>,
    events: BinaryHeap<Reverse<(Instant, u64, EventSlot)>>,
    slots: BTreeMap<u64, Event>,
    order: u64,
    network: Network,
    /// Texts sent, per (sender pid, recipient address), and how far
    /// deliveries to each recipient pid have matched them.
    sent: BTreeMap<(u32, Address), Vec<String>>,
    matched: BTreeMap<(u32, u32), usize>,
    trace: VecDeque<String>,
    report: Report,
    buf: Vec<u8>,
    /// A violation found while moving messages, reported at the next
    /// check.
    delivery_violation: Option<String>,
    /// Exits reported for spawns whose process did not run yet: parent pid
    /// and start id.
    early_reports: BTreeMap<(u32, RequestId), u32>,
    /// Machines whose process ended (their node dropped), for the checks
    /// at the end.
    dead: BTreeMap<u32, Box<MachineProc>>,
    /// Each machine by its parent's pid and the id of the start that made
    /// it.
    by_spawn: BTreeMap<(u32, RequestId), u32>,
    /// Each process by its transport's incarnation.
    incarnations: BTreeMap<u64, u32>,
    /// The processes that had each address, oldest first.
    history: BTreeMap<Address, Vec<u32>>,
}

/// A key into `slots` (events themselves are not ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct EventSlot(u64);

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.seed)
            .field("at", &self.now.duration_since(self.start))
            .field("processes", &self.procs.len())
            .finish_non_exhaustive()
    }
}

/// Most entries any node's tables may hold in a simulation.
const MAX_NODE_TABLES: usize = 4096;
/// Most peers any transport may remember in a simulation.
const MAX_PEERS: usize = 8192;
/// How many trace lines a violation carries.
const TRACE: usize = 60;

impl Sim {
    /// A simulation of `scenario` from `seed`, with the machines of
    /// `registry`.
    pub fn new(seed: u64, scenario: Scenario, registry: Registry) -> Self {
        let start = Instant::now();
        let scenario_hosts = scenario.hosts;
        let mut sim = Sim {
            seed,
            rng: fastrand::Rng::with_seed(seed),
            network: Network::new(scenario.hosts),
            next_port: vec![40000; scenario.hosts],
            scenario,
            registry,
            start,
            now: start,
            procs: BTreeMap::new(),
            bound: BTreeMap::new(),
            next_pid: 100,
            events: BinaryHeap::new(),
            slots: BTreeMap::new(),
            order: 0,
            sent: BTreeMap::new(),
            matched: BTreeMap::new(),
            trace: VecDeque::new(),
            report: Report {
                refused: vec![0; scenario_hosts],
                ..Report::default()
            },
            buf: vec![0; MAX_DATAGRAM],
            delivery_violation: None,
            early_reports: BTreeMap::new(),
            dead: BTreeMap::new(),
            by_spawn: BTreeMap::new(),
            incarnations: BTreeMap::new(),
            history: BTreeMap::new(),
        };
        for host in 0..sim.scenario.hosts {
            sim.boot_server(host);
        }
        let client = sim.new_pid();
        sim.add_proc(client, 0, CLIENT, Body::Client);
        let starts = sim.scenario.starts.clone();
        for (i, (host, name, args)) in starts.into_iter().enumerate() {
            let Ok(name) = name.parse() else { continue };
            let request = Request::Start {
                id: RequestId(i as u64 + 1),
                name,
                target: Target::Port(0),
                parent: Parent::Server,
                args,
            };
            let to = Scenario::server_address(host % sim.scenario.hosts);
            sim.send(client, to, request.to_string());
        }
        if sim.scenario.faults {
            let at = sim.next_fault_delay();
            sim.schedule(at, Event::Fault);
        }
        for (at, fault) in sim.scenario.script.clone() {
            sim.schedule(at, Event::Scripted(fault));
        }
        sim
    }

    /// Runs the scenario to its end, checking the invariants after every
    /// step and at the end.
    pub fn run(mut self) -> Result<Report, Violation> {
        let end = self.start + self.scenario.run_for;
        self.flush_all();
        loop {
            let next = self.next_time();
            match next {
                Some(at) if at <= end => {
                    self.now = self.now.max(at);
                    self.step()?;
                }
                _ => break,
            }
        }
        self.now = end;
        self.check()?;
        self.check_end()?;
        self.report.machines_alive = self
            .procs
            .values()
            .filter(|p| p.alive && matches!(&p.body, Body::Machine(m) if m.finished_at.is_none()))
            .count();
        let mut server_machines = vec![0; self.scenario.hosts];
        for p in self.procs.values() {
            if let (true, Body::Server(core)) = (p.alive, &p.body) {
                server_machines[p.host] = core.machines();
                self.report.refused[p.host] += core.stats().refused;
            }
        }
        self.report.server_machines = server_machines;
        self.report.dropped += self
            .procs
            .values()
            .filter_map(|p| match &p.body {
                Body::Machine(m) => m.node.as_ref().map(|n| n.stats().dropped),
                _ => None,
            })
            .sum::<u64>();
        Ok(self.report)
    }

    fn at(&self) -> Duration {
        self.now.duration_since(self.start)
    }

    fn log(&mut self, line: String) {
        if self.trace.len() >= TRACE {
            self.trace.pop_front();
        }
        let at = self.at().as_secs_f64();
        self.trace.push_back(format!("{at:9.4}s {line}"));
    }

    fn violation(&self, what: String) -> Violation {
        Violation {
            seed: self.seed,
            at: self.at(),
            what,
            trace: self.trace.iter().cloned().collect(),
        }
    }

    fn new_pid(&mut self) -> u32 {
        let pid = self.next_pid;
        self.next_pid += 1;
        pid
    }

    fn add_proc(&mut self, pid: u32, host: usize, address: Address, body: Body) {
        let incarnation = self.rng.u64(..);
        self.incarnations.insert(incarnation, pid);
        self.history.entry(address).or_default().push(pid);
        let transport = Transport::new(incarnation, self.scenario.transport.clone());
        self.bound.insert(address, pid);
        self.procs.insert(
            pid,
            Proc {
                pid,
                host,
                address,
                transport,
                body,
                alive: true,
            },
        );
    }

    fn boot_server(&mut self, host: usize) {
        let pid = self.new_pid();
        let address = Scenario::server_address(host);
        let core = ServerCore::new(
            address,
            self.scenario.server.clone(),
            self.logger(&format!("server {pid}")),
            self.now,
        );
        self.add_proc(pid, host, address, Body::Server(Box::new(core)));
        self.log(format!("server {pid} up at {address}"));
    }

    /// Where processes log: nowhere, or with `WINK_SIM_LOG` set, stdout,
    /// each line after the simulated time... (slog has no clock of ours,
    /// so the process's pid stands in).
    fn logger(&self, who: &str) -> slog::Logger {
        if self.scenario.log {
            crate::log::stdout().new(slog::o!("sim" => who.to_owned()))
        } else {
            crate::log::discard()
        }
    }

    fn schedule(&mut self, after: Duration, event: Event) {
        self.order += 1;
        let slot = EventSlot(self.order);
        self.slots.insert(self.order, event);
        self.events
            .push(Reverse((self.now + after, self.order, slot)));
    }

    /// The time of the next thing to happen: an event, or a process's
    /// timer.
    fn next_time(&self) -> Option<Instant> {
        let event = self.events.peek().map(|Reverse((at, _, _))| *at);
        let timer = self
            .procs
            .values()
            .filter(|p| p.alive)
            .filter_map(|p| self.deadline(p))
            .min();
        match (event, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn deadline(&self, p: &Proc) -> Option<Instant> {
        let transport = p.transport.poll_timeout();
        let own = match &p.body {
            Body::Server(core) => core.poll_timeout(),
            Body::Machine(m) => match (&m.node, m.finished_at) {
                (_, Some(at)) => Some(at + self.scenario.linger),
                (Some(node), None) => node.poll_timeout(),
                (None, None) => None,
            },
            Body::Client => None,
        };
        match (transport, own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn step(&mut self) -> Result<(), Violation> {
        self.report.steps += 1;
        let event_due = self
            .events
            .peek()
            .is_some_and(|Reverse((at, _, _))| *at <= self.now);
        if event_due {
            if let Some(Reverse((_, _, slot))) = self.events.pop() {
                if let Some(event) = self.slots.remove(&slot.0) {
                    self.handle(event);
                }
            }
        } else {
            let due: Vec<u32> = self
                .procs
                .values()
                .filter(|p| p.alive && self.deadline(p).is_some_and(|d| d <= self.now))
                .map(|p| p.pid)
                .collect();
            for pid in due {
                self.timeout(pid);
            }
        }
        self.flush_all();
        self.check()
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver { from, to, bytes } => self.deliver(from, to, &bytes),
            Event::Spawned {
                server,
                token,
                result,
            } => {
                let now = self.now;
                if let Some(core) = self.server_mut(server) {
                    core.handle_spawned(now, token, result);
                }
            }
            Event::Adopted {
                server,
                token,
                result,
            } => {
                let now = self.now;
                if let Some(core) = self.server_mut(server) {
                    core.handle_adopted(now, token, result);
                }
            }
            Event::Terminate { pid } => {
                let now = self.now;
                if let Some(Proc {
                    alive: true,
                    body: Body::Machine(m),
                    ..
                }) = self.procs.get_mut(&pid)
                {
                    if let Some(node) = &mut m.node {
                        node.stop(now);
                    }
                }
            }
            Event::Fault => {
                self.fault();
                if self.at() < self.scenario.fault_phase {
                    let at = self.next_fault_delay();
                    self.schedule(at, Event::Fault);
                }
            }
            Event::Heal { a, b } => {
                self.network.heal(a, b);
                self.log(format!("partition {a} | {b} healed"));
            }
            Event::RestartServer { host } => self.boot_server(host),
            Event::Scripted(fault) => self.scripted(fault),
        }
    }

    fn scripted(&mut self, fault: Fault) {
        self.log(format!("scripted {fault:?}"));
        match fault {
            Fault::Kill(prefix) => {
                for pid in self.machines_named(&prefix) {
                    self.report.kills += 1;
                    self.end_process(pid, Death::Killed);
                }
            }
            Fault::Partition { a, b, length } => {
                self.network.partition(a, b);
                self.report.partitions += 1;
                self.schedule(length, Event::Heal { a, b });
            }
            Fault::CrashServer { host, back_after } => {
                let server = self
                    .procs
                    .values()
                    .find(|p| p.alive && p.host == host && matches!(p.body, Body::Server(_)))
                    .map(|p| p.pid);
                if let Some(pid) = server {
                    self.report.server_crashes += 1;
                    self.kill_server(pid);
                    self.schedule(back_after, Event::RestartServer { host });
                }
            }
            Fault::Forge { to, text } => {
                let stranger = match self.bound.get(&STRANGER).copied() {
                    Some(pid) => pid,
                    None => {
                        let pid = self.new_pid();
                        self.add_proc(pid, 0, STRANGER, Body::Client);
                        pid
                    }
                };
                for pid in self.machines_named(&to) {
                    if let Some(address) = self.procs.get(&pid).map(|p| p.address) {
                        self.send(stranger, address, text.clone());
                    }
                }
            }
            Fault::Burst { host, name, count } => {
                let Ok(name) = name.parse::<MachineName>() else {
                    return;
                };
                let client = self.bound.get(&CLIENT).copied().unwrap_or(0);
                let to = Scenario::server_address(host % self.scenario.hosts);
                for i in 0..count {
                    let request = Request::Start {
                        id: RequestId(1_000_000 + i),
                        name: name.clone(),
                        target: Target::Port(0),
                        parent: Parent::Server,
                        args: Vec::new(),
                    };
                    self.send(client, to, request.to_string());
                }
            }
        }
    }

    fn machines_named(&self, prefix: &str) -> Vec<u32> {
        self.procs
            .values()
            .filter(|p| {
                p.alive
                    && matches!(&p.body, Body::Machine(m)
                        if m.finished_at.is_none() && m.name.to_string().starts_with(prefix))
            })
            .map(|p| p.pid)
            .collect()
    }

    fn server_mut(&mut self, pid: u32) -> Option<&mut ServerCore> {
        match self.procs.get_mut(&pid) {
            Some(Proc {
                alive: true,
                body: Body::Server(core),
                ..
            }) => Some(core),
            _ => None,
        }
    }

    fn next_fault_delay(&mut self) -> Duration {
        // Exponential, mean 1 / rate.
        let rate = self.scenario.faults_per_second.max(0.001);
        let u = self.rng.f64().max(1e-9);
        Duration::from_secs_f64(-u.ln() / rate)
    }

    fn fault(&mut self) {
        let heartbeat = self.scenario.node.heartbeat_timeout;
        let roll = self.rng.f64();
        let hosts = self.scenario.hosts;
        if roll < 0.5 {
            let machines: Vec<u32> = self
                .procs
                .values()
                .filter(|p| p.alive && matches!(p.body, Body::Machine(_)))
                .map(|p| p.pid)
                .collect();
            if machines.is_empty() {
                return;
            }
            let pid = machines[self.rng.usize(..machines.len())];
            self.report.kills += 1;
            self.log(format!("kill -9 {pid}"));
            self.end_process(pid, Death::Killed);
        } else if roll < 0.8 && hosts > 1 {
            let a = self.rng.usize(..hosts);
            let b = (a + 1 + self.rng.usize(..hosts - 1)) % hosts;
            let length = heartbeat.mul_f64(0.2 + self.rng.f64() * 2.8);
            self.network.partition(a, b);
            self.report.partitions += 1;
            self.log(format!("partition {a} | {b} for {length:?}"));
            self.schedule(length, Event::Heal { a, b });
        } else {
            let host = self.rng.usize(..hosts);
            let server = self
                .procs
                .values()
                .find(|p| p.alive && p.host == host && matches!(p.body, Body::Server(_)))
                .map(|p| p.pid);
            if let Some(pid) = server {
                self.report.server_crashes += 1;
                let after = heartbeat.mul_f64(0.1 + self.rng.f64() * 1.5);
                self.log(format!(
                    "server {pid} on host {host} crashes, back in {after:?}"
                ));
                self.kill_server(pid);
                self.schedule(after, Event::RestartServer { host });
            }
        }
    }

    fn kill_server(&mut self, pid: u32) {
        if let Some(Proc {
            host,
            body: Body::Server(core),
            ..
        }) = self.procs.get(&pid)
        {
            self.report.refused[*host] += core.stats().refused;
        }
        if let Some(p) = self.procs.get_mut(&pid) {
            p.alive = false;
            let address = p.address;
            if self.bound.get(&address) == Some(&pid) {
                self.bound.remove(&address);
            }
        }
        self.procs.remove(&pid);
    }

    fn timeout(&mut self, pid: u32) {
        let now = self.now;
        let linger = self.scenario.linger;
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        p.transport.handle_timeout(now);
        let mut events = Vec::new();
        while let Some(event) = p.transport.poll_event() {
            events.push(event);
        }
        let mut exit = None;
        match &mut p.body {
            Body::Server(core) => {
                for event in &events {
                    if let crate::transport::TransportEvent::GaveUp { to, .. } = event {
                        core.handle_gave_up(now, Address::from(*to));
                    }
                }
                if core.poll_timeout().is_some_and(|at| at <= now) {
                    core.handle_timeout(now);
                }
            }
            Body::Machine(m) => {
                if let Some(node) = &mut m.node {
                    for event in &events {
                        node.handle_event(now, event);
                    }
                    if let Some(heard) = p.transport.last_heard(m.parent.socket_addr()) {
                        node.handle_heard(heard);
                    }
                    if node.poll_timeout().is_some_and(|at| at <= now) {
                        node.handle_timeout(now);
                    }
                }
                if let Some(at) = m.finished_at {
                    if now >= at + linger || p.transport.is_idle() {
                        let reason = m
                            .node
                            .as_ref()
                            .and_then(|n| n.ending())
                            .map_or(ExitReason::Stopped, |e| e.reason);
                        exit = Some(Death::Exited(reason));
                    }
                }
            }
            Body::Client => {}
        }
        if let Some(death) = exit {
            self.end_process(pid, death);
        }
    }

    fn deliver(&mut self, from: Address, to: Address, bytes: &[u8]) {
        let Some(&pid) = self.bound.get(&to) else {
            return;
        };
        let now = self.now;
        // The sender is the process whose incarnation the datagram carries
        // (a late datagram of a process gone may arrive after another took
        // its address).
        let sender = crate::wire::decode(bytes)
            .ok()
            .and_then(|packet| self.incarnations.get(&packet.incarnation()).copied());
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        if !p.alive {
            return;
        }
        let mut messages = Vec::new();
        let _ = p
            .transport
            .receive(now, from.socket_addr(), bytes, |_, text| {
                messages.push(text.to_owned())
            });
        if self.scenario.log {
            if let Ok(packet) = crate::wire::decode(bytes) {
                println!(
                    "sim {:.4}s {from} -> {to} inc {:x} {:?} delivered {messages:?}",
                    self.now.duration_since(self.start).as_secs_f64(),
                    packet.incarnation(),
                    packet.frames().collect::<Vec<_>>()
                );
            }
        }
        if messages.is_empty() {
            return;
        }
        // Delivered in order, once: each delivery matches a later send of
        // the sender. The sender is the process the datagram's incarnation
        // names, or an earlier one at that address: a restarted peer's
        // first datagram releases what its earlier life left buffered.
        // What an earlier life left comes first, so earlier lives are tried
        // first (oldest first), then the sender.
        let mut senders: Vec<u32> = self
            .history
            .get(&from)
            .map(|h| h.iter().copied().filter(|p| Some(*p) != sender).collect())
            .unwrap_or_default();
        senders.extend(sender);
        for text in &messages {
            let found = senders.iter().find_map(|&s| {
                let log = self.sent.get(&(s, to))?;
                let cursor = self.matched.get(&(s, pid)).copied().unwrap_or(0);
                log[cursor.min(log.len())..]
                    .iter()
                    .position(|t| t == text)
                    .map(|i| (s, cursor + i + 1))
            });
            match found {
                Some((s, next)) => {
                    self.matched.insert((s, pid), next);
                }
                None => {
                    let seen: Vec<String> = senders
                        .iter()
                        .map(|&s| {
                            let log = self.sent.get(&(s, to));
                            let cursor = self.matched.get(&(s, pid)).copied().unwrap_or(0);
                            let at: Vec<usize> = log
                                .map(|l| {
                                    l.iter()
                                        .enumerate()
                                        .filter(|(_, t)| *t == text)
                                        .map(|(i, _)| i)
                                        .collect()
                                })
                                .unwrap_or_default();
                            format!(
                                "sender {s}: sent {} to it, {cursor} matched, this one at {at:?}",
                                log.map_or(0, Vec::len)
                            )
                        })
                        .collect();
                    let what = format!(
                        "{to} got `{text}` from {from}: not sent after what it got before \
                         (a duplicate or a reordering); {}",
                        seen.join("; ")
                    );
                    self.report_delivery_violation(what);
                    return;
                }
            }
        }
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        match &mut p.body {
            Body::Server(core) => {
                for text in &messages {
                    core.handle_message(now, from, text);
                }
            }
            Body::Machine(m) => {
                if let Some(node) = &mut m.node {
                    for text in &messages {
                        node.handle_message(now, from, text);
                    }
                }
            }
            Body::Client => {}
        }
    }

    fn report_delivery_violation(&mut self, what: String) {
        self.delivery_violation.get_or_insert(what);
    }

    /// Moves what every process queued: node transmits and server effects
    /// into transports, transports' datagrams onto the network, and notes
    /// what nodes told their receivers.
    fn flush_all(&mut self) {
        let pids: Vec<u32> = self.procs.keys().copied().collect();
        for pid in pids {
            self.flush(pid);
        }
    }

    fn flush(&mut self, pid: u32) {
        let now = self.now;
        let mut sends: Vec<(Address, String)> = Vec::new();
        let mut effects = Vec::new();
        let mut notices = Vec::new();
        let mut finished = false;
        {
            let Some(p) = self.procs.get_mut(&pid) else {
                return;
            };
            if !p.alive {
                return;
            }
            match &mut p.body {
                Body::Server(core) => {
                    while let Some(effect) = core.poll_effect() {
                        effects.push(effect);
                    }
                }
                Body::Machine(m) => {
                    if let Some(node) = &mut m.node {
                        while let Some(t) = node.poll_transmit() {
                            sends.push((t.to, t.text));
                        }
                        while let Some(notice) = node.poll_notice() {
                            notices.push(notice);
                        }
                        if node.is_finished() && m.finished_at.is_none() {
                            m.finished_at = Some(now);
                            finished = true;
                        }
                    }
                }
                Body::Client => {}
            }
        }
        if finished {
            self.log(format!("{pid} finished"));
        }
        for effect in effects {
            self.server_effect(pid, effect, &mut sends);
        }
        for (to, text) in sends {
            self.send(pid, to, text);
        }
        for notice in notices {
            self.noticed(pid, notice);
        }
        self.transmit(pid);
    }

    fn send(&mut self, pid: u32, to: Address, text: String) {
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        if p.transport.send(to.socket_addr(), text.clone()).is_ok() {
            self.sent.entry((pid, to)).or_default().push(text);
        }
    }

    fn transmit(&mut self, pid: u32) {
        let now = self.now;
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        let from = p.address;
        let host = p.host;
        let mut out = Vec::new();
        while let Some((to, len)) = p.transport.poll_transmit(now, &mut self.buf) {
            out.push((Address::from(to), self.buf[..len].to_vec()));
        }
        for (to, bytes) in out {
            self.report.datagrams += 1;
            let to_host = self.host_of(to);
            if to_host.is_some_and(|h| self.network.is_cut(host, h)) {
                continue;
            }
            if self.rng.f64() < self.scenario.loss {
                continue;
            }
            let copies = if self.rng.f64() < self.scenario.duplication {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let (lo, hi) = self.scenario.delay;
                let span = hi.saturating_sub(lo).as_nanos() as u64;
                let delay = lo + Duration::from_nanos(self.rng.u64(..=span));
                self.schedule(
                    delay,
                    Event::Deliver {
                        from,
                        to,
                        bytes: bytes.clone(),
                    },
                );
            }
        }
    }

    fn host_of(&self, address: Address) -> Option<usize> {
        (0..self.scenario.hosts).find(|&i| host_ip(i) == address.ip())
    }

    fn server_effect(
        &mut self,
        server: u32,
        effect: ServerEffect,
        sends: &mut Vec<(Address, String)>,
    ) {
        let host = self.procs.get(&server).map_or(0, |p| p.host);
        match effect {
            ServerEffect::Send { to, text } => sends.push((to, text)),
            ServerEffect::Forget { address } => {
                if let Some(p) = self.procs.get_mut(&server) {
                    p.transport.forget(address.socket_addr());
                }
            }
            ServerEffect::Spawn {
                token,
                name,
                address,
                parent,
                start,
                args,
            } => {
                let result = self.spawn(server, host, name, address, parent, start, args);
                self.schedule(
                    Duration::from_micros(500),
                    Event::Spawned {
                        server,
                        token,
                        result,
                    },
                );
            }
            ServerEffect::Resolve { pid, .. } => {
                let now = self.now;
                if let Some(core) = self.server_mut(server) {
                    core.handle_resolved(
                        now,
                        pid,
                        Err("the simulator runs no binaries".to_owned()),
                    );
                }
            }
            ServerEffect::Signal { pid, signal } => match signal {
                Signal::Term => self.schedule(Duration::from_micros(200), Event::Terminate { pid }),
                Signal::Kill => {
                    self.log(format!("server {server} kills {pid}"));
                    self.end_process(pid, Death::Killed);
                }
            },
            ServerEffect::Adopt {
                token,
                pid,
                address,
                name,
            } => {
                let ok = match self.procs.get(&pid) {
                    Some(Proc {
                        alive: true,
                        address: a,
                        body: Body::Machine(m),
                        ..
                    }) => *a == address && m.name == name,
                    _ => false,
                };
                let result = if ok {
                    if let Some(Proc {
                        body: Body::Machine(m),
                        ..
                    }) = self.procs.get_mut(&pid)
                    {
                        m.watcher = Some(Watcher {
                            server,
                            child: false,
                        });
                    }
                    Ok(())
                } else {
                    Err(format!("pid {pid} is no machine at {address}"))
                };
                self.schedule(
                    Duration::from_micros(500),
                    Event::Adopted {
                        server,
                        token,
                        result,
                    },
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn(
        &mut self,
        server: u32,
        host: usize,
        name: MachineName,
        address: Address,
        parent: Address,
        start: RequestId,
        args: Vec<String>,
    ) -> Result<u32, String> {
        let Some(maker) = self.registry.make(&name) else {
            return Err(format!("`{name}`: no executable"));
        };
        let pid = self.new_pid();
        self.report.machines_started += 1;
        let address = if address.port() == 0 {
            let port = self.next_port[host];
            self.next_port[host] = port.wrapping_add(1).max(40000);
            Address::new(SocketAddr::new(host_ip(host), port))
        } else {
            Address::new(SocketAddr::new(host_ip(host), address.port()))
        };
        let server_address = Scenario::server_address(host);
        let parent_pid = self.bound.get(&parent).copied();
        let taken = self
            .bound
            .get(&address)
            .is_some_and(|p| self.procs.get(p).is_some_and(|p| p.alive));
        let early = parent_pid
            .and_then(|p| self.early_reports.remove(&(p, start)))
            .unwrap_or(0);
        if let Some(parent_pid) = parent_pid {
            self.by_spawn.insert((parent_pid, start), pid);
        }
        let mut machine = MachineProc {
            node: None,
            name: name.clone(),
            parent,
            parent_pid,
            server_parented: parent == server_address,
            watcher: Some(Watcher {
                server,
                child: true,
            }),
            finished_at: None,
            unreachable_since: None,
            accepted: false,
            unsupervised_since: None,
            // Reported before it ran: as good as written off.
            written_off_at: (early > 0).then_some(self.now),
            reports: early,
            said: None,
            death: None,
        };
        if taken {
            // It cannot bind: it exits at once, status 1.
            machine.death = Some(Death::Unbound);
            self.log(format!("{pid} {name} cannot bind {address}"));
            let incarnation = self.rng.u64(..);
            self.procs.insert(
                pid,
                Proc {
                    pid,
                    host,
                    address,
                    transport: Transport::new(incarnation, self.scenario.transport.clone()),
                    body: Body::Machine(Box::new(machine)),
                    alive: true,
                },
            );
            self.end_process(pid, Death::Unbound);
            return Ok(pid);
        }
        let identity = Identity {
            name: name.clone(),
            parent,
            server: server_address,
            args,
            start: Some(start),
            pid,
        };
        let mut config = self.scenario.node.clone();
        config.log_messages = self.scenario.log;
        let log = self.logger(&format!("{pid}"));
        let mut node = maker.make(address, identity, config, log, self.now);
        node.start(self.now);
        machine.node = Some(node);
        self.log(format!("{pid} {name} starts at {address}, parent {parent}"));
        self.add_proc(pid, host, address, Body::Machine(Box::new(machine)));
        Ok(pid)
    }

    /// A machine process ends: its watching server hears of it.
    fn end_process(&mut self, pid: u32, death: Death) {
        let now = self.now;
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        if !p.alive {
            return;
        }
        p.alive = false;
        let address = p.address;
        let Body::Machine(m) = &mut p.body else {
            return;
        };
        m.death = Some(death);
        m.finished_at.get_or_insert(now);
        let watcher = m.watcher;
        let status = match death {
            Death::Killed => ProcessExit::Signal(9),
            Death::Unbound => ProcessExit::Status(1),
            Death::Exited(ExitReason::Error) => ProcessExit::Status(1),
            Death::Exited(_) => ProcessExit::Status(0),
        };
        if self.bound.get(&address) == Some(&pid) {
            self.bound.remove(&address);
        }
        let name = m.name.clone();
        self.log(format!("{pid} {name} at {address} ended: {death:?}"));
        self.report.log.push(format!("{name} ended {death:?}"));
        if let Some(Proc {
            body: Body::Machine(mut m),
            ..
        }) = self.procs.remove(&pid)
        {
            if let Some(node) = m.node.take() {
                self.report.dropped += node.stats().dropped;
                // What its runtime said, for the checks of reports (a kill
                // while it lingers comes after its `exited`).
                m.said = node.ending().map(|e| e.reason);
                if let (Death::Exited(_), Some(reason)) = (death, m.said) {
                    m.death = Some(Death::Exited(reason));
                }
            }
            self.dead.insert(pid, m);
        }
        if let Some(w) = watcher {
            let how = if w.child {
                status
            } else {
                ProcessExit::Unknown
            };
            if let Some(core) = self.server_mut(w.server) {
                core.handle_exited(now, pid, how);
            }
        }
    }

    /// A node told its receivers of a child's lifecycle.
    fn noticed(&mut self, parent: u32, notice: crate::node::Notice) {
        if let (Lifecycle::Started { .. }, Some(start)) = (&notice.lifecycle, notice.start) {
            // The parent took it as its child.
            if let Some(&child) = self.by_spawn.get(&(parent, start)) {
                if let Some(Proc {
                    body: Body::Machine(m),
                    ..
                }) = self.procs.get_mut(&child)
                {
                    m.accepted = true;
                }
            }
            return;
        }
        let Lifecycle::Exited { name, reason } = &notice.lifecycle else {
            return;
        };
        self.report.deaths_reported += 1;
        let parent_name = match self.procs.get(&parent).map(|p| &p.body) {
            Some(Body::Machine(m)) => m.name.to_string(),
            _ => parent.to_string(),
        };
        self.report
            .log
            .push(format!("{parent_name} told exited {name} {reason}"));
        // The child: the machine this parent spawned with that request id.
        let child = notice
            .start
            .and_then(|start| self.by_spawn.get(&(parent, start)).copied());
        let Some(child) = child else {
            // A spawn reported unstarted before its process ran (a start
            // delayed past the heartbeat timeout): counted when it runs.
            if let Some(start) = notice.start {
                *self.early_reports.entry((parent, start)).or_insert(0) += 1;
            }
            return;
        };
        let now = self.now;
        let line = format!("{parent} told: {child} {name} exited {reason}");
        self.log(line);
        let alive = self.procs.contains_key(&child);
        let machine = match self.procs.get_mut(&child) {
            Some(Proc {
                body: Body::Machine(m),
                ..
            }) => Some(m),
            _ => self.dead.get_mut(&child),
        };
        if let Some(m) = machine {
            m.reports += 1;
            if alive {
                m.written_off_at.get_or_insert(now);
            }
            // A machine that has ended lingers for its last messages: its
            // `exited` may arrive before its process ends.
            let said = m
                .said
                .or_else(|| m.node.as_ref().and_then(|n| n.ending()).map(|e| e.reason));
            let death = m.death.or(said.map(Death::Exited));
            let fits = match death {
                None => matches!(reason, ExitReason::Heartbeat | ExitReason::Unstarted),
                Some(Death::Killed) => {
                    Some(*reason) == said
                        || matches!(
                            reason,
                            ExitReason::Signal(9)
                                | ExitReason::Heartbeat
                                | ExitReason::Unknown
                                | ExitReason::Unstarted
                        )
                }
                Some(Death::Unbound) => matches!(
                    reason,
                    ExitReason::Status(1) | ExitReason::Heartbeat | ExitReason::Unstarted
                ),
                Some(Death::Exited(r)) => {
                    *reason == r
                        || matches!(
                            reason,
                            ExitReason::Heartbeat | ExitReason::Unknown | ExitReason::Unstarted
                        )
                }
            };
            if m.reports > 1 {
                let what = format!("child {child} {name} reported exited {} times", m.reports);
                self.delivery_violation.get_or_insert(what);
            } else if !fits {
                let what =
                    format!("child {child} {name} reported exited `{reason}` but it {death:?}");
                self.delivery_violation.get_or_insert(what);
            }
        }
    }

    /// The invariants that hold after every step.
    fn check(&mut self) -> Result<(), Violation> {
        if let Some(what) = self.delivery_violation.take() {
            return Err(self.violation(what));
        }
        let now = self.now;
        let node = &self.scenario.node;
        let bound = node.heartbeat_timeout
            + self.scenario.server.grace
            + self.scenario.linger
            + node.pulse * 4;
        // Unsupervised: a machine whose live parent does not count it as a
        // child (a duplicate of a spawn, a written-off child) must end too.
        let mut supervised: BTreeMap<u32, Vec<Address>> = BTreeMap::new();
        for p in self.procs.values() {
            if let Body::Machine(m) = &p.body {
                if let (Some(node), None) = (&m.node, m.finished_at) {
                    supervised.insert(p.pid, node.children());
                }
            }
        }
        let mut unsupervised = Vec::new();
        for p in self.procs.values() {
            let Body::Machine(m) = &p.body else { continue };
            if m.finished_at.is_some() || m.server_parented {
                continue;
            }
            let counted = m.parent_pid.and_then(|parent| supervised.get(&parent));
            unsupervised.push((p.pid, counted.is_some_and(|c| !c.contains(&p.address))));
        }
        for (pid, alone) in unsupervised {
            if let Some(Proc {
                body: Body::Machine(m),
                ..
            }) = self.procs.get_mut(&pid)
            {
                if !alone {
                    m.unsupervised_since = None;
                    continue;
                }
                let since = *m.unsupervised_since.get_or_insert(now);
                if now.duration_since(since) > bound {
                    let what = format!(
                        "{pid} {} runs {:?} unsupervised: its parent {} does not count it",
                        m.name,
                        now.duration_since(since),
                        m.parent
                    );
                    return Err(self.violation(what));
                }
            }
        }
        // Orphans: a machine whose parent is gone or cut off.
        let mut reachability = Vec::new();
        for p in self.procs.values() {
            let (true, Body::Machine(m)) = (p.alive, &p.body) else {
                continue;
            };
            if m.finished_at.is_some() {
                continue;
            }
            let parent = self
                .bound
                .get(&m.parent)
                .and_then(|pid| self.procs.get(pid));
            let reachable = match parent {
                Some(parent) if parent.alive => {
                    let same = if m.server_parented {
                        matches!(parent.body, Body::Server(_))
                    } else {
                        Some(parent.pid) == m.parent_pid
                    };
                    same && !self.network.is_cut(p.host, parent.host)
                }
                _ => false,
            };
            reachability.push((p.pid, reachable));
        }
        for (pid, reachable) in reachability {
            if let Some(Proc {
                body: Body::Machine(m),
                ..
            }) = self.procs.get_mut(&pid)
            {
                if reachable {
                    m.unreachable_since = None;
                } else {
                    let since = *m.unreachable_since.get_or_insert(now);
                    if now.duration_since(since) > bound {
                        let what = format!(
                            "{pid} {} is an orphan: its parent {} unreachable for {:?} (bound {:?})",
                            m.name,
                            m.parent,
                            now.duration_since(since),
                            bound
                        );
                        return Err(self.violation(what));
                    }
                }
                if let Some(at) = m.written_off_at {
                    if now.duration_since(at) > bound {
                        let what = format!(
                            "{pid} {} runs {:?} after its parent was told it exited",
                            m.name,
                            now.duration_since(at)
                        );
                        return Err(self.violation(what));
                    }
                }
            }
        }
        // One parent per child, and tables bounded.
        let mut owners: BTreeMap<Address, u32> = BTreeMap::new();
        let (mut max_peers, mut max_tables) = (self.report.max_peers, self.report.max_tables);
        for p in self.procs.values() {
            if !p.alive {
                continue;
            }
            max_peers = max_peers.max(p.transport.peers());
            if p.transport.peers() > MAX_PEERS {
                let what = format!("{} remembers {} peers", p.pid, p.transport.peers());
                return Err(self.violation(what));
            }
            let Body::Machine(m) = &p.body else { continue };
            let Some(node) = &m.node else { continue };
            max_tables = max_tables.max(node.table_sizes());
            if node.table_sizes() > MAX_NODE_TABLES {
                let what = format!("{} has {} table entries", p.pid, node.table_sizes());
                return Err(self.violation(what));
            }
            for child in node.children() {
                if let Some(other) = owners.insert(child, p.pid) {
                    let what = format!("{child} is a child of both {other} and {}", p.pid);
                    return Err(self.violation(what));
                }
                let live = self.bound.get(&child).and_then(|c| self.procs.get(c));
                if let Some(Proc {
                    alive: true,
                    body: Body::Machine(c),
                    pid,
                    ..
                }) = live
                {
                    if c.parent != p.address {
                        let what = format!(
                            "{} counts {child} ({pid}) as its child, whose parent is {}",
                            p.pid, c.parent
                        );
                        return Err(self.violation(what));
                    }
                }
            }
        }
        self.report.max_peers = max_peers;
        self.report.max_tables = max_tables;
        Ok(())
    }

    /// At the end, after the cluster settled: every child that died while
    /// its parent lived was reported to it.
    fn check_end(&mut self) -> Result<(), Violation> {
        let settle = self.scenario.node.heartbeat_timeout * 2
            + self.scenario.server.grace
            + self.scenario.linger;
        let mut unreported = None;
        for (pid, m) in &self.dead {
            if m.server_parented || m.reports > 0 || !m.accepted {
                continue;
            }
            let Some(ended) = m.finished_at else { continue };
            if self.now.duration_since(ended) < settle {
                continue;
            }
            let parent_alive = m.parent_pid.is_some_and(|pid| {
                self.procs.get(&pid).is_some_and(|parent| {
                    parent.alive
                        && matches!(&parent.body, Body::Machine(pm) if pm.finished_at.is_none())
                })
            });
            if parent_alive {
                unreported = Some(format!(
                    "{pid} {} ended ({:?}) and its parent {} was never told",
                    m.name, m.death, m.parent
                ));
                break;
            }
        }
        match unreported {
            Some(what) => Err(self.violation(what)),
            None => Ok(()),
        }
    }
}
