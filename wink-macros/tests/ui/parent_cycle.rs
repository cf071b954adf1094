// `A` is inside `B` and `B` is inside `A`: neither has a way up to a root.

#[wink::machine]
mod lamp {
    pub struct Lamp;

    pub enum State {
        #[initial]
        Off,
        #[parent(B)]
        A,
        #[parent(A)]
        B,
    }

    impl Lamp {
        #[receive(Off, "on")]
        fn turn_on(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::A);
        }
    }
}

fn main() {}
