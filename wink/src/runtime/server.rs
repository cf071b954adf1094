//! The server's I/O: one loop that feeds a [`ServerCore`] and carries out
//! its effects.
//!
//! The loop blocks in one `epoll_wait` on the socket, the stop descriptor
//! (a [`Signals`](super::Signals) for SIGTERM/SIGINT in production), an
//! eventfd on which the workers say they finished something, and the pidfd
//! of every machine process, with a timeout at the earliest deadline of the
//! core and the transport. Forks and the checks of a process to adopt (the
//! file system, `/proc`) run on two worker threads, so they never stall the
//! loop. A machine's pidfd becomes readable when it ends; then `waitid`
//! reaps it (a child, so no zombie is left) or finds it is not ours
//! (adopted: status unknown). Signals go through the pidfd too, so a pid
//! the kernel gave to another process is never signalled.

mod process;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustix::event::{epoll, eventfd, EventfdFlags, Timespec};
use slog::{info, warn, Logger};

use super::endpoint::{Endpoint, Inbox};
use super::Signals;
use crate::address::Address;
use crate::name::MachineName;
use crate::server::{AdoptToken, ProcessExit, ServerConfig, ServerCore, ServerEffect, SpawnToken};
use crate::transport::TransportEvent;
use process::{Forked, Served, Spawn};

/// Threads that fork machines and check processes to adopt.
const WORKERS: usize = 2;

/// How long a server that is done waits for its last replies to be
/// acknowledged (half a second).
const SETTLE: Duration = Duration::from_millis(500);

/// How often log lines that standard output could not take yet are tried
/// again (see [`crate::log`]).
const LOG_RETRY: Duration = Duration::from_millis(10);

/// Events taken from epoll per wait.
const EVENTS: usize = 64;

/// The epoll data of the descriptors that are not pidfds, whose data is
/// `serial << 32 | pid` (no pid is 2^32 - 1).
const SOCKET: u64 = u64::MAX;
const STOP: u64 = u64::MAX - 1;
const WAKE: u64 = u64::MAX - 2;

/// What [`serve`] serves, and how.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// The directory of machine executables,
    /// `<dir>/<package>/<executable>`.
    pub dir: PathBuf,
    /// Where machines write their logs (`WINK_LOG_DIR`), if not to stdout.
    pub log_dir: Option<PathBuf>,
    /// Limits, the grace period and whether messages are logged.
    pub server: ServerConfig,
    /// The cluster's key file, if it has one: machines are started with
    /// its path in `WINK_KEY_FILE` (never the key itself), and read it.
    pub key_file: Option<PathBuf>,
}

/// Why [`serve`] stopped before a shutdown.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The served directory cannot be read.
    #[error("cannot serve {}: {source}", .dir.display())]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The loop cannot wait (epoll or eventfd failed).
    #[error("cannot wait for events: {0}")]
    Wait(io::Error),
    /// A worker thread cannot be started.
    #[error("cannot start a worker thread: {0}")]
    Worker(io::Error),
    /// The socket failed.
    #[error("socket failed: {0}")]
    Socket(io::Error),
}

/// Serves `settings.dir` on `endpoint` until SIGTERM or SIGINT (`signals`,
/// made before the endpoint was bound and before any thread was started,
/// so that every thread has them blocked), then stops every machine
/// (SIGTERM, SIGKILL after the grace period), waits up to twice the grace
/// period for them to end and half a second for the last replies to be
/// acknowledged, and returns.
pub fn serve(
    endpoint: Endpoint,
    settings: ServeSettings,
    log: Logger,
    signals: &Signals,
) -> Result<(), ServeError> {
    serve_on(endpoint, settings, log, signals.as_fd(), true)
}

/// [`serve`], shutting down when `stop` becomes readable instead of on a
/// signal.
pub fn serve_until(
    endpoint: Endpoint,
    settings: ServeSettings,
    log: Logger,
    stop: impl AsFd,
) -> Result<(), ServeError> {
    serve_on(endpoint, settings, log, stop.as_fd(), false)
}

