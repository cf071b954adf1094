//! The server's I/O: one loop that feeds a [`ServerCore`] and carries out
//! its effects.
//!
//! The loop waits on four things: SIGTERM/SIGINT (polled first, so a flood
//! of requests cannot starve a shutdown), the endpoint (requests, acks,
//! retransmissions), the core's timers, and a channel on which process
//! work comes back. Forks and the checks of a process to adopt (the file
//! system, `/proc`) run on two worker threads, so they never stall the
//! loop. Every machine process, forked or adopted, is watched by a pidfd:
//! readable when it ends, then `waitid` reaps it (a child, so no zombie is
//! left) or finds it is not ours (adopted: status unknown). Signals go
//! through the pidfd too, so a pid the kernel gave to another process is
//! never signalled.

mod process;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::Async;
use futures_lite::{future, StreamExt};
use slog::{info, warn, Logger};
use smol::channel::{self, Receiver, Sender};
use smol::{LocalExecutor, Task};

use super::endpoint::{Endpoint, Inbox};
use crate::address::Address;
use crate::server::{AdoptToken, ProcessExit, ServerConfig, ServerCore, ServerEffect, SpawnToken};
use crate::transport::TransportEvent;
use process::{Forked, Served, Spawn};

/// Threads that fork machines and check processes to adopt.
const WORKERS: usize = 2;

/// How long a server that is done waits for its last replies to be
/// acknowledged (half a second).
const SETTLE: Duration = Duration::from_millis(500);

/// What [`serve`] serves, and how.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// The directory of machine executables,
    /// `<dir>/<package>/<executable>`.
    pub dir: PathBuf,
    /// Where machines write their logs (`WINK_LOG_DIR`), if not to stdout.
    pub log_dir: Option<PathBuf>,
    /// Limits and the grace period.
    pub server: ServerConfig,
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
    /// SIGTERM and SIGINT cannot be watched.
    #[error("cannot watch signals: {0}")]
    Signals(io::Error),
    /// A worker thread cannot be started.
    #[error("cannot start a worker thread: {0}")]
    Worker(io::Error),
    /// The socket failed.
    #[error("socket failed: {0}")]
    Socket(io::Error),
}

/// Serves `settings.dir` on `endpoint` until SIGTERM or SIGINT, then stops
/// every machine (SIGTERM, SIGKILL after the grace period), waits up to
/// twice the grace period for them to end and half a second for the last
/// replies to be acknowledged, and returns.
pub async fn serve(
    endpoint: Endpoint,
    settings: ServeSettings,
    log: Logger,
) -> Result<(), ServeError> {
    let mut signals =
        async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int])
            .map_err(ServeError::Signals)?;
    let stop = async move {
        signals.next().await;
    };
    serve_until(endpoint, settings, log, stop).await
}

/// [`serve`], shutting down when `stop` completes instead of on a signal.
pub async fn serve_until(
    endpoint: Endpoint,
    settings: ServeSettings,
    log: Logger,
    stop: impl Future<Output = ()>,
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
    let served = Arc::new(Served {
        dir,
        log_dir: settings.log_dir,
        me,
    });
    let (jobs, jobs_rx) = channel::unbounded();
    let (done_tx, done) = channel::unbounded();
    for i in 0..WORKERS {
        let (jobs, done, served) = (jobs_rx.clone(), done_tx.clone(), served.clone());
        std::thread::Builder::new()
            .name(format!("wink-server-worker-{i}"))
            .spawn(move || work(&served, &jobs, &done))
            .map_err(ServeError::Worker)?;
    }
    let driver = Driver {
        core: ServerCore::new(me, settings.server, log.clone(), Instant::now()),
        endpoint,
        inbox: Inbox::default(),
        jobs,
        done_tx,
        done,
        watches: HashMap::new(),
        next_serial: 0,
        log,
    };
    let executor = LocalExecutor::new();
    executor.run(driver.run(&executor, stop)).await
}

/// Work for a worker thread.
#[derive(Debug)]
enum Job {
    Spawn(SpawnToken, Spawn),
    Adopt(AdoptToken, u32, Address),
}

