//! `wink`: start, stop, message and list machines.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use wink::runtime::{Config, Endpoint, DEFAULT_SERVER_PORT};
use wink::Address;

/// Drive Wink machines: start them through a server, send them messages,
/// list and stop them.
#[derive(Debug, Parser)]
#[command(name = "wink", version, about)]
struct Cli {
    /// The server to ask (for start and list); default: this host's.
    #[arg(short, long, global = true, default_value = "127.0.0.1:42000")]
    server: Address,
    /// The address this command listens on for answers.
    #[arg(short, long, global = true, default_value = "127.0.0.1:0")]
    address: Address,
    /// Seconds to wait for an answer (up to a day).
    #[arg(short, long, global = true, default_value = "5", value_parser = parse_timeout)]
    timeout: Duration,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a machine and wait until it says `started`.
    Start {
        /// Follow its lifecycle (`pulsed`, `errored`, `exited`) until it
        /// exits.
        #[arg(short, long)]
        follow: bool,
        /// The machine: package/executable[#tag].
        name: String,
        /// Where it listens: :<port> or <ip>:<port> (default: any port).
        at: Option<String>,
        /// Arguments for the machine.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Stop a machine started by a server.
    Stop {
        /// The machine's address: :<port> or <ip>:<port>.
        machine: Address,
    },
    /// Send a message to a machine and print its replies.
    Send {
        /// How many replies to wait for and print.
        #[arg(short, long, default_value_t = 0)]
        replies: usize,
        /// The machine's address.
        machine: Address,
        /// The message: a name and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        message: Vec<String>,
    },
    /// List the machines a server started.
    List {
        /// The server's host or address (default: --server).
        host: Option<String>,
    },
}

/// A failure, printed as one line on stderr.
#[derive(Debug)]
struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match smol::block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("wink: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let config = Config::from_env()?;
    let mut endpoint = Endpoint::bind(cli.address, config.transport)
        .map_err(|e| Failure(format!("cannot listen on {}: {e}", cli.address)))?;
    let timeout = cli.timeout;
    match cli.command {
        Command::Start {
            follow,
            name,
            at,
            args,
        } => {
            let mut request = format!("start {name} {}", at.as_deref().unwrap_or(":0"));
            for arg in &args {
                request.push(' ');
                request.push_str(arg);
            }
            endpoint.send(cli.server, &request)?;
            start(&mut endpoint, cli.server, &name, follow, timeout).await
        }
        Command::Stop { machine } => {
            let server = server_of(machine, cli.server);
            endpoint.send(server, &format!("stop {}", machine.port()))?;
            let from_server = |from: Address, _: &str| from == server;
            let mut wait = timeout;
            loop {
                let (_, reply) =
                    answer(&mut endpoint, wait, &server.to_string(), from_server).await?;
                let words: Vec<&str> = reply.split_ascii_whitespace().collect();
                match words.as_slice() {
                    // The machine has until the grace period ends to exit.
                    ["stopping", _, grace_ms] => {
                        let grace = grace_ms
                            .parse()
                            .map(Duration::from_millis)
                            .unwrap_or_default();
                        wait = timeout + grace;
                    }
                    ["stopped", ..] => {
                        println!("stopped {machine}");
                        return Ok(());
                    }
                    ["error", ..] => {
                        let problem = reply.strip_prefix("error").unwrap_or(&reply).trim();
                        return Err(Failure(format!("{server}: {problem}")));
                    }
                    _ => return Err(Failure(format!("{server}: unexpected answer `{reply}`"))),
                }
            }
        }
        Command::Send {
            replies,
            machine,
            message,
        } => {
            endpoint.send(machine, &message.join(" "))?;
            for _ in 0..replies {
                let (_, reply) = answer(&mut endpoint, timeout, &machine.to_string(), |from, _| {
                    from == machine
                })
                .await?;
                println!("{reply}");
            }
            if !endpoint.settle(timeout).await? {
                return Err(Failure(format!(
                    "{machine} did not acknowledge the message"
                )));
            }
            if endpoint.stats().gave_up > 0 {
                return Err(Failure(format!(
                    "{machine} did not acknowledge the message"
                )));
            }
            Ok(())
        }
        Command::List { host } => {
            let server = match host {
                None => cli.server,
                Some(host) => parse_host(&host)?,
            };
            endpoint.send(server, "list")?;
            let mut rows = Vec::new();
            loop {
                let (_, reply) = answer(&mut endpoint, timeout, &server.to_string(), |from, _| {
                    from == server
                })
                .await?;
                let words: Vec<&str> = reply.split_ascii_whitespace().collect();
                match words.as_slice() {
                    ["machine", address, pid, name, parent, uptime] => rows.push([
                        address.to_string(),
                        pid.to_string(),
                        name.to_string(),
                        parent.to_string(),
                        format!("{uptime}s"),
                    ]),
                    ["listed", ..] => break,
                    ["error", ..] => return Err(Failure(format!("{server}: {reply}"))),
                    _ => return Err(Failure(format!("{server}: unexpected answer `{reply}`"))),
                }
            }
            print_table(&["ADDRESS", "PID", "NAME", "PARENT", "UPTIME"], &rows);
            Ok(())
        }
    }
}

/// Waits for `started` from the new machine (or the server's refusal), and
/// with `follow`, prints its lifecycle until `exited`.
async fn start(
    endpoint: &mut Endpoint,
    server: Address,
    name: &str,
    follow: bool,
    timeout: Duration,
) -> Result<(), Failure> {
    let (from, reply) = answer(
        endpoint,
        timeout,
        &format!("{name} via {server}"),
        |_, _| true,
    )
    .await?;
    let word = reply.split_ascii_whitespace().next().unwrap_or("");
    match word {
        "started" => println!("{from} {reply}"),
        "error" if from == server => {
            let problem = reply.strip_prefix("error").unwrap_or(&reply).trim();
            return Err(Failure(format!("{server}: {problem}")));
        }
        "died" => return Err(Failure(format!("{name} died before it started: {reply}"))),
        _ => return Err(Failure(format!("unexpected answer from {from}: `{reply}`"))),
    }
    if !follow {
        return Ok(());
    }
    let mut errored = None;
    loop {
        let Some((from, reply)) = endpoint.recv_timeout(Duration::from_secs(3600)).await? else {
            continue;
        };
        println!("{from} {reply}");
        let word = reply.split_ascii_whitespace().next().unwrap_or("");
        match word {
            // An exit after an error is a failure.
            "exited" => return errored.map_or(Ok(()), Err),
            "errored" => errored = Some(Failure(format!("{name} errored: {reply}"))),
            "died" => return Err(Failure(format!("{name} died: {reply}"))),
            _ => {}
        }
    }
}

/// The first message accepted by `wanted`, or an error naming `who` if none
/// arrives within `timeout`.
async fn answer(
    endpoint: &mut Endpoint,
    timeout: Duration,
    who: &str,
    wanted: impl Fn(Address, &str) -> bool,
) -> Result<(Address, String), Failure> {
    let give_up = Instant::now() + timeout;
    loop {
        let left = give_up.saturating_duration_since(Instant::now());
        match endpoint.recv_timeout(left).await? {
            Some((from, text)) if wanted(from, &text) => return Ok((from, text)),
            Some(_) => {}
            None => {
                return Err(Failure(format!(
                    "no answer from {who} within {:.1}s (is it running?)",
                    timeout.as_secs_f64()
                )));
            }
        }
    }
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

/// The server of the host `machine` is on: `--server` for this host's
/// machines, `<ip>:42000` for another host's.
fn server_of(machine: Address, server: Address) -> Address {
    if machine.ip() == server.ip() || (machine.ip().is_loopback() && server.ip().is_loopback()) {
        server
    } else {
        machine.with_port(DEFAULT_SERVER_PORT)
    }
}

/// `10.0.0.2` (default port) or a full address.
fn parse_host(host: &str) -> Result<Address, Failure> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(Address::new(std::net::SocketAddr::new(
            ip,
            DEFAULT_SERVER_PORT,
        )));
    }
    host.parse().map_err(|e| Failure(format!("{e}")))
}

fn print_table(header: &[&str], rows: &[[String; 5]]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
