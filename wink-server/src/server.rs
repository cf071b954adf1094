//! The server's event loop: requests in, processes out, deaths reported.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use futures_lite::{future, StreamExt};
use slog::{info, warn, Logger};
use wink::runtime::{Endpoint, Inbox, LOG_DIR_ENV, SERVER_ENV};
use wink::transport::TransportEvent;
use wink::{Address, MachineName};

use crate::request::{Request, Target};

/// How the server is set up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The directory machines are started from (canonical).
    pub dir: PathBuf,
    /// Where machines write their logs, if not to stdout.
    pub log_dir: Option<PathBuf>,
    /// How long a machine has to exit after SIGTERM before SIGKILL.
    pub grace: Duration,
}

/// A machine this server started.
#[derive(Debug)]
struct Machine {
    name: MachineName,
    /// Where it listens, once it registered (or as asked, if a port was
    /// given).
    address: Option<Address>,
    parent: Address,
    started: Instant,
    /// It said `unregister`: it is exiting in order.
    unregistered: bool,
    /// Who asked for it to stop, to be told once it is gone.
    stoppers: Vec<Address>,
    /// When SIGKILL follows the SIGTERM already sent.
    kill_at: Option<Instant>,
}

/// A start that waits for the machine on its port to go first.
#[derive(Debug)]
struct Deferred {
    waiting_for: u32,
    from: Address,
    name: MachineName,
    address: Address,
    args: Vec<String>,
}

/// Why a start was refused.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("`{name}`: no executable at {path}: {source}")]
    Missing {
        name: MachineName,
        path: PathBuf,
        source: io::Error,
    },
    #[error("`{name}` resolves to {path}, outside the served directory")]
    Outside { name: MachineName, path: PathBuf },
    #[error("`{name}`: {path} is not an executable file")]
    NotExecutable { name: MachineName, path: PathBuf },
    #[error("`{name}`: cannot start {path}: {source}")]
    Spawn {
        name: MachineName,
        path: PathBuf,
        source: io::Error,
    },
}

/// The server: its endpoint, its machines, and the channel their exits
/// arrive on.
pub struct Server {
    endpoint: Endpoint,
    settings: Settings,
    log: Logger,
    me: Address,
    machines: HashMap<u32, Machine>,
    deferred: Vec<Deferred>,
    exits_tx: Sender<(u32, io::Result<ExitStatus>)>,
    exits: Receiver<(u32, io::Result<ExitStatus>)>,
    inbox: Inbox,
    /// Set on SIGTERM/SIGINT: no more starts, every machine is stopped.
    shutting_down: bool,
}

enum Wake {
    Io,
    Exit(u32, io::Result<ExitStatus>),
    Signal,
}

impl Server {
    /// A server on `endpoint` serving `settings.dir`.
    pub fn new(endpoint: Endpoint, settings: Settings, log: Logger) -> Self {
        let (exits_tx, exits) = async_channel::unbounded();
        Server {
            me: endpoint.local_addr(),
            endpoint,
            settings,
            log,
            machines: HashMap::new(),
            deferred: Vec::new(),
            exits_tx,
            exits,
            inbox: Inbox::default(),
            shutting_down: false,
        }
    }

