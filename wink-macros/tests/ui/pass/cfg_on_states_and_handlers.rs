// `#[cfg]` on a state and on handlers works as on any Rust item: what is
// configured out is not there, in the table, the description and dispatch.

#[wink::machine]
mod lamp {
    #[derive(Default)]
    pub struct Lamp {
        pub seen: Vec<&'static str>,
    }

    pub enum State {
        #[initial]
        On,
        #[cfg(any())]
        #[parent(On)]
        Dimmed,
    }

    impl Lamp {
        #[cfg(any())]
        #[entry(Dimmed)]
        fn dimmed(&mut self, _cx: &mut Context<Self>) {}

        #[cfg(any())]
        #[receive(On, "dim")]
        fn dim(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::Dimmed);
        }

        #[cfg(all())]
        #[receive(On, "glow")]
        fn glow(&mut self, _cx: &mut Context<Self>) {
            self.seen.push("glow");
        }

        #[cfg(any())]
        #[entry(On)]
        fn never(&mut self, _cx: &mut Context<Self>) {
            self.seen.push("never");
        }
    }
}

fn main() {
    use wink::hsm::Machine;
    let mut h = wink::testing::Harness::new(lamp::Lamp::default());
    h.start().unwrap();
    h.receive("glow").unwrap();
    assert!(h.receive("dim").is_err(), "no receiver for dim");
    assert_eq!(h.machine().seen, ["glow"]);
    let d = lamp::Lamp::description();
    assert_eq!(d.states.len(), 1);
    assert!(!d.states[0].entry);
    assert_eq!(d.states[0].receivers, ["glow"]);
}
