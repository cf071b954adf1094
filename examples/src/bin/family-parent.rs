//! Runs `family-parent` as a machine process.
fn main() -> std::process::ExitCode {
    wink::run(wink_examples::family::Parent::default())
}
