// A handler returning `i32`: handlers return `()` or `Result<(), E: Display>`.

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
        fn turn_on(&mut self, cx: &mut Context<Self>) -> i32 {
            cx.transition(State::On);
            0
        }
    }
}

fn main() {}
