//! Request and reply: each outcome of `cx.request` comes back once, with
//! its id, and a callee answers what it took.

use std::time::Duration;

use super::tests::sent_to;
use crate::control::RequestId;
use crate::testing::{local, Harness};
use crate::Address;

#[crate::machine]
mod client {
    /// Asks what it is told to and writes down every outcome, with the id
    /// it answers.
    #[derive(Default)]
    pub struct Client {
        pub asked: Vec<RequestId>,
        pub heard: Vec<String>,
    }

    pub enum State {
        #[initial]
        Running,
    }

    impl Client {
        #[receive(Running, "ask")]
        fn ask(&mut self, cx: &mut Context<Self>, to: Address, ms: u64, message: &str) {
            let id = cx.request(to, message, std::time::Duration::from_millis(ms));
            self.asked.push(id);
        }

        #[receive(Running, "balance")]
        fn balance(&mut self, cx: &mut Context<Self>, amount: i64) {
            self.note(cx, format!("balance {amount}"));
        }

        #[receive(Running, "failed")]
        fn failed(&mut self, cx: &mut Context<Self>, rest: &str) {
            self.note(cx, format!("failed {rest}"));
        }

        #[receive(Running, "refused")]
        fn refused(&mut self, cx: &mut Context<Self>, rest: &str) {
            self.note(cx, format!("refused {rest}"));
        }

        #[receive(Running, "timeout")]
        fn timeout(&mut self, cx: &mut Context<Self>, name: String, ms: u64) {
            self.note(cx, format!("timeout {name} {ms}"));
        }
    }

    impl Client {
        fn note(&mut self, cx: &Context<Self>, what: String) {
            let id = cx.in_reply_to().map_or("-".to_owned(), |id| id.to_string());
            self.heard
                .push(format!("{id}: {what} from {}", cx.sender()));
        }
    }
}

#[crate::machine]
mod bank {
    /// Answers `balance`, errors on `boom`, refuses `withdraw`, exits on
    /// `close` without answering, and never answers `later`.
    #[derive(Default)]
    pub struct Bank {
        pub money: i64,
    }

    pub enum State {
        #[initial]
        Open,
    }

    impl Bank {
        #[receive(Open, "balance")]
        fn balance(&mut self, cx: &mut Context<Self>) {
            cx.reply(format!("balance {}", self.money));
        }

        #[receive(Open, "deposit")]
        fn deposit(&mut self, _cx: &mut Context<Self>, amount: i64) {
            self.money += amount;
        }

        #[receive(Open, "boom")]
        fn boom(&mut self, _cx: &mut Context<Self>) -> Result<(), String> {
            Err("vault on fire".to_owned())
        }

        #[receive(Open, "withdraw")]
        fn withdraw(&mut self, cx: &mut Context<Self>, amount: i64) {
            cx.refuse(format!("not enough money for {amount}"));
        }

        #[receive(Open, "close")]
        fn close(&mut self, cx: &mut Context<Self>) {
            cx.exit();
        }

        #[receive(Open, "later")]
        fn later(&mut self, _cx: &mut Context<Self>) {}
    }
}

const BANK: Address = local(50100);
/// Where the bank sees the client (both harnesses' machines are at
/// `testing::MACHINE`; a message from its own address would be the bank's own).
const CLIENT: Address = local(50101);

fn client() -> Harness<client::Client> {
    let mut h = Harness::new(client::Client::default());
    h.start().unwrap();
    h.clear();
    h
}

fn bank() -> Harness<bank::Bank> {
    let mut h = Harness::new(bank::Bank { money: 40 });
    h.start().unwrap();
    h.clear();
    h
}

/// The client asks the bank `message`; the bank takes the request; whatever
/// the bank sends back reaches the client. Returns the request's id.
fn round_trip(
    c: &mut Harness<client::Client>,
    b: &mut Harness<bank::Bank>,
    message: &str,
) -> RequestId {
    c.receive(&format!("ask {BANK} 500 {message}")).unwrap();
    let id = *c.machine().asked.last().unwrap();
    let request = sent_to(c, BANK);
    assert_eq!(request, [format!("request {id} {message}")]);
    let _ = b.receive_from(CLIENT, &request[0]);
    for answer in sent_to(b, CLIENT) {
        let _ = c.receive_from(BANK, &answer);
    }
    c.clear();
    b.clear();
    id
}

#[test]
fn an_answer_comes_back_with_the_id_of_its_request() {
    let (mut c, mut b) = (client(), bank());
    let first = round_trip(&mut c, &mut b, "balance");
    b.receive("deposit 2").unwrap();
    let second = round_trip(&mut c, &mut b, "balance");
    assert_ne!(first, second);
    assert_eq!(
        c.machine().heard,
        [
            format!("{first}: balance 40 from {BANK}"),
            format!("{second}: balance 42 from {BANK}")
        ]
    );
}

