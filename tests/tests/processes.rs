//! Real machine processes on loopback, started directly with their command
//! line (no server): the test's own endpoint is their parent and their
//! server, so it sees every lifecycle message (`started`, `register`,
//! `exited`, `unregister`), acknowledges it, and answers `register` with
//! `registered` as a server would.
//!
//! Self-contained: every process started is held by a [`Process`] guard
//! that kills and reaps it when dropped, also when a test fails, and a
//! failing test prints the output of the processes it started. Waits are on
//! events (a message, a process exit) with an upper bound; nothing sleeps
//! for a guessed time.

use std::error::Error;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use wink::runtime::Endpoint;
use wink::transport::TransportConfig;
use wink::Address;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// How long any one expected event may take before the test fails. Far
/// above what anything takes, so a slow machine does not fail a test; it
/// only bounds how long a broken one hangs.
const PATIENCE: Duration = Duration::from_secs(20);

const ECHO: &str = "echo/Echo";
const PINGER: &str = "pinger/Pinger";
const ANY_PORT: &str = "127.0.0.1:0";

/// The path of example binary `name`. This test runs from
/// `<target>/<profile>/deps/`; the binaries are in `<target>/<profile>/`.
/// They are built first (once per run, a no-op when up to date), so that a
/// test never runs a stale or missing machine.
fn example(name: &str) -> Result<PathBuf> {
    static BUILT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT
        .get_or_init(|| build_examples().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| e.as_str())?;
    let path = dir.join(name);
    if !path.exists() {
        return Err(format!("no machine binary at {}", path.display()).into());
    }
    Ok(path)
}

fn build_examples() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("the test binary is not in <target>/<profile>/deps/")?;
    let target = dir.parent().ok_or("no target directory")?;
    let profile = match dir.file_name().and_then(|p| p.to_str()) {
        Some("debug") | None => "dev",
        Some(profile) => profile,
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "wink-examples", "--bins"])
        .args(["--profile", profile])
        .arg("--target-dir")
        .arg(target)
        .status()?;
    if !status.success() {
        return Err(format!("building the example machines: {status}").into());
    }
    Ok(dir.to_owned())
}

/// A machine process, killed and reaped when dropped. Its stdout and
/// stderr go to a file, printed if the test fails.
struct Process {
    child: Child,
    /// A pidfd: readable once the process has exited.
    pidfd: Option<OwnedFd>,
    output: PathBuf,
    _dir: tempfile::TempDir,
}

impl Process {
    /// Starts `binary <name> <address> <parent> [args…]` with `WINK_SERVER`
    /// set to `server` and `env` added.
    fn start(
        binary: &str,
        [name, address]: [&str; 2],
        [parent, server]: [Address; 2],
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<Process> {
        let dir = tempfile::tempdir()?;
        let output = dir.path().join("output");
        let file = std::fs::File::create(&output)?;
        let child = Command::new(example(binary)?)
            .arg(name)
            .arg(address)
            .arg(parent.to_string())
            .args(args)
            .env("WINK_SERVER", server.to_string())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?;
        let pidfd = pidfd_open(child.id());
        Ok(Process {
            child,
            pidfd,
            output,
            _dir: dir,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: libc::c_int) -> Result<()> {
        let pid = libc::pid_t::try_from(self.pid())?;
        // SAFETY: kill(2) on our own child, not reaped yet (the guard reaps
        // it only in `wait_exit` or on drop).
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit, and reaps it; `None`
    /// if it is still running.
    fn wait_exit(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let give_up = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            match &self.pidfd {
                Some(pidfd) => wait_readable(pidfd, left),
                // Without pidfds (Linux before 5.3): look again shortly.
                None => std::thread::sleep(left.min(Duration::from_millis(5))),
            }
        }
    }

    /// Waits for the process to exit after being asked to, and checks that
    /// it exited with status 0.
    fn exits_cleanly(&mut self) -> Result<()> {
        match self.wait_exit(PATIENCE)? {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(format!("process {} ended with {status}", self.pid()).into()),
            None => Err(format!("process {} still running after {PATIENCE:?}", self.pid()).into()),
        }
    }

    /// CPU time used so far, user plus system, in clock ticks
    /// (`/proc/<pid>/stat` fields 14 and 15).
    fn cpu_ticks(&self) -> Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        // The command name (field 2) is in parentheses and may hold spaces;
        // count fields after its closing one.
        let after_name = stat.rfind(')').ok_or("no command name in stat")? + 2;
        let fields: Vec<&str> = stat[after_name..].split(' ').collect();
        let field = |n: usize| -> Result<u64> {
            let text = fields.get(n - 3).ok_or("short stat")?;
            Ok(text.parse()?)
        };
        Ok(field(14)? + field(15)?)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let output = std::fs::read_to_string(&self.output).unwrap_or_default();
            eprintln!(
                "--- output of process {} ---\n{output}--- end ---",
                self.pid()
            );
        }
    }
}

fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new file
    // descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = libc::c_int::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: a fresh descriptor that nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Blocks until `fd` is readable or `timeout` passes.
fn wait_readable(fd: &OwnedFd, timeout: Duration) {
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut poll, 1, ms) };
}

