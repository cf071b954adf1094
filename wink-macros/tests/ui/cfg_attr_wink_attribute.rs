// Wink attributes cannot be made conditional with `cfg_attr`; `#[cfg]` on
// the method can.

#[wink::machine]
mod lamp {
    #[derive(Default)]
    pub struct Lamp;

    pub enum State {
        #[initial]
        On,
    }

    impl Lamp {
        #[cfg_attr(all(), receive(On, "on"))]
        fn on(&mut self, _cx: &mut Context<Self>) {}

        #[receive(On, "off")]
        fn off(&mut self, _cx: &mut Context<Self>) {}
    }
}

fn main() {}
