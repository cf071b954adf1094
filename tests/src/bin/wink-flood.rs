//! A flood of forged senders against a real machine, watching its memory
//! and a legitimate peer's round trips.
//!
//! Starts `echo/Echo` (this build's example binary, message logging off,
//! `GLIBC_TUNABLES` as a server sets it,
//! `WINK_PEER_IDLE_MS` short so the end comes soon), measures its resident
//! memory after a warm-up, then sends from `--sources` addresses on
//! loopback (`127.1.x.y`, each its own sender incarnation) `--per-source`
//! messages each of `--size` bytes, every one ahead of a hole (sequence
//! numbers 1 and up, nothing at 0: all of it would be buffered, were
//! buffering not capped). Meanwhile a legitimate peer does request/replies
//! to the machine; their round trips are reported. At the end it waits for
//! the idle timeout to pass and measures the memory again.
//!
//! ```text
//! cargo build --release --workspace && target/release/wink-flood [--sources 10000]
//!     [--per-source 1023] [--size 1000] [--idle-ms 5000] [--cap-mb 64]
//! ```
//!
//! Exits 1 if the machine's memory went over `--cap-mb`, did not come back
//! to within 10% of where it started, or a legitimate request got no reply.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use wink::runtime::{machine_tunables, Endpoint, TUNABLES_ENV};
use wink::transport::TransportConfig;
use wink::wire::{Writer, MAX_DATAGRAM};
use wink::Address;
use wink_tests::{binary, free_port, signal, Context, Process, Result, Signal};

struct Options {
    sources: u32,
    per_source: u64,
    size: usize,
    idle: Duration,
    cap_mb: f64,
}

fn options() -> Result<Options> {
    let mut options = Options {
        sources: 10_000,
        per_source: 1023,
        size: 1000,
        idle: Duration::from_millis(5000),
        cap_mb: 64.0,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args
            .get(i + 1)
            .with_context(|| format!("{} needs a value", args[i]))?;
        let number = |what: &str| -> Result<u64> {
            value
                .parse()
                .with_context(|| format!("{what}: `{value}` is not a whole number"))
        };
        match args[i].as_str() {
            "--sources" => {
                // Source i is 127.1.<i / 250>.<i % 250 + 1>.
                let sources = number("--sources")?;
                if sources > 250 * 256 {
                    return Err(wink_tests::Error::new(format!(
                        "--sources: at most 64000 forged addresses, not {sources}"
                    )));
                }
                options.sources = sources as u32;
            }
            "--per-source" => options.per_source = number("--per-source")?,
            "--size" => options.size = number("--size")? as usize,
            "--idle-ms" => options.idle = Duration::from_millis(number("--idle-ms")?),
            "--cap-mb" => options.cap_mb = number("--cap-mb")? as f64,
            other => return Err(wink_tests::Error::new(format!("unknown option `{other}`"))),
        }
        i += 2;
    }
    Ok(options)
}

/// Resident memory of `pid`, in MB.
fn rss_mb(pid: u32) -> Result<f64> {
    status_mb(pid, "VmRSS:")
}

/// A memory figure (`VmRSS:`, `RssAnon:`, `RssFile:`…) of
/// `/proc/<pid>/status`, in MB.
fn status_mb(pid: u32, field: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(kb / 1024.0)
}

/// The forged address of source `i`.
fn source(i: u32) -> SocketAddr {
    SocketAddr::from(([127, 1, (i / 250) as u8, (i % 250 + 1) as u8], 0))
}

/// Sends, from source `i`, `per_source` messages ahead of a hole.
fn flood_from(i: u32, to: SocketAddr, options: &Options, buf: &mut [u8]) -> Result<u64> {
    let socket =
        UdpSocket::bind(source(i)).with_context(|| format!("cannot bind {}", source(i)))?;
    let text = "x".repeat(options.size);
    let incarnation = fastrand::u64(..);
    let mut seq = 1;
    let mut datagrams = 0;
    while seq <= options.per_source {
        let mut writer = Writer::new(buf, incarnation).context("datagram buffer")?;
        while seq <= options.per_source && writer.len() + options.size + 16 < 60_000 {
            if !writer.push_data(seq, 0, &text) {
                break;
            }
            seq += 1;
        }
        let len = writer.finish();
        // A full socket buffer at the target is a loss, as on any network.
        let _ = socket.send_to(&buf[..len], to);
        datagrams += 1;
    }
    Ok(datagrams)
}

