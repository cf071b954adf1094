//! The supervision core, one behaviour each, driven through the test
//! harness (which is this core on a clock of its own).

use std::time::Duration;

use crate::control::{ExitReason, Lifecycle, Reply, Request, RequestId};
use crate::hsm::MachineError;
use crate::node::NodeConfig;
use crate::testing::{local, Harness, PARENT, SERVER};
use crate::Address;

#[crate::machine]
mod sup {
    /// Spawns what it is told to and writes down every lifecycle message.
    #[derive(Default)]
    pub struct Sup {
        pub heard: Vec<String>,
    }

    pub enum State {
        #[initial]
        Running,
    }

    impl Sup {
        #[entry(Running)]
        fn enter(&mut self, cx: &mut Context<Self>) -> Result<(), String> {
            for name in cx.args().to_vec() {
                cx.spawn(&name).map_err(|e| e.to_string())?;
            }
            Ok(())
        }

        #[receive(Running, "spawn")]
        fn spawn(&mut self, cx: &mut Context<Self>, name: String) -> Result<(), String> {
            cx.spawn(&name).map_err(|e| e.to_string())
        }

        #[receive(Running, "started")]
        fn started(&mut self, _cx: &mut Context<Self>, rest: &str) {
            self.heard.push(format!("started {rest}"));
        }

        #[receive(Running, "errored")]
        fn errored(&mut self, _cx: &mut Context<Self>, rest: &str) {
            self.heard.push(format!("errored {rest}"));
        }

        #[receive(Running, "exited")]
        fn exited(&mut self, _cx: &mut Context<Self>, child: String, reason: ExitReason) {
            self.heard.push(format!("exited {child} {reason}"));
        }

        #[receive(Running, "undelivered")]
        fn undelivered(&mut self, _cx: &mut Context<Self>, to: Address, message: &str) {
            self.heard.push(format!("undelivered {to} {message}"));
        }

        #[receive(Running, "quit")]
        fn quit(&mut self, cx: &mut Context<Self>) {
            cx.exit();
        }

        #[receive(Running, "fail")]
        fn fail(&mut self, _cx: &mut Context<Self>) -> Result<(), String> {
            Err("asked to fail".to_owned())
        }

        #[receive(Running, "shout")]
        fn shout(&mut self, cx: &mut Context<Self>, size: usize) {
            cx.reply("x".repeat(size));
        }
    }
}

use sup::Sup;

const PULSE: Duration = Duration::from_millis(100);
const HEARTBEAT: Duration = Duration::from_millis(600);

fn config() -> NodeConfig {
    NodeConfig {
        pulse: PULSE,
        heartbeat_timeout: HEARTBEAT,
        log_messages: false,
    }
}

fn harness(args: &[&str]) -> Harness<Sup> {
    let mut h = Harness::with_config(Sup::default(), config()).with_args(args.iter().copied());
    h.start().unwrap();
    h
}

/// The `start` requests sent so far: id and name.
fn starts(h: &Harness<Sup>) -> Vec<(Address, RequestId, String)> {
    h.sent()
        .iter()
        .filter_map(|t| match t.text.parse::<Request>() {
            Ok(Request::Start { id, name, .. }) => Some((t.to, id, name.to_string())),
            _ => None,
        })
        .collect()
}

/// The texts sent to `to`.
pub(super) fn sent_to<M: crate::hsm::Machine>(h: &Harness<M>, to: Address) -> Vec<String> {
    h.sent()
        .iter()
        .filter(|t| t.to == to)
        .map(|t| t.text.clone())
        .collect()
}

fn reply(h: &mut Harness<Sup>, reply: Reply) {
    h.receive_from(SERVER, &reply.to_string()).unwrap();
}

#[test]
fn start_says_started_to_the_parent_and_registers_with_the_server() {
    let h = harness(&[]);
    assert_eq!(sent_to(&h, PARENT), ["started test/Machine -"]);
    assert_eq!(
        sent_to(&h, SERVER),
        ["register 1 test/Machine 1 127.0.0.1:50001 -"]
    );
}

