// `Vec<T>` takes every word left, so it must be the last argument.

#[wink::machine]
mod adder {
    #[derive(Default)]
    pub struct Adder;

    pub enum State {
        #[initial]
        On,
    }

    impl Adder {
        #[receive(On, "sum")]
        fn sum(&mut self, _cx: &mut Context<Self>, _terms: Vec<i64>, _label: String) {}
    }
}

fn main() {}
