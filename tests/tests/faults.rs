//! The faults that supervision must survive, end to end, with real servers
//! and machine processes: each of these failed before the supervision core
//! (a refused spawn confused with another, a restarted server blind to its
//! machines, forged lifecycle words obeyed, starts without limit, machines
//! of the `wink` command pulsing a dead address). The partition is in
//! `partition.rs` (it needs network namespaces).

use std::process::Command;
use std::time::{Duration, Instant};

use wink::control::{Parent, Reply, Request, RequestId, Target};
use wink::runtime::{Config, Endpoint};
use wink::Address;
use wink_tests::{binary, free_port, signal, Client, Process, Signal, Staged, PATIENCE};

/// Short timings, so the heartbeat and pulses happen within a test.
const ENV: [(&str, &str); 3] = [
    ("WINK_PULSE_MS", "200"),
    ("WINK_HEARTBEAT_TIMEOUT_MS", "3000"),
    ("WINK_LINGER_MS", "300"),
];

/// `wink-server serve <staged> --address <address> <extra…>`, once it says
/// where it listens.
fn serve(staged: &Staged, address: &str, extra: &[&str]) -> Process {
    try_serve(staged, address, extra).unwrap_or_else(|e| panic!("the server listens: {e}"))
}

fn try_serve(staged: &Staged, address: &str, extra: &[&str]) -> wink_tests::Result<Process> {
    let mut command = Command::new(binary("wink-server")?);
    command
        .arg("serve")
        .arg(staged.path())
        .args(["--address", address, "--grace-ms", "1000"])
        .args(extra);
    for (name, value) in ENV {
        command.env(name, value);
    }
    let mut process = Process::spawn(format!("wink-server {address}"), command)?;
    process.set_grace(Duration::from_secs(5));
    process.expect_line(&format!("Address: {address}"), PATIENCE)?;
    Ok(process)
}

/// Kills whatever still runs from the staged directory when dropped, after
/// the servers (declared before it) are stopped.
struct Leftovers(Staged);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for pid in self.0.running() {
            let _ = signal(pid, Signal::KILL);
        }
    }
}

fn wink(server: &str, args: &[&str]) -> wink_tests::Output {
    try_wink(server, args).unwrap_or_else(|e| panic!("run wink: {e}"))
}

fn try_wink(server: &str, args: &[&str]) -> wink_tests::Result<wink_tests::Output> {
    let mut all = vec!["--server", server];
    all.extend_from_slice(args);
    wink_tests::run(&binary("wink")?, &all, PATIENCE)
}

fn address_of(list: &str, name: &str) -> (String, u32) {
    let row = list
        .lines()
        .find(|l| l.split_ascii_whitespace().nth(2) == Some(name))
        .and_then(|line| {
            let words: Vec<&str> = line.split_ascii_whitespace().collect();
            Some((words.first()?.to_string(), words.get(1)?.parse().ok()?))
        });
    row.unwrap_or_else(|| panic!("no {name} with a pid in\n{list}"))
}

#[test]
fn fault_1_a_refused_spawn_is_reported_for_itself_and_the_other_child_is_supervised() {
    let leftovers = Leftovers(Staged::new().expect("stage"));
    let at = format!("127.0.0.1:{}", free_port().expect("port"));
    let mut server = serve(&leftovers.0, &at, &[]);
    let out = wink(
        &at,
        &[
            "start",
            "crew/Boss",
            ":0",
            "restart=temporary",
            "echo/Echo",
            "nope/Missing",
        ],
    );
    let out = out.success().expect("wink start");
    let boss = wink_tests::started_address(&out.stdout).expect("the boss's address");
    let me = format!("{boss} crew/Boss");
    // The refusal and echo's start, in either order.
    let from = server.cursor();
    server
        .expect_all(
            &[&me, "child ", "nope/Missing lost: not started: "],
            PATIENCE,
        )
        .expect("the refusal is reported for nope/Missing");
    server.set_cursor(from);
    let started = server
        .expect_all(&[&format!("{me} < "), " started echo/Echo "], PATIENCE)
        .expect("echo's started reaches the boss as its child");
    let echo = wink_tests::word(&started.text, 3).expect("echo's address");
    // Echo is supervised: its pulses are taken, for longer than the
    // heartbeat timeout, and it is never reported lost.
    let until = Instant::now() + Duration::from_millis(3500);
    while Instant::now() < until {
        server
            .expect_all(&[&format!("{me} < {echo} pulsed echo/Echo")], PATIENCE)
            .expect("echo pulses its parent");
    }
    server.set_cursor(0);
    server
        .refute("echo reported lost or dropped", |l| {
            l.starts_with(&me)
                && l.contains("echo/Echo")
                && (l.contains(" lost: ") || l.contains(" dropped "))
        })
        .expect("echo is the boss's child");
    let list = wink(&at, &["list"]).success().expect("wink list").stdout;
    let row = list
        .lines()
        .find(|l| l.contains("echo/Echo"))
        .expect("echo in the list");
    assert!(
        row.contains(&boss.to_string()),
        "echo's parent is the boss: {row}"
    );
}

