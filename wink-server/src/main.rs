//! `wink-server`: the per-host server that starts machines from a directory,
//! knows where they listen, stops them, and reports the ones that die.
//!
//! The server itself is [`wink::server::ServerCore`] driven by
//! [`wink::runtime::serve`]; this binary reads the command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use wink::runtime::{Config, Endpoint, ServeSettings, Signals};
use wink::server::ServerConfig;
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
    /// Print a completion script for `shell` (bash, zsh, fish, elvish,
    /// powershell): `wink-server completions bash > /etc/bash_completion.d/wink-server`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (`cargo xtask man` runs it).
    #[command(hide = true)]
    Man {
        /// The directory (made if missing).
        dir: PathBuf,
    },
    /// Serve the machines in <DIR>: `<DIR>/<package>/<executable>`.
    Serve(ServeArgs),
}

/// What `wink-server serve` takes.
#[derive(Debug, clap::Args)]
struct ServeArgs {
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
    /// Machines on this server at most (starts not yet forked and
    /// starts waiting for a port count too).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    max_machines: u64,
    /// Starts admitted per second, in bursts of as many.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    max_starts_per_second: u32,
    /// The cluster's key file (else `WINK_KEY_FILE`): every datagram is
    /// then sealed, and only sealed ones are read; machines started
    /// here read the same file.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// `text` (lines for a person) or `json` (one JSON object a line),
    /// for the server and the machines it starts (`WINK_LOG_FORMAT`).
    #[arg(long, default_value = "text")]
    log_format: wink::log::Format,
}

fn main() -> ExitCode {
    let args = match Cli::parse().command {
        Command::Man { dir } => {
            use clap::CommandFactory;
            return match wink_cli::man::write_pages(Cli::command(), "wink-server", &dir) {
                Ok(pages) => {
                    println!("wrote {} pages to {}", pages.len(), dir.display());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("cannot write to {}: {e}", dir.display())),
            };
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "wink-server", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Serve(args) => args,
    };
    let ServeArgs {
        dir,
        address,
        log_dir,
        grace_ms,
        max_machines,
        max_starts_per_second,
        key_file,
        log_format,
    } = args;
    // Read by this process's loggers and passed on to every machine.
    std::env::set_var(wink::log::LOG_FORMAT_ENV, log_format.to_string());
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
    let mut config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => return fail(&e.to_string()),
    };
    let key_file = match wink::auth::load_keys(key_file.as_deref()) {
        Ok(Some((path, keys))) => {
            if let Err(e) = config.check_for_keys() {
                return fail(&e.to_string());
            }
            config.transport.keys = Some(keys);
            Some(path)
        }
        Ok(None) => None,
        Err(e) => return fail(&e.to_string()),
    };
    // Before the socket and the worker threads: every thread has SIGTERM,
    // SIGINT and SIGHUP blocked, and the loop reads them from a descriptor.
    let signals = match Signals::new() {
        Ok(signals) => signals,
        Err(e) => return fail(&format!("cannot watch signals: {e}")),
    };
    let endpoint = match Endpoint::bind(address, config.transport.clone()) {
        Ok(endpoint) => endpoint,
        Err(e) => return fail(&format!("cannot listen on {address}: {e}")),
    };
    let settings = ServeSettings {
        dir,
        log_dir,
        server: ServerConfig {
            grace: Duration::from_millis(grace_ms),
            max_machines: usize::try_from(max_machines).unwrap_or(usize::MAX),
            starts_per_second: max_starts_per_second,
            log_messages: config.log_messages,
        },
        key_file,
    };
    match wink::runtime::serve(endpoint, settings, wink::log::stdout(), &signals) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("wink-server: {message}");
    ExitCode::FAILURE
}
