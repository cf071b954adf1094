//! Runs `counter/Counter` as a machine process.
fn main() -> std::process::ExitCode {
    wink::run(wink_examples::counter::counter::Counter::default())
}
