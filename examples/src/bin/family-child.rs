//! Runs `family-child` as a machine process.
fn main() -> std::process::ExitCode {
    wink::run(wink_examples::family::Child)
}
