//! Runs `greeter-greeter` as a machine process.
fn main() -> std::process::ExitCode {
    wink::run(wink_examples::greeter::Greeter)
}
