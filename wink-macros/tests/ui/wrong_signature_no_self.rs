// A receiver without `&mut self`.

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
        fn turn_on(cx: &mut Context<Self>) {
            cx.transition(State::On);
        }
    }
}

fn main() {}