#[test]
fn a_refused_spawn_is_reported_for_that_spawn_only() {
    // Fault 1: the second of two spawns refused; the first runs.
    let mut h = harness(&["echo/Echo", "nope/Missing"]);
    let starts = starts(&h);
    assert_eq!(starts.len(), 2);
    let (echo, missing) = (starts[0].1, starts[1].1);
    reply(&mut h, Reply::Starting { id: echo, pid: 7 });
    reply(
        &mut h,
        Reply::error(Some(missing), "start", "`nope/Missing`: no executable"),
    );
    h.child_started("echo/Echo", local(7001)).unwrap();
    assert_eq!(
        h.machine().heard,
        [
            "errored nope/Missing not started: `nope/Missing`: no executable",
            "exited nope/Missing unstarted",
            "started echo/Echo",
        ]
    );
    // Echo is supervised: its pulses keep it alive past the heartbeat.
    for _ in 0..10 {
        h.advance(PULSE);
        h.receive_from(local(7001), "pulsed echo/Echo").unwrap();
    }
    assert_eq!(h.machine().heard.len(), 3);
    assert_eq!(h.node().children(), (1, 0));
}

#[test]
fn lifecycle_words_from_strangers_are_dropped_not_errors() {
    // Fault 4.
    let mut h = harness(&["echo/Echo"]);
    let stranger = local(9999);
    for text in [
        "died 1 127.0.0.1:7001 echo/Echo signal:9",
        "started echo/Echo 1",
        "started impostor/X -",
        "pulsed echo/Echo",
        "errored echo/Echo boom",
        "exited echo/Echo error",
        "stopped 5 7001",
        "error 1 start nope",
        "registered 1",
        "died",
        "exited",
    ] {
        assert_eq!(h.receive_from(stranger, text), Ok(()), "{text}");
    }
    // `died` is only the child's server's to say, even from the parent.
    h.receive_from(PARENT, "died 1 - echo/Echo signal:9")
        .unwrap();
    assert!(h.machine().heard.is_empty(), "{:?}", h.machine().heard);
    assert_eq!(h.node().stats().dropped, 12);
    assert!(h.ending().is_none());
    // The real spawn still works.
    h.child_started("echo/Echo", local(7001)).unwrap();
    assert_eq!(h.machine().heard, ["started echo/Echo"]);
}

#[test]
fn a_death_reported_by_the_server_is_errored_then_exited_with_its_reason() {
    // Fault 5: the reason says how.
    let mut h = harness(&["echo/Echo"]);
    let child = local(7001);
    h.child_started("echo/Echo", child).unwrap();
    reply_died(&mut h, Some(child), "echo/Echo", ExitReason::Signal(9));
    assert_eq!(
        h.machine().heard,
        [
            "started echo/Echo",
            "errored echo/Echo killed by signal 9 (SIGKILL)",
            "exited echo/Echo signal:9",
        ]
    );
    // Reported once.
    reply_died(&mut h, Some(child), "echo/Echo", ExitReason::Signal(9));
    assert_eq!(h.machine().heard.len(), 3);
}

fn reply_died(h: &mut Harness<Sup>, address: Option<Address>, name: &str, reason: ExitReason) {
    let start = starts(h).last().map(|s| s.1);
    let died = Lifecycle::Died {
        start,
        address,
        name: name.parse().unwrap(),
        reason,
    };
    h.receive_from(SERVER, &died.to_string()).unwrap();
}

#[test]
fn a_child_that_dies_before_it_started_is_reported_by_start_id() {
    let mut h = harness(&["echo/Echo"]);
    reply_died(&mut h, None, "echo/Echo", ExitReason::Status(3));
    assert_eq!(
        h.machine().heard,
        [
            "errored echo/Echo exit status 3",
            "exited echo/Echo status:3"
        ]
    );
}

#[test]
fn an_orderly_exit_of_a_child_carries_its_reason() {
    let mut h = harness(&["echo/Echo"]);
    let child = local(7001);
    h.child_started("echo/Echo", child).unwrap();
    h.receive_from(child, "exited echo/Echo normal").unwrap();
    assert_eq!(
        h.machine().heard,
        ["started echo/Echo", "exited echo/Echo normal"]
    );
    assert_eq!(h.node().children(), (0, 0));
}

