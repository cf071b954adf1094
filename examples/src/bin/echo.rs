//! Runs `echo` as a machine process.
fn main() -> std::process::ExitCode {
    wink::run(wink_examples::echo::Echo::default())
}
