// A receiver taking `&self`: handlers change the machine, so `&mut self`.

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
        fn turn_on(&self, cx: &mut Context<Self>) {
            cx.transition(State::On);
        }
    }
}

fn main() {}
