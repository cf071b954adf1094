//! The seed's switch driven by the `wink` command: `on`, `off`, and the log
//! shows the entry actions and transitions in order.

use wink_tests::{Server, PATIENCE};

#[test]
fn switch_turns_on_and_off_via_cli() {
    let mut server = Server::start().expect("server");
    let out = server
        .wink_ok(&["start", "switch/Switch"])
        .expect("wink start switch/Switch");
    let switch = wink_tests::started_address(&out.stdout).expect("its address");
    assert_eq!(
        out.stdout,
        format!("{switch} started switch/Switch\n"),
        "{out}"
    );
    let me = format!("{switch} switch/Switch");
    let at = switch.to_string();

    server
        .expect_line(&format!("{me} started"), PATIENCE)
        .expect("it starts");
    server
        .expect_line("Switch is OFF", PATIENCE)
        .expect("in Off");

    server.wink_ok(&["send", &at, "on"]).expect("send on");
    // It logs every message it receives (its server's replies too).
    let received = format!("{me} < ");
    server
        .process()
        .expect(&format!("`{received}<sender> on`"), PATIENCE, |l| {
            l.starts_with(&received) && l.ends_with(" on")
        })
        .expect("it receives on");
    server
        .expect_line(&format!("{me} Off -> On"), PATIENCE)
        .expect("the transition to On");
    server
        .expect_line("Switch is ON", PATIENCE)
        .expect("On's entry");

    server.wink_ok(&["send", &at, "off"]).expect("send off");
    server
        .expect_line(&format!("{me} On -> Off"), PATIENCE)
        .expect("the transition back to Off");

    // Exactly these switch lines, in this order: a transition is logged as
    // it starts, before the entry action it runs; Off is On's parent, so
    // going back to it exits On without re-entering Off.
    let lines: Vec<String> = server
        .process()
        .lines()
        .iter()
        .map(|l| l.text.clone())
        .filter(|t| t.starts_with("Switch is") || (t.starts_with(&me) && t.contains(" -> ")))
        .collect();
    assert_eq!(
        lines,
        [
            "Switch is OFF".to_owned(),
            format!("{me} Off -> On"),
            "Switch is ON".to_owned(),
            format!("{me} On -> Off"),
        ]
    );
}
