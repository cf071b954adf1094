// Handlers run to completion inside the machine's step: no `async fn`.

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
        async fn turn_on(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::On);
        }
    }
}

fn main() {}
