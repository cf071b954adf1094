//! A machine that errors on a message tells its sender why
//! (`failed <name> <why>`), so `wink send -r N` ends at once with the
//! reason instead of waiting out its timeout.

use std::time::Instant;

use wink_tests::{Server, PATIENCE};

#[test]
fn wink_send_to_a_machine_that_fails_on_the_message_ends_at_once_with_the_reason() {
    let mut server = Server::start().expect("server");
    let (switch, _) = server.start_machine("switch/Switch", &[]).expect("switch");
    let started = Instant::now();
    let out = server
        .wink(&["send", "-r", "1", &switch.to_string(), "bogus"])
        .expect("wink send");
    let took = started.elapsed();
    assert!(!out.status.success(), "{out}");
    assert_eq!(
        out.stderr.trim_end(),
        format!("wink: {switch} failed on `bogus`: unhandled message `bogus` in state `Off`"),
        "{out}"
    );
    // The reason can only have come from the machine: a command that
    // waited out its timeout would say `no answer`. How long it took is a
    // figure (`-- --nocapture`), not a check.
    eprintln!("wink send -r 1 to a failing machine ended after {took:?}");
    server
        .expect_line(&format!("{switch} switch/Switch exited: error"), PATIENCE)
        .expect("the machine exits");
}