/// Work done, back to the loop.
#[derive(Debug)]
enum Done {
    Spawned(SpawnToken, Result<Forked, String>),
    Adopted(AdoptToken, u32, Result<OwnedFd, String>),
    /// The pidfd of watch `serial` on `pid` is readable.
    Ended(u32, u64),
}

/// A worker: runs jobs until the loop is gone.
fn work(served: &Served, jobs: &Receiver<Job>, done: &Sender<Done>) {
    while let Ok(job) = jobs.recv_blocking() {
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
        };
        if done.send_blocking(result).is_err() {
            return;
        }
    }
}

/// A machine process being watched.
struct Watch {
    pidfd: Rc<Async<OwnedFd>>,
    serial: u64,
    /// Sends [`Done::Ended`] when the pidfd is readable; dropping it stops
    /// watching (it is never read).
    waiter: Task<()>,
}

enum Wake {
    Stop,
    Done(Done),
    Io,
}

struct Driver {
    core: ServerCore,
    endpoint: Endpoint,
    inbox: Inbox,
    jobs: Sender<Job>,
    done_tx: Sender<Done>,
    done: Receiver<Done>,
    watches: HashMap<u32, Watch>,
    next_serial: u64,
    log: Logger,
}

impl Driver {
    async fn run(
        mut self,
        executor: &LocalExecutor<'_>,
        stop: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let mut stop = pin!(stop);
        loop {
            if self.core.is_done(Instant::now()) {
                break;
            }
            let deadline = match (self.core.poll_timeout(), self.endpoint.next_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let stop = (!self.core.is_shutting_down()).then_some(stop.as_mut());
            let wake = self
                .wait(stop, deadline)
                .await
                .map_err(ServeError::Socket)?;
            let now = Instant::now();
            let mut done = Vec::new();
            match wake {
                Wake::Stop => {
                    info!(self.log, "shutting down");
                    self.core.shutdown(now);
                }
                Wake::Done(d) => done.push(d),
                Wake::Io => {}
            }
            // Messages before process news: a machine's `unregister` is
            // read before its exit, so an orderly exit is not a death.
            self.receive(now)?;
            while let Ok(d) = self.done.try_recv() {
                done.push(d);
            }
            for d in done {
                self.finish(now, d, executor);
            }
            self.endpoint
                .handle_timeout(now)
                .map_err(ServeError::Socket)?;
            while let Some(event) = self.endpoint.poll_event() {
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
        // Every machine is gone (or would not go): drop the workers' queue
        // and let the last replies arrive.
        self.jobs.close();
        self.endpoint
            .settle(SETTLE)
            .await
            .map_err(ServeError::Socket)?;
        info!(self.log, "server exited");
        Ok(())
    }

    /// Sleeps until `stop` (unless already stopping), process news, the
    /// socket or `deadline`.
    async fn wait(
        &mut self,
        stop: Option<Pin<&mut impl Future<Output = ()>>>,
        deadline: Option<Instant>,
    ) -> io::Result<Wake> {
        let Driver { endpoint, done, .. } = self;
        // `or` polls in order: the stop signal first.
        future::or(
            async {
                match stop {
                    Some(stop) => {
                        stop.await;
                        Ok(Wake::Stop)
                    }
                    None => future::pending().await,
                }
            },
            future::or(
                async {
                    match done.recv().await {
                        Ok(d) => Ok(Wake::Done(d)),
                        Err(_) => future::pending().await,
                    }
                },
                async { endpoint.wait(deadline).await.map(|()| Wake::Io) },
            ),
        )
        .await
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

    /// Tells the core what became of a fork, an adoption or a process.
    fn finish(&mut self, now: Instant, done: Done, executor: &LocalExecutor<'_>) {
        match done {
            Done::Spawned(token, Ok(forked)) => {
                let pid = forked.pid;
                self.forget_ended(now, pid);
                match self.watch(executor, pid, forked.pidfd) {
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
                match self.watch(executor, pid, pidfd) {
                    Ok(()) => {
                        self.core.handle_adopted(now, token, Ok(()));
                        if !self.core.has_machine(pid) {
                            self.watches.remove(&pid);
                        }
                    }
                    Err(reason) => self.core.handle_adopted(now, token, Err(reason)),
                }
            }
            Done::Adopted(token, _, Err(reason)) => {
                self.core.handle_adopted(now, token, Err(reason))
            }
            Done::Ended(pid, serial) => {
                let Some(watch) = self.watches.get(&pid).filter(|w| w.serial == serial) else {
                    return;
                };
                match process::reap(watch.pidfd.get_ref()) {
                    Some(how) => {
                        self.watches.remove(&pid);
                        self.core.handle_exited(now, pid, how);
                    }
                    // Readable, yet running: watch again.
                    None => {
                        let pidfd = watch.pidfd.clone();
                        let task = self.arm(executor, pid, serial, pidfd);
                        if let Some(watch) = self.watches.get_mut(&pid) {
                            watch.waiter = task;
                        }
                    }
                }
            }
        }
    }

    /// A new process has `pid`: if a watched one had it, that one ended
    /// (an adopted machine reaped by its own parent); tell the core first.
    fn forget_ended(&mut self, now: Instant, pid: u32) {
        let ended = self
            .watches
            .get(&pid)
            .is_some_and(|w| process::has_ended(w.pidfd.get_ref()));
        if ended {
            if let Some(watch) = self.watches.remove(&pid) {
                let how = process::reap(watch.pidfd.get_ref()).unwrap_or(ProcessExit::Unknown);
                self.core.handle_exited(now, pid, how);
            }
        }
    }

    /// Starts watching `pid` by its pidfd. If the pidfd cannot be watched,
    /// the process is killed (and reaped, if a child): the server never
    /// keeps a machine it would not see end.
    fn watch(
        &mut self,
        executor: &LocalExecutor<'_>,
        pid: u32,
        pidfd: OwnedFd,
    ) -> Result<(), String> {
        let spare = pidfd.try_clone();
        let pidfd = match Async::new(pidfd) {
            Ok(pidfd) => Rc::new(pidfd),
            Err(e) => {
                if let Ok(spare) = spare {
                    let _ = process::signal(&spare, crate::server::Signal::Kill);
                    let _ = process::reap(&spare);
                }
                warn!(self.log, "cannot watch process {}: {}: killed it", pid, e);
                return Err(format!("cannot watch process {pid}: {e}"));
            }
        };
        self.next_serial += 1;
        let serial = self.next_serial;
        let task = self.arm(executor, pid, serial, pidfd.clone());
        self.watches.insert(
            pid,
            Watch {
                pidfd,
                serial,
                waiter: task,
            },
        );
        Ok(())
    }

    /// A task that reports when `pidfd` is readable.
    fn arm(
        &self,
        executor: &LocalExecutor<'_>,
        pid: u32,
        serial: u64,
        pidfd: Rc<Async<OwnedFd>>,
    ) -> Task<()> {
        let done = self.done_tx.clone();
        executor.spawn(async move {
            let _ = pidfd.readable().await;
            let _ = done.send(Done::Ended(pid, serial)).await;
        })
    }

    /// Carries out what the core asked for.
    fn carry_out(&mut self) {
        let now = Instant::now();
        while let Some(effect) = self.core.poll_effect() {
            match effect {
                ServerEffect::Send { to, text } => {
                    if let Err(e) = self.endpoint.send(to, &text) {
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
                    if self.jobs.try_send(Job::Spawn(token, spawn)).is_err() {
                        let reason = "the server's workers are gone".to_owned();
                        self.core.handle_spawned(now, token, Err(reason));
                    }
                }
                ServerEffect::Signal { pid, signal } => {
                    // Only a process still watched: once reaped, its pid
                    // may be another's.
                    if let Some(watch) = self.watches.get(&pid) {
                        if let Err(e) = process::signal(watch.pidfd.get_ref(), signal) {
                            info!(self.log, "cannot signal {}: {}", pid, e);
                        }
                    }
                }
                ServerEffect::Adopt {
                    token,
                    pid,
                    address,
                    name: _,
                } => {
                    if self.jobs.try_send(Job::Adopt(token, pid, address)).is_err() {
                        let reason = "the server's workers are gone".to_owned();
                        self.core.handle_adopted(now, token, Err(reason));
                    }
                }
            }
        }
    }
}
