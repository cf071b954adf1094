// Two empty receivers (`#[receive(S)]`) for `Off`.

#[wink::machine]
mod lamp {
    pub struct Lamp;

    pub enum State {
        #[initial]
        Off,
        On,
    }

    impl Lamp {
        #[receive(Off)]
        fn anything(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::On);
        }

        #[receive(Off)]
        fn everything(&mut self, _cx: &mut Context<Self>, _text: &str) {}
    }
}

fn main() {}
