//! Wink over a lossy link, on real processes: two hosts (network
//! namespaces joined by veth) with random loss on the first host's end of
//! the link in both directions, `echo/Echo` served on the first host, and
//! on the second either a load client ([`load`]: `ping <i>` with a window
//! of messages in flight) or `pinger/Pinger` started through that host's
//! own server.
//!
//! What any correct transport must give, whatever its wire format and
//! acks, is what [`Counts::problems`] checks: every reply back exactly
//! once, in order, and nothing given up while the peer is reachable. How
//! long it takes is a figure, never a check.
//!
//! - [`Lab`]: the two hosts, the loss, the servers and the echo; everything
//!   stopped and removed when dropped.
//! - [`load`]: the load client itself, run in the second host's namespace
//!   by the `wink-loss` binary (`--client`), which prints its [`Counts`] as
//!   one line that [`Lab::load`] reads back.
//! - `wink-loss --loss 0.3 --messages 10000 --in-flight 128` (and
//!   `--pinger 1000`) runs it all from the command line;
//!   `scripts/loss.sh` runs the release build.

use std::ffi::OsStr;
use std::fmt::{self, Write as _};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use wink::runtime::{Endpoint, Inbox};
use wink::transport::TransportEvent;
use wink::Address;

use crate::netns::{self, Hosts};
use crate::{binary, signal, started_address, Context, Error, Process, Result, Signal, Staged};
use crate::{Line, PATIENCE};

/// The environment of both servers and their machines: no line per
/// message (ten thousand echoes would be logged twice each).
const ENV: [(&str, &str); 1] = [("WINK_LOG_MESSAGES", "0")];

/// How the machine runtime logs a message its transport gave up on:
/// `<address> <name> gave up on message <seq> to <address>: <text>`.
const GAVE_UP: &str = " gave up on message ";

// ---------------------------------------------------------------------------
// The load client

/// What the load client is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    /// Messages to send: `ping 0` … `ping <messages - 1>`.
    pub messages: u64,
    /// Most messages sent whose reply has not come back (nor been given
    /// up on); at least 1 is used.
    pub in_flight: u64,
    /// How long without a datagram from the echo (data or ack), nor a
    /// give-up, before the client stops and counts what is missing as
    /// lost. A silence that long means the echo is gone or the transport
    /// is stuck: a transport that retries at most every few seconds
    /// hears something back within a minute even at 50% loss each way,
    /// and would have given up on a silent peer before.
    pub patience: Duration,
    /// How long the whole run may take, at most.
    pub timeout: Duration,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            messages: 10_000,
            in_flight: 128,
            // Longer than the transport takes to give up on a silent peer
            // (30 s by default).
            patience: Duration::from_secs(60),
            timeout: Duration::from_secs(1800),
        }
    }
}

/// Why the load client stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Stop {
    /// Every message was answered or given up on.
    #[default]
    Finished,
    /// [`Load::timeout`] passed.
    Timeout,
    /// Nothing came from the echo for [`Load::patience`].
    Silence,
}

impl Stop {
    fn text(self) -> &'static str {
        match self {
            Stop::Finished => "finished",
            Stop::Timeout => "stopped by the timeout",
            Stop::Silence => "stopped by silence",
        }
    }
}

/// What the load client saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    /// Messages sent.
    pub sent: u64,
    /// Distinct replies that came back.
    pub replies: u64,
    /// Messages sent whose reply never came back.
    pub lost: u64,
    /// Among them, those neither answered nor given up on when the client
    /// stopped (all of them, unless something was given up on).
    pub in_flight: u64,
    /// Replies that came back again.
    pub duplicated: u64,
    /// Replies that came after a reply to a later message.
    pub reordered: u64,
    /// Messages that were no reply to a message sent (another text, another
    /// sender).
    pub unexpected: u64,
    /// Messages the client's transport gave up on (its `gave_up` count).
    pub gave_up: u64,
    /// `TransportEvent::GaveUp` events the client's transport reported.
    pub gave_up_events: u64,
    /// Retransmissions by the client's transport (a figure, not a check).
    pub retransmits: u64,
    /// From the first message sent to the last reply received.
    pub elapsed: Duration,
    /// Why the client stopped.
    pub stop: Stop,
}

