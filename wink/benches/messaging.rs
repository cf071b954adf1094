//! Messaging speed on loopback, next to raw UDP on the same machine:
//!
//! - request/reply round trip (p50, p99, sequential rate): raw UDP
//!   ping-pong with blocking sockets; Wink between two endpoints; Wink to a
//!   real machine (`run_machine`: dispatch to a state machine);
//! - one-way throughput (messages/s): raw UDP (lossy: what the receiver
//!   managed to read); Wink reliable delivery (every message delivered
//!   once, in order, counted when the sender has every ack), to an
//!   endpoint and to a machine.
//!
//! As with machines, each side is its own process: the benchmark starts a
//! copy of itself (`--serve <role> <cpu>`) for the echoing or receiving
//! side. One row runs both endpoints on two threads of one process for
//! comparison (each thread blocks in its own `ppoll`; nothing is shared).
//!
//! Each side is pinned to a CPU, in two placements: on two cores (as two
//! machine processes on this host usually run) and both on one core.
//! Unpinned, the scheduler picks one or the other from run to run and the
//! raw round trip jumps between ~7 µs and ~100 µs on a 2-core VM; pinned,
//! the rows are repeatable. Across cores the round trip is dominated by
//! waking the other core; on one core it is CPU work only, so that row
//! shows Wink's cost per message.
//!
//! `cargo bench -p wink --bench messaging` prints one table with the
//! ratios to raw UDP, in well under a minute. Arguments after `--`:
//! `--quick` runs a tenth of the work; any other word runs only the rows
//! whose key (`raw-rtt-2`, `wink-flow-2`, `machine-rtt-1`, `threads-rtt-2`…)
//! contains it, for profiling one of them.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use wink::runtime::socket::BUFFER_BYTES;
use wink::runtime::{run_machine, Config, Endpoint, Identity, Inbox};
use wink::transport::TransportConfig;
use wink::Address;

/// Round trips measured per row (after `WARMUP` unmeasured ones).
const ROUND_TRIPS: usize = 30_000;
const WARMUP: usize = 3_000;
/// Turns the round-trip rows take (see `main`).
const ROUNDS: usize = 5;
/// Messages sent one way per throughput row.
const ONE_WAY: usize = 500_000;
/// Digits of the counter in every message: `ping 0000042` is 12 bytes,
/// `m 0000042` 9.
const WIDTH: usize = 7;

/// The transport of the Wink rows: unsealed, or sealed with a key known to
/// both sides (a benchmark's, not a secret).
fn transport(sealed: bool) -> TransportConfig {
    TransportConfig {
        keys: sealed.then(|| {
            std::sync::Arc::new(
                wink::auth::Keys::parse(&"b3".repeat(32)).unwrap_or_else(|e| panic!("{e}")),
            )
        }),
        ..TransportConfig::default()
    }
}

fn text(prefix: &str, i: usize) -> String {
    format!("{prefix} {i:0WIDTH$}")
}

fn loopback() -> Address {
    Address::from(SocketAddr::from(([127, 0, 0, 1], 0)))
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

// ---------------------------------------------------------------- CPUs

/// Where the two sides of a measurement run: on two CPUs, or both on one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Placement {
    client: usize,
    server: usize,
}

