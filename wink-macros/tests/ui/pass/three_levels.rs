// A valid machine using every form the macro accepts: three levels of
// states, entry and exit actions, named receivers with typed arguments and a
// last `&str`, a `#[receive(S)]` empty receiver, and handlers returning `()`
// or `Result<(), String>`. It must compile, and `main` drives it.

#[wink::machine]
mod heater {
    #[derive(Default)]
    pub struct Heater {
        pub target: i32,
        pub notes: Vec<String>,
    }

    pub enum State {
        #[initial]
        Plugged,
        #[parent(Plugged)]
        Idle,
        #[parent(Plugged)]
        Heating,
        #[parent(Heating)]
        Boost,
    }

    impl Heater {
        #[entry(Heating)]
        fn start_heating(&mut self, cx: &mut Context<Self>) {
            info!(cx.log(), "heating to {}", self.target);
        }

        #[exit(Heating)]
        fn stop_heating(&mut self, _cx: &mut Context<Self>) -> Result<(), String> {
            self.notes.push("stopped".to_owned());
            Ok(())
        }

        #[receive(Plugged, "heat")]
        fn heat(
            &mut self,
            cx: &mut Context<Self>,
            target: i32,
            minutes: u32,
        ) -> Result<(), String> {
            if minutes == 0 {
                return Err("heat for at least one minute".to_owned());
            }
            self.target = target;
            cx.transition(State::Heating);
            Ok(())
        }

        #[receive(Heating, "boost")]
        fn boost(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::Boost);
        }

        #[receive(Plugged, "note")]
        fn note(&mut self, _cx: &mut Context<Self>, level: u8, text: &str) {
            self.notes.push(format!("{level}: {text}"));
        }

        #[receive(Boost)]
        fn anything_while_boosting(&mut self, cx: &mut Context<Self>, text: &str) {
            self.notes.push(format!("ignored {text}"));
            cx.transition(State::Idle);
        }
    }
}

fn main() {
    let mut h = wink::testing::Harness::new(heater::Heater::default());
    h.start().unwrap();
    h.receive("heat 21 5").unwrap();
    h.receive("note 2 warm and cosy").unwrap();
    h.receive("boost").unwrap();
    h.receive("heat 30 1").unwrap();
    assert_eq!(h.state(), "Idle");
    assert_eq!(h.machine().target, 21);
    assert_eq!(
        h.machine().notes,
        ["2: warm and cosy", "ignored heat 30 1", "stopped"]
    );
    assert!(h.receive("heat 20 0").is_err());
}
