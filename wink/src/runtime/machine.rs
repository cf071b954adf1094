//! The running machine: the driver loop that moves messages and time
//! between the endpoint and the machine's supervision core
//! ([`crate::node::Node`]). Every decision is the core's; this only moves
//! bytes and effects.
//!
//! One thread, and per turn one `ppoll` (on the socket and the stop
//! descriptor, to the earliest deadline of the core and the transport),
//! one `recvmmsg` if the socket is readable, and one `sendmmsg` for
//! everything the turn queued (acknowledgements and replies together).

use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use slog::{warn, Logger};

use super::endpoint::{Endpoint, Inbox};
use super::socket::Socket;
use super::Config;
use crate::control::UpgradeOrder;
use crate::hsm::{Hsm, Machine};
use crate::node::{Ending, Identity, Node, Takeover};
use crate::upgrade::Carried;

/// How [`run_machine`] ended.
#[derive(Debug)]
pub enum Finish {
    /// The machine's life ended so.
    Ended(Ending),
    /// The machine stopped for an upgrade: run the order's program, and
    /// hand it what is carried (the transport's part filled in).
    Upgrade(UpgradeOrder, Box<Carried>),
}

/// How often log lines that standard output could not take yet are tried
/// again (see [`crate::log`]).
const LOG_RETRY: Duration = Duration::from_millis(10);

/// Runs `machine` on `endpoint` until it exits, errors, loses its parent,
/// or `stop` becomes readable (a [`Signals`](super::Signals) descriptor,
/// say: SIGHUP then reads [`Config::key_file`] again instead), then waits
/// up to [`Config::linger`] for its last messages
/// (`errored`, `exited`, `unregister`, stops for its children) to be
/// acknowledged. `resume`: the machine was upgraded to this program, and
/// takes over what the program before carried ([`Node::resume`]).
pub fn run_machine<M: Machine, S: Socket>(
    hsm: Hsm<M>,
    endpoint: &mut Endpoint<S>,
    identity: Identity,
    config: Config,
    log: Logger,
    stop: Option<BorrowedFd<'_>>,
    resume: Option<(&Carried, Takeover)>,
) -> io::Result<Finish> {
    let me = endpoint.local_addr();
    let parent = identity.parent;
    let mut node = Node::new(
        hsm,
        me,
        identity,
        config.node(),
        log.clone(),
        Instant::now(),
    );
    match resume {
        Some((carried, takeover)) => {
            let now = Instant::now();
            let _ = node.resume(now, carried, takeover);
        }
        None => {
            let _ = node.start(Instant::now());
        }
    }
    // Messages delivered but not handled when the node finished: an
    // upgrade carries them over.
    let mut unhandled = Vec::new();
    let mut inbox = Inbox::default();
    let mut stop = stop;
    loop {
        hand_over(&mut node, endpoint, &log);
        if node.is_finished() {
            break;
        }
        let mut deadline = match (node.poll_timeout(), endpoint.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if crate::log::retry_stdout() {
            let retry = Instant::now() + LOG_RETRY;
            deadline = Some(deadline.map_or(retry, |d| d.min(retry)));
        }
        let ready = endpoint.wait_with(deadline, stop)?;
        let now = Instant::now();
        if ready.other {
            let asked = stop.map(super::take_all).unwrap_or_default();
            if let (true, Some(file)) = (asked.reload, &config.key_file) {
                endpoint.reload_keys(file, &log, &me.to_string());
            }
            if asked.stop {
                // Asked once; the loop ends soon after.
                stop = None;
                let _ = node.stop(now);
            }
            continue;
        }
        if ready.readable {
            inbox.clear();
            let received = endpoint.receive_ready(now, &mut inbox);
            for i in 0..inbox.len() {
                let Some((from, text)) = inbox.get(i) else {
                    continue;
                };
                if node.is_finished() {
                    unhandled.push((from.socket_addr(), text.to_owned()));
                } else {
                    let _ = node.handle_message(now, from, text);
                }
            }
            received?;
        }
        endpoint.handle_timeout(now);
        while let Some(event) = endpoint.poll_event() {
            node.handle_event(now, &event);
        }
        if let Some(heard) = endpoint.last_heard(parent) {
            node.handle_heard(heard);
        }
        if node.poll_timeout().is_some_and(|at| at <= now) {
            node.handle_timeout(now);
        }
        answer_status(&mut node, endpoint, now, &log);
    }
    if let Some((order, mut carried)) = node.take_upgrade() {
        // Nothing new is taken; what this program sent goes through.
        endpoint.close();
        if !endpoint.settle(config.linger)? {
            warn!(
                log,
                "{} messages still unacknowledged after {} ms: given up, the new program hears them undelivered",
                me,
                config.linger.as_millis()
            );
            endpoint.give_up_everything();
        }
        while let Some(event) = endpoint.poll_event() {
            if let crate::transport::TransportEvent::GaveUp { to, message, .. } = event {
                carried.undelivered.push((to, message));
            }
        }
        carried.transport = endpoint.handover();
        carried.inbox = unhandled;
        return Ok(Finish::Upgrade(order, Box::new(carried)));
    }
    endpoint.settle(config.linger)?;
    let stats = endpoint.stats();
    slog::info!(
        log,
        "{} transport: {} messages sent in {} datagrams, {} retransmitted, {} given up; {} delivered, {} duplicates, {} dropped over the buffer limit, {} peers refused; refused {} unauthenticated, {} outdated, {} stale",
        me,
        stats.sent,
        stats.datagrams_transmitted,
        stats.retransmits,
        stats.gave_up,
        stats.delivered,
        stats.duplicates,
        stats.over_capacity,
        stats.peers_refused,
        stats.unauthenticated,
        stats.outdated,
        stats.stale
    );
    // A finished node always has an ending.
    Ok(Finish::Ended(node.ending().cloned().unwrap_or(Ending {
        reason: crate::control::ExitReason::Stopped,
        error: None,
    })))
}

/// Answers the `status` requests the core took, with its own figures and
/// the transport's and the process's.
fn answer_status<M: Machine, S: Socket>(
    node: &mut Node<M>,
    endpoint: &mut Endpoint<S>,
    now: Instant,
    log: &Logger,
) {
    while let Some((to, id)) = node.poll_status() {
        let mut report = node.status(now, id);
        let stats = endpoint.stats();
        report.sent = stats.sent;
        report.retransmitted = stats.retransmits;
        report.duplicates = stats.duplicates;
        report.gave_up = stats.gave_up;
        let (rss, cpu) = super::vitals();
        report.rss_bytes = rss;
        report.cpu_ms = cpu;
        if let Err(e) = endpoint.send(to, report.to_string()) {
            warn!(log, "cannot answer status to {}: {}", to, e);
        }
    }
}

/// Hands what the core queued to the endpoint: each message's text is
/// moved, not copied.
fn hand_over<M: Machine, S: Socket>(node: &mut Node<M>, endpoint: &mut Endpoint<S>, log: &Logger) {
    while let Some(t) = node.poll_transmit() {
        // The core checked the size; only exhausted sequence numbers (2^64
        // messages to one peer) can be refused here.
        if let Err(e) = endpoint.send(t.to, t.text) {
            warn!(log, "cannot send to {}: {}", t.to, e);
        }
    }
}
