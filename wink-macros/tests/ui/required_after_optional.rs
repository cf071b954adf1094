// A required argument cannot follow an optional one.

#[wink::machine]
mod greeter {
    #[derive(Default)]
    pub struct Greeter;

    pub enum State {
        #[initial]
        On,
    }

    impl Greeter {
        #[receive(On, "hello")]
        fn hello(&mut self, _cx: &mut Context<Self>, _title: Option<String>, _name: String) {}
    }
}

fn main() {}