#[test]
fn a_silent_child_is_written_off_and_its_stop_retried_until_its_server_answers() {
    // Fault 2: the parent's side of a partition.
    let mut h = harness(&["echo/Echo"]);
    let child = local(7001);
    h.child_started("echo/Echo", child).unwrap();
    h.clear();
    h.advance(HEARTBEAT + PULSE);
    assert_eq!(
        h.machine().heard,
        [
            "started echo/Echo",
            "errored echo/Echo heartbeat timeout",
            "exited echo/Echo heartbeat",
        ]
    );
    let stops = |h: &Harness<Sup>| -> Vec<Request> {
        h.sent()
            .iter()
            .filter(|t| t.to == SERVER)
            .filter_map(|t| t.text.parse::<Request>().ok())
            .filter(|r| matches!(r, Request::Stop { .. }))
            .collect()
    };
    assert!(!stops(&h).is_empty());
    // The partition lasts: the stop goes out again, every pulse at first,
    // then less often (up to once per heartbeat timeout).
    h.advance(PULSE * 5);
    let sent = stops(&h);
    assert!(sent.len() >= 3, "{sent:?}");
    h.advance(HEARTBEAT * 3);
    let later = stops(&h).len() - sent.len();
    assert!(
        (2..=4).contains(&later),
        "{later} retries in three heartbeats"
    );
    let Request::Stop { id, port, .. } = sent[0] else {
        unreachable!()
    };
    assert_eq!(port, 7001);
    assert!(sent.iter().all(|r| r.id() == id));
    // The child is written off: its late pulses are nobody's.
    h.receive_from(child, "pulsed echo/Echo").unwrap();
    assert_eq!(h.machine().heard.len(), 3);
    // The partition heals and the server answers: no more retries.
    reply(
        &mut h,
        Reply::Stopping {
            id,
            port,
            grace_ms: 5000,
        },
    );
    h.clear();
    h.advance(PULSE * 5);
    assert_eq!(stops(&h).len(), 0);
    reply(&mut h, Reply::Stopped { id, port });
    assert_eq!(h.node().table_sizes(), 0);
}

#[test]
fn a_spawn_that_never_starts_is_unstarted_and_stopped_if_it_comes_late() {
    let mut h = harness(&["echo/Echo"]);
    h.advance(HEARTBEAT + PULSE);
    assert_eq!(
        h.machine().heard,
        [
            "errored echo/Echo did not start within the heartbeat timeout",
            "exited echo/Echo unstarted"
        ]
    );
    h.clear();
    let (_, id, _) = starts(&harness(&["echo/Echo"]))[0];
    h.receive_from(local(7001), &format!("started echo/Echo {id}"))
        .unwrap();
    assert_eq!(h.machine().heard.len(), 2, "a late child is no child");
    assert!(
        sent_to(&h, SERVER)
            .iter()
            .any(|t| t.starts_with("stop ") && t.ends_with(" 7001")),
        "{:?}",
        h.sent()
    );
}

#[test]
fn after_an_error_the_machine_takes_nothing_more() {
    // Fault 6: as in a process.
    let mut h = harness(&[]);
    let err = h.receive("fail").unwrap_err();
    assert_eq!(err.to_string(), "receiver `fail` failed: asked to fail");
    assert_eq!(
        h.receive("quit"),
        Err(MachineError::Lifecycle("not running"))
    );
    let ending = h.ending().unwrap();
    assert_eq!(ending.reason, ExitReason::Error);
    // The parent sent it: it is told as the sender, then as the parent.
    assert_eq!(
        sent_to(&h, PARENT)[1..],
        [
            "failed fail receiver `fail` failed: asked to fail",
            "errored test/Machine receiver `fail` failed: asked to fail",
            "exited test/Machine error"
        ]
    );
    assert!(sent_to(&h, SERVER)
        .last()
        .unwrap()
        .starts_with("unregister "));
}

#[test]
fn exit_stops_every_child_through_its_server() {
    let mut h = harness(&["echo/Echo", "echo/Echo#2"]);
    h.child_started("echo/Echo", local(7001)).unwrap();
    h.child_started("echo/Echo#2", local(7002)).unwrap();
    h.clear();
    h.receive("quit").unwrap();
    let sent = sent_to(&h, SERVER);
    assert!(sent[0].starts_with("unregister "), "{sent:?}");
    let mut ports: Vec<&str> = sent[1..]
        .iter()
        .map(|t| t.rsplit(' ').next().unwrap())
        .collect();
    ports.sort_unstable();
    assert_eq!(ports, ["7001", "7002"]);
    assert_eq!(sent_to(&h, PARENT), ["exited test/Machine normal"]);
}

