// The rest of a message is lent for the call only: `&'static str` cannot be.

#[wink::machine]
mod lamp {
    #[derive(Default)]
    pub struct Lamp;

    pub enum State {
        #[initial]
        On,
    }

    impl Lamp {
        #[receive(On, "say")]
        fn say(&mut self, _cx: &mut Context<Self>, _text: &'static str) {}
    }
}

fn main() {}