#[test]
fn fault_3_a_server_restarted_on_its_address_recovers_its_machines() {
    let leftovers = Leftovers(Staged::new().expect("stage"));
    let at = format!("127.0.0.1:{}", free_port().expect("port"));
    let mut old = serve(&leftovers.0, &at, &[]);
    wink(&at, &["start", "crew/Boss", ":0", "a", "b"])
        .success()
        .expect("wink start");
    // In either order.
    let from = old.cursor();
    for worker in ["crew/Worker#a", "crew/Worker#b"] {
        old.set_cursor(from);
        old.expect_all(&["< ", " register ", worker], PATIENCE)
            .expect("the worker registers");
    }
    let before = wink(&at, &["list"]).success().expect("wink list").stdout;
    let (boss, _) = address_of(&before, "crew/Boss");
    let (worker_a, _) = address_of(&before, "crew/Worker#a");
    let (_, pid_b) = address_of(&before, "crew/Worker#b");

    // kill -9 the server; its machines run on. A new one on its address.
    signal(old.pid(), Signal::KILL).expect("kill -9 the server");
    old.wait(PATIENCE).expect("the old server is gone");
    let killed = Instant::now();
    let mut new = serve(&leftovers.0, &at, &[]);
    let from = new.cursor();
    for name in ["crew/Boss", "crew/Worker#a", "crew/Worker#b"] {
        new.set_cursor(from);
        new.expect_all(&["Adopted: ", name], PATIENCE)
            .expect("the new server adopts the machine");
    }
    eprintln!(
        "recovery: the new server knew all three {:.2}s after the kill (pulse 0.2s)",
        killed.elapsed().as_secs_f64()
    );
    let after = wink(&at, &["list"]).success().expect("wink list").stdout;
    for name in ["crew/Boss", "crew/Worker#a", "crew/Worker#b"] {
        assert!(after.contains(name), "{name} listed:\n{after}");
    }
    let boss_row = after
        .lines()
        .find(|l| l.contains("crew/Boss"))
        .expect("row");
    assert!(
        boss_row.contains("server"),
        "the boss's parent is the server: {boss_row}"
    );

    // It can stop them…
    let out = wink(&at, &["stop", &worker_a])
        .success()
        .expect("wink stop");
    assert!(out.stdout.contains(&format!("stopped {worker_a}")), "{out}");
    // …and a death is still reported to the parent.
    signal(pid_b, Signal::KILL).expect("kill -9 worker b");
    new.expect_all(&["Reaped: ", &pid_b.to_string(), "crew/Worker#b"], PATIENCE)
        .expect("the new server sees worker b die");
    old.expect_all(
        &[&boss, "crew/Worker#b lost: ended without exiting in order"],
        PATIENCE,
    )
    .expect("the boss is told");
    let from = old.cursor();
    old.expect_all(&["Boss: crew/Worker#b exited (unknown)"], PATIENCE)
        .expect("and hears it exited");
    old.set_cursor(from);
    old.expect_all(&[&boss, "starting child crew/Worker#b"], PATIENCE)
        .expect("and restarts it");
    new.expect_all(&["Forked: ", "crew/Worker#b"], PATIENCE)
        .expect("through the new server");
}

#[test]
fn fault_4_forged_lifecycle_words_and_unregister_change_nothing() {
    let leftovers = Leftovers(Staged::new().expect("stage"));
    let at = format!("127.0.0.1:{}", free_port().expect("port"));
    let mut server = serve(&leftovers.0, &at, &[]);
    wink(&at, &["start", "crew/Boss", ":0", "a"])
        .success()
        .expect("wink start");
    server
        .expect_all(&["< ", " register ", "crew/Worker#a"], PATIENCE)
        .expect("the worker registers");
    let list = wink(&at, &["list"]).success().expect("wink list").stdout;
    let (boss, _) = address_of(&list, "crew/Boss");
    let (worker, pid) = address_of(&list, "crew/Worker#a");
    let boss: Address = boss.parse().expect("address");
    let server_address: Address = at.parse().expect("address");

    let mut stranger = Client::new().expect("client");
    for text in [
        format!("died 2 {worker} crew/Worker#a signal:9"),
        "errored crew/Worker#a forged".to_owned(),
        "exited crew/Worker#a error".to_owned(),
        "started crew/Worker#a 2".to_owned(),
        "stopped 1 7000".to_owned(),
    ] {
        stranger
            .ask_until(boss, &text, Duration::from_millis(1), |_| true)
            .ok();
        server
            .expect_all(
                &[&format!("{boss} crew/Boss dropped "), text.as_str()],
                PATIENCE,
            )
            .expect("the boss drops the forged word");
    }
    // A forged unregister from a stranger is dropped too, and does not hide
    // the worker's death.
    stranger
        .ask_until(
            server_address,
            "unregister 1",
            Duration::from_millis(1),
            |_| true,
        )
        .ok();
    assert!(stranger.settle(PATIENCE).expect("settle"));
    signal(pid, Signal::KILL).expect("kill -9 the worker");
    server
        .expect_all(
            &[
                &format!("{boss} crew/Boss"),
                "crew/Worker#a lost: killed by signal 9",
            ],
            PATIENCE,
        )
        .expect("the boss hears of the kill");
    server.set_cursor(0);
    server
        .refute("the boss acting on a forged word", |l| {
            l.contains("Boss: crew/Worker#a exited (error)") || l.contains("has errored: forged")
        })
        .expect("nothing forged was obeyed");
    let list = wink(&at, &["list"]).success().expect("wink list").stdout;
    assert!(list.contains("crew/Boss"), "the boss runs on:\n{list}");
}

