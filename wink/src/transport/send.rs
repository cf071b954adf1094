//! Send side for one recipient: sequence numbers, the window of messages in
//! flight, the congestion window, and the queue behind them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::rtt::RttEstimator;

/// The congestion window never shrinks below this many messages.
pub const MIN_CWND: usize = 64;

/// One message in flight: sent or about to be, not yet acknowledged
/// cumulatively.
#[derive(Debug)]
pub(super) struct InFlight {
    /// The text, kept for retransmission; empty for a floor announcement.
    pub(super) message: String,
    /// When it was last transmitted; `None` before the first transmission.
    pub(super) transmitted_at: Option<Instant>,
    /// Retransmissions so far.
    pub(super) retransmits: u32,
    /// The deadline of its live timer; `None` while it waits to be
    /// transmitted, and while it is selectively acknowledged. A timer in
    /// the heap with another deadline is stale.
    pub(super) deadline: Option<Instant>,
    /// The timeout of its latest transmission, doubled at each timeout.
    pub(super) rto: Duration,
    /// Which datagram to this recipient carried its latest transmission
    /// (counting from 1), to tell a loss from reordering.
    pub(super) order: u64,
    /// Received by the recipient ahead of a hole, by its latest ack: not
    /// retransmitted while that lasts, but kept until acknowledged
    /// cumulatively (a receiver may drop what it holds ahead of a hole).
    pub(super) sacked: bool,
}

/// Send state for one recipient.
///
/// Sequence numbers `[base, base + in_flight.len())` are in the window
/// (`None` once acknowledged or given up; the front is never `None`), and
/// `[base + in_flight.len(), next_seq)` wait in `queue`. So `base` is the
/// floor: the lowest sequence number still being tried, or the next one to
/// be sent when nothing is.
#[derive(Debug, Default)]
pub(super) struct SendState {
    /// The sequence number the next message gets.
    next_seq: u64,
    /// The sequence number of `in_flight[0]`.
    base: u64,
    /// The window, indexed by `seq - base`.
    in_flight: VecDeque<Option<InFlight>>,
    /// How many slots of `in_flight` are `Some`.
    in_flight_count: usize,
    /// How many of them are selectively acknowledged.
    pub(super) sacked_count: usize,
    /// Messages waiting for room in the window, in sequence order.
    queue: VecDeque<String>,
    /// Round-trip estimate for this recipient.
    pub(super) rtt: RttEstimator,
    /// A floor announcement is due once nothing is in flight or queued.
    pub(super) announce_pending: bool,
    /// The recipient's incarnation, from its latest ack.
    pub(super) recipient_incarnation: Option<u64>,
    /// Congestion window: most messages in flight not selectively
    /// acknowledged. Starts at the configured window, halves at a loss
    /// (once per round trip), grows back by one per window acknowledged.
    pub(super) cwnd: usize,
    /// Below it the window grows by one per message acknowledged.
    pub(super) ssthresh: usize,
    /// Acknowledgements counted toward the next growth by one.
    pub(super) growth: usize,
    /// Datagrams to this recipient so far (the last one's order).
    pub(super) datagrams: u64,
    /// Losses of messages sent in datagrams up to this order belong to the
    /// reduction already made.
    pub(super) recovery: u64,
    /// The latest datagram order acknowledged so far.
    pub(super) largest_acked: u64,
    /// When an ack last reported something new.
    pub(super) progress: Option<Instant>,
    /// The deadline of the live probe timer.
    pub(super) probe: Option<Instant>,
    /// Probes sent since the last progress.
    pub(super) probes: u32,
}

impl SendState {
    /// A send state whose first message gets sequence number `seq`, with a
    /// congestion window of `window` messages.
    pub(super) fn starting_at(seq: u64, window: usize) -> Self {
        SendState {
            next_seq: seq,
            base: seq,
            cwnd: window,
            ssthresh: window,
            ..SendState::default()
        }
    }

