//! End-to-end test support: real `wink-server` processes serving the example
//! machines from a temporary directory, the `wink` command, and a raw client.
//!
//! - [`Staged`]: a temporary directory laid out as `<dir>/<package>/<Executable>`
//!   with the example binaries of this build (see [`wink_examples::MACHINES`]).
//! - [`Server`]: a running `wink-server` on a free loopback port, its output
//!   read line by line; stopped (with every machine it started) when dropped.
//! - [`Process`]: any child process with its output as timestamped lines, waited
//!   on with bounded timeouts, terminated when dropped.
//! - [`run`] / [`Server::wink`]: run a command to completion with a timeout.
//! - [`Client`]: a [`wink::runtime::Endpoint`] for requests the `wink` command
//!   cannot send (`register`, a bare `stop`, an unknown request).
//! - [`netns`]: two hosts on one machine (network namespaces and a veth
//!   link), which can be cut or made lossy.
//! - [`loss`]: a load client and `pinger/Pinger` across a lossy link (the
//!   `wink-loss` binary).
//!
//! Every function here returns a [`Result`] whose error says what was being
//! done and shows the output seen so far; tests `expect` them.

pub mod loss;
pub mod netns;

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

pub use rustix::process::Signal;
use tempfile::TempDir;
use wink::auth::{Keys, KEY_FILE_ENV};
use wink::runtime::{Config, Endpoint};
use wink::Address;

/// How long tests wait for something that takes milliseconds when all is
/// well. Generous, because tests run in parallel on small machines; a test
/// only waits this long when it is going to fail anyway.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// How long [`Process::wait`] waits, once the process ended, for its
/// output pipes to close.
pub const PIPES_CLOSE: Duration = Duration::from_secs(2);

/// What went wrong, with context and the output seen so far.
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Shown by `expect`: print the message as is, newlines and all.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl Error {
    /// An error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Error(message.into())
    }
}

/// The result of every support function.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds what was being done to an error.
pub trait Context<T> {
    /// `what: <the error>`.
    fn context(self, what: impl fmt::Display) -> Result<T>;
    /// Like [`Context::context`], computing the text only on error.
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error(format!("{what}: {e}")))
    }
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| Error(format!("{}: {e}", what())))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.ok_or_else(|| Error(what.to_string()))
    }
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.ok_or_else(|| Error(what().to_string()))
    }
}

// ---------------------------------------------------------------------------
// Binaries and staging

/// The cargo target directory of this build (`target/debug`), derived from
/// the running test binary (`target/debug/deps/<test>-<hash>`).
pub fn target_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the running test binary")?;
    let mut dir = exe
        .parent()
        .with_context(|| format!("{} has no parent directory", exe.display()))?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir
            .parent()
            .with_context(|| format!("{} has no parent directory", dir.display()))?;
    }
    Ok(dir.to_owned())
}

/// The path of the cargo binary `name` of this build, which must exist.
pub fn binary(name: &str) -> Result<PathBuf> {
    let path = target_dir()?.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error(format!(
            "{} is missing: run `cargo build --workspace` first \
             (`cargo test --workspace` builds it)",
            path.display()
        )))
    }
}

/// A temporary directory of machine executables for `wink-server serve`,
/// removed when dropped.
pub struct Staged {
    dir: TempDir,
    root: PathBuf,
}

impl Staged {
    /// Every example machine of [`wink_examples::MACHINES`] at
    /// `<dir>/<package>/<Executable>`.
    pub fn new() -> Result<Self> {
        Self::with(&[])
    }

    /// Like [`Staged::new`], with some names served by other binaries:
    /// `("family/Child", "echo")` makes `family/Parent` start a child that
    /// lives until it is stopped or killed, instead of one that errors at
    /// once. The binary gets the name on its command line, so it logs and
    /// reports itself as `family/Child`.
    pub fn with(aliases: &[(&str, &str)]) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("wink-e2e-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let root = dir
            .path()
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", dir.path().display()))?;
        let staged = Staged { dir, root };
        for (name, bin) in wink_examples::MACHINES {
            let bin = aliases
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(bin, |(_, b)| *b);
            staged.add(name, bin)?;
        }
        Ok(staged)
    }

