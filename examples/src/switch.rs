//! The seed's switch: `Off`, and `On` inside it. `on` and `off` are Off's
//! receivers, so they work in both states.

/// The switch machine.
#[wink::machine]
pub mod switch {
    /// How many times it was switched on.
    #[derive(Debug, Default)]
    pub struct Switch {
        /// Times switched on.
        pub flips: u32,
    }

    /// Its states.
    pub enum State {
        /// Off (and the parent of On).
        #[initial]
        Off,
        /// On.
        #[parent(Off)]
        On,
    }

    impl Switch {
        #[entry(Off)]
        fn enter_off(&mut self, cx: &mut Context<Self>) {
            info!(cx.log(), "Switch is OFF");
        }

        #[entry(On)]
        fn enter_on(&mut self, cx: &mut Context<Self>) {
            self.flips += 1;
            info!(cx.log(), "Switch is ON");
        }

        #[receive(Off, "on")]
        fn turn_on(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::On);
        }

        #[receive(Off, "off")]
        fn turn_off(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::Off);
        }
    }
}

pub use switch::Switch;

#[cfg(test)]
mod tests {
    use super::*;
    use wink::testing::Harness;

    #[test]
    fn on_and_off_from_either_state() {
        let mut h = Harness::new(Switch::default());
        h.start().unwrap();
        h.receive("on").unwrap();
        assert_eq!(h.state(), "On");
        h.receive("off").unwrap();
        assert_eq!(h.state(), "Off");
        assert_eq!(h.trace(), ["+Off", "+On", "-On"]);
        assert_eq!(h.machine().flips, 1);
    }
}
