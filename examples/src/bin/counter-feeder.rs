//! Runs `counter/Feeder` as a machine process.
fn main() -> std::process::ExitCode {
    wink::run(wink_examples::counter::feeder::Feeder::default())
}
