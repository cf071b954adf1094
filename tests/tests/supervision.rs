//! Who counts as a child, and what happens to children whose parent dies.

use wink_tests::{signal, Server, ServerOptions, Signal, Staged, PATIENCE};

#[test]
fn a_peer_that_says_pulsed_is_not_taken_for_a_child() {
    // Short timings: a child silent for 300 ms would be written off.
    let options = ServerOptions::default()
        .env("WINK_PULSE_MS", "100")
        .env("WINK_HEARTBEAT_TIMEOUT_MS", "300");
    let mut server = Server::serve(Staged::new().expect("stage"), options).expect("server");
    let (switch, _) = server
        .start_machine("switch/Switch", &[])
        .expect("start switch/Switch");
    let me = format!("{switch} switch/Switch");
    // Lifecycle words from someone the switch never spawned: its runtime
    // drops them (and says so), never a child, never an error.
    let at = switch.to_string();
    server
        .wink_ok(&["send", &at, "started", "impostor/X", "1"])
        .expect("send started");
    server
        .expect_all(
            &[&format!("{me} dropped `started impostor/X 1` from "), ": "],
            PATIENCE,
        )
        .expect("started is dropped");
    server
        .wink_ok(&["send", &at, "pulsed", "impostor/X"])
        .expect("send pulsed");
    server
        .expect_all(
            &[&format!("{me} dropped `pulsed impostor/X` from "), ": "],
            PATIENCE,
        )
        .expect("pulsed is dropped");
    // Five of the switch's own pulses: well past the heartbeat timeout.
    for _ in 0..5 {
        server
            .expect_all(&[&format!("{me} > "), " pulsed switch/Switch"], PATIENCE)
            .expect("the switch keeps pulsing");
    }
    server.process().set_cursor(0);
    server
        .process()
        .refute(
            "the switch reporting or stopping a child it never had",
            |l| {
                l.starts_with(&me)
                    && (l.contains(" lost: ") || (l.contains(" > ") && l.contains(" stop ")))
            },
        )
        .expect("no child written off");
    server
        .process()
        .refute("the switch erroring", |l| {
            l.starts_with(&format!("{me} errored"))
        })
        .expect("no error");
    // And it still works.
    server.wink_ok(&["send", &at, "on"]).expect("send on");
    server
        .expect_line(&format!("{me} Off -> On"), PATIENCE)
        .expect("the switch still switches");
}

#[test]
fn children_of_a_killed_parent_are_stopped_by_their_server() {
    // family/Child served by the echo binary: a child that lives until
    // stopped.
    let staged = Staged::with(&[("family/Child", "echo")]).expect("stage");
    let mut server = Server::serve(staged, ServerOptions::default()).expect("server");
    let (parent, parent_pid) = server
        .start_machine("family/Parent", &["50"])
        .expect("start family/Parent");
    let child_pid = server
        .expect_registration("family/Child")
        .expect("the child registers")
        .pid;
    signal(parent_pid, Signal::KILL).expect("kill -9 the parent");
    server
        .expect_all(
            &[&child_pid.to_string(), &format!("lost its parent {parent}")],
            PATIENCE,
        )
        .expect("the server stops the orphan");
    server
        .expect_all(
            &["Reaped: ", &child_pid.to_string(), "exit status 0"],
            PATIENCE,
        )
        .expect("which exits in order");
}