#[test]
fn a_callee_that_errors_on_the_request_answers_failed_and_one_that_refuses_refused() {
    let (mut c, mut b) = (client(), bank());
    let refused = round_trip(&mut c, &mut b, "withdraw 100");
    let failed = round_trip(&mut c, &mut b, "boom");
    assert_eq!(
        c.machine().heard,
        [
            format!("{refused}: refused withdraw not enough money for 100 from {BANK}"),
            format!("{failed}: failed boom receiver `boom` failed: vault on fire from {BANK}")
        ]
    );
    assert!(b.ending().is_some());
}

#[test]
fn a_callee_that_exits_before_answering_answers_failed_exited() {
    let (mut c, mut b) = (client(), bank());
    c.receive(&format!("ask {BANK} 500 later")).unwrap();
    let later = c.machine().asked[0];
    let _ = b.receive_from(CLIENT, &sent_to(&c, BANK)[0]);
    c.clear();
    assert!(sent_to(&b, CLIENT).is_empty(), "no answer yet");
    let close = round_trip(&mut c, &mut b, "close");
    assert_eq!(
        c.machine().heard,
        [
            format!("{later}: failed later exited normal from {BANK}"),
            format!("{close}: failed close exited normal from {BANK}")
        ]
    );
}

#[test]
fn an_unanswered_request_times_out_once_and_a_late_answer_is_dropped() {
    let mut c = client();
    c.receive(&format!("ask {BANK} 200 balance")).unwrap();
    let id = c.machine().asked[0];
    c.advance(Duration::from_millis(199));
    assert!(c.machine().heard.is_empty());
    c.advance(Duration::from_millis(1));
    c.advance(Duration::from_secs(2));
    assert_eq!(
        c.machine().heard,
        [format!("{id}: timeout balance 200 from {BANK}")]
    );
    let dropped = c.node().stats().dropped;
    c.receive_from(BANK, &format!("reply {id} balance 40"))
        .unwrap();
    assert_eq!(c.machine().heard.len(), 1, "{:?}", c.machine().heard);
    assert_eq!(c.node().stats().dropped, dropped + 1);
}

#[test]
fn an_answer_from_anyone_but_the_callee_or_to_no_request_is_dropped() {
    let mut c = client();
    c.receive(&format!("ask {BANK} 500 balance")).unwrap();
    let id = c.machine().asked[0];
    let stranger = local(50200);
    c.receive_from(stranger, &format!("reply {id} balance 1"))
        .unwrap();
    c.receive_from(BANK, &format!("reply {} balance 2", id.0 + 1))
        .unwrap();
    c.receive_from(BANK, "reply").unwrap();
    c.receive_from(BANK, &format!("reply {id}")).unwrap();
    c.receive_from(BANK, "reply x balance 3").unwrap();
    assert!(c.machine().heard.is_empty(), "{:?}", c.machine().heard);
    assert_eq!(c.node().stats().dropped, 5);
    c.receive_from(BANK, &format!("reply {id} balance 4"))
        .unwrap();
    c.receive_from(BANK, &format!("reply {id} balance 5"))
        .unwrap();
    assert_eq!(c.machine().heard, [format!("{id}: balance 4 from {BANK}")]);
}

#[test]
fn a_request_given_up_fails_with_undelivered() {
    let mut c = client();
    c.receive(&format!("ask {BANK} 60000 balance")).unwrap();
    let id = c.machine().asked[0];
    c.give_up(BANK, &format!("request {id} balance"));
    c.advance(Duration::from_secs(61));
    assert_eq!(
        c.machine().heard,
        [format!(
            "{id}: failed balance undelivered: {BANK} answered nothing for the retry budget from {BANK}"
        )]
    );
}

#[test]
fn a_plain_message_gets_a_plain_reply_and_a_request_without_a_message_is_dropped() {
    let mut b = bank();
    b.receive_from(CLIENT, "balance").unwrap();
    b.receive_from(CLIENT, "request 9").unwrap();
    b.receive_from(CLIENT, "request nine balance").unwrap();
    assert_eq!(sent_to(&b, CLIENT), ["balance 40"]);
    assert_eq!(b.node().stats().dropped, 2);
}

#[test]
fn an_unanswered_request_is_an_error_only_if_nothing_takes_the_timeout() {
    #[crate::machine]
    mod careless {
        #[derive(Default)]
        pub struct Careless;

        pub enum State {
            #[initial]
            Running,
        }

        impl Careless {
            #[receive(Running, "ask")]
            fn ask(&mut self, cx: &mut Context<Self>, to: Address) {
                cx.request(to, "balance", std::time::Duration::from_millis(10));
            }
        }
    }
    let mut h = Harness::new(careless::Careless);
    h.start().unwrap();
    h.receive(&format!("ask {BANK}")).unwrap();
    h.advance(Duration::from_millis(20));
    let ending = h.ending().map(ToString::to_string);
    assert_eq!(
        ending.as_deref(),
        Some("error: unhandled message `timeout` in state `Running`")
    );
}
