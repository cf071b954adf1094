#[wink::machine]
mod lamp {
    pub struct Lamp;

    pub enum State {
        #[initial]
        Off,
        #[parent(Off)]
        On,
    }

    impl Lamp {
        #[receive(Off, "go")]
        #[receive(On, "stay")]
        fn go(&mut self, _cx: &mut Context<Self>) {}
    }
}

fn main() {}
