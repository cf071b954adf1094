//! Runs `pinger/Pinger` as a machine process.
fn main() -> std::process::ExitCode {
    wink::run(wink_examples::pinger::Pinger::default())
}
