//! A machine killed with SIGKILL says nothing; the server reaps it and tells
//! its parent at once (`died`), and the parent's runtime delivers `errored` +
//! `exited` for it. Measured over 20 kills.

use std::time::{Duration, Instant};

use wink_tests::{median_max, signal, Server, ServerOptions, Signal, Staged, PATIENCE};

const KILLS: usize = 20;

#[test]
fn killed_child_is_reported_errored_and_exited_to_its_parent_quickly() {
    // family/Child served by the echo binary: a child that lives until it
    // is killed. The parent starts a new one 50 ms after each exit.
    let staged = Staged::with(&[("family/Child", "echo")]).expect("stage");
    let mut server = Server::serve(staged, ServerOptions::default()).expect("server");
    let (parent, _) = server
        .start_machine("family/Parent", &["50"])
        .expect("start family/Parent");
    let p = format!("{parent} family/Parent");

    let mut delays = Vec::new();
    for _ in 0..KILLS {
        let mark = server.process().cursor();
        // The child's register request names its pid and the parent's
        // `start` that made it.
        let register = server
            .expect_registration("family/Child")
            .expect("a child registers");
        let (child, pid) = (register.address, register.pid);
        assert_eq!(register.parent, parent, "{register:?}");
        let start = register.start.expect("started by its parent");
        server.process().set_cursor(mark);
        server
            .expect_line(
                &format!("Parent: {child} family/Child has started"),
                PATIENCE,
            )
            .expect("the parent knows its child");

        let mark = server.process().cursor();
        let killed = Instant::now();
        signal(pid, Signal::KILL).expect("kill -9");
        server
            .expect_line(
                &format!(
                    "{p} < {} died {start} {child} family/Child signal:9",
                    server.address()
                ),
                PATIENCE,
            )
            .expect("the server tells the parent");
        server
            .expect_line(
                &format!("Parent: {child} family/Child has errored: killed by signal 9 (SIGKILL)"),
                PATIENCE,
            )
            .expect("the parent logs errored");
        let exited = server
            .expect_line(
                &format!("Parent: {child} family/Child has exited (signal:9)"),
                PATIENCE,
            )
            .expect("the parent logs exited");
        delays.push(exited.at.duration_since(killed));
        server.process().set_cursor(mark);
        server
            .expect_all(
                &["Reaped: ", &pid.to_string(), "killed by signal 9 (SIGKILL)"],
                PATIENCE,
            )
            .expect("the server reaped it");
        // Next round starts after this one's lines.
        let after = server.process().cursor().max(mark);
        server.process().set_cursor(after);
    }
    assert!(
        wink_tests::lasting_zombies_of(server.pid(), PATIENCE).is_empty(),
        "the server leaves no zombies"
    );
    let (median, max) = median_max(&delays).expect("delays");
    println!(
        "crash notification (kill -9 -> parent logs `has exited`), {KILLS} kills: median {:.1} ms, max {:.1} ms",
        ms(median),
        ms(max)
    );
    // The target is under 50 ms; the bound here leaves room for a loaded
    // test machine (the C++ original took a minute).
    assert!(median < Duration::from_millis(500), "median {median:?}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `wink start -f` follows a machine whose parent is the server: the server
/// relays its death as a parent's runtime would deliver it, `errored` then
/// `exited`, and `wink` fails.
#[test]
fn killed_machine_started_with_follow_ends_wink_start_with_died() {
    let mut server = Server::start().expect("server");
    let mut follow = server
        .spawn_wink(&["start", "-f", "time/After", ":0", "600000"])
        .expect("wink start -f");
    let started = follow
        .expect_line("started time/After", PATIENCE)
        .expect("started");
    let at = wink_tests::started_address(&started.text).expect("address");
    let pid = server.registered(at).expect("pid");
    signal(pid, Signal::KILL).expect("kill -9");
    follow
        .expect_line(
            &format!("{at} errored time/After killed by signal 9 (SIGKILL)"),
            PATIENCE,
        )
        .expect("wink hears errored");
    follow
        .expect_line(&format!("{at} exited time/After signal:9"), PATIENCE)
        .expect("then exited");
    let status = follow.wait(PATIENCE).expect("wink ends");
    assert_eq!(status.code(), Some(1), "{status}");
    let err: Vec<String> = follow
        .lines()
        .iter()
        .filter(|l| l.stderr)
        .map(|l| l.text.clone())
        .collect();
    assert_eq!(err.len(), 1, "one line of error: {err:?}");
    assert_eq!(
        err[0], "wink: time/After errored: killed by signal 9 (SIGKILL)",
        "{err:?}"
    );
}

#[test]
fn child_that_dies_before_registering_is_reported_to_its_parent() {
    // A family/Child that exits at once, before it can say `started` or
    // `register` (like a binary that fails to load).
    let staged = Staged::new().expect("stage");
    let child = staged.path().join("family/Child");
    std::fs::remove_file(&child).expect("rm");
    std::fs::write(&child, "#!/bin/sh\nexit 3\n").expect("write");
    std::fs::set_permissions(&child, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let mut server = Server::serve(staged, ServerOptions::default()).expect("server");
    let (parent, _) = server
        .start_machine("family/Parent", &["100"])
        .expect("start family/Parent");
    let mark = server.process().cursor();
    server
        .expect_all(&["Reaped: ", "family/Child exit status 3"], PATIENCE)
        .expect("the child dies");
    // The server and the parent are two processes: their lines come in
    // either order.
    server.process().set_cursor(mark);
    server
        .expect_all(
            &[
                &format!("{parent} family/Parent < {} died ", server.address()),
                " - family/Child status:3",
            ],
            PATIENCE,
        )
        .expect("the server tells the parent, without an address");
    server
        .expect_all(
            &["Parent: ", "family/Child has errored: exit status 3"],
            PATIENCE,
        )
        .expect("the parent hears errored");
    server
        .expect_all(
            &["Parent: ", "family/Child has exited (status:3)"],
            PATIENCE,
        )
        .expect("the parent hears exited");
    server
        .expect_all(&["Forked: ", "family/Child"], PATIENCE)
        .expect("and starts another");
}
