// A receiver argument must be parsable from a word: `Vec<u8>` has no `FromStr`.

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
        fn turn_on(&mut self, cx: &mut Context<Self>, _bytes: Vec<u8>) {
            cx.transition(State::On);
        }
    }
}

fn main() {}
