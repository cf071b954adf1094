//! Send side for one recipient: sequence numbers, the window of messages in
//! flight, and the queue behind it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::rtt::RttEstimator;

/// One message in flight: sent or about to be, not yet acknowledged.
#[derive(Debug)]
pub(super) struct InFlight {
    /// The text, kept for retransmission; empty for a floor announcement.
    pub(super) message: String,
    /// When it was last transmitted; `None` before the first transmission.
    pub(super) transmitted_at: Option<Instant>,
    /// Retransmissions scheduled so far.
    pub(super) retransmits: u32,
    /// The deadline of its live timer; `None` while it waits to be
    /// transmitted. A timer in the heap with another deadline is stale.
    pub(super) deadline: Option<Instant>,
    /// The timeout of its latest transmission, doubled at each retry.
    pub(super) rto: Duration,
    /// Retransmitted early since its latest timed transmission, because
    /// later messages were acknowledged past it.
    pub(super) fast: bool,
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
    /// Messages waiting for room in the window, in sequence order.
    queue: VecDeque<String>,
    /// Round-trip estimate for this recipient.
    pub(super) rtt: RttEstimator,
    /// A floor announcement is due once nothing is in flight or queued.
    pub(super) announce_pending: bool,
    /// The recipient's incarnation, from its latest ack.
    pub(super) recipient_incarnation: Option<u64>,
}

impl SendState {
    /// A send state whose first message gets sequence number `seq`.
    pub(super) fn starting_at(seq: u64) -> Self {
        SendState {
            next_seq: seq,
            base: seq,
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

    /// Gives `message` the next sequence number and queues it; `None` when
    /// the sequence numbers are exhausted (after 2^64 − 1 messages).
    pub(super) fn push(&mut self, message: String) -> Option<u64> {
        let seq = self.next_seq;
        self.next_seq = seq.checked_add(1)?;
        self.queue.push_back(message);
        Some(seq)
    }

    /// Moves queued messages into the window while it has room (at most
    /// `window` sequence numbers from the floor), calling `admitted` with
    /// the sequence number of each.
    pub(super) fn admit(&mut self, window: usize, rto: Duration, mut admitted: impl FnMut(u64)) {
        while self.in_flight.len() < window {
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
                fast: false,
            }));
            self.in_flight_count += 1;
            admitted(seq);
        }
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

    /// Takes `seq` out of the window (acknowledged or given up) and slides
    /// the window's start up to the next message still in flight.
    pub(super) fn remove(&mut self, seq: u64) -> Option<InFlight> {
        let index = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        let entry = self.in_flight.get_mut(index)?.take()?;
        self.in_flight_count -= 1;
        while let Some(None) = self.in_flight.front() {
            self.in_flight.pop_front();
            self.base += 1;
        }
        Some(entry)
    }
}
