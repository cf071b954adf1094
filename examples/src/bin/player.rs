//! Runs `player` as a machine process.
fn main() -> std::process::ExitCode {
    wink::run(wink_examples::player::Player::default())
}
