// A message name is a string literal, not a byte string.

#[wink::machine]
mod lamp {
    #[derive(Default)]
    pub struct Lamp;

    pub enum State {
        #[initial]
        On,
    }

    impl Lamp {
        #[receive(On, b"on")]
        fn on(&mut self, _cx: &mut Context<Self>) {}
    }
}

fn main() {}
