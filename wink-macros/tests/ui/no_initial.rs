// No state is marked `#[initial]`: where does the machine start?

#[wink::machine]
mod lamp {
    pub struct Lamp;

    pub enum State {
        Off,
        On,
    }

    impl Lamp {
        #[receive(Off, "on")]
        fn turn_on(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::On);
        }
    }
}

fn main() {}
