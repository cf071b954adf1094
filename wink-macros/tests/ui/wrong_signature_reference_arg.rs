// A receiver argument `&u8`: arguments are parsed into owned values.

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
        fn turn_on(&mut self, cx: &mut Context<Self>, _level: &u8) {
            cx.transition(State::On);
        }
    }
}

fn main() {}