/// Clock ticks per second of `/proc/<pid>/stat` CPU times.
fn ticks_per_second() -> i64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }
}

/// The test's end: the machines' parent and server. Keeps messages that
/// arrive while it waits for another sender's, since only the order per
/// sender is given.
struct Parent {
    endpoint: Endpoint,
    held: Vec<(Address, String)>,
}

impl Parent {
    fn new() -> Result<Parent> {
        let endpoint = Endpoint::bind(ANY_PORT.parse()?, TransportConfig::default())?;
        Ok(Parent {
            endpoint,
            held: Vec::new(),
        })
    }

    fn address(&self) -> Address {
        self.endpoint.local_addr()
    }

    /// Starts `binary` as machine `name` at `address`, a child of this end.
    fn start(&self, binary: &str, name: &str, address: &str, args: &[String]) -> Result<Process> {
        self.start_with(binary, name, address, args, &[])
    }

    fn start_with(
        &self,
        binary: &str,
        name: &str,
        address: &str,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<Process> {
        let me = self.address();
        Process::start(binary, [name, address], [me, me], args, env)
    }

    /// The first message (held, or arriving within [`PATIENCE`]) for which
    /// `wanted` is true.
    fn next(
        &mut self,
        what: &str,
        wanted: impl Fn(Address, &str) -> bool,
    ) -> Result<(Address, String)> {
        if let Some(i) = self.held.iter().position(|(a, t)| wanted(*a, t)) {
            return Ok(self.held.remove(i));
        }
        let give_up = Instant::now() + PATIENCE;
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            match self.endpoint.recv_timeout(left)? {
                Some((from, text)) if wanted(from, &text) => return Ok((from, text)),
                Some(other) => self.held.push(other),
                None => {
                    let held = &self.held;
                    return Err(format!("no {what} within {PATIENCE:?}; holding {held:?}").into());
                }
            }
        }
    }

    /// The next message from `from`.
    fn next_from(&mut self, from: Address) -> Result<String> {
        Ok(self
            .next(&format!("message from {from}"), |a, _| a == from)?
            .1)
    }

    /// Waits for `started <name> -` (started by hand: no start id) and the
    /// `register <id> <name> <pid> <parent> -` after it, and answers
    /// `registered <id>`; returns the machine's address.
    fn started(&mut self, name: &str, process: &Process) -> Result<Address> {
        let started = format!("started {name} -");
        let (machine, _) = self.next(&started, |_, text| text == started)?;
        let register = self.next_from(machine)?;
        let id = register
            .strip_prefix("register ")
            .and_then(|rest| rest.split_ascii_whitespace().next())
            .ok_or_else(|| format!("expected `register <id> …`, got `{register}`"))?
            .to_owned();
        assert_eq!(
            register,
            format!(
                "register {id} {name} {} {} -",
                process.pid(),
                self.address()
            )
        );
        self.endpoint.send(machine, format!("registered {id}"))?;
        Ok(machine)
    }

