//! `wink-loss`: Wink across a lossy link between two hosts on this machine
//! (network namespaces joined by veth, iptables dropping a share of the
//! packets each way on one end), on real processes: `wink-server` serving
//! the example machines and `echo/Echo` on the first host; on the second, a
//! load client sending `ping <i>` with a window in flight, or (`--pinger
//! <n>`) `pinger/Pinger` started through that host's own server. It prints
//! one line of counts and exits 1 if any is wrong (a reply lost,
//! duplicated, reordered, a message given up on), 2 if it could not run.
//!
//! It needs root, and the binaries of the same build (`cargo build
//! --release -p wink-server -p wink-cli -p wink-examples -p wink-tests`;
//! `scripts/loss.sh` does it and runs this).
//!
//! The load client must send from the second host, so this program runs a
//! copy of itself there (`ip netns exec <ns> wink-loss --client …`, hidden
//! options) and reads its line back.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use wink::runtime::{Config, Endpoint};
use wink::Address;
use wink_tests::loss::{self, Lab, Load};
use wink_tests::netns::Hosts;
use wink_tests::{Context, Error, Result};

/// Wink over a lossy link between two network namespaces: every reply
/// must come back once and in order.
#[derive(Debug, Parser)]
#[command(name = "wink-loss")]
struct Cli {
    /// Share of packets dropped each way on the first host's end of the
    /// link, 0 to 1.
    #[arg(long, default_value_t = 0.3, value_parser = parse_loss)]
    loss: f64,
    /// Messages the load client sends.
    #[arg(long, default_value_t = 10_000)]
    messages: u64,
    /// Most messages in flight (sent, reply not back).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..))]
    in_flight: u64,
    /// Instead of the load client, run `pinger/Pinger <echo> <COUNT>` on the
    /// second host's server and report whether it finished.
    #[arg(long, value_name = "COUNT")]
    pinger: Option<u64>,
    /// The third byte of the hosts' addresses, `10.199.<SUBNET>.1` and `.2`.
    #[arg(long, default_value_t = 250)]
    subnet: u8,
    /// Seconds the run may take at most (the transport of this writing
    /// takes 9 to 13 minutes for 10,000 messages at 30% loss, and over
    /// 90 at 50%).
    #[arg(long, default_value_t = 1800)]
    timeout_s: u64,

    /// Be the load client, sending to this echo.
    #[arg(long, hide = true)]
    client: Option<Address>,
    /// The load client's own address.
    #[arg(long, hide = true, default_value = "0.0.0.0:0")]
    bind: Address,
    /// The load client's patience without a datagram from the echo.
    #[arg(long, hide = true, default_value_t = 60_000)]
    patience_ms: u64,
    /// The load client's timeout (the lab passes its own).
    #[arg(long, hide = true)]
    timeout_ms: Option<u64>,
}

impl Cli {
    fn load(&self) -> Load {
        Load {
            messages: self.messages,
            in_flight: self.in_flight,
            patience: Duration::from_millis(self.patience_ms),
            timeout: self
                .timeout_ms
                .map_or(Duration::from_secs(self.timeout_s), Duration::from_millis),
        }
    }
}

fn parse_loss(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{text}` is not a share from 0 to 1 (0.3 is 30%)")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.client {
        Some(echo) => client(&cli, echo).map(|()| true),
        None => lab(&cli),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("wink-loss: {e}");
            ExitCode::from(2)
        }
    }
}

/// The load client, in the second host's namespace: prints its counts;
/// judging them is the lab's part.
fn client(cli: &Cli, echo: Address) -> Result<()> {
    let config = Config::from_env().context("bad WINK_* environment")?;
    let mut endpoint = Endpoint::bind(cli.bind, config.transport)
        .with_context(|| format!("cannot bind the load client at {}", cli.bind))?;
    let counts = loss::load(&mut endpoint, echo, &cli.load())?;
    println!("{counts}");
    Ok(())
}

/// The hosts, the echo, and the run: true if every count is right.
fn lab(cli: &Cli) -> Result<bool> {
    let hosts = Hosts::try_create("loss", cli.subnet)
        .map_err(Error::new)?
        .context("making network namespaces needs root")?;
    let mut lab = Lab::new(hosts, cli.loss)?;
    let (problems, gave_up) = match cli.pinger {
        Some(count) => {
            let report = lab.ping(count, Duration::from_secs(cli.timeout_s))?;
            println!("{report}");
            let mut gave_up = report.pinger_gave_up.clone();
            gave_up.extend_from_slice(&report.echo_gave_up);
            (report.problems(), gave_up)
        }
        None => {
            let me = std::env::current_exe().context("cannot find this program")?;
            let report = lab.load(&me, &cli.load())?;
            println!("{report}");
            (report.problems(), report.echo_gave_up.clone())
        }
    };
    for line in gave_up {
        eprintln!("wink-loss: {line}");
    }
    if !problems.is_empty() {
        eprintln!("wink-loss: wrong: {}", problems.join(", "));
    }
    Ok(problems.is_empty())
}
