// An entry action without `cx: &mut Context<Self>`.

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
        fn light(&mut self) {}
    }
}

fn main() {}
