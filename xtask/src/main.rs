//! Project tasks:
//!
//! - `cargo xtask stage [--debug] <dir>`: build the example machines,
//!   `wink-server` and `wink` (release unless `--debug`) and lay the machines
//!   out as `<dir>/<package>/<Executable>` for `wink-server serve <dir>`.
//! - `cargo xtask demo [--release]`: stage into a temporary directory, serve
//!   it on a free loopback port, start `family/Parent`, show the interleaved
//!   log for a few respawn cycles, then stop everything.
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

mod image;

use rustix::process::Signal;
use wink_examples::MACHINES;

/// How many times the demo watches the parent restart its child.
const DEMO_CYCLES: usize = 3;
/// The demo parent's retry delay, milliseconds.
const DEMO_RETRY_MS: &str = "500";
/// The demo machines' pulse interval, milliseconds: short enough for a few
/// pulses to show.
const DEMO_PULSE_MS: &str = "400";
/// Upper bounds: the demo fails rather than hang.
const DEMO_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

const USAGE: &str =
    "usage: cargo xtask stage [--debug] <dir>   build and lay out the example machines
       cargo xtask demo [--release]       run the family demo on a temporary server
       cargo xtask image [--tag <tag>]    build and check the container image (podman or buildah)
       cargo xtask man <dir>              write the manual pages of wink and wink-server";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["stage", dir] => stage_command(Path::new(dir), Profile::Release),
        ["stage", "--debug", dir] | ["stage", dir, "--debug"] => {
            stage_command(Path::new(dir), Profile::Debug)
        }
        ["man", dir] => man(Path::new(dir)),
        ["image"] => image::image("localhost/wink:latest"),
        ["image", "--tag", tag] => image::image(tag),
        ["demo"] => demo(Profile::Debug),
        ["demo", "--release"] => demo(Profile::Release),
        ["help" | "-h" | "--help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A failure: one message, with what was being done.
#[derive(Debug)]
struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

type Result<T> = std::result::Result<T, Error>;

trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error(format!("{}: {e}", what())))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.ok_or_else(|| Error(what()))
    }
}

fn fail<T>(message: impl Into<String>) -> Result<T> {
    Err(Error(message.into()))
}

// ---------------------------------------------------------------------------
// Building and staging

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Debug,
    Release,
}

impl Profile {
    /// The directory under the target directory.
    fn dir(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// The workspace root: this crate's parent directory.
fn workspace() -> Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .context(|| "xtask is not inside the workspace".to_owned())
}

/// The cargo target directory: `$CARGO_TARGET_DIR`, else the one this
/// program was built into (`<target>/<profile>/xtask`).
fn target_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Ok(workspace()?.join(dir));
    }
    let exe = std::env::current_exe().context(|| "cannot find the xtask binary".to_owned())?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_owned)
        .context(|| format!("{} is not in a cargo target directory", exe.display()))
}

/// Builds the machines, the server and the CLI; returns the directory that
/// holds their binaries.
fn build(profile: Profile) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command.current_dir(workspace()?).args([
        "build",
        "-p",
        "wink-examples",
        "-p",
        "wink-server",
        "-p",
        "wink-cli",
    ]);
    if profile == Profile::Release {
        command.arg("--release");
    }
    eprintln!(
        "$ cargo build{} -p wink-examples -p wink-server -p wink-cli",
        if profile == Profile::Release {
            " --release"
        } else {
            ""
        }
    );
    let status = command
        .status()
        .context(|| format!("cannot run {}", Path::new(&cargo).display()))?;
    if !status.success() {
        return fail(format!("cargo build failed ({status})"));
    }
    let bins = target_dir()?.join(profile.dir());
    for bin in ["wink-server", "wink"] {
        if !bins.join(bin).is_file() {
            return fail(format!(
                "cargo build succeeded but {} is missing",
                bins.join(bin).display()
            ));
        }
    }
    Ok(bins)
}

/// The examples' manifest, whose `[package.metadata.wink.machines]` says
/// which binary serves which machine.
fn examples_manifest() -> Result<PathBuf> {
    Ok(workspace()?.join("examples").join("Cargo.toml"))
}

/// Copies every machine binary from `bins` to `<dir>/<package>/<Executable>`,
/// replacing what is there (by rename, so a running machine is not
/// disturbed): `wink stage`'s code, on the examples.
fn stage(bins: &Path, dir: &Path) -> Result<()> {
    let plan = wink_cli::stage::plan(&examples_manifest()?).map_err(|e| Error(e.to_string()))?;
    wink_cli::stage::lay_out(&plan, bins, dir).map_err(|e| Error(e.to_string()))
}

