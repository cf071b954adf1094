//! Declared supervisors under a real server: `crew/Boss` supervises
//! `crew/Worker#a`, `#b`, `#c` with the strategy its arguments name. Each
//! test reads, from the server's log (one output for every process, in
//! the order each line was written), the order in which the boss starts
//! and stops its workers and in which they start and exit.

use wink::address::Address;
use wink_tests::{word, Error, Result, Server, PATIENCE};

/// The last word of `text`: the address a `Boss: … started at` line ends
/// with.
fn last_word(text: &str) -> Result<String> {
    text.rsplit(' ')
        .next()
        .map(str::to_owned)
        .ok_or_else(|| Error::new(format!("no address in `{text}`")))
}

/// A boss started with `args` and its three workers, in order: the
/// boss's address and each worker's.
fn boss_of_three(server: &mut Server, args: &[&str]) -> Result<(Address, Vec<String>)> {
    let mut all = args.to_vec();
    all.extend(["a", "b", "c"]);
    let (boss, _) = server.start_machine("crew/Boss", &all)?;
    let mut workers = Vec::new();
    for tag in ["a", "b", "c"] {
        // Each asked for only once the one before started.
        workers.push(expect_start(server, boss, tag)?);
    }
    Ok((boss, workers))
}

/// Expects the boss to stop the worker `tag` at `at`, and that worker to
/// exit, before anything later is expected.
fn expect_stop(server: &mut Server, boss: Address, tag: &str, at: &str) -> Result<()> {
    server.expect_line(
        &format!("{boss} crew/Boss stopping child {at} crew/Worker#{tag}"),
        PATIENCE,
    )?;
    server.expect_line(&format!("{at} crew/Worker#{tag} exited: stopped"), PATIENCE)?;
    Ok(())
}

/// Expects the boss to start the worker `tag` and the worker to start:
/// its address.
fn expect_start(server: &mut Server, boss: Address, tag: &str) -> Result<String> {
    server.expect_line(
        &format!("{boss} crew/Boss starting child crew/Worker#{tag}"),
        PATIENCE,
    )?;
    let started = server.expect_line(&format!("Boss: crew/Worker#{tag} started at "), PATIENCE)?;
    last_word(&started.text)
}

fn crash(server: &Server, at: &str) -> Result<()> {
    server.wink_ok(&["send", at, "crash"]).map(drop)
}

#[test]
fn one_for_one_restarts_the_crashed_worker_alone_and_stops_all_in_reverse() {
    let mut server = Server::start().expect("server");
    let (boss, w) = boss_of_three(&mut server, &["strategy=one_for_one"]).expect("a boss of three");
    let from = server.process().cursor();
    crash(&server, &w[1]).expect("wink send crash");
    let b = expect_start(&mut server, boss, "b").expect("the boss starts the worker");
    assert_ne!(b, w[1], "a new worker b");
    server.process().set_cursor(from);
    server
        .process()
        .refute("a sibling stopped", |l| l.contains("stopping child"))
        .expect("one_for_one touches no sibling");
    server.process().set_cursor(from);
    // Stopping the boss stops its workers, last declared first, each
    // waited for, and only then the boss exits.
    server
        .wink_ok(&["stop", &boss.to_string()])
        .expect("wink stop");
    expect_stop(&mut server, boss, "c", &w[2]).expect("the boss stops the worker, which exits");
    expect_stop(&mut server, boss, "b", &b).expect("the boss stops the worker, which exits");
    expect_stop(&mut server, boss, "a", &w[0]).expect("the boss stops the worker, which exits");
    server
        .expect_line(&format!("{boss} crew/Boss exited: stopped"), PATIENCE)
        .expect("the boss exits last");
}

#[test]
fn one_for_all_stops_the_others_in_reverse_then_starts_all_in_order() {
    let mut server = Server::start().expect("server");
    let (boss, w) = boss_of_three(&mut server, &["strategy=one_for_all"]).expect("a boss of three");
    crash(&server, &w[1]).expect("wink send crash");
    server
        .expect_line("Boss: crew/Worker#b exited (error)", PATIENCE)
        .expect("b crashed");
    expect_stop(&mut server, boss, "c", &w[2]).expect("the boss stops the worker, which exits");
    expect_stop(&mut server, boss, "a", &w[0]).expect("the boss stops the worker, which exits");
    for tag in ["a", "b", "c"] {
        expect_start(&mut server, boss, tag).expect("the boss starts the worker");
    }
}

#[test]
fn rest_for_one_restarts_the_crashed_worker_and_those_after_it() {
    let mut server = Server::start().expect("server");
    let (boss, w) =
        boss_of_three(&mut server, &["strategy=rest_for_one"]).expect("a boss of three");
    let from = server.process().cursor();
    crash(&server, &w[1]).expect("wink send crash");
    expect_stop(&mut server, boss, "c", &w[2]).expect("the boss stops the worker, which exits");
    expect_start(&mut server, boss, "b").expect("the boss starts the worker");
    expect_start(&mut server, boss, "c").expect("the boss starts the worker");
    server.process().set_cursor(from);
    server
        .process()
        .refute("worker a stopped or started", |l| {
            l.contains("child") && l.contains("crew/Worker#a")
        })
        .expect("a is untouched");
}

#[test]
fn too_many_restarts_escalate_to_the_bosses_parent() {
    let mut server = Server::start().expect("server");
    // The boss's parent is `wink start -f`, which prints its lifecycle.
    let mut parent = server
        .spawn_wink(&[
            "start",
            "-f",
            "crew/Boss",
            ":0",
            "intensity=1/60000",
            "a",
            "b",
        ])
        .expect("wink start -f");
    let started = parent
        .expect_line(" started crew/Boss", PATIENCE)
        .expect("the boss starts");
    let boss = word(&started.text, 0).expect("the boss's address");
    let a = server
        .expect_line("Boss: crew/Worker#a started at ", PATIENCE)
        .expect("a starts");
    let a = last_word(&a.text).expect("a's address");
    let b = server
        .expect_line("Boss: crew/Worker#b started at ", PATIENCE)
        .expect("b starts");
    let b = last_word(&b.text).expect("b's address");
    crash(&server, &a).expect("wink send crash");
    let boss: Address = boss.parse().expect("an address");
    let a = expect_start(&mut server, boss, "a").expect("the boss starts the worker");
    crash(&server, &a).expect("wink send crash");
    // The second restart within the period is one too many: the boss stops
    // b and errors, and its parent hears it.
    expect_stop(&mut server, boss, "b", &b).expect("the boss stops the worker, which exits");
    server
        .expect_line(&format!("{boss} crew/Boss exited: error"), PATIENCE)
        .expect("the boss exits");
    parent
        .expect_line(
            &format!(
                "{boss} errored crew/Boss too many restarts: 2 within 60000 ms (intensity 1); crew/Worker#a exited error"
            ),
            PATIENCE,
        )
        .expect("the parent hears why");
    parent
        .expect_line(&format!("{boss} exited crew/Boss error"), PATIENCE)
        .expect("and the exit");
    let status = parent.wait(PATIENCE).expect("wink start -f ends");
    assert_eq!(status.code(), Some(1), "a child that errored: status 1");
}
