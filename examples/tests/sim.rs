//! Whole clusters of the example machines in the deterministic simulator
//! (`wink::sim`): several hosts, seeded loss, duplication, reordering,
//! partitions, kills and server crashes, the supervision invariants checked
//! after every step.
//!
//! `cargo test -p wink-examples --test sim` runs `WINK_SIM_SEEDS` seeds
//! (default 300) from `WINK_SIM_FIRST_SEED` (default 0). A failing seed
//! prints itself and how to replay it:
//! `WINK_SIM_SEED=<seed> cargo test -p wink-examples --test sim -- --nocapture`.
//! A soak: `WINK_SIM_SEEDS=20000 cargo test --release -p wink-examples --test sim seeded`.

use std::time::{Duration, Instant};

use wink::sim::{host_ip, Fault, Registry, Report, Scenario, Sim, Violation};
use wink_examples::{crew, echo, family, greeter};

/// A machine that spawns what its arguments name, for the tests of spawns.
#[wink::machine]
mod spawner {
    #[derive(Default)]
    pub struct Spawner;

    pub enum State {
        #[initial]
        Spawning,
    }

    impl Spawner {
        #[entry(Spawning)]
        fn enter(&mut self, cx: &mut Context<Self>) -> Result<(), String> {
            for name in cx.args().to_vec() {
                cx.spawn(&name).map_err(|e| e.to_string())?;
            }
            Ok(())
        }

        #[receive(Spawning)]
        fn any(&mut self, _cx: &mut Context<Self>, _message: &str) {}
    }
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add("family/Parent", family::Parent::default);
    r.add("family/Child", || family::Child);
    r.add("greeter/Host", greeter::Host::default);
    r.add("greeter/Greeter", || greeter::Greeter);
    r.add("crew/Boss", crew::Boss::default);
    r.add("crew/Worker", crew::Worker::default);
    r.add("echo/Echo", echo::Echo::default);
    r.add("test/Spawner", || spawner::Spawner);
    r
}

/// The bosses' restart intensity: faults here last for several heartbeat
/// timeouts (each failed restart of a worker across a partition takes
/// one), and the tests want the bosses to outlast them, not escalate.
const RESTARTS: &str = "intensity=100/1000";

/// Three hosts: a restarting family, two bosses with workers across the
/// hosts, and a host greeting a guest on another host.
fn cluster() -> Scenario {
    let mut s = Scenario::new(3);
    let (b, c) = (host_ip(1), host_ip(2));
    s.start(0, "family/Parent", &["50"]);
    s.start(
        0,
        "crew/Boss#A",
        &[RESTARTS, "a", &format!("b@{b}"), &format!("c@{c}")],
    );
    s.start(1, "greeter/Host", &[&format!("{c}:7005"), "Bob"]);
    s.start(
        2,
        "crew/Boss#B",
        &[RESTARTS, &format!("x@{}", host_ip(0)), "y"],
    );
    s.run_for = Duration::from_secs(12);
    s.fault_phase = Duration::from_secs(8);
    s
}

