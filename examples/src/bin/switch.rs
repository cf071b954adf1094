//! Runs `switch` as a machine process.
fn main() -> std::process::ExitCode {
    wink::run(wink_examples::switch::Switch::default())
}