#[test]
fn a_machine_cut_off_from_its_parent_exits_orphaned() {
    // Fault 9 and the child's side of a partition.
    let mut h = harness(&[]);
    h.advance(HEARTBEAT * 2);
    assert!(h.ending().is_none(), "the parent acks: alive");
    h.cut_off_parent();
    h.advance(HEARTBEAT + PULSE);
    assert_eq!(h.ending().map(|e| e.reason), Some(ExitReason::Orphaned));
    assert_eq!(
        sent_to(&h, PARENT).last().map(String::as_str),
        Some("exited test/Machine orphaned")
    );
}

#[test]
fn pulses_go_to_the_parent_and_the_server() {
    let mut h = harness(&[]);
    h.clear();
    h.advance(PULSE * 3);
    assert_eq!(sent_to(&h, PARENT).len(), 3);
    let to_server = sent_to(&h, SERVER);
    assert_eq!(
        to_server
            .iter()
            .filter(|t| *t == "pulsed test/Machine")
            .count(),
        3
    );
}

#[test]
fn register_is_repeated_until_the_server_answers() {
    let mut h = harness(&[]);
    h.advance(PULSE * 3);
    let registers = |h: &Harness<Sup>| {
        sent_to(h, SERVER)
            .iter()
            .filter(|t| t.starts_with("register "))
            .count()
    };
    assert!(registers(&h) >= 3);
    let id = sent_to(&h, SERVER)
        .iter()
        .rev()
        .find_map(|t| match t.parse::<Request>() {
            Ok(Request::Register { id, .. }) => Some(id),
            _ => None,
        })
        .unwrap();
    reply(&mut h, Reply::Registered { id });
    h.clear();
    h.advance(PULSE * 3);
    assert_eq!(registers(&h), 0);
}

#[test]
fn a_message_too_large_for_a_datagram_is_the_machines_error() {
    let mut h = harness(&[]);
    let _ = h.receive("shout 70000");
    let ending = h.ending().unwrap();
    assert_eq!(ending.reason, ExitReason::Error);
    assert!(
        ending
            .error
            .as_deref()
            .unwrap()
            .contains("exceeds the limit"),
        "{ending:?}"
    );
}

#[test]
fn tables_stay_bounded_over_ten_thousand_restarts() {
    // Fault 7: a child started, errored and exited 10,000 times.
    let mut h = harness(&[]);
    for i in 0..10_000u32 {
        h.receive("spawn family/Child").unwrap();
        let child = local(10_000 + (i % 50_000) as u16);
        h.child_started("family/Child", child).unwrap();
        h.receive_from(child, "errored family/Child AHHHHH")
            .unwrap();
        h.receive_from(child, "exited family/Child error").unwrap();
        if i % 1000 == 0 {
            h.clear();
            h.advance(PULSE);
        }
    }
    assert_eq!(h.node().table_sizes(), 0);
    assert_eq!(h.machine().heard.len(), 30_000);
}

#[test]
fn a_written_off_child_that_still_speaks_is_told_it_is_orphaned() {
    let mut h = harness(&["echo/Echo"]);
    let child = local(7001);
    h.child_started("echo/Echo", child).unwrap();
    h.advance(HEARTBEAT + PULSE);
    h.clear();
    // Its pulses reach the parent again, but its server does not answer.
    h.receive_from(child, "pulsed echo/Echo").unwrap();
    h.receive_from(child, "pulsed echo/Echo").unwrap();
    assert_eq!(
        sent_to(&h, child),
        ["orphaned echo/Echo"],
        "told once a pulse"
    );
    h.advance(PULSE);
    h.clear();
    h.receive_from(child, "pulsed echo/Echo").unwrap();
    assert_eq!(sent_to(&h, child), ["orphaned echo/Echo"]);
}

#[test]
fn a_machine_told_orphaned_by_its_parent_exits_and_by_anyone_else_not() {
    let mut h = harness(&[]);
    h.receive_from(local(9999), "orphaned test/Machine")
        .unwrap();
    h.receive("orphaned other/Machine").unwrap();
    assert!(h.ending().is_none());
    h.receive("orphaned test/Machine").unwrap();
    assert_eq!(h.ending().map(|e| e.reason), Some(ExitReason::Orphaned));
    assert_eq!(
        sent_to(&h, PARENT).last().map(String::as_str),
        Some("exited test/Machine orphaned")
    );
}