    /// Puts the cargo binary `bin` at `<dir>/<name>` (a hard link when
    /// possible, else a copy) and returns that path.
    pub fn add(&self, name: &str, bin: &str) -> Result<PathBuf> {
        let from = binary(bin)?;
        let to = self.root.join(name);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        if fs::hard_link(&from, &to).is_err() {
            fs::copy(&from, &to)
                .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        }
        Ok(to)
    }

    /// The directory (canonical, as the server sees it).
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The pids of every process whose executable was started from this
    /// directory: the machines of a server serving it, and nothing else,
    /// since the directory's name is unique.
    pub fn running(&self) -> Vec<u32> {
        let prefix = self.root.as_os_str().as_encoded_bytes();
        processes()
            .into_iter()
            .filter(|&pid| {
                fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmdline| cmdline.starts_with(prefix))
            })
            .collect()
    }

    /// The temporary directory itself.
    pub fn temp_dir(&self) -> &TempDir {
        &self.dir
    }
}

/// Every pid in `/proc`.
fn processes() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The pids of zombie children of `parent`: processes that ended and were
/// not waited for.
pub fn zombies_of(parent: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|pid| {
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // `pid (comm) state ppid …`; comm may hold spaces and parens.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut fields = rest.split_ascii_whitespace();
            let state = fields.next();
            let ppid = fields.next().and_then(|p| p.parse::<u32>().ok());
            state == Some("Z") && ppid == Some(parent)
        })
        .collect()
}

/// The children of `parent` that are zombies now and still zombies after
/// `patience`: a zombie for an instant is a child that just exited and is
/// being reaped; one that lasts was never reaped.
pub fn lasting_zombies_of(parent: u32, patience: Duration) -> Vec<u32> {
    let give_up = Instant::now() + patience;
    let mut zombies = zombies_of(parent);
    while !zombies.is_empty() && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(5));
        let now = zombies_of(parent);
        zombies.retain(|pid| now.contains(pid));
    }
    zombies
}

/// Whether a process `pid` exists and has not ended (zombies count as
/// ended).
pub fn is_running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_ascii_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Sends `signal` to `pid`.
pub fn signal(pid: u32, signal: Signal) -> Result<()> {
    let raw = i32::try_from(pid).with_context(|| format!("pid {pid} is out of range"))?;
    let target = rustix::process::Pid::from_raw(raw).with_context(|| format!("bad pid {pid}"))?;
    rustix::process::kill_process(target, signal)
        .with_context(|| format!("cannot send {signal:?} to {pid}"))
}

/// A UDP port on loopback that was free a moment ago. Something else may
/// take it before it is used: [`Server::start`] retries on another.
pub fn free_port() -> Result<u16> {
    let socket = UdpSocket::bind("127.0.0.1:0").context("cannot bind a UDP socket")?;
    Ok(socket
        .local_addr()
        .context("cannot read a socket's address")?
        .port())
}

// ---------------------------------------------------------------------------
// Processes and their output

/// One line a process wrote, and when the test read it.
#[derive(Debug, Clone)]
pub struct Line {
    /// When the reader thread got it.
    pub at: Instant,
    /// The text, without the newline.
    pub text: String,
    /// Whether it came from stderr.
    pub stderr: bool,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.stderr {
            write!(f, "[stderr] {}", self.text)
        } else {
            f.write_str(&self.text)
        }
    }
}

enum Event {
    Line(Line),
    Closed,
}

/// A child process whose stdout and stderr are read, line by line, by two
/// threads into a channel. Lines are kept: [`Process::expect_line`] searches
/// forward from a cursor, and errors show everything seen.
///
/// Dropping it sends `SIGTERM`, waits up to the grace period, then
/// `SIGKILL`s and waits.
pub struct Process {
    name: String,
    child: Child,
    events: Receiver<Event>,
    open: usize,
    seen: Vec<Line>,
    cursor: usize,
    grace: Duration,
}

