//! A server whose stdout nobody reads: its machines share that pipe for
//! their logs, and once it is full they go on answering at full speed,
//! dropping (and counting) log lines instead of blocking on it. When the
//! reader catches up, each says how many lines it dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use wink::runtime::Endpoint;
use wink::transport::TransportConfig;
use wink::Address;
use wink_tests::{binary, free_port, signal, Signal, Staged, PATIENCE};

/// Request/replies to the echo: each logs two lines of about 60 bytes at
/// the echo, several times what the pipe (64 KiB) and the echo's hold
/// (64 KiB) take together.
const ROUND_TRIPS: usize = 3000;

/// The server process and everything it started, ended on drop.
struct Served {
    child: Child,
    staged: Staged,
}

impl Drop for Served {
    fn drop(&mut self) {
        // It stops its machines within twice the grace period, and its
        // log never blocks it: the wait is bounded.
        let _ = signal(self.child.id(), Signal::TERM);
        let _ = self.child.wait();
        for pid in self.staged.running() {
            let _ = signal(pid, Signal::KILL);
        }
    }
}

/// The next message within `PATIENCE`, or a panic saying what was awaited.
fn next(client: &mut Endpoint, what: &str) -> (Address, String) {
    match client.recv_timeout(PATIENCE) {
        Ok(Some(message)) => message,
        Ok(None) => panic!("no {what} within {PATIENCE:?}"),
        Err(e) => panic!("receiving {what}: {e}"),
    }
}

#[test]
fn machines_answer_at_full_speed_while_nobody_reads_their_log() {
    let staged = Staged::new().expect("staged machines");
    let port = free_port().expect("a free port");
    let server: Address = format!("127.0.0.1:{port}").parse().expect("address");
    let child = Command::new(binary("wink-server").expect("wink-server"))
        .arg("serve")
        .arg(staged.path())
        .arg("--address")
        .arg(server.to_string())
        .arg("--grace-ms")
        .arg("1000")
        .env("WINK_LOG_MESSAGES", "1")
        .env("WINK_LINGER_MS", "300")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start wink-server");
    let mut served = Served { child, staged };
    // Not read until the end.
    let stdout: ChildStdout = served.child.stdout.take().expect("piped stdout");

    let mut client = Endpoint::bind(
        "127.0.0.1:0".parse().expect("address"),
        TransportConfig::default(),
    )
    .expect("bind a client");
    // The server is up once it answers.
    let give_up = Instant::now() + PATIENCE;
    loop {
        assert!(Instant::now() < give_up, "the server never answered");
        client.send(server, "list 1").expect("send");
        match client
            .recv_timeout(Duration::from_millis(200))
            .expect("receive")
        {
            Some((_, reply)) if reply.starts_with("listed 1") => break,
            _ => {}
        }
    }
    client
        .send(server, "start 2 echo/Echo :0 requester")
        .expect("send");
    let echo = loop {
        let (from, text) = next(&mut client, "`started` from the echo");
        if text.starts_with("started echo/Echo") {
            break from;
        }
    };

    let start = Instant::now();
    for i in 0..ROUND_TRIPS {
        let message = format!("ping {i:06}");
        client.send(echo, message.as_str()).expect("send");
        loop {
            let (from, text) = next(&mut client, &format!("reply to `{message}`"));
            if from == echo {
                assert_eq!(text, message);
                break;
            }
        }
    }
    let took = start.elapsed();
    eprintln!("{ROUND_TRIPS} round trips with an unread log in {took:?}");

    // The reader catches up: the echo says what it could not write.
    let (lines, read) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let give_up = Instant::now() + PATIENCE;
    let dropped = loop {
        let left = give_up.saturating_duration_since(Instant::now());
        match read.recv_timeout(left) {
            Ok(line) if line.contains(" log lines dropped: ") => break line,
            Ok(_) => {}
            Err(_) => panic!("no line counting the dropped lines"),
        }
    };
    let count: u64 = dropped
        .split_ascii_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("`{dropped}` does not start with a count"));
    assert!(count > 0, "{dropped}");
    assert_eq!(
        dropped,
        format!("{count} log lines dropped: standard output was not read fast enough [WARN]")
    );
    drop(served);
}
