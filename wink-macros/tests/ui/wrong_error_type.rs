// `Result<(), E>` needs `E: Display`, to log the error: `Vec<u8>` is not.

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
        fn turn_on(&mut self, cx: &mut Context<Self>) -> Result<(), Vec<u8>> {
            cx.transition(State::On);
            Ok(())
        }
    }
}

fn main() {}