impl Counts {
    /// Replies per second of [`Counts::elapsed`].
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.replies as f64 / secs
        } else {
            0.0
        }
    }

    /// What is wrong for a run of `load`, one phrase each; empty when every
    /// message was sent and its reply came back once, in order, and
    /// nothing was given up.
    pub fn problems(&self, load: &Load) -> Vec<String> {
        let mut problems = Vec::new();
        if self.stop != Stop::Finished {
            problems.push(format!(
                "{} with {} in flight",
                self.stop.text(),
                self.in_flight
            ));
        }
        if self.sent != load.messages {
            problems.push(format!("{} of {} sent", self.sent, load.messages));
        }
        if self.replies != self.sent || self.lost != 0 {
            problems.push(format!(
                "{} replies to {} messages ({} lost)",
                self.replies, self.sent, self.lost
            ));
        }
        for (count, what) in [
            (self.duplicated, "duplicated"),
            (self.reordered, "reordered"),
            (self.unexpected, "unexpected"),
            (self.gave_up, "given up"),
            (self.gave_up_events, "give-up events"),
        ] {
            if count != 0 {
                problems.push(format!("{count} {what}"));
            }
        }
        problems
    }
}

/// `sent 10000, replies 10000, lost 0 (0 in flight), duplicated 0,
/// reordered 0, unexpected 0, given up 0 (0 events), retransmits 4512,
/// elapsed 12.345 s, 810 replies/s, finished`: the load client's one
/// line, read back by [`Counts::from_str`].
impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {}, replies {}, lost {} ({} in flight), duplicated {}, reordered {}, \
             unexpected {}, given up {} ({} events), retransmits {}, elapsed {:.3} s, \
             {:.0} replies/s, {}",
            self.sent,
            self.replies,
            self.lost,
            self.in_flight,
            self.duplicated,
            self.reordered,
            self.unexpected,
            self.gave_up,
            self.gave_up_events,
            self.retransmits,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.stop.text()
        )
    }
}

impl FromStr for Counts {
    type Err = Error;

    fn from_str(line: &str) -> Result<Counts> {
        let bad = |why: &str| Error::new(format!("`{line}` is not the load client's line: {why}"));
        let fields: Vec<&str> = line.split(", ").collect();
        let field = |i: usize, name: &str| -> Result<&str> {
            fields
                .get(i)
                .and_then(|f| f.strip_prefix(name))
                .and_then(|f| f.strip_prefix(' '))
                .ok_or_else(|| bad(&format!("field {} is not `{name} …`", i + 1)))
        };
        let number = |i: usize, name: &str| -> Result<u64> {
            let text = field(i, name)?;
            text.parse()
                .map_err(|_| bad(&format!("`{name}` has `{text}`, not a number")))
        };
        // `<n> (<m> <what>)`.
        let pair = |i: usize, name: &str, what: &str| -> Result<(u64, u64)> {
            let text = field(i, name)?;
            text.strip_suffix(')')
                .and_then(|t| t.strip_suffix(what))
                .and_then(|t| t.split_once(" ("))
                .and_then(|(n, m)| Some((n.parse().ok()?, m.parse().ok()?)))
                .ok_or_else(|| bad(&format!("`{name}` has `{text}`, not `<n> (<n>{what})`")))
        };
        let (lost, in_flight) = pair(2, "lost", " in flight")?;
        let (gave_up, gave_up_events) = pair(6, "given up", " events")?;
        let elapsed = field(8, "elapsed")?;
        let elapsed: f64 = elapsed
            .strip_suffix(" s")
            .and_then(|e| e.parse().ok())
            .filter(|e: &f64| e.is_finite() && *e >= 0.0)
            .ok_or_else(|| bad("`elapsed` is not `<seconds> s`"))?;
        let stop = [Stop::Finished, Stop::Timeout, Stop::Silence]
            .into_iter()
            .find(|stop| fields.get(10) == Some(&stop.text()) && fields.len() == 11)
            .ok_or_else(|| bad("it does not end with why the client stopped"))?;
        Ok(Counts {
            sent: number(0, "sent")?,
            replies: number(1, "replies")?,
            lost,
            in_flight,
            duplicated: number(3, "duplicated")?,
            reordered: number(4, "reordered")?,
            unexpected: number(5, "unexpected")?,
            gave_up,
            gave_up_events,
            retransmits: number(7, "retransmits")?,
            elapsed: Duration::from_secs_f64(elapsed),
            stop,
        })
    }
}

