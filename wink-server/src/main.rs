//! `wink-server`: the per-host server that starts machines from a directory,
//! knows where they listen, stops them, and reports the ones that die.

mod request;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use wink::runtime::{Config, Endpoint};
use wink::Address;

/// Starts, lists and stops Wink machines on this host.
#[derive(Debug, Parser)]
#[command(name = "wink-server", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the machines in <DIR>: `<DIR>/<package>/<executable>`.
    Serve {
        /// The directory of machine executables.
        dir: PathBuf,
        /// Where to listen for requests.
        #[arg(short, long, default_value = "127.0.0.1:42000")]
        address: Address,
        /// Write each machine's log to its own file in this directory
        /// instead of the server's stdout.
        #[arg(long)]
        log_dir: Option<PathBuf>,
        /// Milliseconds a machine has to exit after SIGTERM before SIGKILL.
        #[arg(long, default_value_t = 5000)]
        grace_ms: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::Serve {
        dir,
        address,
        log_dir,
        grace_ms,
    } = cli.command;
    let dir = match dir.canonicalize() {
        Ok(dir) if dir.is_dir() => dir,
        Ok(dir) => return fail(&format!("{} is not a directory", dir.display())),
        Err(e) => return fail(&format!("cannot serve {}: {e}", dir.display())),
    };
    if let Some(log_dir) = &log_dir {
        if let Err(e) = std::fs::create_dir_all(log_dir) {
            return fail(&format!(
                "cannot create log directory {}: {e}",
                log_dir.display()
            ));
        }
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => return fail(&e.to_string()),
    };
    let endpoint = match Endpoint::bind(address, config.transport) {
        Ok(endpoint) => endpoint,
        Err(e) => return fail(&format!("cannot listen on {address}: {e}")),
    };
    let settings = server::Settings {
        dir,
        log_dir,
        grace: Duration::from_millis(grace_ms),
    };
    let server = server::Server::new(endpoint, settings, wink::log::stdout());
    match smol::block_on(server.serve()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("socket failed: {e}")),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("wink-server: {message}");
    ExitCode::FAILURE
}
