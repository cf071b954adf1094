//! Runs `time-after` as a machine process.
fn main() -> std::process::ExitCode {
    wink::run(wink_examples::timer::After)
}