/// The index `i` of `ping <i>`, if `text` is exactly that for an `i`
/// below `sent`.
fn ping_index(text: &str, sent: usize, scratch: &mut String) -> Option<usize> {
    let i: usize = text.strip_prefix("ping ")?.parse().ok()?;
    scratch.clear();
    let _ = write!(scratch, "ping {i}");
    (i < sent && scratch == text).then_some(i)
}

/// Sends `ping 0` … to `echo` from `endpoint`, at most `load.in_flight`
/// without their reply, and counts the replies: until every message is
/// answered or given up on, no datagram has come for `load.patience`, or
/// `load.timeout` has passed. Then it settles (acknowledging what still
/// comes) for a moment, so that the echo is not left retransmitting.
///
/// It waits on the socket and the transport's deadlines only, never sleeps.
pub fn load(endpoint: &mut Endpoint, echo: Address, load: &Load) -> Result<Counts> {
    let n = usize::try_from(load.messages).context("too many messages for this machine")?;
    let window = load.in_flight.max(1);
    let mut replied = vec![false; n];
    let mut abandoned = vec![false; n];
    let mut counts = Counts::default();
    let (mut next, mut open) = (0usize, 0u64);
    let mut highest: Option<usize> = None;
    let mut inbox = Inbox::default();
    let mut text = String::new();
    let mut scratch = String::new();

    let start = Instant::now();
    let end = start.checked_add(load.timeout).unwrap_or(start);
    let (mut heard, mut last_reply) = (start, None);
    let mut datagrams = endpoint.stats().received;
    loop {
        while next < n && open < window {
            text.clear();
            let _ = write!(text, "ping {next}");
            endpoint
                .send(echo, &text)
                .with_context(|| format!("cannot send `{text}` to {echo}"))?;
            next += 1;
            open += 1;
        }
        if next == n && open == 0 {
            break;
        }
        let now = Instant::now();
        let stalled = heard.checked_add(load.patience).unwrap_or(heard);
        if now >= end || now >= stalled {
            counts.stop = if now >= end {
                Stop::Timeout
            } else {
                Stop::Silence
            };
            break;
        }
        endpoint.handle_timeout(now);
        while let Some(event) = endpoint.poll_event() {
            if let TransportEvent::GaveUp { to, message, .. } = event {
                counts.gave_up_events += 1;
                heard = now;
                // A message given up on frees its place in the window; its
                // reply may still come (the loss may have been its ack).
                let index = ping_index(&message, next, &mut scratch);
                if let Some(i) = index.filter(|_| Address::from(to) == echo) {
                    if !replied[i] && !abandoned[i] {
                        abandoned[i] = true;
                        open -= 1;
                    }
                }
            }
        }
        let wake = end.min(stalled);
        let deadline = endpoint.next_deadline().map_or(wake, |d| d.min(wake));
        endpoint
            .wait(Some(deadline))
            .context("waiting on the load client's socket")?;
        let now = Instant::now();
        inbox.clear();
        endpoint
            .receive_ready(now, &mut inbox)
            .context("receiving replies")?;
        if endpoint.stats().received != datagrams {
            datagrams = endpoint.stats().received;
            heard = now;
        }
        for k in 0..inbox.len() {
            let Some((from, message)) = inbox.get(k) else {
                break;
            };
            match ping_index(message, next, &mut scratch).filter(|_| from == echo) {
                Some(i) if replied[i] => counts.duplicated += 1,
                Some(i) => {
                    replied[i] = true;
                    counts.replies += 1;
                    if highest.is_some_and(|h| h > i) {
                        counts.reordered += 1;
                    }
                    highest = highest.max(Some(i));
                    if !abandoned[i] {
                        open -= 1;
                    }
                    last_reply = Some(now);
                }
                None => counts.unexpected += 1,
            }
        }
    }
    counts.elapsed = last_reply.unwrap_or_else(Instant::now) - start;
    counts.sent = next as u64;
    counts.lost = counts.sent.saturating_sub(counts.replies);
    counts.in_flight = open;

    // Acks for the last replies may be lost too: stay until everything sent
    // is acknowledged and the echo has been quiet a moment.
    endpoint
        .settle(Duration::from_secs(5))
        .context("settling the load client")?;
    linger(endpoint, Duration::from_millis(300), Duration::from_secs(3))?;
    while let Some(event) = endpoint.poll_event() {
        if matches!(event, TransportEvent::GaveUp { .. }) {
            counts.gave_up_events += 1;
        }
    }
    counts.gave_up = endpoint.stats().gave_up;
    counts.retransmits = endpoint.stats().retransmits;
    Ok(counts)
}