impl Process {
    /// Spawns `command` with stdout and stderr piped.
    pub fn spawn(name: impl Into<String>, mut command: Command) -> Result<Self> {
        let name = name.into();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {name} ({command:?})"))?;
        let (tx, events) = mpsc::channel();
        let mut open = 0;
        if let Some(out) = child.stdout.take() {
            open += 1;
            read_lines(out, false, tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            open += 1;
            read_lines(err, true, tx);
        }
        Ok(Process {
            name,
            child,
            events,
            open,
            seen: Vec::new(),
            cursor: 0,
            grace: Duration::from_secs(10),
        })
    }

    /// How long dropping it waits after `SIGTERM` before `SIGKILL`.
    pub fn set_grace(&mut self, grace: Duration) {
        self.grace = grace;
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every line read so far (reading what has arrived first).
    pub fn lines(&mut self) -> &[Line] {
        self.drain();
        &self.seen
    }

    /// Where the next [`Process::expect_line`] starts searching.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Makes the next search start at line `cursor` (a value of
    /// [`Process::cursor`], or 0 for the beginning).
    pub fn set_cursor(&mut self, cursor: usize) {
        self.cursor = cursor.min(self.seen.len());
    }

    /// The first line from the cursor on that contains `pattern`, waiting
    /// up to `timeout` for it; the cursor moves past it.
    pub fn expect_line(&mut self, pattern: &str, timeout: Duration) -> Result<Line> {
        self.expect(&format!("a line containing `{pattern}`"), timeout, |l| {
            l.contains(pattern)
        })
    }

    /// The first line from the cursor on that contains every one of
    /// `patterns`, waiting up to `timeout`; the cursor moves past it.
    pub fn expect_all(&mut self, patterns: &[&str], timeout: Duration) -> Result<Line> {
        self.expect(
            &format!("a line containing all of {patterns:?}"),
            timeout,
            |l| patterns.iter().all(|p| l.contains(p)),
        )
    }

    /// The first line from the cursor on for which `wanted` holds, waiting
    /// up to `timeout`; the cursor moves past it. `what` describes it for
    /// the error.
    pub fn expect(
        &mut self,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Line> {
        let (i, line) = self.find(self.cursor, what, timeout, wanted)?;
        self.cursor = i + 1;
        Ok(line)
    }

    /// The first line from line `from` on for which `wanted` holds, and its
    /// index, waiting up to `timeout`; the cursor does not move.
    pub fn find(
        &mut self,
        from: usize,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<(usize, Line)> {
        let give_up = Instant::now() + timeout;
        let mut from = from.min(self.seen.len());
        loop {
            if let Some(i) = self.seen[from..].iter().position(|l| wanted(&l.text)) {
                let i = from + i;
                return Ok((i, self.seen[i].clone()));
            }
            // Lines searched stay searched.
            from = self.seen.len();
            if self.open == 0 {
                return Err(self.failure(&format!(
                    "{what}: the output of {} ended without one",
                    self.name
                )));
            }
            let left = give_up.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => self.take(event),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.failure(&format!(
                        "{what}: none from {} within {:.1}s",
                        self.name,
                        timeout.as_secs_f64()
                    )))
                }
                Err(RecvTimeoutError::Disconnected) => self.open = 0,
            }
        }
    }

    /// Fails if a line from the cursor on matches `unwanted` (among the
    /// lines read so far, without waiting).
    pub fn refute(&mut self, what: &str, unwanted: impl Fn(&str) -> bool) -> Result<()> {
        self.drain();
        match self.seen[self.cursor..].iter().find(|l| unwanted(&l.text)) {
            Some(line) => Err(self.failure(&format!("unexpected {what}: `{}`", line.text))),
            None => Ok(()),
        }
    }

    /// An error saying `message`, followed by every line seen.
    pub fn failure(&mut self, message: &str) -> Error {
        self.drain();
        let mut text = format!("{message}\n--- output of {} ---\n", self.name);
        for line in &self.seen {
            text.push_str(&line.to_string());
            text.push('\n');
        }
        text.push_str("--- end ---");
        Error(text)
    }

    /// Waits up to `timeout` for the process to end, and then for what it
    /// wrote to be read to the end (its pipes close), so [`Process::lines`]
    /// has every line: up to [`PIPES_CLOSE`] more, since a process it
    /// started (a server's machines) may hold its pipes open.
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus> {
        match wait_for(&mut self.child, timeout) {
            Ok(Some(status)) => {
                let give_up = Instant::now() + PIPES_CLOSE;
                while self.open > 0 {
                    let left = give_up.saturating_duration_since(Instant::now());
                    match self.events.recv_timeout(left) {
                        Ok(event) => self.take(event),
                        Err(_) => break,
                    }
                }
                Ok(status)
            }
            Ok(None) => Err(self.failure(&format!(
                "{} did not end within {:.1}s",
                self.name,
                timeout.as_secs_f64()
            ))),
            Err(e) => Err(self.failure(&format!("cannot wait for {}: {e}", self.name))),
        }
    }

    /// Sends `SIGTERM` and waits up to `timeout` for the process to end.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Ok(status);
        }
        signal(self.pid(), Signal::TERM)?;
        self.wait(timeout)
    }

    /// The exit status, if it ended.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .with_context(|| format!("cannot wait for {}", self.name))
    }

    fn drain(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.take(event);
        }
    }

    fn take(&mut self, event: Event) {
        match event {
            Event::Line(line) => self.seen.push(line),
            Event::Closed => self.open = self.open.saturating_sub(1),
        }
    }

    /// SIGTERM, up to the grace period, SIGKILL; never fails.
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = signal(self.pid(), Signal::TERM);
            if !matches!(wait_for(&mut self.child, self.grace), Ok(Some(_))) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_lines(stream: impl Read + Send + 'static, stderr: bool, tx: mpsc::Sender<Event>) {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let at = Instant::now();
                    let text = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\n', '\r'])
                        .to_owned();
                    if tx.send(Event::Line(Line { at, text, stderr })).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Event::Closed);
    });
}