    /// The lowest sequence number still being tried (or the next to send).
    pub(super) fn floor(&self) -> u64 {
        self.base
    }

    /// Messages in the window, not yet acknowledged or given up.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight_count
    }

    /// Messages waiting for room in the window.
    pub(super) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Nothing in flight, nothing queued.
    pub(super) fn is_idle(&self) -> bool {
        self.in_flight_count == 0 && self.queue.is_empty()
    }

    /// The sequence number after the last one in the window.
    pub(super) fn window_end(&self) -> u64 {
        self.base + self.in_flight.len() as u64
    }

    /// Gives `message` the next sequence number and queues it; `None` when
    /// the sequence numbers are exhausted (after 2^64 − 1 messages).
    pub(super) fn push(&mut self, message: String) -> Option<u64> {
        let seq = self.next_seq;
        self.next_seq = seq.checked_add(1)?;
        self.queue.push_back(message);
        Some(seq)
    }

    /// Moves queued messages into the window while it has room (at most
    /// `window` sequence numbers from the floor, at most `cwnd` messages
    /// not selectively acknowledged), calling `admitted` with the sequence
    /// number of each.
    pub(super) fn admit(&mut self, window: usize, rto: Duration, mut admitted: impl FnMut(u64)) {
        let cwnd = self.cwnd.clamp(1, window);
        while self.in_flight.len() < window && self.in_flight_count - self.sacked_count < cwnd {
            let Some(message) = self.queue.pop_front() else {
                break;
            };
            let seq = self.base + self.in_flight.len() as u64;
            self.in_flight.push_back(Some(InFlight {
                message,
                transmitted_at: None,
                retransmits: 0,
                deadline: None,
                rto,
                order: 0,
                sacked: false,
            }));
            self.in_flight_count += 1;
            admitted(seq);
        }
    }

    /// `acked` messages were newly acknowledged: the window grows.
    pub(super) fn grow(&mut self, acked: usize, window: usize) {
        if self.cwnd < self.ssthresh {
            self.cwnd = (self.cwnd + acked).min(window);
            return;
        }
        self.growth += acked;
        while self.growth >= self.cwnd.max(1) {
            self.growth -= self.cwnd.max(1);
            self.cwnd = (self.cwnd + 1).min(window);
        }
    }

    /// A message sent in datagram `order` was lost: the window halves,
    /// unless a loss of the same round trip halved it already. True if it
    /// did.
    pub(super) fn on_loss(&mut self, order: u64) -> bool {
        if order <= self.recovery {
            return false;
        }
        self.ssthresh = (self.cwnd / 2).max(MIN_CWND);
        self.cwnd = self.ssthresh;
        self.growth = 0;
        self.recovery = self.datagrams;
        true
    }

    /// The in-flight message `seq`, if it is still in flight.
    pub(super) fn get_mut(&mut self, seq: u64) -> Option<&mut InFlight> {
        let index = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        self.in_flight.get_mut(index)?.as_mut()
    }

    /// The in-flight message `seq`, if it is still in flight.
    pub(super) fn get(&self, seq: u64) -> Option<&InFlight> {
        let index = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        self.in_flight.get(index)?.as_ref()
    }

    /// The messages in the window with their sequence numbers.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut InFlight)> {
        let base = self.base;
        self.in_flight
            .iter_mut()
            .enumerate()
            .filter_map(move |(i, slot)| Some((base + i as u64, slot.as_mut()?)))
    }

    /// Takes `seq` out of the window (acknowledged or given up) and slides
    /// the window's start up to the next message still in flight.
    pub(super) fn remove(&mut self, seq: u64) -> Option<InFlight> {
        let index = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        let entry = self.in_flight.get_mut(index)?.take()?;
        self.in_flight_count -= 1;
        if entry.sacked {
            self.sacked_count -= 1;
        }
        while let Some(None) = self.in_flight.front() {
            self.in_flight.pop_front();
            self.base += 1;
        }
        Some(entry)
    }
}
