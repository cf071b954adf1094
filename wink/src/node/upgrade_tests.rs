//! Live upgrade in the supervision core: what a machine carries into the
//! program it becomes, and how that program takes it over.

use std::time::Duration;

use super::tests::sent_to;
use crate::testing::{local, Harness, PARENT, SERVER};

#[crate::machine(upgrade)]
mod keeper {
    use std::time::Duration;
    /// Keeps a count, a timer, a state timeout and a request across an
    /// upgrade.
    #[derive(Default, serde::Serialize, serde::Deserialize)]
    pub struct Keeper {
        pub count: u64,
        pub heard: Vec<String>,
    }

    pub enum State {
        #[initial]
        Idle,
        Busy,
    }

    impl Keeper {
        #[entry(Idle)]
        fn idle(&mut self, _cx: &mut Context<Self>) {
            self.heard.push("+Idle".to_owned());
        }

        #[entry(Busy)]
        fn busy(&mut self, _cx: &mut Context<Self>) {
            self.heard.push("+Busy".to_owned());
        }

        #[exit(Busy)]
        fn leave(&mut self, _cx: &mut Context<Self>) {
            self.heard.push("-Busy".to_owned());
        }

        #[receive(Idle, "go")]
        fn go(&mut self, cx: &mut Context<Self>, bank: Address) {
            self.count += 1;
            cx.send_after(Duration::from_millis(300), bank, "ping");
            cx.request(bank, "balance", Duration::from_millis(1000));
            cx.transition(State::Busy);
            cx.state_timeout(Duration::from_millis(500), "late");
        }

        #[receive(Busy, "late")]
        fn late(&mut self, cx: &mut Context<Self>) {
            self.heard.push("late".to_owned());
            cx.transition(State::Idle);
        }

        #[receive(Busy, "balance")]
        fn balance(&mut self, cx: &mut Context<Self>, amount: i64) {
            let id = cx.in_reply_to().map_or("-".to_owned(), |id| id.to_string());
            self.heard.push(format!("balance {amount} for {id}"));
        }

        #[receive(Busy, "count")]
        fn count(&mut self, _cx: &mut Context<Self>) {
            self.count += 1;
        }

        #[receive(Busy, "failed")]
        fn failed(&mut self, cx: &mut Context<Self>, rest: &str) {
            let id = cx.in_reply_to().map_or("-".to_owned(), |id| id.to_string());
            self.heard.push(format!("failed {rest} for {id}"));
        }

        #[receive(Busy, "later")]
        fn later(&mut self, _cx: &mut Context<Self>) {}
    }
}

#[crate::machine]
mod plain {
    /// Carries nothing: starts afresh after an upgrade.
    #[derive(Default)]
    pub struct Plain {
        pub heard: Vec<String>,
    }

    pub enum State {
        #[initial]
        Only,
    }

    impl Plain {
        #[entry(Only)]
        fn enter(&mut self, _cx: &mut Context<Self>) {
            self.heard.push("+Only".to_owned());
        }

        #[exit(Only)]
        fn leave(&mut self, cx: &mut Context<Self>) {
            cx.send(cx.parent(), "bye");
        }

        #[receive(Only, "spawn")]
        fn spawn(&mut self, cx: &mut Context<Self>) -> Result<(), String> {
            cx.spawn("x/Child").map_err(|e| e.to_string())
        }
    }
}

use keeper::Keeper;
use plain::Plain;

const BANK: crate::Address = local(50100);