    /// Waits for `exited <name> <reason>` then `unregister <id>` from
    /// `machine`.
    fn exited(&mut self, name: &str, reason: &str, machine: Address) -> Result<()> {
        assert_eq!(self.next_from(machine)?, format!("exited {name} {reason}"));
        let unregister = self.next_from(machine)?;
        assert!(
            unregister
                .strip_prefix("unregister ")
                .is_some_and(|id| id.parse::<u64>().is_ok()),
            "expected `unregister <id>`, got `{unregister}`"
        );
        Ok(())
    }

    /// Pings `echo` `n` times at once, then checks every reply, in order.
    fn ping(&mut self, echo: Address, label: &str, n: usize) -> Result<()> {
        for i in 0..n {
            self.endpoint.send(echo, format!("ping {label} {i}"))?;
        }
        for i in 0..n {
            assert_eq!(self.next_from(echo)?, format!("ping {label} {i}"));
        }
        Ok(())
    }

    /// Runs the endpoint until everything it sent is acknowledged.
    fn settle(&mut self) -> Result<()> {
        if !self.endpoint.settle(PATIENCE)? {
            return Err(format!("not settled: {:?}", self.endpoint.stats()).into());
        }
        Ok(())
    }
}

/// Echo answers a thousand pipelined pings and some one at a time, each
/// once and in order, and exits in order on SIGTERM: `exited … stopped`,
/// then `unregister`, then status 0.
#[test]
fn echo_answers_every_ping_in_order_and_exits_on_sigterm() -> Result<()> {
    let mut parent = Parent::new()?;
    let mut echo = parent.start("echo", ECHO, ANY_PORT, &[])?;
    let echo_at = parent.started(ECHO, &echo)?;

    parent.ping(echo_at, "pipelined", 1000)?;
    for i in 0..20 {
        parent.ping(echo_at, &format!("one-by-one {i}"), 1)?;
    }

    echo.signal(libc::SIGTERM)?;
    parent.exited(ECHO, "stopped", echo_at)?;
    echo.exits_cleanly()?;
    assert_eq!(parent.endpoint.stats().gave_up, 0);
    Ok(())
}

/// Two machine processes: a pinger pings an echo a thousand times, checks
/// every reply in order, reports to its parent and exits by itself; the
/// echo exits on SIGTERM. Both exit with status 0.
#[test]
fn pinger_pings_echo_and_both_exit_cleanly() -> Result<()> {
    let mut parent = Parent::new()?;
    let mut echo = parent.start("echo", ECHO, ANY_PORT, &[])?;
    let echo_at = parent.started(ECHO, &echo)?;

    let args = [echo_at.to_string(), "1000".to_owned()];
    let mut pinger = parent.start("pinger", PINGER, ANY_PORT, &args)?;
    let pinger_at = parent.started(PINGER, &pinger)?;
    assert_eq!(parent.next_from(pinger_at)?, "pinged 1000");
    parent.exited(PINGER, "normal", pinger_at)?;
    pinger.exits_cleanly()?;

    echo.signal(libc::SIGTERM)?;
    parent.exited(ECHO, "stopped", echo_at)?;
    echo.exits_cleanly()
}

/// A peer killed with SIGKILL (no `exited`) and started again at the same
/// port is a new incarnation: its `started`, `register` and replies, which
/// count from sequence number 0 again, are delivered, not dropped as
/// duplicates of its earlier life's.
#[test]
fn killed_peer_restarted_at_the_same_port_is_heard() -> Result<()> {
    let mut parent = Parent::new()?;
    let mut echo = parent.start("echo", ECHO, ANY_PORT, &[])?;
    let echo_at = parent.started(ECHO, &echo)?;
    parent.ping(echo_at, "first life", 100)?;
    parent.settle()?;

    echo.signal(libc::SIGKILL)?;
    let status = echo.wait_exit(PATIENCE)?.ok_or("SIGKILL did not end it")?;
    assert!(!status.success());
    drop(echo);

    let mut echo = parent.start("echo", ECHO, &echo_at.to_string(), &[])?;
    assert_eq!(parent.started(ECHO, &echo)?, echo_at, "same address");
    parent.ping(echo_at, "second life", 100)?;
    assert_eq!(parent.endpoint.stats().peer_restarts, 1);
    assert_eq!(parent.endpoint.stats().gave_up, 0);

    echo.signal(libc::SIGTERM)?;
    parent.exited(ECHO, "stopped", echo_at)?;
    echo.exits_cleanly()
}

