// The states enum is called `States`: it must be `State`.

#[wink::machine]
mod lamp {
    pub struct Lamp;

    pub enum States {
        #[initial]
        Off,
        On,
    }

    impl Lamp {
        #[receive(Off, "on")]
        fn turn_on(&mut self, cx: &mut Context<Self>) {
            cx.transition(States::On);
        }
    }
}

fn main() {}