#[test]
fn a_machine_that_carries_its_state_goes_on_where_it_was() {
    let mut h = Harness::new(Keeper::default());
    h.start().unwrap();
    h.receive(&format!("go {BANK}")).unwrap();
    let request = sent_to(&h, BANK);
    // The timer took id 1, the request 2.
    assert_eq!(request, ["request 2 balance"]);
    h.advance(Duration::from_millis(100));
    let carried = h.upgrade("test/Machine").unwrap();
    assert_eq!(carried.from, "test/Machine");
    assert_eq!(
        carried.machine.as_ref().map(|(s, _)| s.as_str()),
        Some("Busy")
    );
    // The old program says nothing more: no `exited`, no `unregister`.
    let last = h.sent().last().map(|t| t.text.clone());
    assert!(!last.is_some_and(|t| t.starts_with("exited")));

    let mut h = Harness::upgraded(Keeper::default(), &carried);
    assert_eq!(h.state(), "Busy");
    assert_eq!(h.machine().count, 1);
    // Not entered again: the trace is the old program's.
    assert_eq!(h.machine().heard, ["+Idle", "+Busy"]);
    assert!(h.ending().is_none());
    assert!(sent_to(&h, SERVER)[0].starts_with("register "));
    assert_eq!(sent_to(&h, PARENT), ["upgraded test/Machine test/Machine"]);
    // The timer, the request and the state timeout go on from where they
    // were: 200 ms left for the ping, 400 for the state timeout.
    h.clear();
    h.advance(Duration::from_millis(199));
    assert!(sent_to(&h, BANK).is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(sent_to(&h, BANK), ["ping"]);
    h.receive_from(BANK, "reply 2 balance 42").unwrap();
    h.advance(Duration::from_millis(200));
    assert_eq!(
        h.machine().heard,
        [
            "+Idle",
            "+Busy",
            "balance 42 for 2",
            "late",
            "-Busy",
            "+Idle"
        ]
    );
}

#[test]
fn messages_taken_off_the_socket_but_not_handled_are_handled_by_the_new_program() {
    let mut h = Harness::new(Keeper::default());
    h.start().unwrap();
    h.receive(&format!("go {BANK}")).unwrap();
    let mut carried = h.upgrade("test/Machine").unwrap();
    carried.inbox = vec![(PARENT.socket_addr(), "count".to_owned()); 2];
    let h = Harness::upgraded(Keeper::default(), &carried);
    assert_eq!(h.machine().count, 3);
}

#[test]
fn a_machine_that_carries_nothing_exits_in_the_old_program_and_starts_afresh() {
    let mut h = Harness::new(Plain::default());
    h.start().unwrap();
    h.clear();
    let carried = h.upgrade("test/Machine").unwrap();
    assert!(carried.machine.is_none());
    assert_eq!(sent_to(&h, PARENT), ["bye"], "exit actions ran");
    let h = Harness::upgraded(Plain::default(), &carried);
    assert_eq!(h.machine().heard, ["+Only"], "entered afresh");
    assert_eq!(sent_to(&h, PARENT), ["upgraded test/Machine test/Machine"]);
}

#[test]
fn a_new_program_that_cannot_take_the_state_over_errors() {
    let mut h = Harness::new(Keeper::default());
    h.start().unwrap();
    let mut carried = h.upgrade("test/Machine").unwrap();
    if let Some((state, _)) = carried.machine.as_mut() {
        *state = "Gone".to_owned();
    }
    let h = Harness::upgraded(Keeper::default(), &carried);
    let ending = h.ending().map(ToString::to_string);
    assert_eq!(
        ending.as_deref(),
        Some("error: the program before was in state `Gone`, which Keeper does not have")
    );
    // A machine that carried nothing into one that wants it: afresh.
    let mut p = Harness::new(Plain::default());
    p.start().unwrap();
    let carried = p.upgrade("test/Machine").unwrap();
    let h = Harness::upgraded(Keeper::default(), &carried);
    assert!(h.ending().is_none());
    assert_eq!(h.machine().heard, ["+Idle"]);
}

#[test]
fn a_machine_with_children_refuses_and_goes_on() {
    let mut h = Harness::new(Plain::default());
    h.start().unwrap();
    h.receive("spawn").unwrap();
    let refusal = h.upgrade("test/Machine").unwrap_err();
    assert_eq!(
        refusal,
        "error 1 upgrade it has children; a machine with children cannot be upgraded (yet): stop them first"
    );
    assert!(h.ending().is_none());
    h.receive("spawn").unwrap();
}

#[test]
fn an_upgrade_from_anyone_but_the_server_is_an_ordinary_message() {
    let mut h = Harness::new(Plain::default());
    h.start().unwrap();
    let stranger = local(50200);
    let result = h.receive_from(stranger, "upgrade 1 test/Machine /bin/sh");
    assert!(result.is_err(), "Plain has no receiver for `upgrade`");
    assert!(h.node().is_finished());
    assert!(h.upgrade("test/Machine").is_err());
}

#[test]
fn what_the_old_program_sent_unacknowledged_is_given_up_in_the_new_one() {
    let mut h = Harness::new(Keeper::default());
    h.start().unwrap();
    h.receive(&format!("go {BANK}")).unwrap();
    let mut carried = h.upgrade("test/Machine").unwrap();
    carried.undelivered = vec![(BANK.socket_addr(), "request 2 balance".to_owned())];
    let h = Harness::upgraded(Keeper::default(), &carried);
    assert_eq!(
        h.machine().heard.last().map(String::as_str),
        Some("failed balance undelivered: 127.0.0.1:50100 answered nothing for the retry budget for 2")
    );
}

#[test]
fn requests_left_unanswered_fail_when_the_new_program_starts_afresh() {
    let client = local(50300);
    let mut h = Harness::new(Keeper::default());
    h.start().unwrap();
    h.receive(&format!("go {BANK}")).unwrap();
    h.receive_from(client, "request 7 later").unwrap();
    let carried = h.upgrade("test/Machine").unwrap();
    assert_eq!(
        carried.open,
        [(client.socket_addr(), 7, "later".to_owned())]
    );
    // The new program does not take the old one's state.
    let h = Harness::upgraded(Plain::default(), &carried);
    assert_eq!(
        sent_to(&h, client),
        ["reply 7 failed later upgraded before answering"]
    );
}

#[test]
fn an_empty_answer_to_a_request_is_the_callees_error() {
    #[crate::machine]
    mod mute {
        #[derive(Default)]
        pub struct Mute;

        pub enum State {
            #[initial]
            Only,
        }

        impl Mute {
            #[receive(Only, "ask")]
            fn ask(&mut self, cx: &mut Context<Self>) {
                cx.reply("  ");
            }
        }
    }
    let mut h = Harness::new(mute::Mute);
    h.start().unwrap();
    let client = local(50300);
    assert!(h.receive_from(client, "request 3 ask").is_err());
    assert_eq!(
        sent_to(&h, client),
        ["reply 3 failed ask cannot answer request 3 with an empty message"]
    );
}