/// Request/replies to `to` until `stop`; the round trips, and how many got
/// no reply within a second.
fn legitimate(to: Address, stop: Arc<AtomicBool>) -> Result<(Vec<Duration>, u64)> {
    let mut endpoint = Endpoint::bind(
        "127.0.0.1:0".parse().context("address")?,
        TransportConfig::default(),
    )
    .context("cannot bind the legitimate peer")?;
    let mut rtts = Vec::new();
    let mut missed = 0;
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let text = format!("ping {i}");
        endpoint.send(to, &text).context("send")?;
        loop {
            match endpoint
                .recv_timeout(Duration::from_secs(1))
                .context("receive")?
            {
                Some((_, reply)) if reply == text => {
                    rtts.push(sent.elapsed());
                    break;
                }
                Some(_) => continue,
                None => {
                    missed += 1;
                    break;
                }
            }
        }
        i += 1;
        thread::sleep(Duration::from_millis(1));
    }
    Ok((rtts, missed))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn run() -> Result<bool> {
    let options = options()?;
    // The machine's parent and server: acknowledges what the machine says.
    let mut parent = Endpoint::bind(
        "127.0.0.1:0".parse().context("address")?,
        TransportConfig::default(),
    )
    .context("cannot bind the parent")?;
    let parent_addr = parent.local_addr();
    let done = Arc::new(AtomicBool::new(false));
    let parent_done = done.clone();
    let parent_thread = thread::spawn(move || {
        while !parent_done.load(Ordering::Relaxed) {
            let _ = parent.recv_timeout(Duration::from_millis(100));
        }
    });
    let port = free_port()?;
    let target: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut command = Command::new(binary("echo")?);
    command
        .args(["echo/Echo", &target.to_string(), &parent_addr.to_string()])
        .env("WINK_LOG_MESSAGES", "0")
        // As a server starts it.
        .env(
            TUNABLES_ENV,
            machine_tunables(std::env::var_os(TUNABLES_ENV).as_deref()),
        )
        .env("WINK_SERVER", parent_addr.to_string())
        .env("WINK_PEER_IDLE_MS", options.idle.as_millis().to_string());
    let mut echo = Process::spawn("echo", command)?;
    let pid = echo.pid();
    let to = Address::from(target);

    // Warm up, then the baseline.
    let warm = Arc::new(AtomicBool::new(false));
    let warm_stop = warm.clone();
    let warmup = thread::spawn(move || legitimate(to, warm_stop));
    thread::sleep(Duration::from_millis(500));
    warm.store(true, Ordering::Relaxed);
    let (warm_rtts, warm_missed) = warmup
        .join()
        .map_err(|_| wink_tests::Error::new("the warm-up panicked"))??;
    let baseline = rss_mb(pid)?;
    let baseline_anon = status_mb(pid, "RssAnon:")?;

    // The flood, with the legitimate peer and a memory sampler alongside.
    let stop = Arc::new(AtomicBool::new(false));
    let peer_stop = stop.clone();
    let peer = thread::spawn(move || legitimate(to, peer_stop));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler_peak = peak.clone();
    let sampler_stop = stop.clone();
    let sampler = thread::spawn(move || {
        while !sampler_stop.load(Ordering::Relaxed) {
            if let Ok(mb) = rss_mb(pid) {
                sampler_peak.fetch_max((mb * 1000.0) as u64, Ordering::Relaxed);
            }
            thread::sleep(Duration::from_millis(5));
        }
    });
    let started = Instant::now();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut datagrams = 0;
    for i in 0..options.sources {
        datagrams += flood_from(i, target, &options, &mut buf)?;
    }
    let flood_time = started.elapsed();
    // Let the machine work through what its socket holds.
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (mut rtts, missed) = peer
        .join()
        .map_err(|_| wink_tests::Error::new("the legitimate peer panicked"))??;
    let _ = sampler.join();
    let peak = peak.load(Ordering::Relaxed) as f64 / 1000.0;

    // After the idle timeout (a peer is forgotten at the second sweep that
    // finds it idle: within 2.5 idle timeouts), the memory again.
    thread::sleep(options.idle * 3 + Duration::from_secs(1));
    // The sweep runs when the machine's timers fire: a request makes sure.
    let stop = Arc::new(AtomicBool::new(false));
    let poke_stop = stop.clone();
    let poke = thread::spawn(move || legitimate(to, poke_stop));
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let _ = poke.join();
    let after = rss_mb(pid)?;
    let after_anon = status_mb(pid, "RssAnon:")?;
    let _ = signal(pid, Signal::TERM);
    let _ = echo.expect_line("transport", Duration::from_secs(5));
    for line in echo.lines() {
        if line.text.contains("transport:") {
            println!("machine's own count: {}", line.text);
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = parent_thread.join();

    rtts.sort();
    let mut warm_rtts = warm_rtts;
    warm_rtts.sort();
    println!(
        "flood: {} sources x {} messages of {} B ({} datagrams) in {:.2} s",
        options.sources,
        options.per_source,
        options.size,
        datagrams,
        flood_time.as_secs_f64()
    );
    println!(
        "memory (RSS): baseline {baseline:.2} MB, peak {peak:.2} MB (cap {:.0} MB), after the idle timeout {after:.2} MB ({:+.1}%)",
        options.cap_mb,
        (after / baseline - 1.0) * 100.0
    );
    println!(
        "legitimate peer: before the flood p50 {:?} p99 {:?} ({} round trips, {} missed); during it p50 {:?} p99 {:?} max {:?} ({} round trips, {} missed)",
        percentile(&warm_rtts, 0.5),
        percentile(&warm_rtts, 0.99),
        warm_rtts.len(),
        warm_missed,
        percentile(&rtts, 0.5),
        percentile(&rtts, 0.99),
        rtts.last().copied().unwrap_or_default(),
        rtts.len(),
        missed
    );
    println!(
        "of which anonymous (heap, stacks): baseline {baseline_anon:.2} MB, after {after_anon:.2} MB ({:+.1}%); the rest is the binary's pages, some first run during the flood",
        (after_anon / baseline_anon - 1.0) * 100.0
    );
    let ok = peak < options.cap_mb && after <= baseline * 1.1 && missed == 0 && !rtts.is_empty();
    println!("{}", if ok { "ok" } else { "FAILED" });
    Ok(ok)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("wink-flood: {e}");
            ExitCode::from(2)
        }
    }
}
