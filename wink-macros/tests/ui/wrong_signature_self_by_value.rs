// `self` by value would consume the machine: handlers take `&mut self`.

#[wink::machine]
mod lamp {
    pub struct Lamp;

    pub enum State {
        #[initial]
        Off,
        On,
    }

    impl Lamp {
        #[exit(On)]
        fn darken(self, _cx: &mut Context<Self>) {}
    }
}

fn main() {}
