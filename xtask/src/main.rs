//! Project tasks: `cargo xtask demo`, `cargo xtask stage <dir>`.
use std::process::ExitCode;

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "demo" | "stage" => {
            eprintln!("cargo xtask {task}: coming with wink-server (issue 4); `cargo test --workspace` runs the tests today");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: cargo xtask demo | cargo xtask stage <dir>");
            ExitCode::from(2)
        }
    }
}