fn stage_command(dir: &Path, profile: Profile) -> Result<()> {
    let bins = build(profile)?;
    stage(&bins, dir)?;
    println!("staged {} machines in {}:", MACHINES.len(), dir.display());
    for (name, _) in MACHINES {
        println!("  {name}");
    }
    println!(
        "serve them with:\n  {} serve {}",
        bins.join("wink-server").display(),
        dir.display()
    );
    println!("and drive them with {}", bins.join("wink").display());
    Ok(())
}

/// Builds `wink` and `wink-server` and has each write its manual pages to
/// `dir`.
fn man(dir: &Path) -> Result<()> {
    let bins = build(Profile::Debug)?;
    for program in ["wink", "wink-server"] {
        let status = Command::new(bins.join(program))
            .arg("man")
            .arg(dir)
            .status()
            .context(|| format!("cannot run {program}"))?;
        if !status.success() {
            return fail(format!("{program} man failed ({status})"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Processes

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Server,
    ServerErr,
    Wink,
    WinkErr,
}

enum Event {
    Line(Source, String),
    Closed,
}

/// A child process that is stopped (SIGTERM, then SIGKILL) if it is still
/// running when dropped, so a failing demo leaves nothing behind.
struct Running {
    child: Child,
    name: &'static str,
}

impl Running {
    fn spawn(
        name: &'static str,
        command: &mut Command,
        out: Source,
        err: Source,
        events: &Sender<Event>,
    ) -> Result<Self> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context(|| format!("cannot start {name}"))?;
        if let Some(stdout) = child.stdout.take() {
            read_lines(stdout, out, events.clone());
        }
        if let Some(stderr) = child.stderr.take() {
            read_lines(stderr, err, events.clone());
        }
        Ok(Running { child, name })
    }

    fn signal(&self, signal: Signal) -> Result<()> {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, signal)
            .context(|| format!("cannot send {signal:?} to {}", self.name))
    }

    fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .context(|| format!("cannot wait for {}", self.name))
    }

    /// Waits up to `timeout` for it to end.
    fn wait(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let give_up = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= give_up {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.signal(Signal::TERM);
            if !matches!(self.wait(Duration::from_secs(10)), Ok(Some(_))) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

fn read_lines(stream: impl Read + Send + 'static, source: Source, events: Sender<Event>) {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if events.send(Event::Line(source, line)).is_err() {
                return;
            }
        }
        let _ = events.send(Event::Closed);
    });
}

/// Prints a line of the demo: the server's stdout (its log and its
/// machines') as is, the rest marked.
fn show(source: Source, line: &str) {
    match source {
        Source::Server => println!("{line}"),
        Source::ServerErr => println!("[wink-server stderr] {line}"),
        Source::Wink => println!("[wink start -f] {line}"),
        Source::WinkErr => println!("[wink start -f stderr] {line}"),
    }
}

fn free_port() -> Result<u16> {
    let socket =
        UdpSocket::bind("127.0.0.1:0").context(|| "cannot bind a UDP socket".to_owned())?;
    Ok(socket
        .local_addr()
        .context(|| "cannot read a socket's address".to_owned())?
        .port())
}

