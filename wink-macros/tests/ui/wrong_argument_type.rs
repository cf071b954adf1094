// A receiver argument must be parsable from a word: `Duration` has no `FromStr`.

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
        fn turn_on(&mut self, cx: &mut Context<Self>, _after: std::time::Duration) {
            cx.transition(State::On);
        }
    }
}

fn main() {}
