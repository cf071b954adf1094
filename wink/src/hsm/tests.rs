//! The rules of `docs/semantics.md`, one test each, on machines written with
//! the macro and driven by the harness.

use super::*;
use crate::testing::{Harness, PARENT};

/// DESIGN §5's worked example: first { second { forth, fifth }, third }.
#[crate::machine]
mod example {
    #[derive(Default)]
    pub struct Example {
        pub log: Vec<String>,
    }

    pub enum State {
        #[initial]
        First,
        #[parent(First)]
        Second,
        #[parent(Second)]
        Forth,
        #[parent(Second)]
        Fifth,
        #[parent(First)]
        Third,
        #[parent(Third)]
        Sixth,
    }

    impl Example {
        #[receive(First, "go")]
        fn go(&mut self, cx: &mut Context<Self>, to: String) -> Result<(), String> {
            let state = State::from_name(&to).ok_or(format!("no state {to}"))?;
            cx.transition(state);
            Ok(())
        }

        #[receive(Second, "where")]
        fn where_second(&mut self, _cx: &mut Context<Self>) {
            self.log.push("second".into());
        }

        #[receive(Sixth)]
        fn anything_in_sixth(&mut self, _cx: &mut Context<Self>, text: &str) {
            self.log.push(format!("sixth got {text}"));
        }

        #[receive(Third, "chain")]
        fn chain(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::Forth);
            cx.transition(State::Fifth);
        }

        #[entry(Fifth)]
        fn enter_fifth(&mut self, cx: &mut Context<Self>) {
            // Asked for inside an entry action: runs after this transition.
            if self.log.iter().any(|l| l == "bounce") {
                cx.transition(State::Third);
            }
        }

        #[receive(Third, "bounce")]
        fn bounce(&mut self, cx: &mut Context<Self>) {
            self.log.push("bounce".into());
            cx.transition(State::Fifth);
        }

        #[receive(Third, "fail")]
        fn fail(&mut self, _cx: &mut Context<Self>, why: &str) -> Result<(), String> {
            Err(why.to_owned())
        }

        #[exit(Second)]
        fn exit_second(&mut self, _cx: &mut Context<Self>) -> Result<(), String> {
            if self.log.iter().any(|l| l == "fail second's exit") {
                return Err("second's exit failed".into());
            }
            Ok(())
        }

        #[receive(First, "arm")]
        fn arm(&mut self, _cx: &mut Context<Self>, what: &str) {
            self.log.push(what.to_owned());
        }

        #[receive(Third, "raise")]
        fn raise(&mut self, cx: &mut Context<Self>) {
            cx.error("raised on purpose");
        }
    }
}

use example::{Example, State};

fn started() -> Harness<Example> {
    let mut h = Harness::new(Example::default());
    h.start().unwrap();
    h
}

fn go(h: &mut Harness<Example>, to: &str) -> Vec<String> {
    h.clear();
    h.receive(&format!("go {to}")).unwrap();
    h.trace()
}

#[test]
fn start_enters_initial_lineage_from_the_root() {
    let mut h = Harness::starting_in(Example::default(), State::Fifth);
    h.start().unwrap();
    assert_eq!(h.trace(), ["+First", "+Second", "+Fifth"]);
}

#[test]
fn stop_exits_from_the_leaf_up() {
    let mut h = Harness::starting_in(Example::default(), State::Fifth);
    h.start().unwrap();
    h.clear();
    h.stop().unwrap();
    assert_eq!(h.trace(), ["-Fifth", "-Second", "-First"]);
}

#[test]
fn design_worked_example() {
    let mut h = started();
    assert_eq!(h.trace(), ["+First"]);
    assert_eq!(go(&mut h, "Second"), ["+Second"]);
    assert_eq!(go(&mut h, "Forth"), ["+Forth"]);
    assert_eq!(go(&mut h, "Fifth"), ["-Forth", "+Fifth"]);
    assert_eq!(go(&mut h, "Third"), ["-Fifth", "-Second", "+Third"]);
    assert_eq!(go(&mut h, "Second"), ["-Third", "+Second"]);
    assert_eq!(go(&mut h, "First"), ["-Second"]);
    assert_eq!(h.state(), "First");
}

#[test]
fn transition_to_self_exits_and_reenters() {
    let mut h = started();
    go(&mut h, "Forth");
    assert_eq!(go(&mut h, "Forth"), ["-Forth", "+Forth"]);
    assert_eq!(go(&mut h, "First"), ["-Forth", "-Second"]);
    assert_eq!(go(&mut h, "First"), ["-First", "+First"]);
}

#[test]
fn transition_to_descendant_only_enters() {
    let mut h = started();
    assert_eq!(go(&mut h, "Fifth"), ["+Second", "+Fifth"]);
}

#[test]
fn transitions_asked_for_by_a_receiver_run_in_order() {
    let mut h = started();
    go(&mut h, "Third");
    h.clear();
    h.receive("chain").unwrap();
    assert_eq!(
        h.trace(),
        ["-Third", "+Second", "+Forth", "-Forth", "+Fifth"]
    );
}

#[test]
fn transition_asked_for_in_entry_action_is_queued_not_recursive() {
    let mut h = started();
    go(&mut h, "Third");
    h.clear();
    h.receive("bounce").unwrap();
    // Fifth's entry asks for Third; it runs after Fifth is fully entered.
    assert_eq!(
        h.trace(),
        ["-Third", "+Second", "+Fifth", "-Fifth", "-Second", "+Third"]
    );
    assert_eq!(h.state(), "Third");
}

