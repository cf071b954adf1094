//! `wink`: start, stop, message and list machines.
//!
//! This file only reads the arguments and hands them to the subcommand's
//! module: `start`, `stop`, `send`, `list`; `client` is the request/reply
//! plumbing they share.

mod client;
mod list;
mod send;
mod start;
mod stop;
mod top;
mod tree;
mod upgrade;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use wink::Address;

use crate::client::{Client, Failure};

/// Drive Wink machines: start them through a server, send them messages,
/// list and stop them.
#[derive(Debug, Parser)]
#[command(name = "wink", version, about)]
struct Cli {
    /// The server to ask (start, list; stop for its own host's machines).
    #[arg(short, long, global = true, default_value = "127.0.0.1:42000")]
    server: Address,
    /// The address this command listens on for answers.
    #[arg(short, long, global = true, default_value = "127.0.0.1:0")]
    address: Address,
    /// Seconds to wait for an answer (more than 0, up to a day).
    #[arg(
        short,
        long,
        global = true,
        default_value = "5",
        allow_negative_numbers = true,
        value_parser = parse_timeout
    )]
    timeout: Duration,
    /// The cluster's key file (else `WINK_KEY_FILE`): requests are sealed
    /// with it, and only sealed answers are read.
    #[arg(long, global = true)]
    key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Start(start::Args),
    Stop(stop::Args),
    Send(send::Args),
    List(list::Args),
    Upgrade(upgrade::Args),
    Status(tree::StatusArgs),
    Tree(tree::TreeArgs),
    Top(top::Args),
    Stage(StageArgs),
    Keygen(KeygenArgs),
    Completions(CompletionsArgs),
    /// Write the manual pages (`cargo xtask man` runs it).
    #[command(hide = true)]
    Man(ManArgs),
}

/// Build a crate's machine binaries and lay them out as
/// `<dir>/<package>/<Executable>` for `wink-server serve <dir>`; the crate
/// names them in `[package.metadata.wink.machines]` of its `Cargo.toml`.
#[derive(Debug, clap::Args)]
struct StageArgs {
    /// The directory to lay them out in (made if missing).
    dir: PathBuf,
    /// The crate's `Cargo.toml`.
    #[arg(long, default_value = "Cargo.toml")]
    manifest_path: PathBuf,
    /// Build with the debug profile (the default is release).
    #[arg(long)]
    debug: bool,
}

/// Where to write the manual pages.
#[derive(Debug, clap::Args)]
struct ManArgs {
    /// The directory (made if missing).
    dir: PathBuf,
}

/// Print a completion script for a shell: `wink completions bash >
/// /etc/bash_completion.d/wink`.
#[derive(Debug, clap::Args)]
struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

/// Write a new random cluster key to a file that does not exist yet,
/// readable by its owner only.
#[derive(Debug, clap::Args)]
struct KeygenArgs {
    /// The key file to create.
    file: PathBuf,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage(&e),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => fail(&failure.to_string()),
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Man(ManArgs { dir }) = &cli.command {
        use clap::CommandFactory;
        let pages = wink_cli::man::write_pages(Cli::command(), "wink", dir)
            .map_err(|e| Failure::new(format!("cannot write to {}: {e}", dir.display())))?;
        println!("wrote {} pages to {}", pages.len(), dir.display());
        return Ok(());
    }
    if let Command::Completions(CompletionsArgs { shell }) = &cli.command {
        use clap::CommandFactory;
        let mut command = Cli::command();
        clap_complete::generate(*shell, &mut command, "wink", &mut std::io::stdout());
        return Ok(());
    }
    if let Command::Stage(args) = &cli.command {
        let plan = wink_cli::stage::stage(&args.manifest_path, &args.dir, !args.debug)
            .map_err(|e| Failure::new(e.to_string()))?;
        println!(
            "staged {} machines in {}:",
            plan.machines.len(),
            args.dir.display()
        );
        for (name, bin) in &plan.machines {
            println!("  {name} (binary {bin})");
        }
        return Ok(());
    }
    if let Command::Keygen(KeygenArgs { file }) = &cli.command {
        wink::auth::write_new_key_file(file).map_err(|e| Failure::new(e.to_string()))?;
        println!("wrote a new key to {}", file.display());
        return Ok(());
    }
    let keys = wink::auth::load_keys(cli.key_file.as_deref())
        .map_err(|e| Failure::new(e.to_string()))?
        .map(|(_, keys)| keys);
    let mut client = Client::bind(cli.address, cli.timeout, keys)?;
    match cli.command {
        Command::Start(args) => start::run(&mut client, cli.server, args),
        Command::Stop(args) => stop::run(&mut client, cli.server, args),
        Command::Send(args) => send::run(&mut client, args),
        Command::List(args) => list::run(&mut client, cli.server, args),
        Command::Upgrade(args) => upgrade::run(&mut client, cli.server, args),
        Command::Status(args) => tree::status(&mut client, args),
        Command::Tree(args) => tree::tree(&mut client, cli.server, args),
        Command::Top(args) => top::run(&mut client, cli.server, args),
        Command::Keygen(_) | Command::Stage(_) | Command::Completions(_) | Command::Man(_) => {
            Ok(())
        }
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("wink: {message}");
    ExitCode::FAILURE
}

/// Help and version on stdout with status 0; any argument clap refused as
/// one line `wink: …` with status 1, like every other failure.
fn usage(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        // `wink` alone: the help, on stderr.
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::FAILURE
        }
        _ => fail(&one_line(&e.to_string())),
    }
}

/// Clap's message without its `error: ` prefix, usage and pointer to
/// `--help`, on one line.
fn one_line(message: &str) -> String {
    let mut parts = Vec::new();
    for line in message.lines().map(str::trim) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if line.is_empty() {
            continue;
        }
        match line.strip_prefix("tip: ") {
            Some(tip) => parts.push(format!("({tip})")),
            None => parts.push(line.strip_prefix("error: ").unwrap_or(line).to_owned()),
        }
    }
    parts.join(" ")
}

/// `--timeout`: seconds, more than 0 and at most a day.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0 {
        Ok(Duration::from_secs_f64(seconds))
    } else {
        Err(format!(
            "`{text}`: expected more than 0 and at most 86400 seconds"
        ))
    }
}

#[cfg(test)]
mod tests;
