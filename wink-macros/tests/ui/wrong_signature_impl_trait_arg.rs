// `impl Trait` argument: receiver arguments need a concrete `FromStr` type.

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
        fn turn_on(&mut self, cx: &mut Context<Self>, _level: impl std::fmt::Display) {
            cx.transition(State::On);
        }
    }
}

fn main() {}