/// An idle machine sleeps on its socket and timers: over one second with
/// nothing to do (its parent listening and hearing nothing) it uses at
/// most 2 clock ticks (20 ms at 100 Hz) of CPU.
#[test]
fn idle_machine_uses_no_cpu() -> Result<()> {
    let mut parent = Parent::new()?;
    let echo = parent.start("echo", ECHO, ANY_PORT, &[])?;
    let echo_at = parent.started(ECHO, &echo)?;
    parent.ping(echo_at, "warm up", 1)?;
    parent.settle()?;

    let before = echo.cpu_ticks()?;
    let heard = parent.endpoint.recv_timeout(Duration::from_secs(1))?;
    let used = echo.cpu_ticks()? - before;

    assert_eq!(heard, None, "an idle echo says nothing");
    eprintln!(
        "idle echo: {used} ticks of CPU in 1 s ({} ticks/s)",
        ticks_per_second()
    );
    assert!(used <= 2, "{used} ticks of CPU in 1 s of idling");
    Ok(())
}

/// A machine whose parent is gone does not spin (the C++ original takes
/// 80% of a core): pulsing every 100 ms to a closed port, each pulse
/// retransmitted and given up on, ICMP errors coming back, it uses at most
/// 2 clock ticks of CPU in one second. (It would exit `orphaned` after the
/// heartbeat timeout, see the next test: here that is ten minutes, so the
/// whole second is one of idling without a parent.)
#[test]
fn orphaned_machine_uses_no_cpu() -> Result<()> {
    let mut parent = Parent::new()?;
    let env = [
        ("WINK_PULSE_MS", "100"),
        ("WINK_HEARTBEAT_TIMEOUT_MS", "600000"),
    ];
    let mut echo = parent.start_with("echo", ECHO, ANY_PORT, &[], &env)?;
    parent.started(ECHO, &echo)?;
    // Its `registered` delivered, it has nothing left to ask its server.
    parent.settle()?;
    drop(parent);

    let before = echo.cpu_ticks()?;
    // An event-free wait of one second, unless the machine dies.
    let died = echo.wait_exit(Duration::from_secs(1))?;
    assert_eq!(died, None, "the orphaned machine exited");
    let used = echo.cpu_ticks()? - before;

    eprintln!(
        "orphaned echo: {used} ticks of CPU in 1 s ({} ticks/s)",
        ticks_per_second()
    );
    assert!(used <= 2, "{used} ticks of CPU in 1 s without a parent");
    Ok(())
}

/// A machine whose parent stops answering (no message, no acknowledgement
/// of its pulses) exits `orphaned` after the heartbeat timeout, not before,
/// with status 0.
#[test]
fn orphaned_machine_exits_after_the_heartbeat_timeout() -> Result<()> {
    const HEARTBEAT: Duration = Duration::from_millis(1000);
    let mut parent = Parent::new()?;
    let env = [
        ("WINK_PULSE_MS", "100"),
        ("WINK_HEARTBEAT_TIMEOUT_MS", "1000"),
        ("WINK_LINGER_MS", "100"),
    ];
    let mut echo = parent.start_with("echo", ECHO, ANY_PORT, &[], &env)?;
    let echo_at = parent.started(ECHO, &echo)?;
    parent.ping(echo_at, "still there", 1)?;
    parent.settle()?;
    drop(parent);
    let gone = Instant::now();

    echo.exits_cleanly()?;
    let after = gone.elapsed();
    eprintln!(
        "orphaned echo, heartbeat timeout {HEARTBEAT:?}: exited {after:?} after its parent went"
    );
    // It last heard from its parent at most a pulse before the drop.
    assert!(
        after >= HEARTBEAT - Duration::from_millis(200),
        "exited {after:?} after its parent went, before the heartbeat timeout"
    );
    let output = std::fs::read_to_string(&echo.output)?;
    assert!(
        output.contains(&format!("{echo_at} {ECHO} exited: orphaned")),
        "{output}"
    );
    Ok(())
}
