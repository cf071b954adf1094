// Machine structs are not generic: one error says so.

#[wink::machine]
mod lamp {
    #[derive(Default)]
    pub struct Lamp<T> {
        pub value: T,
    }

    pub enum State {
        #[initial]
        On,
    }

    impl<T: 'static> Lamp<T> {
        #[receive(On, "off")]
        fn off(&mut self, _cx: &mut Context<Self>) {}
    }
}

fn main() {
    let _ = wink::testing::Harness::new(lamp::Lamp::<u8>::default());
}
