//! The driver with real processes: shell scripts in a temporary directory
//! stand in for machines (they never speak, so they never register), and
//! a real UDP endpoint is the requester. Waits are bounded waits for a
//! reply, never sleeps.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::*;
use crate::transport::TransportConfig;

const PATIENCE: Duration = Duration::from_secs(10);

/// A log the test can read.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A server on a thread, serving `dir`, and a requester talking to it.
struct Running {
    server: Address,
    client: Endpoint,
    /// Dropping it makes the server's end readable: the stop request.
    stop: Option<UnixStream>,
    thread: Option<JoinHandle<Result<(), ServeError>>>,
    log: Shared,
}

impl Running {
    fn serve(dir: &Path, grace: Duration) -> Self {
        let endpoint =
            Endpoint::bind("127.0.0.1:0".parse().unwrap(), TransportConfig::default()).unwrap();
        let server = endpoint.local_addr();
        let settings = ServeSettings {
            dir: dir.to_owned(),
            log_dir: None,
            server: ServerConfig {
                grace,
                ..ServerConfig::default()
            },
            key_file: None,
        };
        let log = Shared::default();
        let logger = crate::log::to_writer(log.clone());
        let (stop, stopped) = UnixStream::pair().unwrap();
        let thread = std::thread::spawn(move || serve_until(endpoint, settings, logger, stopped));
        let client =
            Endpoint::bind("127.0.0.1:0".parse().unwrap(), TransportConfig::default()).unwrap();
        Running {
            server,
            client,
            stop: Some(stop),
            thread: Some(thread),
            log,
        }
    }

    fn send(&mut self, text: &str) {
        self.client.send(self.server, text).unwrap();
    }

    /// The next message from the server.
    fn next(&mut self) -> String {
        let got = self.client.recv_timeout(PATIENCE).unwrap();
        match got {
            Some((from, text)) if from == self.server => text,
            Some((from, text)) => panic!("from {from}, not the server: {text}"),
            None => panic!("no reply in {PATIENCE:?}; log:\n{}", self.log.text()),
        }
    }

    /// Sends `request` and returns the next message.
    fn ask(&mut self, request: &str) -> String {
        self.send(request);
        self.next()
    }

    /// Starts `name` at `target` with `args`, with the requester as
    /// parent, and returns its pid.
    fn start(&mut self, id: u64, name: &str, target: &str, args: &str) -> u32 {
        let reply = self.ask(&format!("start {id} {name} {target} requester {args}"));
        let pid = reply
            .strip_prefix(&format!("starting {id} "))
            .unwrap_or_else(|| {
                panic!(
                    "`{reply}` does not start `starting {id} `; log:\n{}",
                    self.log.text()
                )
            });
        pid.parse().unwrap()
    }

    /// Waits until `ready`, checking between round trips to the server
    /// (at most a thousand).
    fn until(&mut self, what: &str, mut ready: impl FnMut() -> bool) {
        for i in 0..1000 {
            if ready() {
                return;
            }
            let mut reply = self.ask(&format!("list {i}"));
            while !reply.starts_with("listed ") {
                reply = self.next();
            }
        }
        panic!("not {what} after a thousand round trips");
    }

    /// Stops the server and waits for it to return.
    fn shut_down(&mut self) -> Result<(), ServeError> {
        drop(self.stop.take());
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.thread.is_some() && !std::thread::panicking() {
            let _ = self.shut_down();
        }
    }
}

/// A directory of shell-script machines:
/// - `sh/Sleeper`: runs until signalled;
/// - `sh/Stubborn`: ignores SIGTERM;
/// - `sh/Record`: writes its command line and environment to
///   `sh/Record.out`, then runs until signalled;
/// - `sh/Plain`: a file without the executable bit;
/// - `sh/Escape`: a symlink to `/bin/sh`, outside the directory.
fn machines() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let sh = dir.path().join("sh");
    fs::create_dir(&sh).unwrap();
    let script = |name: &str, body: &str, mode: u32| {
        let path = sh.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    };
    script("Sleeper", "exec sleep 60", 0o755);
    script("Stubborn", "trap '' TERM\nexec sleep 60", 0o755);
    script(
        "Record",
        "printf '%s\\n' \"$@\" \"$WINK_SERVER\" \"$WINK_START_ID\" > \"$0.tmp\"\n\
         mv \"$0.tmp\" \"$0.out\"\nexec sleep 60",
        0o755,
    );
    script("Plain", "exit 0", 0o644);
    std::os::unix::fs::symlink("/bin/sh", sh.join("Escape")).unwrap();
    dir
}

/// Whether `pid` runs `sleep` (a script that got past its `trap`).
fn sleeping(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "sleep")
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_machine_is_forked_with_its_command_line_and_environment() {
    let dir = machines();
    let mut s = Running::serve(dir.path(), Duration::from_secs(5));
    let pid = s.start(7, "sh/Record", ":0", "a b");
    let out: PathBuf = dir.path().join("sh/Record.out");
    s.until("recorded", || out.exists());
    let recorded = fs::read_to_string(&out).unwrap();
    let client = s.client.local_addr();
    assert_eq!(
        recorded.lines().collect::<Vec<_>>(),
        [
            "sh/Record",
            "127.0.0.1:0",
            &client.to_string(),
            "a",
            "b",
            &s.server.to_string(),
            "7"
        ]
    );
    assert!(alive(pid));
    s.shut_down().unwrap();
    assert!(!alive(pid), "stopped and reaped at shutdown");
}

