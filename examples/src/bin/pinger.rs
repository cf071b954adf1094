//! Runs `pinger` as a machine process.
//!
//! The module is included by path until `examples/src/lib.rs` lists it;
//! then this becomes `wink::run(wink_examples::pinger::Pinger::default())`.
#[path = "../pinger.rs"]
mod pinger;

fn main() -> std::process::ExitCode {
    wink::run(pinger::Pinger::default())
}
