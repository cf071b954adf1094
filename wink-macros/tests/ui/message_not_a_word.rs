// Message names are one word: "turn on" has a space, "" is empty.

#[wink::machine]
mod lamp {
    pub struct Lamp;

    pub enum State {
        #[initial]
        Off,
        On,
    }

    impl Lamp {
        #[receive(Off, "turn on")]
        fn turn_on(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::On);
        }

        #[receive(On, "")]
        fn nothing(&mut self, _cx: &mut Context<Self>) {}
    }
}

fn main() {}