#[test]
fn a_message_given_up_is_reported_to_the_machine_as_undelivered() {
    let mut h = harness(&[]);
    let peer = local(6000);
    h.give_up(peer, "hello there");
    assert_eq!(
        h.machine().heard,
        [format!("undelivered {peer} hello there")]
    );
    // The runtime's own words are not the machine's business.
    h.give_up(PARENT, "pulsed test/Machine");
    assert_eq!(h.machine().heard.len(), 1);
    assert_eq!(h.node().stats().gave_up, 2);
}

#[test]
fn nobody_else_may_say_undelivered() {
    let mut h = harness(&[]);
    h.receive_from(local(6000), "undelivered 127.0.0.1:1 forged")
        .unwrap();
    assert!(h.machine().heard.is_empty());
    assert_eq!(h.node().stats().dropped, 1);
}

#[test]
fn a_machine_without_a_receiver_for_undelivered_ignores_it() {
    #[crate::machine]
    mod quiet {
        #[derive(Default)]
        pub struct Quiet;
        pub enum State {
            #[initial]
            Idle,
        }
        impl Quiet {
            #[receive(Idle, "poke")]
            fn poke(&mut self, _cx: &mut Context<Self>) {}
        }
    }
    let mut h = Harness::with_config(quiet::Quiet, config());
    h.start().unwrap();
    h.give_up(local(6000), "lost");
    assert!(h.ending().is_none(), "no error: {:?}", h.ending());
}

#[crate::machine]
mod timers {
    use std::time::Duration;

    use crate::hsm::TimerId;

    /// Arms, cancels and waits, and writes down every timer that fired.
    #[derive(Default)]
    pub struct Timers {
        pub armed: Option<TimerId>,
        pub fired: Vec<String>,
    }

    pub enum State {
        #[initial]
        Idle,
        Waiting,
    }

    impl Timers {
        #[receive(Idle, "arm")]
        fn arm(&mut self, cx: &mut Context<Self>, ms: u64) {
            let me = cx.address();
            self.armed = Some(cx.send_after(Duration::from_millis(ms), me, "ring"));
        }

        #[receive(Idle, "disarm")]
        fn disarm(&mut self, cx: &mut Context<Self>) {
            if let Some(id) = self.armed {
                cx.cancel(id);
            }
        }

        #[receive(Idle, "ring")]
        fn ring(&mut self, _cx: &mut Context<Self>) {
            self.fired.push("ring".to_owned());
        }

        #[receive(Idle, "wait")]
        fn wait(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::Waiting);
        }

        #[entry(Waiting)]
        fn waiting(&mut self, cx: &mut Context<Self>) {
            cx.state_timeout(Duration::from_millis(200), "late");
        }

        #[receive(Waiting, "again")]
        fn again(&mut self, cx: &mut Context<Self>) {
            cx.state_timeout(Duration::from_millis(300), "late");
        }

        #[receive(Waiting, "done")]
        fn done(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::Idle);
        }

        #[receive(Waiting, "late")]
        fn late(&mut self, cx: &mut Context<Self>) {
            self.fired.push("late".to_owned());
            cx.transition(State::Idle);
        }

        #[receive(Idle, "late")]
        fn stale(&mut self, _cx: &mut Context<Self>) {
            self.fired.push("stale late".to_owned());
        }

        #[receive(Idle, "withdraw")]
        fn withdraw(&mut self, cx: &mut Context<Self>, amount: u64) {
            cx.refuse(format!("not enough money for {amount}"));
        }
    }
}

fn timers() -> Harness<timers::Timers> {
    let mut h = Harness::new(timers::Timers::default());
    h.start().unwrap();
    h
}

#[test]
fn a_cancelled_timer_never_fires_and_cancelling_a_fired_one_does_nothing() {
    let mut h = timers();
    h.receive("arm 100").unwrap();
    h.receive("disarm").unwrap();
    h.advance(Duration::from_secs(1));
    assert!(h.machine().fired.is_empty(), "{:?}", h.machine().fired);
    h.receive("arm 100").unwrap();
    h.advance(Duration::from_secs(1));
    assert_eq!(h.machine().fired, ["ring"]);
    h.receive("disarm").unwrap();
    h.advance(Duration::from_secs(1));
    assert_eq!(h.machine().fired, ["ring"]);
}

