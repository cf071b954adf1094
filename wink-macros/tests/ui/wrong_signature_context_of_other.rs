// `cx: &mut Context<u32>`: the context is the machine's own, `Context<Self>`.

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
        fn turn_on(&mut self, cx: &mut Context<u32>) {
            let _ = cx;
        }
    }
}

fn main() {}