/// [`serve`] if `stop` is a [`Signals`] descriptor (`signals`: SIGHUP then
/// reads the key file again, and is passed on to every machine), else
/// [`serve_until`].
fn serve_on(
    endpoint: Endpoint,
    settings: ServeSettings,
    log: Logger,
    stop: BorrowedFd<'_>,
    signals: bool,
) -> Result<(), ServeError> {
    let dir = settings
        .dir
        .canonicalize()
        .map_err(|source| ServeError::Dir {
            dir: settings.dir.clone(),
            source,
        })?;
    let me = endpoint.local_addr();
    info!(log, "Directory: {}", dir.display());
    info!(log, "Address: {}", me);
    let key_file = settings.key_file.clone();
    let served = Arc::new(Served {
        dir,
        log_dir: settings.log_dir,
        key_file: settings.key_file,
        me,
    });
    let wait = |e: rustix::io::Errno| ServeError::Wait(e.into());
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(wait)?;
    let wake = Arc::new(eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).map_err(wait)?);
    epoll::add(&epoll, &endpoint, data(SOCKET), epoll::EventFlags::IN).map_err(wait)?;
    epoll::add(&epoll, stop, data(STOP), epoll::EventFlags::IN).map_err(wait)?;
    epoll::add(&epoll, &*wake, data(WAKE), epoll::EventFlags::IN).map_err(wait)?;
    let (jobs, jobs_rx) = mpsc::channel();
    let jobs_rx = Arc::new(Mutex::new(jobs_rx));
    let (done_tx, done) = mpsc::channel();
    for i in 0..WORKERS {
        let (jobs, done, served, wake) = (
            jobs_rx.clone(),
            done_tx.clone(),
            served.clone(),
            wake.clone(),
        );
        std::thread::Builder::new()
            .name(format!("wink-server-worker-{i}"))
            .spawn(move || work(&served, &jobs, &done, &wake))
            .map_err(ServeError::Worker)?;
    }
    let driver = Driver {
        core: ServerCore::new(me, settings.server, log.clone(), Instant::now()),
        endpoint,
        inbox: Inbox::default(),
        jobs: Some(jobs),
        done,
        epoll,
        wake,
        writing: false,
        watches: HashMap::new(),
        next_serial: 0,
        log,
        key_file,
        signals,
    };
    driver.run(stop)
}

fn data(value: u64) -> epoll::EventData {
    epoll::EventData::new_u64(value)
}

/// Work for a worker thread.
#[derive(Debug)]
enum Job {
    Spawn(SpawnToken, Spawn),
    Adopt(AdoptToken, u32, Address),
    Resolve(u32, MachineName),
}

/// Work done, back to the loop.
#[derive(Debug)]
enum Done {
    Spawned(SpawnToken, Result<Forked, String>),
    Adopted(AdoptToken, u32, Result<OwnedFd, String>),
    Resolved(u32, Result<PathBuf, String>),
}

/// A worker: runs jobs until the loop is gone, and says so on `wake` after
/// each.
fn work(served: &Served, jobs: &Mutex<Receiver<Job>>, done: &Sender<Done>, wake: &OwnedFd) {
    loop {
        let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else { return };
        let result = match job {
            Job::Spawn(token, spawn) => Done::Spawned(
                token,
                process::spawn(served, &spawn).map_err(|e| e.to_string()),
            ),
            Job::Adopt(token, pid, address) => Done::Adopted(
                token,
                pid,
                process::check_adoptee(&served.dir, pid, address).map_err(|e| e.to_string()),
            ),
            Job::Resolve(pid, name) => Done::Resolved(
                pid,
                process::resolve(&served.dir, &name).map_err(|e| e.to_string()),
            ),
        };
        if done.send(result).is_err() {
            return;
        }
        let _ = rustix::io::write(wake, &1u64.to_ne_bytes());
    }
}

