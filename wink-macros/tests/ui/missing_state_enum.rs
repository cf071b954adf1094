// No `enum State` at all: the module does not say which states exist.

#[wink::machine]
mod lamp {
    pub struct Lamp;

    impl Lamp {
        #[receive(Off, "on")]
        fn turn_on(&mut self, _cx: &mut Context<Self>) {}
    }
}

fn main() {}
