// `enum State {}`: a machine has at least one state.

#[wink::machine]
mod lamp {
    pub struct Lamp;

    pub enum State {}

    impl Lamp {
        #[receive(Off, "on")]
        fn turn_on(&mut self, _cx: &mut Context<Self>) {}
    }
}

fn main() {}
