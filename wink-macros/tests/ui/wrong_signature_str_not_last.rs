// `&str` takes the rest of the message, so it cannot come before `level`.

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
        fn turn_on(&mut self, cx: &mut Context<Self>, _why: &str, _level: u8) {
            cx.transition(State::On);
        }
    }
}

fn main() {}
