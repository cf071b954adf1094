// A generic receiver: each argument needs one concrete type to parse into.

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
        fn turn_on<T: std::str::FromStr>(&mut self, cx: &mut Context<Self>, _level: T) {
            cx.transition(State::On);
        }
    }
}

fn main() {}
