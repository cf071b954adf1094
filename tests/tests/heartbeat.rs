//! A child that is frozen (SIGSTOP) stops pulsing; after the heartbeat
//! timeout its parent reports it `errored … heartbeat timeout` and `exited`,
//! asks its server to stop it, and (family/Parent) starts another.

use std::time::{Duration, Instant};

use wink_tests::{signal, Server, ServerOptions, Signal, Staged, PATIENCE};

/// Short timings, and a long grace period: the server, asked to stop a
/// frozen child, sends SIGTERM (which waits until the child continues) and
/// would SIGKILL it only after the grace period, after these tests.
fn options() -> ServerOptions {
    ServerOptions::default()
        .env("WINK_PULSE_MS", "100")
        .env("WINK_HEARTBEAT_TIMEOUT_MS", "500")
        .grace(Duration::from_secs(30))
}

#[test]
fn frozen_child_is_reported_by_heartbeat_timeout() {
    let staged = Staged::with(&[("family/Child", "echo")]).expect("stage");
    let mut server = Server::serve(staged, options()).expect("server");
    let (parent, _) = server
        .start_machine("family/Parent", &["100"])
        .expect("start family/Parent");
    let p = format!("{parent} family/Parent");
    let at = server.address();

    let register = server
        .expect_registration("family/Child")
        .expect("the child registers");
    let (child, pid) = (register.address, register.pid);
    let start = register.start.expect("started by its parent");
    // Pulses reach the parent.
    server
        .expect_line(
            &format!("Parent: {child} family/Child has pulsed"),
            PATIENCE,
        )
        .expect("the child pulses");

    signal(pid, Signal::STOP).expect("SIGSTOP");
    let frozen = Instant::now();
    let mark = server.process().cursor();
    let errored = server
        .expect_line(
            &format!("Parent: {child} family/Child has errored: heartbeat timeout"),
            PATIENCE,
        )
        .expect("heartbeat timeout");
    server
        .expect_line(
            &format!("Parent: {child} family/Child has exited"),
            PATIENCE,
        )
        .expect("exited after the timeout");
    let delay = errored.at.duration_since(frozen);
    println!("heartbeat timeout 500 ms, pulse 100 ms: reported {delay:?} after SIGSTOP");
    assert!(
        delay >= Duration::from_millis(350),
        "reported too early: {delay:?}"
    );
    server.process().set_cursor(mark);
    server
        .process()
        .refute("pulse from the frozen child", |l| {
            l.contains(&format!("{p} < {child} pulsed"))
        })
        .expect("no pulses while frozen");
    // Written off, it is stopped through its server, which has it stopping.
    server.process().set_cursor(mark);
    server
        .process()
        .expect(
            &format!("`{p} > {at} stop <id> {}`", child.port()),
            PATIENCE,
            |l| {
                l.starts_with(&format!("{p} > {at} stop "))
                    && l.ends_with(&format!(" {}", child.port()))
            },
        )
        .expect("the parent asks the server to stop it");
    server
        .expect_all(
            &[
                &format!("{p} < {at} stopping "),
                &format!(" {} ", child.port()),
            ],
            PATIENCE,
        )
        .expect("the server is stopping it");
    server.process().set_cursor(mark);

    // The parent carries on: a new child starts.
    let next = server
        .expect_all(&["Parent: ", "family/Child has started"], PATIENCE)
        .expect("a new child");
    assert!(!next.text.contains(&child.to_string()), "{next}");

    // Kill the frozen one; the server reaps it, and the parent, which has
    // written it off, does not report it again.
    signal(pid, Signal::KILL).expect("SIGKILL");
    server
        .expect_all(
            &["Reaped: ", &pid.to_string(), "killed by signal 9"],
            PATIENCE,
        )
        .expect("reaped");
    server
        .expect_line(
            &format!("{p} < {at} died {start} {child} family/Child signal:9"),
            PATIENCE,
        )
        .expect("died reaches the parent");
    let mark = server.process().cursor();
    // A later line of the parent's proves it has handled `died`: the new
    // child's next pulse.
    let next_child = next.text.split_ascii_whitespace().nth(1).expect("address");
    server
        .expect_line(
            &format!("Parent: {next_child} family/Child has pulsed"),
            PATIENCE,
        )
        .expect("the parent goes on");
    server.process().set_cursor(mark);
    server
        .process()
        .refute("a second report for the frozen child", |l| {
            l.contains(&format!("Parent: {child} family/Child has"))
        })
        .expect("reported once");
}

#[test]
fn child_written_off_by_heartbeat_stays_written_off_when_it_resumes() {
    let staged = Staged::with(&[("family/Child", "echo")]).expect("stage");
    let mut server = Server::serve(staged, options()).expect("server");
    let (parent, _) = server
        .start_machine("family/Parent", &["100"])
        .expect("start family/Parent");
    let p = format!("{parent} family/Parent");
    let register = server
        .expect_registration("family/Child")
        .expect("the child registers");
    let (child, pid) = (register.address, register.pid);
    signal(pid, Signal::STOP).expect("SIGSTOP");
    server
        .expect_line(
            &format!("Parent: {child} family/Child has exited"),
            PATIENCE,
        )
        .expect("written off");
    let next = server
        .expect_all(&["Parent: ", "family/Child has started"], PATIENCE)
        .expect("replaced");
    let next = wink_tests::word(&next.text, 1).expect("address");
    let resumed = server.process().cursor();
    signal(pid, Signal::CONT).expect("SIGCONT");
    // The resumed child talks to its parent again (at least its `exited`:
    // it acts on the SIGTERM its server sent it while it was frozen), and
    // the parent drops what it says.
    server
        .expect_all(
            &[&format!("{p} dropped "), &format!(" from {child}: ")],
            PATIENCE,
        )
        .expect("the parent drops the resumed child's words");
    server
        .expect_all(&["Reaped: ", &pid.to_string(), "exit status 0"], PATIENCE)
        .expect("the resumed child exits in order");
    // Give the resumed child a few pulse intervals: wait for the
    // replacement's third pulse after the SIGCONT.
    server.process().set_cursor(resumed);
    for _ in 0..3 {
        server
            .expect_line(&format!("Parent: {next} family/Child has pulsed"), PATIENCE)
            .expect("the replacement pulses");
    }
    let after = server
        .process()
        .lines()
        .iter()
        .position(|l| {
            l.text
                .contains(&format!("Parent: {child} family/Child has exited"))
        })
        .expect("the exited line");
    server.process().set_cursor(after + 1);
    server
        .process()
        .refute("lifecycle of a child after its `exited`", |l| {
            l.contains(&format!("Parent: {child} family/Child has"))
        })
        .expect("nothing more from the written-off child");
}
