// `cx: &Context<Self>`: the context must be `&mut` (transitions, sends…).

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
        fn turn_on(&mut self, cx: &Context<Self>) {
            let _ = cx;
        }
    }
}

fn main() {}