/// A machine process being watched: its pidfd is in the epoll set with
/// `serial << 32 | pid` as data.
struct Watch {
    pidfd: OwnedFd,
    serial: u32,
}

struct Driver {
    core: ServerCore,
    endpoint: Endpoint,
    inbox: Inbox,
    /// Closed (dropped) when the loop is done, which ends the workers.
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    epoll: OwnedFd,
    wake: Arc<OwnedFd>,
    /// Whether the socket is watched for writability too.
    writing: bool,
    watches: HashMap<u32, Watch>,
    next_serial: u32,
    log: Logger,
    /// The cluster's key file, read again on SIGHUP.
    key_file: Option<PathBuf>,
    /// Whether the stop descriptor is a [`Signals`] one.
    signals: bool,
}

impl Driver {
    /// Takes the pending signals: true if one asks to stop. SIGHUP reads
    /// the key file again and passes the signal on to every machine, which
    /// reads it too.
    fn take_signals(&mut self, fd: BorrowedFd<'_>) -> bool {
        let asked = super::take_all(fd);
        if let (true, Some(file)) = (asked.reload, &self.key_file) {
            self.endpoint.reload_keys(file, &self.log, "the server");
            for (pid, watch) in &self.watches {
                if let Err(e) = process::hang_up(&watch.pidfd) {
                    info!(self.log, "cannot pass SIGHUP on to {}: {}", pid, e);
                }
            }
        }
        asked.stop
    }