impl Placement {
    fn cores(self) -> usize {
        if self.client == self.server {
            1
        } else {
            2
        }
    }
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is an empty set; sched_getaffinity fills
    // it in, CPU_ISSET reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![0];
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) {
    // SAFETY: as above; sched_setaffinity(0, …) applies to this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Runs `work` on a new thread pinned to `cpu` and waits for it.
fn on_cpu<T: Send + 'static>(
    cpu: usize,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> thread::JoinHandle<io::Result<T>> {
    thread::spawn(move || {
        pin(cpu);
        work()
    })
}

fn join<T>(handle: thread::JoinHandle<io::Result<T>>) -> io::Result<T> {
    handle
        .join()
        .map_err(|_| other("a benchmark thread panicked"))?
}

// ---------------------------------------------------------------- figures

/// Percentile `p` (0–100) of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p / 100.0).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[derive(Debug, Clone, Copy)]
struct Latency {
    p50: Duration,
    p99: Duration,
    /// Sequential round trips per second.
    rate: f64,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Latency {
        let total: Duration = samples.iter().sum();
        samples.sort_unstable();
        Latency {
            p50: percentile(&samples, 50.0),
            p99: percentile(&samples, 99.0),
            rate: samples.len() as f64 / total.as_secs_f64(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Throughput {
    /// Messages per second.
    rate: f64,
    /// Messages the receiver got.
    received: usize,
    /// Messages sent.
    sent: usize,
}

// ---------------------------------------------------------------- sockets

fn udp() -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let sock = socket2::SockRef::from(&socket);
    let _ = sock.set_recv_buffer_size(BUFFER_BYTES);
    let _ = sock.set_send_buffer_size(BUFFER_BYTES);
    Ok(socket)
}

fn send(endpoint: &mut Endpoint, to: Address, message: impl Into<String>) -> io::Result<()> {
    endpoint.send(to, message).map_err(other)
}

/// Waits until `endpoint` delivers something into `inbox` (writing what
/// is queued first). The acknowledgements of what arrived go out with the
/// next flush, with the next request.
fn receive_some(endpoint: &mut Endpoint, inbox: &mut Inbox) -> io::Result<()> {
    inbox.clear();
    loop {
        if endpoint.wait(endpoint.next_deadline())? {
            endpoint.receive_ready(Instant::now(), inbox)?;
            if !inbox.is_empty() {
                return Ok(());
            }
        }
        endpoint.handle_timeout(Instant::now());
    }
}

/// What a client endpoint received from a machine (lifecycle messages,
/// reports), read in order by [`Mail::until`].
#[derive(Default)]
struct Mail {
    received: Vec<String>,
    read: usize,
}

impl Mail {
    /// Waits until `endpoint` delivers a message starting with `wanted`
    /// (acknowledging everything before it), skipping the ones before it.
    fn until(&mut self, endpoint: &mut Endpoint, wanted: &str) -> io::Result<()> {
        let mut inbox = Inbox::default();
        loop {
            if let Some(i) = self.received[self.read..]
                .iter()
                .position(|m| m.starts_with(wanted))
            {
                self.read += i + 1;
                return Ok(());
            }
            receive_some(endpoint, &mut inbox)?;
            self.received
                .extend((0..inbox.len()).filter_map(|i| inbox.get(i).map(|(_, m)| m.to_owned())));
        }
    }
}

// ---------------------------------------------------------------- servers

/// Runs `endpoint` until it receives `quit`, answering every other message
/// with its own text when `echo`; then waits for its acks to go out.
/// Returns a report: messages received (besides `quit`), whether they came
/// in the order `prefix 0`, `prefix 1`, …, and its acks and duplicates.
fn serve(mut endpoint: Endpoint, echo: bool, prefix: &str) -> io::Result<String> {
    let mut inbox = Inbox::default();
    let mut count = 0;
    let mut in_order = true;
    let mut expected = String::new();
    loop {
        endpoint.handle_timeout(Instant::now());
        if !endpoint.wait(endpoint.next_deadline())? {
            continue;
        }
        inbox.clear();
        endpoint.receive_ready(Instant::now(), &mut inbox)?;
        for i in 0..inbox.len() {
            let Some((from, message)) = inbox.get(i) else {
                break;
            };
            if message == "quit" {
                endpoint.settle(Duration::from_secs(5))?;
                let stats = endpoint.stats();
                return Ok(format!(
                    "{count} {in_order} {} {}",
                    stats.acks_transmitted, stats.duplicates
                ));
            }
            if echo {
                // The client checks each reply against its request, as
                // the raw rows' client does.
                send(&mut endpoint, from, message)?;
            } else {
                expected.clear();
                let _ = write!(expected, "{prefix} {count:0WIDTH$}");
                in_order &= message == expected;
            }
            count += 1;
        }
    }
}

/// A machine that answers every message with its text, and exits on
/// `quit`.
#[wink::machine]
mod echo {
    #[derive(Debug, Default)]
    pub struct Echo;

    pub enum State {
        #[initial]
        Echoing,
    }

    impl Echo {
        #[receive(Echoing, "quit")]
        fn quit(&mut self, cx: &mut Context<Self>) {
            cx.exit();
        }

        #[receive(Echoing)]
        fn echo(&mut self, cx: &mut Context<Self>, message: &str) {
            cx.reply(message);
        }
    }
}

/// A machine that counts the messages it gets, and tells its parent
/// `received <n>` when it has the number its first argument says.
#[wink::machine]
mod sink {
    #[derive(Debug, Default)]
    pub struct Sink {
        pub count: u64,
    }

    pub enum State {
        #[initial]
        Counting,
    }

    impl Sink {
        #[receive(Counting)]
        fn count(&mut self, cx: &mut Context<Self>, _message: &str) {
            self.count += 1;
            let wanted: u64 = cx.args()[0].parse().unwrap_or(0);
            if self.count == wanted {
                let parent = cx.parent();
                cx.send(parent, format!("received {}", self.count));
                cx.exit();
            }
        }
    }
}

/// Runs machine `M` on `endpoint` with `parent` as its parent and server,
/// message logging off and no pulses during the run.
fn run_as_machine<M: wink::Machine>(
    machine: M,
    name: &str,
    mut endpoint: Endpoint,
    parent: Address,
    args: Vec<String>,
) -> io::Result<String> {
    let identity = Identity {
        name: name.parse().map_err(other)?,
        parent,
        server: parent,
        args,
        start: None,
        pid: std::process::id(),
    };
    let config = Config {
        log_messages: false,
        pulse: Duration::from_secs(3600),
        ..Config::default()
    };
    let hsm = wink::hsm::Hsm::new(machine);
    let ending = run_machine(
        hsm,
        &mut endpoint,
        identity,
        config,
        wink::log::discard(),
        None,
        None,
    )?;
    Ok(format!("{ending:?}"))
}

/// The server side, in its own process: prints its address, serves, then
/// prints a one-line report.
fn server_main(role: &str, extra: &[String]) -> io::Result<()> {
    let print_address = |address: SocketAddr| println!("{address}");
    let report = match role {
        "raw-echo" => {
            let socket = udp()?;
            print_address(socket.local_addr()?);
            let mut buf = [0u8; 2048];
            let mut count = 0;
            loop {
                let (len, from) = socket.recv_from(&mut buf)?;
                if &buf[..len] == b"quit" {
                    break format!("{count}");
                }
                socket.send_to(&buf[..len], from)?;
                count += 1;
            }
        }
        "raw-sink" => {
            let socket = udp()?;
            print_address(socket.local_addr()?);
            let n: usize = extra[0].parse().map_err(other)?;
            let mut buf = [0u8; 2048];
            socket.recv(&mut buf)?;
            let first = Instant::now();
            let mut last = first;
            let mut received = 1;
            // The sender is done once nothing came for 200 ms.
            socket.set_read_timeout(Some(Duration::from_millis(200)))?;
            while received < n {
                match socket.recv(&mut buf) {
                    Ok(_) => {
                        last = Instant::now();
                        received += 1;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        break
                    }
                    Err(e) => return Err(e),
                }
            }
            format!("{received} {}", (last - first).as_secs_f64())
        }
        "wink-echo" | "wink-sink" | "sealed-echo" | "sealed-sink" => {
            let endpoint = Endpoint::bind(loopback(), transport(role.starts_with("sealed")))?;
            print_address(endpoint.local_addr().socket_addr());
            if role.ends_with("echo") {
                serve(endpoint, true, "ping")?
            } else {
                serve(endpoint, false, "m")?
            }
        }
        "machine-echo" | "machine-sink" => {
            let endpoint = Endpoint::bind(loopback(), TransportConfig::default())?;
            print_address(endpoint.local_addr().socket_addr());
            let parent: Address = extra[0].parse().map_err(other)?;
            if role == "machine-echo" {
                run_as_machine(echo::Echo, "bench/Echo", endpoint, parent, vec![])?
            } else {
                let args = vec![extra[1].clone()];
                run_as_machine(sink::Sink::default(), "bench/Sink", endpoint, parent, args)?
            }
        }
        _ => return Err(other(format!("unknown role {role}"))),
    };
    println!("{report}");
    Ok(())
}

/// A server process, killed if still running when dropped.
struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    address: Address,
}

impl Server {
    fn start(role: &str, cpu: usize, extra: &[String]) -> io::Result<Server> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--serve", role, &cpu.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| other("no stdout"))?;
        let mut server = Server {
            child,
            stdout: BufReader::new(stdout),
            address: loopback(),
        };
        server.address = server.line()?.parse().map_err(other)?;
        Ok(server)
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        if line.is_empty() {
            return Err(other("the server process ended early"));
        }
        Ok(line.trim_end().to_owned())
    }

    /// Its report, once it is done; it must exit successfully.
    fn finish(mut self) -> io::Result<String> {
        let report = self.line()?;
        let status = self.child.wait()?;
        if !status.success() {
            return Err(other(format!("server process: {status}")));
        }
        Ok(report)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------- round trips

/// Raw UDP ping-pong with blocking sockets.
fn raw_round_trip(n: usize, warmup: usize, at: Placement) -> io::Result<Vec<Duration>> {
    let server = Server::start("raw-echo", at.server, &[])?;
    let echo_at = server.address.socket_addr();
    let latency = join(on_cpu(at.client, move || {
        let client = udp()?;
        client.connect(echo_at)?;
        let mut buf = [0u8; 2048];
        let mut samples = Vec::with_capacity(n);
        for i in 0..n + warmup {
            let message = text("ping", i);
            let start = Instant::now();
            client.send(message.as_bytes())?;
            let len = client.recv(&mut buf)?;
            let took = start.elapsed();
            assert_eq!(&buf[..len], message.as_bytes());
            if i >= warmup {
                samples.push(took);
            }
        }
        client.send(b"quit")?;
        Ok(samples)
    }))?;
    server.finish()?;
    Ok(latency)
}

/// Sequential request/reply from `client` to `echo_at`, then `quit`.
fn round_trips(
    client: &mut Endpoint,
    echo_at: Address,
    n: usize,
    warmup: usize,
) -> io::Result<Vec<Duration>> {
    let mut inbox = Inbox::default();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + warmup {
        let message = text("ping", i);
        let start = Instant::now();
        send(client, echo_at, message.as_str())?;
        receive_some(client, &mut inbox)?;
        let took = start.elapsed();
        let reply = inbox.get(0).ok_or_else(|| other("no reply"))?;
        assert_eq!((reply, inbox.len()), ((echo_at, message.as_str()), 1));
        if i >= warmup {
            samples.push(took);
        }
    }
    send(client, echo_at, "quit")?;
    Ok(samples)
}

/// What the client endpoint of a Wink row sent, per round trip or message.
#[derive(Debug, Clone, Copy, Default)]
struct Traffic {
    data: u64,
    acks: u64,
    retransmits: u64,
    fast_retransmits: u64,
}

impl std::ops::AddAssign for Traffic {
    fn add_assign(&mut self, other: Traffic) {
        self.data += other.data;
        self.acks += other.acks;
        self.retransmits += other.retransmits;
        self.fast_retransmits += other.fast_retransmits;
    }
}

impl Traffic {
    fn of(endpoint: &Endpoint) -> Traffic {
        let stats = endpoint.stats();
        Traffic {
            data: stats.data_transmitted,
            acks: stats.acks_transmitted,
            retransmits: stats.retransmits,
            fast_retransmits: stats.fast_retransmits,
        }
    }
}

/// Wink request/reply between two endpoints in two processes.
fn wink_round_trip(
    n: usize,
    warmup: usize,
    at: Placement,
    sealed: bool,
) -> io::Result<(Vec<Duration>, Traffic)> {
    let role = if sealed { "sealed-echo" } else { "wink-echo" };
    let server = Server::start(role, at.server, &[])?;
    let echo_at = server.address;
    let result = join(on_cpu(at.client, move || {
        let mut client = Endpoint::bind(loopback(), transport(sealed))?;
        let latency = round_trips(&mut client, echo_at, n, warmup)?;
        client.settle(Duration::from_secs(5))?;
        Ok((latency, Traffic::of(&client)))
    }))?;
    let report = server.finish()?;
    assert!(
        report.starts_with(&format!("{} true ", n + warmup)),
        "{report}"
    );
    Ok(result)
}

/// Wink request/reply between two endpoints on two threads of this
/// process, each blocking in its own `ppoll`.
fn threads_round_trip(n: usize, warmup: usize, at: Placement) -> io::Result<Vec<Duration>> {
    let echo = Endpoint::bind(loopback(), TransportConfig::default())?;
    let echo_at = echo.local_addr();
    let server = on_cpu(at.server, move || serve(echo, true, "ping"));
    let latency = join(on_cpu(at.client, move || {
        let mut client = Endpoint::bind(loopback(), TransportConfig::default())?;
        let latency = round_trips(&mut client, echo_at, n, warmup)?;
        client.settle(Duration::from_secs(5))?;
        Ok(latency)
    }))?;
    join(server)?;
    Ok(latency)
}

/// Wink request/reply from an endpoint to a machine in another process.
fn machine_round_trip(n: usize, warmup: usize, at: Placement) -> io::Result<Vec<Duration>> {
    let mut client = Endpoint::bind(loopback(), TransportConfig::default())?;
    let parent = client.local_addr().to_string();
    let server = Server::start("machine-echo", at.server, &[parent])?;
    let echo_at = server.address;
    let latency = join(on_cpu(at.client, move || {
        let mut mail = Mail::default();
        mail.until(&mut client, "register ")?;
        let latency = round_trips(&mut client, echo_at, n, warmup)?;
        // Its last words, acknowledged, so that it need not linger.
        mail.until(&mut client, "unregister")?;
        client.settle(Duration::from_secs(5))?;
        Ok(latency)
    }))?;
    let report = server.finish()?;
    assert_eq!(report, "Ending { reason: Normal, error: None }");
    Ok(latency)
}

// ---------------------------------------------------------------- one way

/// Raw one-way UDP: `n` datagrams as fast as the sender can write them;
/// the rate is what the receiver read, first to last.
fn raw_one_way(n: usize, at: Placement) -> io::Result<Throughput> {
    let server = Server::start("raw-sink", at.server, &[n.to_string()])?;
    let to = server.address.socket_addr();
    join(on_cpu(at.client, move || {
        let sender = udp()?;
        sender.connect(to)?;
        for i in 0..n {
            // A full send buffer on loopback blocks; nothing is refused.
            sender.send(text("m", i).as_bytes())?;
        }
        Ok(())
    }))?;
    let report = server.finish()?;
    let (received, span) = report.split_once(' ').ok_or_else(|| other(&report))?;
    let received: usize = received.parse().map_err(other)?;
    let span: f64 = span.parse().map_err(other)?;
    Ok(Throughput {
        rate: received as f64 / span,
        received,
        sent: n,
    })
}

/// Wink one way to an endpoint in another process: the sender queues `n`
/// messages at once and runs until every one is acknowledged; the receiver
/// checks they arrived once and in order.
fn wink_one_way(
    n: usize,
    at: Placement,
    sealed: bool,
) -> io::Result<(Throughput, Traffic, String)> {
    let role = if sealed { "sealed-sink" } else { "wink-sink" };
    let server = Server::start(role, at.server, &[])?;
    let to = server.address;
    let (span, traffic) = join(on_cpu(at.client, move || {
        let mut sender = Endpoint::bind(loopback(), transport(sealed))?;
        let start = Instant::now();
        for i in 0..n {
            send(&mut sender, to, text("m", i))?;
        }
        let settled = sender.settle(Duration::from_secs(60))?;
        let span = start.elapsed();
        assert!(settled, "not settled: {:?}", sender.stats());
        assert_eq!(sender.stats().gave_up, 0);
        send(&mut sender, to, "quit")?;
        sender.settle(Duration::from_secs(5))?;
        Ok((span, Traffic::of(&sender)))
    }))?;
    let report = server.finish()?;
    let mut words = report.split(' ');
    let received: usize = words.next().unwrap_or("").parse().map_err(other)?;
    assert_eq!(words.next(), Some("true"), "delivered out of order");
    let throughput = Throughput {
        rate: received as f64 / span.as_secs_f64(),
        received,
        sent: n,
    };
    Ok((throughput, traffic, report))
}

/// Wink one way to a machine in another process, which reports
/// `received <n>` when it has them all.
fn machine_one_way(n: usize, at: Placement) -> io::Result<Throughput> {
    let mut sender = Endpoint::bind(loopback(), TransportConfig::default())?;
    let args = [sender.local_addr().to_string(), n.to_string()];
    let server = Server::start("machine-sink", at.server, &args)?;
    let to = server.address;
    let span = join(on_cpu(at.client, move || {
        let mut mail = Mail::default();
        mail.until(&mut sender, "register ")?;
        let start = Instant::now();
        for i in 0..n {
            send(&mut sender, to, text("m", i))?;
        }
        mail.until(&mut sender, &format!("received {n}"))?;
        let span = start.elapsed();
        mail.until(&mut sender, "unregister")?;
        sender.settle(Duration::from_secs(5))?;
        Ok(span)
    }))?;
    let report = server.finish()?;
    assert_eq!(report, "Ending { reason: Normal, error: None }");
    Ok(Throughput {
        rate: n as f64 / span.as_secs_f64(),
        received: n,
        sent: n,
    })
}

// ---------------------------------------------------------------- table

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ratio(a: f64, b: Option<f64>) -> String {
    b.map_or_else(|| "-".to_owned(), |b| format!("{:.2}x", a / b))
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, role, cpu, extra @ ..] = &args[..] {
        if flag == "--serve" {
            pin(cpu.parse().map_err(other)?);
            return server_main(role, extra);
        }
    }
    // `cargo bench` passes `--bench`; other words select rows.
    let quick = args.iter().any(|a| a == "--quick");
    let only: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let wanted = |key: &str| only.is_empty() || only.iter().any(|w| key.contains(w.as_str()));
    let scale = if quick { 10 } else { 1 };
    let (n, warmup, one_way) = (ROUND_TRIPS / scale, WARMUP / scale, ONE_WAY / scale);

    let cpus = allowed_cpus();
    let mut placements = Vec::new();
    if let [first, second, ..] = cpus[..] {
        placements.push(Placement {
            client: first,
            server: second,
        });
    }
    placements.push(Placement {
        client: cpus[0],
        server: cpus[0],
    });

    let mut verdicts = Vec::new();
    let mut notes = Vec::new();
    println!();
    println!("request/reply round trip on loopback, {n} sequential round trips per row");
    println!(
        "{:<52} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8}",
        "", "p50", "p99", "rate/s", "p50/raw", "p99/raw", "rate/raw"
    );
    for &at in &placements {
        let cores = at.cores();
        let rows: Vec<(&str, &str)> = [
            ("raw", "raw UDP ping-pong"),
            ("wink", "wink endpoint <-> endpoint"),
            ("machine", "wink endpoint <-> machine"),
            ("threads", "wink endpoints on 2 threads of 1 process"),
            ("sealed", "wink endpoint <-> endpoint, sealed (key)"),
        ]
        .into_iter()
        .filter(|(key, _)| wanted(&format!("{key}-rtt-{cores}")))
        .collect();
        // The rows take turns, a share of the round trips each turn, so
        // that a slow spell of the machine falls on all of them alike.
        let (share, warmup) = (n / ROUNDS, warmup / ROUNDS);
        let mut samples = vec![Vec::with_capacity(n); rows.len()];
        let mut traffic = Traffic::default();
        for _ in 0..ROUNDS {
            for (row, &(key, _)) in rows.iter().enumerate() {
                let got = match key {
                    "raw" => raw_round_trip(share, warmup, at)?,
                    "wink" => {
                        let (got, t) = wink_round_trip(share, warmup, at, false)?;
                        traffic += t;
                        got
                    }
                    "sealed" => wink_round_trip(share, warmup, at, true)?.0,
                    "machine" => machine_round_trip(share, warmup, at)?,
                    _ => threads_round_trip(share, warmup, at)?,
                };
                samples[row].extend(got);
            }
        }
        let latencies: Vec<Latency> = samples.into_iter().map(Latency::of).collect();
        let raw = rows
            .iter()
            .position(|&(key, _)| key == "raw")
            .map(|row| latencies[row]);
        for (&(key, name), latency) in rows.iter().zip(&latencies) {
            println!(
                "{:<52} {:>10} {:>10} {:>8.0} {:>8} {:>8} {:>8}",
                format!("{name}, {cores} core(s)"),
                us(latency.p50),
                us(latency.p99),
                latency.rate,
                ratio(latency.p50.as_secs_f64(), raw.map(|r| r.p50.as_secs_f64())),
                ratio(latency.p99.as_secs_f64(), raw.map(|r| r.p99.as_secs_f64())),
                ratio(latency.rate, raw.map(|r| r.rate)),
            );
            if key == "wink" {
                let trips = (ROUNDS * (share + warmup)) as f64;
                notes.push(format!(
                    "round trip, {cores} core(s): the client sent {:.2} data + {:.2} acks per \
                     round trip, {} retransmissions",
                    traffic.data as f64 / trips,
                    traffic.acks as f64 / trips,
                    traffic.retransmits
                ));
            }
            let open = rows
                .iter()
                .position(|&(key, _)| key == "wink")
                .map(|row| latencies[row]);
            if let (Some(open), 1, "sealed") = (open, cores, key) {
                let times = latency.p50.as_secs_f64() / open.p50.as_secs_f64();
                verdicts.push(format!(
                    "sealed round trip p50 <= 1.1x unsealed, 1 core: {} ({times:.2}x)",
                    if times <= 1.1 { "met" } else { "missed" }
                ));
            }
            if let (Some(raw), 1, "wink" | "machine") = (raw, cores, key) {
                let times = latency.p50.as_secs_f64() / raw.p50.as_secs_f64();
                verdicts.push(format!(
                    "round trip p50 <= 1.5x raw UDP, {name}, 1 core: {} ({times:.2}x)",
                    if times <= 1.5 { "met" } else { "missed" }
                ));
            }
        }
    }

    let at = placements[0];
    let cores = at.cores();
    println!();
    println!("one-way throughput on loopback, {one_way} messages of 9 bytes, {cores} core(s)");
    println!(
        "{:<52} {:>10} {:>15} {:>8}",
        "", "msgs/s", "delivered", "rate/raw"
    );
    let mut raw: Option<Throughput> = None;
    let rows = [
        ("raw", "raw UDP (lossy)"),
        ("wink", "wink reliable, endpoint -> endpoint"),
        ("machine", "wink reliable, endpoint -> machine"),
        ("sealed", "wink reliable, endpoint -> endpoint, sealed"),
    ];
    let mut open: Option<Throughput> = None;
    for (key, name) in rows {
        if !wanted(&format!("{key}-flow-{cores}")) {
            continue;
        }
        let throughput = match key {
            "raw" => raw_one_way(one_way, at)?,
            "sealed" => {
                let (throughput, _, _) = wink_one_way(one_way, at, true)?;
                if let Some(open) = open {
                    let times = throughput.rate / open.rate;
                    verdicts.push(format!(
                        "sealed one way >= 0.9x unsealed: {} ({times:.2}x)",
                        if times >= 0.9 { "met" } else { "missed" }
                    ));
                }
                throughput
            }
            "wink" => {
                let (throughput, t, report) = wink_one_way(one_way, at, false)?;
                open = Some(throughput);
                let mut words = report.split(' ').skip(2);
                notes.push(format!(
                    "one way: the sender sent {} data for {one_way} messages ({} \
                     retransmissions, {} of them fast); the receiver sent {} acks and saw {} duplicates",
                    t.data,
                    t.retransmits,
                    t.fast_retransmits,
                    words.next().unwrap_or("?"),
                    words.next().unwrap_or("?"),
                ));
                if let Some(raw) = raw {
                    let times = throughput.rate / raw.rate;
                    verdicts.push(format!(
                        "reliable one way >= 1.5x raw UDP one way: {} ({times:.2}x)",
                        if times >= 1.5 { "met" } else { "missed" }
                    ));
                }
                throughput
            }
            _ => machine_one_way(one_way, at)?,
        };
        if key == "raw" {
            raw = Some(throughput);
        }
        println!(
            "{:<52} {:>10.0} {:>15} {:>8}",
            name,
            throughput.rate,
            format!("{}/{}", throughput.received, throughput.sent),
            ratio(throughput.rate, raw.map(|r| r.rate)),
        );
    }
    println!();
    for line in verdicts.iter().chain(&notes) {
        println!("{line}");
    }
    Ok(())
}