/// Starts `wink-server serve <dir>` on a free loopback port (another one if
/// that port is taken first) and waits until it listens.
fn start_server(
    bins: &Path,
    dir: &Path,
) -> Result<(Running, String, Receiver<Event>, Sender<Event>)> {
    let mut last = String::new();
    for _ in 0..5 {
        let address = format!("127.0.0.1:{}", free_port()?);
        let (tx, rx) = mpsc::channel();
        println!(
            "$ WINK_PULSE_MS={DEMO_PULSE_MS} wink-server serve {} --address {address} &",
            dir.display()
        );
        let mut server = Running::spawn(
            "wink-server",
            Command::new(bins.join("wink-server"))
                .arg("serve")
                .arg(dir)
                .arg("--address")
                .arg(&address)
                .env("WINK_PULSE_MS", DEMO_PULSE_MS),
            Source::Server,
            Source::ServerErr,
            &tx,
        )?;
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Event::Line(source, line)) => {
                    show(source, &line);
                    if source == Source::Server && line == format!("Address: {address}") {
                        return Ok((server, address, rx, tx));
                    }
                    if source == Source::ServerErr {
                        last = line;
                    }
                }
                Ok(Event::Closed) => {}
                Err(RecvTimeoutError::Timeout) => {
                    return fail(format!(
                        "wink-server did not listen on {address} within 10 s"
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if let Some(status) = server.try_wait()? {
                if !last.contains("cannot listen") {
                    return fail(format!("wink-server exited ({status}): {last}"));
                }
                break;
            }
        }
    }
    fail(format!("no free port for wink-server: {last}"))
}

// ---------------------------------------------------------------------------
// The demo

fn demo(profile: Profile) -> Result<()> {
    let bins = build(profile)?;
    let dir = tempfile::Builder::new()
        .prefix("wink-demo-")
        .tempdir()
        .context(|| "cannot create a temporary directory".to_owned())?;
    stage(&bins, dir.path())?;
    let began = Instant::now();
    println!("# staged the example machines in {}", dir.path().display());

    let (mut server, address, events, tx) = start_server(&bins, dir.path())?;
    println!("$ wink -s {address} start -f family/Parent :0 {DEMO_RETRY_MS}");
    let mut wink = Running::spawn(
        "wink start -f",
        Command::new(bins.join("wink")).args([
            "-s",
            &address,
            "start",
            "-f",
            "family/Parent",
            ":0",
            DEMO_RETRY_MS,
        ]),
        Source::Wink,
        Source::WinkErr,
        &tx,
    )?;
    drop(tx);

    // Watch the parent restart its child a few times.
    let mut cycles = 0;
    let give_up = Instant::now() + DEMO_TIMEOUT;
    while cycles < DEMO_CYCLES {
        let left = give_up.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(Event::Line(source, line)) => {
                show(source, &line);
                if source == Source::Server
                    && line.starts_with("Parent: ")
                    && line.contains(" has exited")
                {
                    cycles += 1;
                }
            }
            Ok(Event::Closed) => {}
            Err(_) => {
                return fail(format!(
                    "saw {cycles} of {DEMO_CYCLES} respawn cycles within {} s",
                    DEMO_TIMEOUT.as_secs()
                ))
            }
        }
        if let Some(status) = wink.try_wait()? {
            return fail(format!("`wink start -f` ended early ({status})"));
        }
        if let Some(status) = server.try_wait()? {
            return fail(format!("wink-server ended early ({status})"));
        }
    }

    // Stop the server; it stops its machines, and the parent's `exited`
    // ends `wink start -f`.
    println!("# {cycles} respawn cycles seen; stopping the server");
    println!("$ kill -TERM <wink-server>");
    server.signal(Signal::TERM)?;
    let give_up = Instant::now() + STOP_TIMEOUT;
    let (mut server_status, mut wink_status) = (None, None);
    let mut open = 4;
    while open > 0 || server_status.is_none() || wink_status.is_none() {
        let left = give_up.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return fail(format!(
                "not everything ended within {} s of SIGTERM (server: {server_status:?}, wink: {wink_status:?})",
                STOP_TIMEOUT.as_secs()
            ));
        }
        match events.recv_timeout(left.min(Duration::from_millis(50))) {
            Ok(Event::Line(source, line)) => show(source, &line),
            Ok(Event::Closed) => open -= 1,
            Err(RecvTimeoutError::Timeout) => {}
            // Every reader is done.
            Err(RecvTimeoutError::Disconnected) => open = 0,
        }
        if server_status.is_none() {
            server_status = server.try_wait()?;
        }
        if wink_status.is_none() {
            wink_status = wink.try_wait()?;
        }
    }
    let (Some(server_status), Some(wink_status)) = (server_status, wink_status) else {
        return fail("lost track of the processes");
    };
    if !server_status.success() {
        return fail(format!("wink-server exited with {server_status}"));
    }
    if !wink_status.success() {
        return fail(format!("`wink start -f` exited with {wink_status}"));
    }
    println!(
        "# done in {:.1} s: the server stopped family/Parent, `wink start -f` saw it exit, the server exited 0",
        began.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests stage the examples from `wink_examples::MACHINES`, `wink
    /// stage` from the manifest's table: the two say the same.
    #[test]
    fn the_examples_manifest_lists_the_machines_the_tests_stage() {
        let plan = wink_cli::stage::plan(&examples_manifest().unwrap()).unwrap();
        let mut listed: Vec<(String, String)> = plan
            .machines
            .iter()
            .map(|(name, bin)| (name.to_string(), bin.clone()))
            .collect();
        let mut known: Vec<(String, String)> = MACHINES
            .iter()
            .map(|(name, bin)| ((*name).to_owned(), (*bin).to_owned()))
            .collect();
        listed.sort();
        known.sort();
        assert_eq!(listed, known);
    }
}