/// Runs `endpoint` (acknowledging what comes) until no datagram has come
/// for `quiet`, or for `most` at most.
fn linger(endpoint: &mut Endpoint, quiet: Duration, most: Duration) -> Result<()> {
    let now = Instant::now();
    let end = now.checked_add(most).unwrap_or(now);
    let mut inbox = Inbox::default();
    let mut received = endpoint.stats().received;
    let mut heard = now;
    loop {
        let now = Instant::now();
        let wake = heard.checked_add(quiet).unwrap_or(heard).min(end);
        if now >= wake {
            return Ok(());
        }
        endpoint.handle_timeout(now);
        let deadline = endpoint.next_deadline().map_or(wake, |d| d.min(wake));
        endpoint.wait(Some(deadline)).context("lingering")?;
        inbox.clear();
        endpoint
            .receive_ready(Instant::now(), &mut inbox)
            .context("lingering")?;
        if endpoint.stats().received != received {
            received = endpoint.stats().received;
            heard = Instant::now();
        }
    }
}

// ---------------------------------------------------------------------------
// The hosts

/// Two hosts with a lossy link, a server on each (the second's started
/// when needed), `echo/Echo` on the first.
///
/// Dropping it stops the servers (they stop their machines), kills
/// anything still running from the staged directory, then deletes the
/// namespaces (and with them the link and the iptables rules) and the
/// directory: nothing outlives it, passed or failed.
pub struct Lab {
    // Dropped in order: the servers, the hosts, the directory.
    server_a: Process,
    server_b: Option<Process>,
    hosts: Hosts,
    staged: Staged,
    echo: Option<Address>,
    loss: f64,
}

impl Lab {
    /// For a test: like [`Hosts::create`] (`None`, after saying why, when
    /// namespaces cannot be made or iptables is missing and `CI` is not
    /// set; a panic when it is), then [`Lab::new`], which must succeed.
    pub fn create(test: &str, subnet: u8, loss: f64) -> Option<Lab> {
        let hosts = Hosts::create(test, subnet)?;
        if !netns::have_iptables() {
            if std::env::var_os("CI").is_some() {
                panic!("{test}: CI is set but iptables is missing (`apt-get install iptables`)");
            }
            eprintln!("{test}: not run: it needs iptables (`apt-get install iptables`)");
            return None;
        }
        match Lab::new(hosts, loss) {
            Ok(lab) => Some(lab),
            Err(e) => panic!("{test}: cannot make two hosts with a lossy link and an echo: {e}"),
        }
    }