#[test]
fn a_kill_9_is_reported_to_the_parent_and_the_process_reaped() {
    let dir = machines();
    let mut s = Running::serve(dir.path(), Duration::from_secs(5));
    let pid = s.start(1, "sh/Sleeper", ":0", "");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    assert_eq!(s.next(), "died 1 - sh/Sleeper signal:9");
    assert!(!alive(pid), "no zombie");
    assert!(s.log.text().contains(&format!(
        "Reaped: {pid} sh/Sleeper killed by signal 9 (SIGKILL)"
    )));
}

#[test]
fn a_machine_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let dir = machines();
    let mut s = Running::serve(dir.path(), Duration::from_millis(200));
    let port = free_port();
    let pid = s.start(1, "sh/Stubborn", &format!(":{port}"), "");
    s.until("ignoring SIGTERM", || sleeping(pid));
    assert_eq!(
        s.ask(&format!("stop 2 {port}")),
        format!("stopping 2 {port} 200")
    );
    let mut rest = [s.next(), s.next()];
    rest.sort();
    assert_eq!(
        rest,
        [
            "died 1 - sh/Stubborn signal:9".to_owned(),
            format!("stopped 2 {port}")
        ]
    );
    assert!(!alive(pid));
    assert!(s
        .log
        .text()
        .contains(&format!("{pid} sh/Stubborn ignored SIGTERM: SIGKILL")));
}

#[test]
fn starts_the_checks_refuse_say_why() {
    let dir = machines();
    let root = dir.path().canonicalize().unwrap();
    let mut s = Running::serve(dir.path(), Duration::from_secs(5));
    let reply = s.ask("start 1 sh/Missing :0 requester");
    assert!(
        reply.starts_with(&format!(
            "error 1 start `sh/Missing`: no executable at {}/sh/Missing: ",
            root.display()
        )),
        "{reply}"
    );
    assert_eq!(
        s.ask("start 2 sh/Plain :0 requester"),
        format!(
            "error 2 start `sh/Plain`: {}/sh/Plain is not an executable file",
            root.display()
        )
    );
    let reply = s.ask("start 3 sh/Escape :0 requester");
    assert!(
        reply.starts_with("error 3 start `sh/Escape` resolves to /")
            && reply.ends_with(", outside the served directory"),
        "{reply}"
    );
    assert!(!s.log.text().contains("Forked:"));
}

#[test]
fn a_forged_register_is_refused() {
    let dir = machines();
    let mut s = Running::serve(dir.path(), Duration::from_secs(5));
    let parent = s.client.local_addr();
    // Process 1 is no machine of the directory: the server must never
    // signal it.
    let reply = s.ask(&format!("register 1 sh/Sleeper 1 {parent} -"));
    assert!(reply.starts_with("error 1 register pid 1"), "{reply}");
    // A pid it forked is its own: no checks, and the address (any port,
    // on the IP it was told) is taken from the sender.
    let pid = s.start(2, "sh/Sleeper", ":0", "");
    assert_eq!(
        s.ask(&format!("register 3 sh/Sleeper {pid} {parent} 2")),
        "registered 3"
    );
    assert!(!s.log.text().contains("Adopted:"));
}

#[test]
fn a_machine_of_the_directory_holding_its_socket_is_adopted() {
    // This test process is the machine: its binary is in the served
    // directory and the requester's socket is its own.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().to_owned();
    let mut s = Running::serve(&dir, Duration::from_secs(5));
    let me = std::process::id();
    let parent = "127.0.0.1:9";
    assert_eq!(
        s.ask(&format!("register 1 deps/Test {me} {parent} 4")),
        "registered 1"
    );
    assert_eq!(
        s.ask("list 2"),
        format!(
            "machine 2 {} {me} deps/Test {parent} 0",
            s.client.local_addr()
        )
    );
    assert_eq!(s.next(), "listed 2 1");
    // Never shut down: the server would stop its machines, this test
    // among them. The thread ends with the test process.
    std::mem::forget(s.stop.take());
    s.thread = None;
}

#[test]
fn a_shutdown_stops_every_machine_and_returns() {
    let dir = machines();
    let mut s = Running::serve(dir.path(), Duration::from_millis(300));
    let a = s.start(1, "sh/Sleeper", ":0", "");
    let b = s.start(2, "sh/Stubborn", ":0", "");
    s.until("ignoring SIGTERM", || sleeping(b));
    s.shut_down().unwrap();
    assert!(!alive(a) && !alive(b));
    let log = s.log.text();
    for line in [
        "stopping 2 machines",
        &format!("{b} sh/Stubborn ignored SIGTERM: SIGKILL"),
        "server exited",
    ] {
        assert!(log.contains(line), "no `{line}` in\n{log}");
    }
}
