// `#[parent(A)] A`: a cycle of one state.

#[wink::machine]
mod lamp {
    pub struct Lamp;

    pub enum State {
        #[initial]
        Off,
        #[parent(A)]
        A,
    }

    impl Lamp {
        #[receive(Off, "on")]
        fn turn_on(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::A);
        }
    }
}

fn main() {}
