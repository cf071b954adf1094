//! Runs `crew/Worker` as a machine process.
fn main() -> std::process::ExitCode {
    wink::run(wink_examples::crew::Worker::default())
}
