//! Runs `greeter-host` as a machine process.
fn main() -> std::process::ExitCode {
    wink::run(wink_examples::greeter::Host::default())
}