    /// `hosts` with `loss` (0 to 1) each way on the first host's end of
    /// the link, its server, and `echo/Echo` started there.
    pub fn new(hosts: Hosts, loss: f64) -> Result<Lab> {
        let staged = Staged::new()?;
        if loss > 0.0 {
            hosts.lose(loss).context("cannot make the link lossy")?;
        } else if loss.is_nan() || loss < 0.0 {
            return Err(Error::new(format!("loss {loss} is not 0 to 1")));
        }
        let server_a = Hosts::serve(&hosts.a, &staged, &Self::server(&hosts.ip_a), &ENV)?;
        let mut lab = Lab {
            server_a,
            server_b: None,
            hosts,
            staged,
            echo: None,
            loss,
        };
        let server = Self::server(&lab.hosts.ip_a);
        let out = Hosts::wink(&lab.hosts.a, &["-s", &server, "start", "echo/Echo", ":0"])?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(lab.server_a.failure(&format!(
                "wink start echo/Echo: {}: {stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        lab.echo = Some(started_address(&stdout)?);
        Ok(lab)
    }

    /// The address of the server of the host at `ip`.
    fn server(ip: &str) -> String {
        format!("{ip}:42000")
    }

    /// The hosts.
    pub fn hosts(&self) -> &Hosts {
        &self.hosts
    }

    /// Where `echo/Echo` listens.
    pub fn echo(&self) -> Result<Address> {
        self.echo.context("echo/Echo has not started")
    }

    /// Runs the load client `client` (the `wink-loss` binary) in the second
    /// host's namespace against the echo, and reads its counts.
    pub fn load(&mut self, client: &Path, load: &Load) -> Result<LoadReport> {
        let echo = self.echo()?.to_string();
        let from = self.server_a.lines().len();
        let bind = format!("{}:0", self.hosts.ip_b);
        let (messages, in_flight) = (load.messages.to_string(), load.in_flight.to_string());
        let patience = load.patience.as_millis().to_string();
        let timeout = load.timeout.as_millis().to_string();
        let args = [
            "--client",
            &echo,
            "--bind",
            &bind,
            "--messages",
            &messages,
            "--in-flight",
            &in_flight,
            "--patience-ms",
            &patience,
            "--timeout-ms",
            &timeout,
        ];
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let command = Hosts::command(&self.hosts.b, client.as_os_str(), &args);
        let mut process = Process::spawn("the load client", command)?;
        let line = process.expect(
            "the load client's `sent …` line",
            load.timeout + PATIENCE,
            |l| l.starts_with("sent "),
        )?;
        let status = process.wait(PATIENCE)?;
        if !status.success() {
            return Err(process.failure(&format!("the load client ended with {status}")));
        }
        let counts = line.text.parse()?;
        Ok(LoadReport {
            loss: self.loss,
            load: load.clone(),
            counts,
            echo_gave_up: gave_up(&self.server_a.lines()[from..], "echo/Echo"),
        })
    }

    /// Starts `pinger/Pinger <echo> <count>` through the second host's
    /// server (`wink start -f`, in that namespace) and follows it until it
    /// exits or `timeout` passes.
    pub fn ping(&mut self, count: u64, timeout: Duration) -> Result<PingReport> {
        let echo = self.echo()?.to_string();
        let server = Self::server(&self.hosts.ip_b);
        let server_b = match &mut self.server_b {
            Some(server_b) => server_b,
            None => self
                .server_b
                .insert(Hosts::serve(&self.hosts.b, &self.staged, &server, &ENV)?),
        };
        let (from_a, from_b) = (self.server_a.lines().len(), server_b.lines().len());
        let wink = binary("wink")?;
        let count_text = count.to_string();
        let args = [
            "-s",
            &server,
            "start",
            "-f",
            "pinger/Pinger",
            ":0",
            &echo,
            &count_text,
        ];
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let command = Hosts::command(&self.hosts.b, wink.as_os_str(), &args);
        let mut follow = Process::spawn("wink start -f pinger/Pinger", command)?;
        let started = follow.expect("`<address> started pinger/Pinger`", PATIENCE, |l| {
            l.contains(" started pinger/Pinger")
        })?;
        let exited = follow.expect("`<address> exited pinger/Pinger …`", timeout, |l| {
            l.contains(" exited pinger/Pinger")
        });
        let (outcome, elapsed) = match &exited {
            Ok(line) => {
                let reason = line.text.rsplit(' ').next().unwrap_or_default();
                (format!("exited {reason}"), line.at - started.at)
            }
            Err(_) => (
                format!("still running after {:.0} s", timeout.as_secs_f64()),
                started.at.elapsed(),
            ),
        };
        // The pinger exits `normal` only once every reply came back, once
        // and in order (anything else is an error), right after it told its
        // parent `pinged <n>`: the server does not log that line when
        // message logging is off, as here, so the exit is the evidence.
        let pinger_gave_up = gave_up(&server_b.lines()[from_b..], "pinger/Pinger");
        Ok(PingReport {
            loss: self.loss,
            count,
            finished: outcome == "exited normal",
            outcome,
            pinger_gave_up,
            echo_gave_up: gave_up(&self.server_a.lines()[from_a..], "echo/Echo"),
            elapsed,
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(server_b) = &mut self.server_b {
            let _ = server_b.terminate(PATIENCE);
        }
        let _ = self.server_a.terminate(PATIENCE);
        for pid in self.staged.running() {
            let _ = signal(pid, Signal::KILL);
        }
    }
}

/// The lines of `lines` that say machine `name` gave up on a message.
fn gave_up(lines: &[Line], name: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.text.contains(GAVE_UP) && l.text.contains(name))
        .map(|l| l.text.clone())
        .collect()
}

/// The percentage `loss` is.
fn percent(loss: f64) -> String {
    format!("{:.0}%", loss * 100.0)
}

/// One run of the load client, as [`Lab::load`] reports it.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// The loss each way.
    pub loss: f64,
    /// What the client was asked.
    pub load: Load,
    /// What it saw.
    pub counts: Counts,
    /// The echo's log lines about messages its transport gave up on.
    pub echo_gave_up: Vec<String>,
}

impl LoadReport {
    /// What is wrong (see [`Counts::problems`]), the echo's give-ups
    /// included.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = self.counts.problems(&self.load);
        if !self.echo_gave_up.is_empty() {
            problems.push(format!("{} given up by the echo", self.echo_gave_up.len()));
        }
        problems
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loss {} each way, {} in flight: {}; echo gave up {}",
            percent(self.loss),
            self.load.in_flight,
            self.counts,
            self.echo_gave_up.len()
        )
    }
}

/// One run of `pinger/Pinger`, as [`Lab::ping`] reports it.
#[derive(Debug, Clone)]
pub struct PingReport {
    /// The loss each way.
    pub loss: f64,
    /// Pings it was to send.
    pub count: u64,
    /// Whether it exited `normal`: every reply back, once and in order.
    pub finished: bool,
    /// `exited <reason>`, or `still running after <n> s`.
    pub outcome: String,
    /// The pinger's log lines about messages its transport gave up on.
    pub pinger_gave_up: Vec<String>,
    /// The echo's log lines about messages its transport gave up on.
    pub echo_gave_up: Vec<String>,
    /// From its `started` to its `exited` (or to the timeout).
    pub elapsed: Duration,
}

impl PingReport {
    /// What is wrong, one phrase each; empty when it finished and nothing
    /// was given up.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.finished {
            problems.push(format!("did not finish ({})", self.outcome));
        }
        if !self.pinger_gave_up.is_empty() {
            problems.push(format!(
                "{} given up by the pinger",
                self.pinger_gave_up.len()
            ));
        }
        if !self.echo_gave_up.is_empty() {
            problems.push(format!("{} given up by the echo", self.echo_gave_up.len()));
        }
        problems
    }
}

