// A machine has one states enum: the second is the one error.

#[wink::machine]
mod lamp {
    #[derive(Default)]
    pub struct Lamp;

    pub enum State {
        #[initial]
        On,
    }

    pub enum State {
        #[initial]
        Off,
    }

    impl Lamp {
        #[receive(On, "off")]
        fn off(&mut self, _cx: &mut Context<Self>) {}
    }
}

fn main() {
    let _ = wink::testing::Harness::new(lamp::Lamp);
}
