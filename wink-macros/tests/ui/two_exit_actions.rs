// Two `#[exit(On)]` actions.

#[wink::machine]
mod lamp {
    pub struct Lamp;

    pub enum State {
        #[initial]
        Off,
        On,
    }

    impl Lamp {
        #[receive(Off, "on")]
        fn turn_on(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::On);
        }

        #[exit(On)]
        fn darken(&mut self, _cx: &mut Context<Self>) {}

        #[exit(On)]
        fn quiet(&mut self, _cx: &mut Context<Self>) {}
    }
}

fn main() {}