impl fmt::Display for PingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 && self.finished {
            self.count as f64 / secs
        } else {
            0.0
        };
        write!(
            f,
            "loss {} each way: pinger/Pinger {} pings {} ({}), given up {} (echo {}), \
             elapsed {secs:.3} s, {rate:.0} replies/s",
            percent(self.loss),
            self.count,
            if self.finished {
                "finished"
            } else {
                "NOT finished"
            },
            self.outcome,
            self.pinger_gave_up.len(),
            self.echo_gave_up.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_line_reads_back() {
        let counts = Counts {
            sent: 10_000,
            replies: 9_998,
            lost: 2,
            in_flight: 1,
            duplicated: 1,
            reordered: 3,
            unexpected: 4,
            gave_up: 2,
            gave_up_events: 2,
            retransmits: 4_512,
            elapsed: Duration::from_millis(12_345),
            stop: Stop::Timeout,
        };
        let line = counts.to_string();
        assert!(
            line.starts_with("sent 10000, replies 9998, lost 2 (1 in flight), duplicated 1,"),
            "{line}"
        );
        assert!(
            line.ends_with("elapsed 12.345 s, 810 replies/s, stopped by the timeout"),
            "{line}"
        );
        assert_eq!(line.parse::<Counts>().unwrap(), counts);
        let finished = Counts {
            stop: Stop::Finished,
            ..counts
        };
        assert_eq!(finished.to_string().parse::<Counts>().unwrap(), finished);
    }

    #[test]
    fn a_line_that_is_not_the_clients_is_an_error() {
        for line in ["", "sent x", "sent 1, replies 1", "hello world"] {
            assert!(line.parse::<Counts>().is_err(), "{line}");
        }
    }

    #[test]
    fn a_clean_run_has_no_problems_and_a_lost_reply_is_one() {
        let load = Load {
            messages: 3,
            ..Load::default()
        };
        let mut counts = Counts {
            sent: 3,
            replies: 3,
            ..Counts::default()
        };
        assert!(counts.problems(&load).is_empty());
        counts.replies = 2;
        counts.lost = 1;
        counts.reordered = 1;
        assert_eq!(
            counts.problems(&load),
            ["2 replies to 3 messages (1 lost)", "1 reordered"]
        );
    }

    #[test]
    fn only_exact_pings_below_the_count_sent_are_replies() {
        let mut scratch = String::new();
        assert_eq!(ping_index("ping 7", 8, &mut scratch), Some(7));
        for text in ["ping 8", "ping +7", "ping 07", "ping 7 ", "pong 7", "ping"] {
            assert_eq!(ping_index(text, 8, &mut scratch), None, "{text}");
        }
    }
}