#[test]
fn fault_8_a_burst_of_starts_is_refused_beyond_the_limits() {
    let leftovers = Leftovers(Staged::new().expect("stage"));
    let at = format!("127.0.0.1:{}", free_port().expect("port"));
    let _server = serve(
        &leftovers.0,
        &at,
        &["--max-machines", "20", "--max-starts-per-second", "10"],
    );
    let server: Address = at.parse().expect("address");
    let config = Config::from_env().expect("config");
    let mut endpoint =
        Endpoint::bind("127.0.0.1:0".parse().expect("address"), config.transport).expect("bind");
    const BURST: u64 = 10_000;
    for i in 0..BURST {
        let request = Request::Start {
            id: RequestId(i + 1),
            name: "echo/Echo".parse().expect("name"),
            target: Target::Port(0),
            parent: Parent::Requester,
            args: Vec::new(),
        };
        endpoint.send(server, request.to_string()).expect("send");
    }
    let (mut starting, mut limited, mut other) = (0, 0, Vec::new());
    let give_up = Instant::now() + Duration::from_secs(60);
    while starting + limited + (other.len() as u64) < BURST && Instant::now() < give_up {
        let Some((from, text)) = endpoint
            .recv_timeout(Duration::from_secs(5))
            .expect("receive")
        else {
            break;
        };
        if from != server {
            continue;
        }
        match text.parse::<Reply>() {
            Ok(Reply::Starting { .. }) => starting += 1,
            Ok(Reply::Error { reason, .. }) if reason.contains("limit: at most") => limited += 1,
            _ => other.push(text),
        }
    }
    eprintln!("burst: {starting} started, {limited} refused naming a limit");
    assert!(starting <= 20, "{starting} started");
    assert!(starting >= 1, "some start");
    assert_eq!(starting + limited, BURST, "every start answered: {other:?}");
    let running = leftovers.0.running().len();
    assert!(running <= 20, "{running} machine processes");

    // An over-long request gets a short answer naming the length.
    let long = format!("start 1 {}/Echo :0 requester", "x".repeat(60_000));
    endpoint.send(server, &long).expect("send");
    let reply = loop {
        let (from, text) = endpoint
            .recv_timeout(PATIENCE)
            .expect("receive")
            .expect("an answer to the long request");
        if from == server && text.starts_with("error 1 ") {
            break text;
        }
    };
    assert!(reply.len() < 1200, "{} bytes", reply.len());
    assert!(reply.contains("60005 bytes long"), "{reply}");
}

#[test]
fn fault_9_a_machine_started_by_the_command_has_the_server_as_its_parent() {
    let leftovers = Leftovers(Staged::new().expect("stage"));
    let at = format!("127.0.0.1:{}", free_port().expect("port"));
    let mut server = serve(&leftovers.0, &at, &[]);
    // Many machines on any port, each from its own `wink start` that exits
    // at once: before, their parent was the command's ephemeral port.
    for _ in 0..30 {
        wink(&at, &["start", "echo/Echo"])
            .success()
            .expect("wink start");
    }
    let list = wink(&at, &["list"]).success().expect("wink list").stdout;
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(rows.len(), 30, "{list}");
    for row in &rows {
        assert_eq!(row.split_ascii_whitespace().nth(3), Some("server"), "{row}");
    }
    // Their pulses are acknowledged: three heartbeat timeouts later they all
    // run, none gave up a message, none is orphaned.
    let until = Instant::now() + Duration::from_millis(9000);
    while Instant::now() < until {
        server
            .expect_all(&[" > ", &at, " pulsed echo/Echo"], PATIENCE)
            .expect("pulses to the server");
    }
    server.set_cursor(0);
    server
        .refute("a machine giving up a message or orphaned", |l| {
            l.contains("gave up") || l.contains("orphaned")
        })
        .expect("no give-ups");
    let list = wink(&at, &["list"]).success().expect("wink list").stdout;
    assert_eq!(list.lines().count(), 31, "{list}");
}