#[test]
fn leaving_a_state_cancels_its_state_timeout_and_staying_lets_it_fire() {
    let mut h = timers();
    h.receive("wait").unwrap();
    h.advance(Duration::from_millis(100));
    h.receive("done").unwrap();
    h.advance(Duration::from_secs(1));
    assert!(h.machine().fired.is_empty(), "{:?}", h.machine().fired);
    h.receive("wait").unwrap();
    h.advance(Duration::from_secs(1));
    assert_eq!(h.machine().fired, ["late"]);
    assert_eq!(h.state(), "Idle");
}

#[test]
fn a_new_state_timeout_replaces_the_last() {
    let mut h = timers();
    h.receive("wait").unwrap();
    h.advance(Duration::from_millis(150));
    h.receive("again").unwrap();
    // The first would have fired at 200 ms.
    h.advance(Duration::from_millis(200));
    assert!(h.machine().fired.is_empty(), "{:?}", h.machine().fired);
    h.advance(Duration::from_millis(200));
    assert_eq!(h.machine().fired, ["late"]);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.machine().fired, ["late"], "nothing stale after");
}

#[test]
fn cancelled_timers_do_not_pile_up() {
    let mut h = timers();
    for _ in 0..10_000 {
        h.receive("arm 3600000").unwrap();
        h.receive("disarm").unwrap();
    }
    assert!(h.node().table_sizes() < 200, "{}", h.node().table_sizes());
}

#[test]
fn the_sender_of_a_message_the_machine_fails_on_is_told_why() {
    let mut h = harness(&[]);
    let peer = local(6100);
    let err = h.receive_from(peer, "fail").unwrap_err();
    assert_eq!(
        sent_to(&h, peer),
        [format!("failed fail {err}")],
        "told before the machine exits"
    );
    // A word the machine has no receiver for fails it too, and says so.
    let mut h = harness(&[]);
    assert!(h.receive_from(peer, "bogus 1").is_err());
    assert_eq!(
        sent_to(&h, peer),
        ["failed bogus unhandled message `bogus` in state `Running`"]
    );
}

#[test]
fn a_failed_message_is_news_for_a_receiver_not_an_error() {
    let mut h = harness(&[]);
    h.receive_from(local(6100), "failed ping boom").unwrap();
    h.receive("quit").unwrap();
    assert_eq!(h.ending().unwrap().reason, ExitReason::Normal);
    assert!(
        sent_to(&h, local(6100)).is_empty(),
        "no failed about failed"
    );
}

#[test]
fn a_refused_message_tells_its_sender_and_the_machine_goes_on() {
    let mut h = timers();
    let peer = local(6200);
    h.receive_from(peer, "withdraw 50").unwrap();
    assert_eq!(
        sent_to(&h, peer),
        ["refused withdraw not enough money for 50"]
    );
    assert!(h.ending().is_none());
    assert_eq!(h.state(), "Idle");
    // And it still takes messages.
    h.receive("arm 10").unwrap();
    h.advance(Duration::from_millis(20));
    assert_eq!(h.machine().fired, ["ring"]);
}

#[test]
fn status_is_answered_by_the_runtime_and_never_reaches_the_receivers() {
    let mut h = harness(&["x/Child"]);
    let asker = local(50300);
    h.child_started("x/Child", local(50400)).unwrap();
    h.clear();
    h.advance(Duration::from_millis(300));
    h.receive_from(asker, "status 7").unwrap();
    let answers = sent_to(&h, asker);
    assert_eq!(answers.len(), 1, "{answers:?}");
    let report: crate::control::StatusReport = answers[0].parse().unwrap();
    assert_eq!(report.id, RequestId(7));
    assert_eq!(report.name.to_string(), "test/Machine");
    assert_eq!(report.state, "Running");
    assert_eq!(report.parent, PARENT);
    assert_eq!(report.uptime_ms, 300);
    assert_eq!(report.children, 1);
    // Anything else starting with `status` is dropped, not delivered.
    let dropped = h.node().stats().dropped;
    h.receive_from(asker, "status").unwrap();
    h.receive_from(asker, "status x").unwrap();
    h.receive_from(asker, "status 1 2").unwrap();
    assert_eq!(h.node().stats().dropped, dropped + 3);
    assert!(h.ending().is_none());
}
