// Entry actions take no message arguments.

#[wink::machine]
mod lamp {
    pub struct Lamp;

    pub enum State {
        #[initial]
        Off,
        On,
    }

    impl Lamp {
        #[receive(Off, "on")]
        fn turn_on(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::On);
        }

        #[entry(On)]
        fn light(&mut self, _cx: &mut Context<Self>, _level: u8) {}
    }
}

fn main() {}