    /// Serves until SIGTERM or SIGINT, then stops every machine it started
    /// (SIGTERM, then SIGKILL after the grace period) and returns.
    pub async fn serve(mut self) -> io::Result<()> {
        let mut signals =
            async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int])?;
        info!(self.log, "Directory: {}", self.settings.dir.display());
        info!(self.log, "Address: {}", self.me);
        loop {
            let deadline = self.next_deadline();
            let (endpoint, exits) = (&mut self.endpoint, &self.exits);
            // `or` polls in order: signals, then exits, then requests, so a
            // flood of requests cannot starve shutdown or reaping.
            let wake = future::or(
                async {
                    signals.next().await;
                    Ok(Wake::Signal)
                },
                future::or(
                    async {
                        match exits.recv().await {
                            Ok((pid, status)) => Ok(Wake::Exit(pid, status)),
                            Err(_) => future::pending().await,
                        }
                    },
                    async { endpoint.wait(deadline).await.map(|()| Wake::Io) },
                ),
            )
            .await?;
            match wake {
                Wake::Io => self.handle_requests()?,
                Wake::Exit(pid, status) => {
                    // Read what the machine said before it died (its
                    // `unregister`), so an orderly exit is not reported
                    // as a death.
                    self.handle_requests()?;
                    self.reaped(pid, status);
                }
                Wake::Signal => break,
            }
            self.escalate(Instant::now());
            self.endpoint.handle_timeout(Instant::now())?;
            self.log_events();
        }
        self.shutdown().await
    }

    /// Logs what the transport has to say (and so does not keep it).
    fn log_events(&mut self) {
        while let Some(event) = self.endpoint.poll_event() {
            match event {
                TransportEvent::GaveUp { to, seq, message } => warn!(
                    self.log,
                    "gave up on message {} to {}: {}",
                    seq,
                    Address::from(to),
                    message
                ),
                TransportEvent::PeerRestarted { .. } => {}
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let kill = self.machines.values().filter_map(|m| m.kill_at).min();
        match (kill, self.endpoint.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handle_requests(&mut self) -> io::Result<()> {
        let mut inbox = std::mem::take(&mut self.inbox);
        inbox.clear();
        let result = self.endpoint.receive_ready(Instant::now(), &mut inbox);
        for i in 0..inbox.len() {
            if let Some((from, text)) = inbox.get(i) {
                self.handle(from, text);
            }
        }
        self.inbox = inbox;
        result
    }

    fn handle(&mut self, from: Address, text: &str) {
        info!(self.log, "< {} {}", from, text);
        match Request::parse(text) {
            Ok(Request::Start {
                name,
                address,
                args,
            }) => {
                let address = match address {
                    Target::Port(port) => self.me.with_port(port),
                    Target::Address(address) => address,
                };
                self.start(from, name, address, args);
            }
            Ok(Request::Stop { port }) => self.stop(from, port),
            Ok(Request::Register { name, pid }) => self.register(from, &name, pid),
            Ok(Request::Unregister) => {
                if let Some(machine) = self.machines.values_mut().find(|m| m.address == Some(from))
                {
                    machine.unregistered = true;
                }
            }
            Ok(Request::List) => self.list(from),
            Err(e) => self.reply(from, &format!("error {e}")),
        }
    }

    fn reply(&mut self, to: Address, text: &str) {
        info!(self.log, "> {} {}", to, text);
        if let Err(e) = self.endpoint.send(to, text) {
            warn!(self.log, "cannot reply to {}: {}", to, e);
        }
    }

    fn start(&mut self, from: Address, name: MachineName, address: Address, args: Vec<String>) {
        if self.shutting_down {
            return self.reply(from, "error start: the server is shutting down");
        }
        let path = match self.resolve(&name) {
            Ok(path) => path,
            Err(e) => return self.reply(from, &format!("error start {e}")),
        };
        if address.port() != 0 {
            if let Some((&pid, _)) = self
                .machines
                .iter()
                .find(|(_, m)| m.address.map(Address::port) == Some(address.port()))
            {
                info!(
                    self.log,
                    "port {} is taken by {}: stopping it first",
                    address.port(),
                    pid
                );
                self.terminate(pid);
                self.deferred.push(Deferred {
                    waiting_for: pid,
                    from,
                    name,
                    address,
                    args,
                });
                return;
            }
        }
        if let Err(e) = self.spawn(&path, from, name, address, &args) {
            self.reply(from, &format!("error start {e}"));
        }
    }

    /// The executable for `name`, if it is inside the served directory
    /// (after following symlinks) and executable.
    fn resolve(&self, name: &MachineName) -> Result<PathBuf, StartError> {
        let path = self.settings.dir.join(name.binary_path());
        let real = path.canonicalize().map_err(|source| StartError::Missing {
            name: name.clone(),
            path: path.clone(),
            source,
        })?;
        if !real.starts_with(&self.settings.dir) {
            return Err(StartError::Outside {
                name: name.clone(),
                path: real,
            });
        }
        let executable = std::fs::metadata(&real)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        if !executable {
            return Err(StartError::NotExecutable {
                name: name.clone(),
                path: real,
            });
        }
        Ok(real)
    }

    fn spawn(
        &mut self,
        path: &Path,
        parent: Address,
        name: MachineName,
        address: Address,
        args: &[String],
    ) -> Result<(), StartError> {
        let mut command = async_process::Command::new(path);
        command
            .arg(name.to_string())
            .arg(address.to_string())
            .arg(parent.to_string())
            .args(args)
            .env(SERVER_ENV, self.me.to_string())
            .stdin(Stdio::null());
        if let Some(dir) = &self.settings.log_dir {
            command.env(LOG_DIR_ENV, dir);
        }
        let mut child = command.spawn().map_err(|source| StartError::Spawn {
            name: name.clone(),
            path: path.to_owned(),
            source,
        })?;
        let pid = child.id();
        info!(self.log, "Forked: {} {} {}", pid, name, address);
        let exits = self.exits_tx.clone();
        smol::spawn(async move {
            let status = child.status().await;
            let _ = exits.send((pid, status)).await;
        })
        .detach();
        self.machines.insert(
            pid,
            Machine {
                name,
                address: (address.port() != 0).then_some(address),
                parent,
                started: Instant::now(),
                unregistered: false,
                stoppers: Vec::new(),
                kill_at: None,
            },
        );
        Ok(())
    }

    fn register(&mut self, from: Address, name: &str, pid: u32) {
        match self.machines.get_mut(&pid) {
            Some(machine)
                if machine.name.to_string() == name
                    && machine.address.is_none_or(|a| {
                        a == from || (a.ip().is_unspecified() && a.port() == from.port())
                    }) =>
            {
                machine.address = Some(from)
            }
            Some(machine) if machine.name.to_string() == name => {
                let registered = machine.address.map_or("-".to_owned(), |a| a.to_string());
                self.reply(
                    from,
                    &format!("error register: pid {pid} is registered at {registered}"),
                )
            }
            Some(machine) => {
                let expected = machine.name.to_string();
                self.reply(
                    from,
                    &format!("error register: pid {pid} is {expected}, not {name}"),
                )
            }
            None => self.reply(
                from,
                &format!("error register: pid {pid} was not started by this server"),
            ),
        }
    }

    fn stop(&mut self, from: Address, port: u16) {
        let found = self
            .machines
            .iter_mut()
            .find(|(_, m)| m.address.map(Address::port) == Some(port));
        match found {
            Some((&pid, machine)) => {
                machine.stoppers.push(from);
                self.terminate(pid);
                // Answer at once with how long it may take (the grace
                // period); `stopped <port>` follows when it is gone.
                let grace = self.settings.grace.as_millis();
                self.reply(from, &format!("stopping {port} {grace}"));
            }
            None => self.reply(
                from,
                &format!("error stop: no machine started by this server listens on port {port}"),
            ),
        }
    }

    /// SIGTERM now, SIGKILL after the grace period.
    fn terminate(&mut self, pid: u32) {
        let grace = self.settings.grace;
        if let Some(machine) = self.machines.get_mut(&pid) {
            if machine.kill_at.is_none() {
                machine.kill_at = Some(Instant::now() + grace);
                signal(pid, rustix::process::Signal::TERM);
            }
        }
    }

    fn escalate(&mut self, now: Instant) {
        for (&pid, machine) in &mut self.machines {
            if machine.kill_at.is_some_and(|at| at <= now) {
                warn!(
                    self.log,
                    "{} {} ignored SIGTERM: SIGKILL", pid, machine.name
                );
                machine.kill_at = Some(now + Duration::from_secs(3600));
                signal(pid, rustix::process::Signal::KILL);
            }
        }
    }

    fn list(&mut self, from: Address) {
        let now = Instant::now();
        let mut lines: Vec<(u16, String)> = self
            .machines
            .iter()
            .map(|(pid, m)| {
                let port = m.address.map_or(0, Address::port);
                let address = m.address.map_or("-".to_owned(), |a| a.to_string());
                let uptime = now.duration_since(m.started).as_secs();
                (
                    port,
                    format!("machine {address} {pid} {} {} {uptime}", m.name, m.parent),
                )
            })
            .collect();
        lines.sort();
        let count = lines.len();
        for (_, line) in lines {
            self.reply(from, &line);
        }
        self.reply(from, &format!("listed {count}"));
    }

    /// A machine's process ended: tell its parent if it did not exit in
    /// order, tell whoever stopped it, and run starts waiting for its port.
    fn reaped(&mut self, pid: u32, status: io::Result<ExitStatus>) {
        let Some(machine) = self.machines.remove(&pid) else {
            return;
        };
        let reason = match status {
            Ok(status) => describe(status),
            Err(e) => format!("unknown exit ({e})"),
        };
        info!(self.log, "Reaped: {} {} {}", pid, machine.name, reason);
        if !machine.unregistered {
            let address = machine.address.map_or("-".to_owned(), |a| a.to_string());
            self.reply(
                machine.parent,
                &format!("died {address} {} {reason}", machine.name),
            );
        }
        // Its children on this host lose their parent with it: stop them
        // too, rather than leave them pulsing into the void.
        if let Some(address) = machine.address {
            let orphans: Vec<u32> = self
                .machines
                .iter()
                .filter(|(_, m)| m.parent == address)
                .map(|(pid, _)| *pid)
                .collect();
            for orphan in orphans {
                info!(
                    self.log,
                    "{} lost its parent {}: stopping it", orphan, address
                );
                self.terminate(orphan);
            }
        }
        let port = machine.address.map_or(0, Address::port);
        for stopper in machine.stoppers {
            self.reply(stopper, &format!("stopped {port}"));
        }
        let ready: Vec<Deferred> = {
            let (ready, waiting) = std::mem::take(&mut self.deferred)
                .into_iter()
                .partition(|d| d.waiting_for == pid);
            self.deferred = waiting;
            ready
        };
        for d in ready {
            self.start(d.from, d.name, d.address, d.args);
        }
    }

    /// Stops every machine, waiting up to twice the grace period.
    async fn shutdown(mut self) -> io::Result<()> {
        info!(self.log, "stopping {} machines", self.machines.len());
        self.shutting_down = true;
        let give_up = Instant::now() + self.settings.grace * 2;
        while !self.machines.is_empty() && Instant::now() < give_up {
            // Every pass: a machine started by a deferred start just before
            // the signal is stopped too.
            let pids: Vec<u32> = self.machines.keys().copied().collect();
            for pid in pids {
                self.terminate(pid);
            }
            let deadline = self.next_deadline().map_or(give_up, |d| d.min(give_up));
            let exit = future::or(async { self.exits.recv().await.ok() }, async {
                smol::Timer::at(deadline).await;
                None
            })
            .await;
            self.handle_requests()?;
            if let Some((pid, status)) = exit {
                self.reaped(pid, status);
            }
            self.escalate(Instant::now());
        }
        self.endpoint.settle(Duration::from_millis(500)).await?;
        info!(self.log, "server exited");
        Ok(())
    }
}

fn signal(pid: u32, signal: rustix::process::Signal) {
    // Only pids this server forked and has not yet reaped get here.
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// `exit status 1`, `killed by signal 9 (SIGKILL)`.
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}{}", signal_name(signal)),
        _ => "ended".to_owned(),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        6 => " (SIGABRT)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        15 => " (SIGTERM)",
        _ => "",
    }
}
