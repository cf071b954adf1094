// A machine with no handlers: the one error is the macro's, and the code
// that runs the machine still type-checks.

#[wink::machine]
mod lamp {
    #[derive(Default)]
    pub struct Lamp;

    pub enum State {
        #[initial]
        On,
    }

    impl Lamp {}
}

fn main() -> std::process::ExitCode {
    wink::run(lamp::Lamp)
}
