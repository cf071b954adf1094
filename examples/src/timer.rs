//! After: exits by itself after a delay, using `send_after` to message
//! itself.

use std::time::Duration;

/// The timer machine.
#[wink::machine]
pub mod after {
    use super::Duration;

    /// Nothing to keep.
    #[derive(Debug, Default)]
    pub struct After;

    /// Its one state.
    pub enum State {
        /// Waiting for the delay (first argument, milliseconds; default
        /// 1000) to pass.
        #[initial]
        Waiting,
    }

    impl After {
        #[entry(Waiting)]
        fn enter(&mut self, cx: &mut Context<Self>) -> Result<(), String> {
            let ms: u64 = match cx.args().first() {
                Some(ms) => ms.parse().map_err(|e| format!("delay `{ms}`: {e}"))?,
                None => 1000,
            };
            info!(cx.log(), "After: exiting in {} ms", ms);
            let me = cx.address();
            cx.send_after(Duration::from_millis(ms), me, "exit");
            Ok(())
        }

        #[receive(Waiting, "exit")]
        fn exit(&mut self, cx: &mut Context<Self>) {
            info!(cx.log(), "After: time is up");
            cx.exit();
        }
    }
}

pub use after::After;

#[cfg(test)]
mod tests {
    use super::*;
    use wink::hsm::Effect;
    use wink::testing::{Harness, MACHINE};

    #[test]
    fn schedules_its_own_exit() {
        let mut h = Harness::new(After).with_args(["250"]);
        h.start().unwrap();
        assert!(
            matches!(h.effects(), [Effect::SendAt { to, message, .. }] if *to == MACHINE && message == "exit")
        );
        h.receive_from(MACHINE, "exit").unwrap();
        assert_eq!(h.effects().last(), Some(&Effect::Exit));
    }
}