    fn run(mut self, stop: BorrowedFd<'_>) -> Result<(), ServeError> {
        let mut events = Vec::with_capacity(EVENTS);
        let mut ended = Vec::new();
        loop {
            let now = Instant::now();
            if self.core.is_done(now) {
                break;
            }
            self.endpoint.flush().map_err(ServeError::Socket)?;
            self.watch_writes(self.endpoint.wants_write())?;
            let mut deadline = match (self.core.poll_timeout(), self.endpoint.next_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if crate::log::retry_stdout() {
                let retry = now + LOG_RETRY;
                deadline = Some(deadline.map_or(retry, |d| d.min(retry)));
            }
            let timeout = deadline.map(|d| timespec(d.saturating_duration_since(now)));
            events.clear();
            match epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut events),
                timeout.as_ref(),
            ) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(ServeError::Wait(e.into())),
            }
            let now = Instant::now();
            let (mut readable, mut stopped) = (false, false);
            ended.clear();
            for event in &events {
                match event.data.u64() {
                    SOCKET => readable = true,
                    STOP if self.signals => stopped |= self.take_signals(stop),
                    STOP => stopped = true,
                    WAKE => {
                        let mut count = [0u8; 8];
                        let _ = rustix::io::read(&*self.wake, &mut count);
                    }
                    watch => ended.push((watch as u32, (watch >> 32) as u32)),
                }
            }
            if stopped && !self.core.is_shutting_down() {
                info!(self.log, "shutting down");
                self.core.shutdown(now);
                // Asked once: a second signal changes nothing.
                let _ = epoll::delete(&self.epoll, stop);
            }
            // Messages before process news: a machine's `unregister` is
            // read before its exit, so an orderly exit is not a death.
            if readable || !ended.is_empty() {
                self.receive(now)?;
            }
            while let Ok(d) = self.done.try_recv() {
                self.finish(now, d);
            }
            for &(pid, serial) in &ended {
                self.ended(now, pid, serial);
            }
            self.endpoint.handle_timeout(now);
            while let Some(event) = self.endpoint.poll_event() {
                if let TransportEvent::Refused { peer, why } = &event {
                    warn!(
                        self.log,
                        "dropped datagrams from {}: {} (each counted; said once per address)",
                        Address::from(*peer),
                        why
                    );
                }
                if let TransportEvent::GaveUp { to, seq, message } = event {
                    let to = Address::from(to);
                    if message.starts_with("relayed ") {
                        // How a `wink start` that has exited shows: expected.
                        info!(self.log, "{} no longer answers: relaying to it stopped", to);
                    } else {
                        warn!(
                            self.log,
                            "gave up on message {} to {}: {}", seq, to, message
                        );
                    }
                    self.core.handle_gave_up(now, to);
                }
            }
            self.core.handle_timeout(now);
            self.carry_out();
        }
        // Every machine is gone (or would not go): close the workers'
        // queue and let the last replies arrive.
        self.jobs = None;
        self.endpoint.settle(SETTLE).map_err(ServeError::Socket)?;
        let stats = self.endpoint.stats();
        info!(
            self.log,
            "server transport: {} delivered, {} duplicates; refused {} unauthenticated, {} outdated, {} stale",
            stats.delivered,
            stats.duplicates,
            stats.unauthenticated,
            stats.outdated,
            stats.stale
        );
        info!(self.log, "server exited");
        crate::log::finish_stdout(Duration::from_secs(1));
        Ok(())
    }

    /// Watches the socket for writability too, or no longer.
    fn watch_writes(&mut self, writes: bool) -> Result<(), ServeError> {
        if writes != self.writing {
            let mut flags = epoll::EventFlags::IN;
            if writes {
                flags |= epoll::EventFlags::OUT;
            }
            epoll::modify(&self.epoll, &self.endpoint, data(SOCKET), flags)
                .map_err(|e| ServeError::Wait(e.into()))?;
            self.writing = writes;
        }
        Ok(())
    }

    /// Hands the messages waiting on the socket (a batch) to the core.
    fn receive(&mut self, now: Instant) -> Result<(), ServeError> {
        self.inbox.clear();
        let result = self.endpoint.receive_ready(now, &mut self.inbox);
        for i in 0..self.inbox.len() {
            if let Some((from, text)) = self.inbox.get(i) {
                self.core.handle_message(now, from, text);
            }
        }
        result.map_err(ServeError::Socket)
    }

    /// Tells the core what became of a fork or an adoption.
    fn finish(&mut self, now: Instant, done: Done) {
        match done {
            Done::Spawned(token, Ok(forked)) => {
                let pid = forked.pid;
                self.forget_ended(now, pid);
                match self.watch(pid, forked.pidfd) {
                    Ok(()) => self.core.handle_spawned(now, token, Ok(pid)),
                    Err(reason) => self.core.handle_spawned(now, token, Err(reason)),
                }
            }
            Done::Spawned(token, Err(reason)) => self.core.handle_spawned(now, token, Err(reason)),
            Done::Adopted(token, pid, Ok(pidfd)) => {
                self.forget_ended(now, pid);
                if self.watches.contains_key(&pid) {
                    // Watched already, and alive: the same process.
                    drop(pidfd);
                    return self.core.handle_adopted(now, token, Ok(()));
                }
                match self.watch(pid, pidfd) {
                    Ok(()) => {
                        self.core.handle_adopted(now, token, Ok(()));
                        if !self.core.has_machine(pid) {
                            self.unwatch(pid);
                        }
                    }
                    Err(reason) => self.core.handle_adopted(now, token, Err(reason)),
                }
            }
            Done::Adopted(token, _, Err(reason)) => {
                self.core.handle_adopted(now, token, Err(reason))
            }
            Done::Resolved(pid, path) => self.core.handle_resolved(now, pid, path),
        }
    }

    /// The pidfd of watch `serial` on `pid` is readable: the process has
    /// ended, unless the watch is gone or is another process's by now.
    fn ended(&mut self, now: Instant, pid: u32, serial: u32) {
        let Some(watch) = self.watches.get(&pid).filter(|w| w.serial == serial) else {
            return;
        };
        // Readable, yet running (`None`): it stays watched.
        if let Some(how) = process::reap(&watch.pidfd) {
            self.unwatch(pid);
            self.core.handle_exited(now, pid, how);
        }
    }

    /// A new process has `pid`: if a watched one had it, that one ended
    /// (an adopted machine reaped by its own parent); tell the core first.
    fn forget_ended(&mut self, now: Instant, pid: u32) {
        let ended = self
            .watches
            .get(&pid)
            .is_some_and(|w| process::has_ended(&w.pidfd));
        if ended {
            if let Some(watch) = self.unwatch(pid) {
                let how = process::reap(&watch.pidfd).unwrap_or(ProcessExit::Unknown);
                self.core.handle_exited(now, pid, how);
            }
        }
    }

    /// Starts watching `pid` by its pidfd. If the pidfd cannot be watched,
    /// the process is killed (and reaped, if a child): the server never
    /// keeps a machine it would not see end.
    fn watch(&mut self, pid: u32, pidfd: OwnedFd) -> Result<(), String> {
        self.next_serial = self.next_serial.wrapping_add(1);
        let serial = self.next_serial;
        let token = u64::from(serial) << 32 | u64::from(pid);
        if let Err(e) = epoll::add(&self.epoll, &pidfd, data(token), epoll::EventFlags::IN) {
            let _ = process::signal(&pidfd, crate::server::Signal::Kill);
            let _ = process::reap(&pidfd);
            warn!(self.log, "cannot watch process {}: {}: killed it", pid, e);
            return Err(format!("cannot watch process {pid}: {e}"));
        }
        self.watches.insert(pid, Watch { pidfd, serial });
        Ok(())
    }

    /// Stops watching `pid`.
    fn unwatch(&mut self, pid: u32) -> Option<Watch> {
        let watch = self.watches.remove(&pid)?;
        let _ = epoll::delete(&self.epoll, &watch.pidfd);
        Some(watch)
    }

    /// Carries out what the core asked for.
    fn carry_out(&mut self) {
        let now = Instant::now();
        while let Some(effect) = self.core.poll_effect() {
            match effect {
                ServerEffect::Send { to, text } => {
                    if let Err(e) = self.endpoint.send(to, text) {
                        warn!(self.log, "cannot send to {}: {}", to, e);
                    }
                }
                ServerEffect::Forget { address } => {
                    self.endpoint.forget(address);
                }
                ServerEffect::Spawn {
                    token,
                    name,
                    address,
                    parent,
                    start,
                    args,
                } => {
                    let spawn = Spawn {
                        name,
                        address,
                        parent,
                        start,
                        args,
                    };
                    if !self.give(Job::Spawn(token, spawn)) {
                        let reason = "the server's workers are gone".to_owned();
                        self.core.handle_spawned(now, token, Err(reason));
                    }
                }
                ServerEffect::Signal { pid, signal } => {
                    // Only a process still watched: once reaped, its pid
                    // may be another's.
                    if let Some(watch) = self.watches.get(&pid) {
                        if let Err(e) = process::signal(&watch.pidfd, signal) {
                            info!(self.log, "cannot signal {}: {}", pid, e);
                        }
                    }
                }
                ServerEffect::Resolve { pid, name } => {
                    if !self.give(Job::Resolve(pid, name)) {
                        let reason = "the server's workers are gone".to_owned();
                        self.core.handle_resolved(now, pid, Err(reason));
                    }
                }
                ServerEffect::Adopt {
                    token,
                    pid,
                    address,
                    name: _,
                } => {
                    if !self.give(Job::Adopt(token, pid, address)) {
                        let reason = "the server's workers are gone".to_owned();
                        self.core.handle_adopted(now, token, Err(reason));
                    }
                }
            }
        }
    }

    /// Hands `job` to the workers; false if they are gone.
    fn give(&self, job: Job) -> bool {
        self.jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok())
    }
}

/// `d` as a timeout for a system call.
fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}
