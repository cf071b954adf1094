// `#[entry]` goes on a method of the machine's impl, not a free function.

#[wink::machine]
mod lamp {
    #[derive(Default)]
    pub struct Lamp;

    pub enum State {
        #[initial]
        On,
    }

    #[entry(On)]
    fn lit() {}

    impl Lamp {
        #[receive(On, "off")]
        fn off(&mut self, _cx: &mut Context<Self>) {}
    }
}

fn main() {}
