// `#[parent(Of)]`: a typo for `Off`, which is no declared state.

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
        #[receive(Off, "on")]
        fn turn_on(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::On);
        }
    }
}

fn main() {}
