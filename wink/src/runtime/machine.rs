//! The running machine: the driver loop that moves messages and time
//! between the endpoint and the machine's supervision core
//! ([`crate::node::Node`]). Every decision is the core's; this only moves
//! bytes and effects.

use std::future::Future;
use std::io;
use std::time::Instant;

use futures_lite::future;
use slog::{warn, Logger};

use super::endpoint::{Endpoint, Inbox};
use super::socket::Socket;
use super::Config;
use crate::hsm::{Hsm, Machine};
use crate::node::{Ending, Identity, Node};

/// Runs `machine` on `endpoint` until it exits, errors, loses its parent,
/// or `stop` completes (a signal, say), then waits up to
/// [`Config::linger`] for its last messages (`errored`, `exited`,
/// `unregister`, stops for its children) to be acknowledged.
pub async fn run_machine<M: Machine, S: Socket>(
    hsm: Hsm<M>,
    endpoint: &mut Endpoint<S>,
    identity: Identity,
    config: Config,
    log: Logger,
    stop: impl Future<Output = ()>,
) -> io::Result<Ending> {
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
    let _ = node.start(Instant::now());
    let mut inbox = Inbox::default();
    let mut stop = std::pin::pin!(stop);
    loop {
        flush(&mut node, endpoint, &log);
        if node.is_finished() {
            break;
        }
        let deadline = match (node.poll_timeout(), endpoint.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // `or` polls its first future first: the stop request goes there,
        // so a busy socket cannot starve it.
        let stopped = future::or(
            async {
                stop.as_mut().await;
                Ok(true)
            },
            async { endpoint.wait(deadline).await.map(|()| false) },
        )
        .await?;
        let now = Instant::now();
        if stopped {
            let _ = node.stop(now);
            continue;
        }
        inbox.clear();
        let received = endpoint.receive_ready(now, &mut inbox);
        for i in 0..inbox.len() {
            if node.is_finished() {
                break;
            }
            if let Some((from, text)) = inbox.get(i) {
                let _ = node.handle_message(now, from, text);
            }
        }
        received?;
        endpoint.handle_timeout(now)?;
        while let Some(event) = endpoint.poll_event() {
            node.handle_event(now, &event);
        }
        if let Some(heard) = endpoint.last_heard(parent) {
            node.handle_heard(heard);
        }
        if node.poll_timeout().is_some_and(|at| at <= now) {
            node.handle_timeout(now);
        }
    }
    endpoint.settle(config.linger).await?;
    let stats = endpoint.stats();
    slog::info!(
        log,
        "{} transport: {} messages sent in {} datagrams, {} retransmitted, {} given up; {} delivered, {} duplicates, {} dropped over the buffer limit, {} peers refused",
        me,
        stats.sent,
        stats.datagrams_transmitted,
        stats.retransmits,
        stats.gave_up,
        stats.delivered,
        stats.duplicates,
        stats.over_capacity,
        stats.peers_refused
    );
    // A finished node always has an ending.
    Ok(node.ending().cloned().unwrap_or(Ending {
        reason: crate::control::ExitReason::Stopped,
        error: None,
    }))
}

/// Hands what the core queued to the endpoint.
fn flush<M: Machine, S: Socket>(node: &mut Node<M>, endpoint: &mut Endpoint<S>, log: &Logger) {
    while let Some(t) = node.poll_transmit() {
        // The core checked the size; only exhausted sequence numbers (2^64
        // messages to one peer) can be refused here.
        if let Err(e) = endpoint.send(t.to, &t.text) {
            warn!(log, "cannot send to {}: {}", t.to, e);
        }
    }
}
