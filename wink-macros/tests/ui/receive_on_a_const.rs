// `#[receive]` goes on a method, not a const.

#[wink::machine]
mod lamp {
    #[derive(Default)]
    pub struct Lamp;

    pub enum State {
        #[initial]
        On,
    }

    impl Lamp {
        #[receive(On, "level")]
        const LEVEL: u8 = 3;

        #[receive(On, "off")]
        fn off(&mut self, _cx: &mut Context<Self>) {}
    }
}

fn main() {}
