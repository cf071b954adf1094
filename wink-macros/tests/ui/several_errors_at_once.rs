// Three unrelated mistakes: all three are reported in one compile.

#[wink::machine]
mod lamp {
    pub struct Lamp;

    pub enum State {
        #[initial]
        Off,
        #[parent(Of)]
        On,
    }

    impl Lamp {
        #[receive(Off, "turn on")]
        fn turn_on(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::On);
        }

        #[exit(On)]
        fn darken(&self, _cx: &mut Context<Self>) {}
    }
}

fn main() {}