#[test]
fn unhandled_message_bubbles_to_parent() {
    let mut h = started();
    go(&mut h, "Sixth");
    // Sixth has an empty receiver: it takes anything first, even what its
    // ancestors have receivers for.
    h.receive("go Fifth").unwrap();
    assert_eq!(h.machine().log, ["sixth got go Fifth"]);
    assert_eq!(h.state(), "Sixth");
    let mut h = started();
    go(&mut h, "Fifth");
    // Fifth has nothing: Second answers "where", First answers "go".
    h.receive("where").unwrap();
    assert_eq!(h.machine().log.last().unwrap(), "second");
}

#[test]
fn unhandled_by_the_whole_lineage_names_message_and_state() {
    let mut h = started();
    go(&mut h, "Third");
    let err = h.receive("where").unwrap_err();
    assert_eq!(
        err,
        MachineError::Unhandled {
            message: "where".into(),
            state: "Third"
        }
    );
    assert_eq!(
        err.to_string(),
        "unhandled message `where` in state `Third`"
    );
}

#[test]
fn empty_receiver_sees_whole_message() {
    let mut h = started();
    go(&mut h, "Sixth");
    h.receive("hello  there").unwrap();
    assert_eq!(h.machine().log, ["sixth got hello  there"]);
}

#[test]
fn bad_argument_is_a_receiver_error() {
    let mut h = started();
    let err = h.receive("go Nowhere").unwrap_err();
    assert_eq!(err.to_string(), "receiver `go` failed: no state Nowhere");
    // An error ends the machine, so each case needs its own.
    let mut h = started();
    let err = h.receive("go").unwrap_err();
    assert_eq!(err.to_string(), "receiver `go`: missing argument `to`");
}

#[test]
fn receiver_result_error_and_raise_are_machine_errors() {
    let mut h = started();
    go(&mut h, "Third");
    let err = h.receive("fail disk is full").unwrap_err();
    assert_eq!(err.to_string(), "receiver `fail` failed: disk is full");
    let mut h = started();
    go(&mut h, "Third");
    let err = h.receive("raise").unwrap_err();
    assert_eq!(err, MachineError::Raised("raised on purpose".into()));
}

#[test]
fn receiving_before_start_is_refused() {
    let mut h = Harness::new(Example::default());
    assert_eq!(
        h.receive("go First"),
        Err(MachineError::Lifecycle("not running"))
    );
}

#[test]
fn lowest_common_ancestor_of_states() {
    use State::*;
    assert_eq!(lowest_common_ancestor(Forth, Fifth), Some(Second));
    assert_eq!(lowest_common_ancestor(Forth, Third), Some(First));
    assert_eq!(lowest_common_ancestor(Forth, Second), Some(Second));
    assert_eq!(lowest_common_ancestor(First, First), Some(First));
    assert_eq!(Forth.depth(), 2);
    assert!(Forth.is_within(First));
    assert!(!Third.is_within(Second));
}

#[test]
fn description_lists_states_parents_and_receivers() {
    let d = Example::description();
    assert_eq!(d.machine, "Example");
    let sixth = d.state("Sixth").unwrap();
    assert_eq!(sixth.parent, Some("Third"));
    assert!(sixth.empty_receiver);
    let first = d.state("First").unwrap();
    assert!(first.initial);
    assert_eq!(first.receivers, ["go", "arm"]);
    assert!(d.state("Fifth").unwrap().entry);
    let text = d.to_text();
    assert!(
        text.contains(
            "  First (initial): \"go\", \"arm\"\n    Second: exit, \"where\"\n      Forth\n      Fifth: entry\n"
        ),
        "{text}"
    );
    assert!(text.contains("      Sixth: *\n"), "{text}");
    assert!(d.to_dot().contains("subgraph \"cluster_Second\""));
    assert!(d.to_mermaid().contains("state Second {"));
}

#[test]
fn sender_is_visible_to_receivers() {
    #[crate::machine]
    mod echo {
        pub struct Echo;
        pub enum State {
            #[initial]
            Ready,
        }
        impl Echo {
            #[receive(Ready)]
            fn echo(&mut self, cx: &mut Context<Self>, text: &str) {
                let to = cx.sender();
                cx.send(to, text);
            }
        }
    }
    let mut h = Harness::new(echo::Echo);
    h.start().unwrap();
    let other: crate::Address = "127.0.0.1:7".parse().unwrap();
    h.receive_from(other, "hi there").unwrap();
    assert_eq!(
        h.effects(),
        [Effect::Send {
            to: other,
            message: "hi there".into()
        }]
    );
    let _ = PARENT;
}

#[test]
fn exit_actions_that_ran_before_a_failure_do_not_run_again_on_stop() {
    let mut h = started();
    go(&mut h, "Forth");
    h.receive("arm fail second's exit").unwrap();
    h.clear();
    let err = h.receive("go Third").unwrap_err();
    assert_eq!(
        err.to_string(),
        "exit action of state `Second` failed: second's exit failed"
    );
    // Forth was exited; Second's exit ran (and failed). The error ends
    // the machine, which exits what is left, from Second's parent up:
    // Second's exit action does not run again.
    assert_eq!(h.trace(), ["-Forth", "-Second", "-First"]);
    h.clear();
    h.stop().unwrap();
    assert_eq!(h.trace(), Vec::<String>::new());
}