/// Waits up to `timeout` for `child` to end, checking every few
/// milliseconds: `None` if it is still running.
fn wait_for(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let give_up = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= give_up {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------
// Commands that run to completion

/// What a finished command printed, and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command, for messages.
    pub command: String,
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
}

impl Output {
    /// Itself if the command exited 0, else an error showing its output.
    pub fn success(self) -> Result<Self> {
        if self.status.success() {
            Ok(self)
        } else {
            Err(Error(format!("{self} failed")))
        }
    }

    /// Itself if the command exited 1, else an error showing its output.
    pub fn failure(self) -> Result<Self> {
        if self.status.code() == Some(1) {
            Ok(self)
        } else {
            Err(Error(format!("{self} should have exited 1")))
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` ({})\n--- stdout ---\n{}--- stderr ---\n{}--- end ---",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `program args…` to completion, killing it after `timeout`.
pub fn run(program: &Path, args: &[&str], timeout: Duration) -> Result<Output> {
    let command_text = std::iter::once(program.file_name().map_or_else(
        || program.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    ))
    .chain(args.iter().map(|a| a.to_string()))
    .collect::<Vec<_>>()
    .join(" ");
    let mut child = Command::new(program)
        .args(args)
        // Tests give keys by name (`--key-file`), never by inheritance.
        .env_remove(KEY_FILE_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{command_text}`"))?;
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let status = match wait_for(&mut child, timeout) {
        Ok(Some(status)) => status,
        Ok(None) | Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = stdout.join().unwrap_or_default();
            let stderr = stderr.join().unwrap_or_default();
            return Err(Error(format!(
                "`{command_text}` did not finish within {:.1}s\n--- stdout ---\n{stdout}--- stderr ---\n{stderr}--- end ---",
                timeout.as_secs_f64()
            )));
        }
    };
    Ok(Output {
        command: command_text,
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn read_all(stream: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut stream) = stream {
            let _ = stream.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

// ---------------------------------------------------------------------------
// The server

/// How to start a [`Server`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Environment variables for the server, inherited by its machines
    /// (`WINK_PULSE_MS`, …).
    pub env: Vec<(String, String)>,
    /// `--grace-ms`: how long a machine has after SIGTERM.
    pub grace: Duration,
    /// `--key-file`: the cluster's key, also given to every `wink` run
    /// through [`Server::wink`].
    pub key_file: Option<PathBuf>,
    /// More words for the server's command line.
    pub args: Vec<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            // Exiting machines wait up to this long for their last messages
            // to be acknowledged; a parent a test killed never acknowledges,
            // so keep it short.
            env: vec![("WINK_LINGER_MS".into(), "300".into())],
            grace: Duration::from_secs(2),
            key_file: None,
            args: Vec::new(),
        }
    }
}

impl ServerOptions {
    /// Adds `words` to the server's command line, after the options the
    /// harness gives.
    #[must_use]
    pub fn args(mut self, words: &[&str]) -> Self {
        self.args.extend(words.iter().map(|w| (*w).to_owned()));
        self
    }

    /// Adds (or replaces) an environment variable.
    #[must_use]
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the grace period.
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Gives the cluster the key in `file`.
    #[must_use]
    pub fn key_file(mut self, file: &Path) -> Self {
        self.key_file = Some(file.to_owned());
        self
    }
}

/// A running `wink-server serve <staged dir>` on a free loopback port.
///
/// Dropping it sends `SIGTERM` (the server then stops its machines), waits,
/// `SIGKILL`s the server if it has to, and then `SIGKILL`s anything still
/// running from the staged directory, so nothing outlives a test, passed or
/// failed.
pub struct Server {
    // Dropped in order: the process, then the directory.
    process: Process,
    address: Address,
    staged: Staged,
    key_file: Option<PathBuf>,
}

impl Server {
    /// Serves every example machine with the default options.
    pub fn start() -> Result<Self> {
        Self::serve(Staged::new()?, ServerOptions::default())
    }

    /// Serves `staged` with `options`, on a free port (retrying on another
    /// if one is taken before the server binds it).
    pub fn serve(staged: Staged, options: ServerOptions) -> Result<Self> {
        let program = binary("wink-server")?;
        let mut last = None;
        for _ in 0..5 {
            let port = free_port()?;
            let address = format!("127.0.0.1:{port}");
            let mut command = Command::new(&program);
            command
                .arg("serve")
                .arg(staged.path())
                .arg("--address")
                .arg(&address)
                .arg("--grace-ms")
                .arg(options.grace.as_millis().to_string())
                .env_remove(KEY_FILE_ENV);
            if let Some(file) = &options.key_file {
                command.arg("--key-file").arg(file);
            }
            command.args(&options.args);
            for (name, value) in &options.env {
                command.env(name, value);
            }
            let mut process = Process::spawn(format!("wink-server {address}"), command)?;
            process.set_grace(options.grace * 2 + Duration::from_secs(3));
            match process.expect_line(&format!("Address: {address}"), PATIENCE) {
                Ok(_) => {
                    let address = address
                        .parse()
                        .with_context(|| format!("bad address {address}"))?;
                    return Ok(Server {
                        process,
                        address,
                        staged,
                        key_file: options.key_file.clone(),
                    });
                }
                Err(e) => {
                    let taken = process
                        .lines()
                        .iter()
                        .any(|l| l.stderr && l.text.contains("cannot listen"));
                    if !taken {
                        return Err(e);
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::new("no free port for the server")))
    }

    /// Where it listens.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The served directory.
    pub fn staged(&self) -> &Staged {
        &self.staged
    }

    /// The server process: its output, pid, exit.
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// See [`Process::expect_line`]: the server's output holds its own log
    /// and those of its machines.
    pub fn expect_line(&mut self, pattern: &str, timeout: Duration) -> Result<Line> {
        self.process.expect_line(pattern, timeout)
    }

    /// See [`Process::expect_all`].
    pub fn expect_all(&mut self, patterns: &[&str], timeout: Duration) -> Result<Line> {
        self.process.expect_all(patterns, timeout)
    }

    /// Runs `wink --server <address> args…` to completion (or
    /// [`PATIENCE`]), with the cluster's key if it has one.
    pub fn wink(&self, args: &[&str]) -> Result<Output> {
        self.wink_keyed(self.key_file.as_deref(), args)
    }

    /// Runs `wink --server <address> [--key-file <key>] args…` to
    /// completion (or [`PATIENCE`]): as an outsider, with another key or
    /// none.
    pub fn wink_keyed(&self, key: Option<&Path>, args: &[&str]) -> Result<Output> {
        let server = self.address.to_string();
        let key = key.map(|k| k.display().to_string());
        let mut all = vec!["--server", server.as_str()];
        if let Some(key) = &key {
            all.extend(["--key-file", key.as_str()]);
        }
        all.extend_from_slice(args);
        run(&binary("wink")?, &all, PATIENCE)
    }

    /// Like [`Server::wink`], requiring exit status 0.
    pub fn wink_ok(&self, args: &[&str]) -> Result<Output> {
        self.wink(args)?.success()
    }

    /// Starts `wink --server <address> args…` and leaves it running (for
    /// `wink start -f`).
    pub fn spawn_wink(&self, args: &[&str]) -> Result<Process> {
        let mut command = Command::new(binary("wink")?);
        command.arg("--server").arg(self.address.to_string());
        if let Some(key) = &self.key_file {
            command.arg("--key-file").arg(key);
        }
        command.args(args);
        Process::spawn(format!("wink {}", args.join(" ")), command)
    }

    /// `wink start <name> :0 args…`: the new machine's address and pid.
    pub fn start_machine(&mut self, name: &str, args: &[&str]) -> Result<(Address, u32)> {
        let mut all = vec!["start", name, ":0"];
        all.extend_from_slice(args);
        let out = self.wink_ok(&all)?;
        let address = started_address(&out.stdout)?;
        let pid = self.registered(address)?;
        Ok((address, pid))
    }

    /// The pid of the machine at `address`, from its `register` request in
    /// the server's log (waiting for it; the cursor does not move). A
    /// machine sends `started` to its parent and `register` to the server
    /// at once, so either may arrive first.
    pub fn registered(&mut self, address: Address) -> Result<u32> {
        let prefix = format!("< {address} register ");
        let (_, line) = self.process.find(
            0,
            &format!("a line starting with `{prefix}`"),
            PATIENCE,
            |l| l.starts_with(&prefix),
        )?;
        Ok(registration(&line.text)?.pid)
    }

    /// The next `register` of a machine named `name` in the server's log,
    /// from the cursor on (waiting for it; the cursor moves past it).
    pub fn expect_registration(&mut self, name: &str) -> Result<Registration> {
        let line = self.process.expect(
            &format!("`< <address> register <id> {name} …`"),
            PATIENCE,
            |l| registration(l).is_ok_and(|r| r.name == name),
        )?;
        registration(&line.text)
    }

    /// `wink list`, parsed.
    pub fn list(&self) -> Result<Vec<Row>> {
        parse_list(&self.wink_ok(&["list"])?.stdout)
    }

    /// Sends `SIGTERM` and waits for the server to end (it stops its
    /// machines first).
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.process.terminate(timeout)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.process.stop();
        for pid in self.staged.running() {
            let _ = signal(pid, Signal::KILL);
        }
    }
}

/// The address in `wink start`'s output, `127.0.0.1:42101 started echo/Echo`.
pub fn started_address(stdout: &str) -> Result<Address> {
    let line = stdout
        .lines()
        .find(|l| l.split_ascii_whitespace().nth(1) == Some("started"))
        .with_context(|| format!("no `<address> started <name>` in `{stdout}`"))?;
    let word = line.split_ascii_whitespace().next().unwrap_or_default();
    word.parse()
        .with_context(|| format!("`{word}` in `{line}` is not an address"))
}

/// A machine's `register` request as the server logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Where the machine listens (the request's sender).
    pub address: Address,
    /// The request's id.
    pub id: u64,
    /// The machine's name.
    pub name: String,
    /// Its process.
    pub pid: u32,
    /// Its parent's address.
    pub parent: Address,
    /// The id of the `start` that made it, `None` for `-` (started by hand).
    pub start: Option<u64>,
}

/// Parses a server log line `< <address> register <id> <name> <pid>
/// <parent> <start-id|->`.
pub fn registration(line: &str) -> Result<Registration> {
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    let bad = || {
        format!("`{line}` is not `< <address> register <id> <name> <pid> <parent> <start-id|->`")
    };
    let ["<", address, "register", id, name, pid, parent, start] = words[..] else {
        return Err(Error(bad()));
    };
    Ok(Registration {
        address: address.parse().with_context(bad)?,
        id: id.parse().with_context(bad)?,
        name: name.to_owned(),
        pid: pid.parse().with_context(bad)?,
        parent: parent.parse().with_context(bad)?,
        start: match start {
            "-" => None,
            id => Some(id.parse().with_context(bad)?),
        },
    })
}

/// Word `n` (from 0) of `line`: `word("Parent: 127.0.0.1:5 family/Child has
/// started", 1)` is `127.0.0.1:5`.
pub fn word(line: &str, n: usize) -> Result<String> {
    line.split_ascii_whitespace()
        .nth(n)
        .map(str::to_owned)
        .with_context(|| format!("no word {n} in `{line}`"))
}

/// One row of `wink list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `127.0.0.1:42101`, or `-` before the machine registered.
    pub address: String,
    /// Its pid.
    pub pid: u32,
    /// Its name.
    pub name: String,
    /// Its parent's address.
    pub parent: String,
    /// `3s`.
    pub uptime: String,
}

/// Parses `wink list`'s table.
pub fn parse_list(stdout: &str) -> Result<Vec<Row>> {
    let mut lines = stdout.lines();
    let header = lines.next().context("`wink list` printed nothing")?;
    let columns: Vec<&str> = header.split_ascii_whitespace().collect();
    if columns != ["ADDRESS", "PID", "NAME", "PARENT", "UPTIME"] {
        return Err(Error(format!("unexpected `wink list` header `{header}`")));
    }
    lines
        .map(|line| {
            let words: Vec<&str> = line.split_ascii_whitespace().collect();
            match words.as_slice() {
                [address, pid, name, parent, uptime] => Ok(Row {
                    address: (*address).to_owned(),
                    pid: pid
                        .parse()
                        .with_context(|| format!("bad pid in `wink list` row `{line}`"))?,
                    name: (*name).to_owned(),
                    parent: (*parent).to_owned(),
                    uptime: (*uptime).to_owned(),
                }),
                _ => Err(Error(format!("unexpected `wink list` row `{line}`"))),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// A raw client

/// A Wink endpoint in the test process, for requests the `wink` command
/// does not send.
pub struct Client {
    endpoint: Endpoint,
}

impl Client {
    /// Binds a client on a free loopback port.
    pub fn new() -> Result<Self> {
        Self::keyed(None)
    }

    /// Binds a client on a free loopback port that seals with `keys`.
    pub fn keyed(keys: Option<std::sync::Arc<Keys>>) -> Result<Self> {
        let address: Address = "127.0.0.1:0"
            .parse()
            .context("cannot parse the loopback address")?;
        Self::bind(address, keys)
    }

    /// Binds a client on `address`, sealing with `keys`.
    pub fn bind(address: Address, keys: Option<std::sync::Arc<Keys>>) -> Result<Self> {
        let mut config = Config::from_env().context("bad WINK_* environment")?;
        config.transport.keys = keys;
        let endpoint =
            Endpoint::bind(address, config.transport).context("cannot bind a client endpoint")?;
        Ok(Client { endpoint })
    }

    /// Where it listens.
    pub fn address(&self) -> Address {
        self.endpoint.local_addr()
    }

    /// Sends `text` to `to` and returns the first message from `to` that
    /// arrives within `timeout`.
    pub fn ask(&mut self, to: Address, text: &str, timeout: Duration) -> Result<String> {
        let mut replies = self.ask_until(to, text, timeout, |_| true)?;
        replies.pop().context("no reply")
    }

    /// Sends `text` to `to` and returns the messages from `to` up to and
    /// including the first for which `last` holds, all within `timeout`.
    pub fn ask_until(
        &mut self,
        to: Address,
        text: &str,
        timeout: Duration,
        last: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>> {
        self.endpoint
            .send(to, text)
            .with_context(|| format!("cannot send `{text}` to {to}"))?;
        let give_up = Instant::now() + timeout;
        let mut replies = Vec::new();
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            let received = self
                .endpoint
                .recv_timeout(left)
                .with_context(|| format!("receiving from {to}"))?;
            match received {
                Some((from, reply)) if from == to => {
                    let done = last(&reply);
                    replies.push(reply);
                    if done {
                        return Ok(replies);
                    }
                }
                Some(_) => {}
                None => {
                    return Err(Error(format!(
                        "`{text}` to {to}: no (final) reply within {:.1}s; got {replies:?}",
                        timeout.as_secs_f64()
                    )))
                }
            }
        }
    }

    /// Waits up to `timeout` for everything sent to be acknowledged.
    pub fn settle(&mut self, timeout: Duration) -> Result<bool> {
        self.endpoint.settle(timeout).context("settling the client")
    }
}

/// The median and the maximum of `samples` (which must not be empty).
pub fn median_max(samples: &[Duration]) -> Result<(Duration, Duration)> {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let median = *sorted.get(sorted.len() / 2).context("no samples")?;
    let max = *sorted.last().context("no samples")?;
    Ok((median, max))
}

/// The distinct values of `items`, in first-seen order.
pub fn distinct<T: Clone + Eq + std::hash::Hash>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(i.clone()))
        .collect()
}
