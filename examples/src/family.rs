//! The seed's family: a parent that starts a child and restarts it whenever
//! it exits, and a child that errors as soon as it starts.

use std::time::Duration;

/// The parent.
#[wink::machine]
pub mod parent {
    use super::Duration;

    /// How many children it started.
    #[derive(Debug, Default)]
    pub struct Parent {
        /// Children started so far.
        pub spawned: u32,
        /// How long to wait before restarting a child (first argument, in
        /// milliseconds; default 1000).
        pub retry: Option<Duration>,
    }

    /// Its one state.
    pub enum State {
        /// Starts a child on entry; re-entered to restart it.
        #[initial]
        Main,
    }

    impl Parent {
        #[entry(Main)]
        fn enter(&mut self, cx: &mut Context<Self>) -> Result<(), String> {
            info!(cx.log(), "Parent: OnEntry");
            if self.retry.is_none() {
                let ms = match cx.args().first() {
                    Some(ms) => ms.parse().map_err(|e| format!("retry delay `{ms}`: {e}"))?,
                    None => 1000,
                };
                self.retry = Some(Duration::from_millis(ms));
            }
            self.spawned += 1;
            cx.spawn("family/Child").map_err(|e| e.to_string())
        }

        #[exit(Main)]
        fn exit(&mut self, cx: &mut Context<Self>) {
            info!(cx.log(), "Parent: OnExit");
        }

        #[receive(Main, "started")]
        fn started(&mut self, cx: &mut Context<Self>, child: String) {
            info!(cx.log(), "Parent: {} {} has started", cx.sender(), child);
        }

        #[receive(Main, "pulsed")]
        fn pulsed(&mut self, cx: &mut Context<Self>, child: String) {
            info!(cx.log(), "Parent: {} {} has pulsed", cx.sender(), child);
        }

        #[receive(Main, "errored")]
        fn errored(&mut self, cx: &mut Context<Self>, child: String, error: &str) {
            info!(
                cx.log(),
                "Parent: {} {} has errored: {}",
                cx.sender(),
                child,
                error
            );
        }

        #[receive(Main, "exited")]
        fn exited(&mut self, cx: &mut Context<Self>, child: String, reason: ExitReason) {
            info!(
                cx.log(),
                "Parent: {} {} has exited ({})",
                cx.sender(),
                child,
                reason
            );
            let me = cx.address();
            cx.send_after(self.retry.unwrap_or_default(), me, "retry");
        }

        #[receive(Main, "retry")]
        fn retry(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::Main);
        }
    }
}

/// The child.
#[wink::machine]
pub mod child {
    /// Nothing to keep.
    #[derive(Debug, Default)]
    pub struct Child;

    /// Its one state.
    pub enum State {
        /// Errors on entry.
        #[initial]
        Main,
    }

    impl Child {
        #[entry(Main)]
        fn enter(&mut self, cx: &mut Context<Self>) {
            cx.error("AHHHHH");
        }
    }
}

pub use child::Child;
pub use parent::Parent;

#[cfg(test)]
mod tests {
    use super::*;
    use wink::hsm::{Effect, MachineError};
    use wink::testing::Harness;

    #[test]
    fn child_errors_on_start() {
        let mut h = Harness::new(Child);
        assert_eq!(h.start(), Err(MachineError::Raised("AHHHHH".into())));
    }

    #[test]
    fn parent_spawns_and_respawns_after_exit() {
        let mut h = Harness::new(Parent::default()).with_args(["10"]);
        h.start().unwrap();
        assert!(
            matches!(&h.effects()[0], Effect::Spawn { name, .. } if name.to_string() == "family/Child")
        );
        let child = wink::testing::local(60000);
        h.child_started("family/Child", child).unwrap();
        h.receive_from(child, "errored family/Child AHHHHH")
            .unwrap();
        h.receive_from(child, "exited family/Child error").unwrap();
        assert!(matches!(&h.effects()[1], Effect::SendAt { message, .. } if message == "retry"));
        h.clear();
        h.receive("retry").unwrap();
        assert_eq!(h.trace(), ["-Main", "+Main"]);
        assert_eq!(h.machine().spawned, 2);
    }
}