fn run(seed: u64, scenario: Scenario) -> Result<Report, Violation> {
    Sim::new(seed, scenario, registry()).run()
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn seeded_clusters_keep_every_invariant() {
    let (first, count) = match env("WINK_SIM_SEED") {
        Some(seed) => (seed, 1),
        None => (
            env("WINK_SIM_FIRST_SEED").unwrap_or(0),
            env("WINK_SIM_SEEDS").unwrap_or(300),
        ),
    };
    let began = Instant::now();
    let mut totals = Report::default();
    for seed in first..first + count {
        match run(seed, cluster()) {
            Ok(report) => {
                totals.steps += report.steps;
                totals.datagrams += report.datagrams;
                totals.kills += report.kills;
                totals.partitions += report.partitions;
                totals.server_crashes += report.server_crashes;
                totals.machines_started += report.machines_started;
                totals.deaths_reported += report.deaths_reported;
                if count == 1 {
                    for line in &report.log {
                        println!("{line}");
                    }
                }
            }
            Err(violation) => panic!(
                "{violation}\nreplay: WINK_SIM_SEED={seed} cargo test -p wink-examples --test sim -- --nocapture"
            ),
        }
    }
    let took = began.elapsed().as_secs_f64();
    println!(
        "{count} seeds in {took:.1}s ({:.1} seeds/s): {} steps, {} datagrams, {} machines started, \
         {} kills, {} partitions, {} server crashes, {} deaths reported",
        count as f64 / took,
        totals.steps,
        totals.datagrams,
        totals.machines_started,
        totals.kills,
        totals.partitions,
        totals.server_crashes,
        totals.deaths_reported
    );
    // Every kind of fault happened.
    if count >= 20 {
        assert!(totals.kills > 0 && totals.partitions > 0 && totals.server_crashes > 0);
    }
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let a = run(42, cluster()).unwrap();
    let b = run(42, cluster()).unwrap();
    assert_eq!(a, b);
}

/// A quiet cluster: no random faults, a clean network.
fn quiet(hosts: usize) -> Scenario {
    let mut s = Scenario::new(hosts);
    s.faults = false;
    s.loss = 0.0;
    s.duplication = 0.0;
    s.run_for = Duration::from_secs(6);
    s
}

fn told(report: &Report, what: &str) -> usize {
    report.log.iter().filter(|l| l.contains(what)).count()
}

#[test]
fn fault_1_a_refused_spawn_is_that_spawns_alone() {
    let mut s = quiet(1);
    s.start(0, "test/Spawner", &["echo/Echo", "nope/Missing"]);
    let report = run(1, s).unwrap();
    assert_eq!(
        told(&report, "told exited nope/Missing unstarted"),
        1,
        "{:?}",
        report.log
    );
    assert_eq!(told(&report, "echo/Echo"), 0, "{:?}", report.log);
    // The spawner and its echo run on, supervised.
    assert_eq!(report.machines_alive, 2);
}

#[test]
fn fault_2_a_partition_longer_than_the_heartbeat_leaves_no_orphan() {
    let mut s = quiet(2);
    s.start(0, "crew/Boss", &[RESTARTS, &format!("w@{}", host_ip(1))]);
    let heartbeat = s.node.heartbeat_timeout;
    s.at(
        Duration::from_secs(1),
        Fault::Partition {
            a: 0,
            b: 1,
            length: heartbeat * 3,
        },
    );
    let report = run(2, s).unwrap();
    // Both sides learn it: the boss writes the worker off, the worker
    // exits orphaned; after the heal the boss restarts it.
    assert_eq!(
        told(&report, "told exited crew/Worker#w heartbeat"),
        1,
        "{:?}",
        report.log
    );
    assert_eq!(
        told(&report, "crew/Worker#w ended Exited(Orphaned)"),
        1,
        "{:?}",
        report.log
    );
    assert_eq!(report.machines_alive, 2, "the boss and its new worker");
    assert_eq!(report.server_machines, [1, 1]);
}

#[test]
fn fault_3_a_server_restarted_on_its_address_recovers_its_machines() {
    let mut s = quiet(1);
    s.start(0, "crew/Boss", &[RESTARTS, "a", "b"]);
    s.at(
        Duration::from_secs(1),
        Fault::CrashServer {
            host: 0,
            back_after: Duration::from_millis(200),
        },
    );
    s.at(Duration::from_secs(3), Fault::Kill("crew/Worker#a".into()));
    let report = run(3, s).unwrap();
    // The new server knows all three, and reports the kill of one it did
    // not fork (so how is unknown); the boss restarts it.
    assert_eq!(
        told(&report, "told exited crew/Worker#a unknown"),
        1,
        "{:?}",
        report.log
    );
    assert_eq!(report.machines_alive, 3);
    assert_eq!(report.server_machines, [3]);
}

#[test]
fn fault_4_forged_lifecycle_words_are_dropped() {
    let mut s = quiet(1);
    s.start(0, "family/Parent", &["50"]);
    for (i, text) in [
        "died 1 127.0.0.1:1 family/Child signal:9",
        "exited family/Child error",
        "started family/Child 1",
        "stopped 1 7000",
    ]
    .iter()
    .enumerate()
    {
        s.at(
            Duration::from_millis(500 + 100 * i as u64),
            Fault::Forge {
                to: "family/Parent".into(),
                text: (*text).into(),
            },
        );
    }
    let report = run(4, s).unwrap();
    assert!(report.dropped >= 4, "{}", report.dropped);
    assert_eq!(told(&report, "family/Parent ended"), 0, "{:?}", report.log);
}

#[test]
fn fault_5_exits_carry_their_reason() {
    let mut s = quiet(2);
    s.start(0, "greeter/Host", &[&format!("{}:7005", host_ip(1)), "Bob"]);
    s.start(0, "family/Parent", &["1000"]);
    let report = run(5, s).unwrap();
    assert_eq!(
        told(&report, "told exited greeter/Greeter#Bob normal"),
        1,
        "{:?}",
        report.log
    );
    assert!(
        told(&report, "told exited family/Child error") >= 1,
        "{:?}",
        report.log
    );
    assert_eq!(told(&report, "told exited family/Child normal"), 0);
}

#[test]
fn fault_7_tables_stay_bounded_over_ten_thousand_restarts() {
    let mut s = quiet(1);
    // The child errors at once and is restarted at once.
    s.start(0, "family/Parent", &["0"]);
    s.run_for = Duration::from_secs(60);
    let report = run(7, s).unwrap();
    assert!(
        report.machines_started > 10_000,
        "{}",
        report.machines_started
    );
    assert!(report.max_tables < 16, "{}", report.max_tables);
    // Peers are forgotten once idle: what is remembered follows the rate of
    // restarts, not their number.
    assert!(report.max_peers <= 1100, "{}", report.max_peers);
    // The server knows the parent and the children still lingering for
    // their last acknowledgements.
    assert!(
        report.server_machines[0] <= 64,
        "{:?}",
        report.server_machines
    );
}

#[test]
fn fault_8_a_burst_of_starts_is_refused_beyond_the_limits() {
    let mut s = quiet(1);
    s.server.max_machines = 100;
    s.server.starts_per_second = 50;
    s.at(
        Duration::from_millis(100),
        Fault::Burst {
            host: 0,
            name: "echo/Echo".into(),
            count: 10_000,
        },
    );
    let report = run(8, s).unwrap();
    assert!(
        report.machines_started <= 100,
        "{}",
        report.machines_started
    );
    assert!(report.refused[0] >= 9_900, "{:?}", report.refused);
    assert!(report.server_machines[0] <= 100);
}

#[test]
fn fault_9_a_machine_started_for_the_command_outlives_it() {
    // The scenario's starts come from a client that never answers beyond
    // acks, as `wink start` exits at once: the server is the parent.
    let mut s = quiet(1);
    s.start(0, "echo/Echo", &[]);
    s.run_for = Duration::from_secs(10);
    let report = run(9, s).unwrap();
    assert_eq!(report.machines_alive, 1);
    assert_eq!(told(&report, "ended"), 0, "{:?}", report.log);
}
