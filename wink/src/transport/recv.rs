//! Receive side for one sender address: in-order delivery through a sliding
//! window, per sender incarnation.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use super::Stats;

/// How many earlier incarnations of one address are remembered, so that a
/// delayed packet from one of them cannot reset the window.
pub const RETIRED_INCARNATIONS: usize = 4;

/// Bytes a buffered message is counted for beyond its text.
pub const MESSAGE_OVERHEAD: usize = 64;

/// Bytes a slot of the reorder buffer is counted for, held or not.
pub const SLOT_BYTES: usize = std::mem::size_of::<Option<String>>();

/// What became of one `Data` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The next in order: delivered (with whatever it made ready).
    Delivered,
    /// New, ahead of a hole: buffered until the hole fills.
    Buffered,
    /// Seen before (or skipped past). Acknowledge it again, deliver nothing.
    Duplicate,
    /// Beyond the window; dropped unacknowledged so the sender retries.
    OutOfWindow,
    /// Would be buffered, but the memory allowed for buffering is used:
    /// dropped unacknowledged so the sender retries.
    OverCapacity,
}

/// Receive state for the current incarnation of one sender.
///
/// Every sequence number below `next` is delivered or skipped; `buffer[i]`
/// holds sequence number `next + i` if it has arrived (`Some("")` for an
/// announcement). The front of `buffer` is never `Some`: it would have been
/// delivered. `next` is a `u128` so that a sender reaching 2^64 − 1 ends
/// its stream instead of wrapping around.
#[derive(Debug)]
pub(super) struct ReceiveState {
    /// The sender incarnation this window belongs to.
    pub(super) incarnation: u64,
    /// The next sequence number to deliver.
    next: u128,
    /// Messages that arrived ahead of `next`.
    buffer: VecDeque<Option<String>>,
    /// Bytes of the messages in `buffer`, each with [`MESSAGE_OVERHEAD`].
    message_bytes: usize,
    /// Earlier incarnations of this address, each with the time until
    /// which its late packets are dropped.
    retired: [Option<(u64, Instant)>; RETIRED_INCARNATIONS],
    /// Where the next retired incarnation is written in `retired`.
    retired_next: usize,
}

impl ReceiveState {
    /// A fresh window for `incarnation`, expecting `start` next.
    pub(super) fn new(incarnation: u64, start: u64) -> Self {
        ReceiveState {
            incarnation,
            next: u128::from(start),
            buffer: VecDeque::new(),
            message_bytes: 0,
            retired: [None; RETIRED_INCARNATIONS],
            retired_next: 0,
        }
    }

    /// A window for `incarnation` expecting `next`: a sender forgotten
    /// while idle and heard again ([`super::Transport`] keeps `next` in a
    /// tombstone), so its retransmissions are still duplicates.
    pub(super) fn resume(incarnation: u64, next: u128) -> Self {
        ReceiveState {
            incarnation,
            next,
            buffer: VecDeque::new(),
            message_bytes: 0,
            retired: [None; RETIRED_INCARNATIONS],
            retired_next: 0,
        }
    }

    /// The next sequence number to deliver.
    pub(super) fn next(&self) -> u128 {
        self.next
    }

    /// Whether nothing is buffered ahead of a hole.
    pub(super) fn is_drained(&self) -> bool {
        self.buffer.is_empty()
    }

    /// Messages buffered ahead of a hole.
    pub(super) fn buffered(&self) -> usize {
        self.buffer.iter().filter(|slot| slot.is_some()).count()
    }

    /// Memory the reorder buffer is counted for: its slots and the
    /// messages it holds.
    pub(super) fn held_bytes(&self) -> usize {
        self.buffer.capacity() * SLOT_BYTES + self.message_bytes
    }

    /// Writes the runs of messages buffered ahead of `next` into `ranges`
    /// (cleared first), lowest first, at most `max` of them.
    pub(super) fn ranges(&self, max: usize, ranges: &mut Vec<(u64, u64)>) {
        ranges.clear();
        let mut run: Option<u128> = None;
        for (i, slot) in self.buffer.iter().enumerate() {
            let seq = self.next + i as u128;
            match (slot.is_some(), run) {
                (true, None) => run = Some(seq),
                (false, Some(start)) => {
                    ranges.push((clamp(start), clamp(seq)));
                    run = None;
                    if ranges.len() == max {
                        return;
                    }
                }
                _ => {}
            }
        }
        if let Some(start) = run {
            ranges.push((clamp(start), clamp(self.next + self.buffer.len() as u128)));
        }
    }

    /// The next sequence number to deliver, as an ack says it.
    pub(super) fn next_u64(&self) -> u64 {
        clamp(self.next)
    }

    /// `incarnation` is one this address had before the current one, and
    /// its late packets are still to be dropped at `now`.
    pub(super) fn is_retired(&self, incarnation: u64, now: Instant) -> bool {
        self.retired
            .iter()
            .flatten()
            .any(|&(retired, until)| retired == incarnation && now < until)
    }

    /// The sender restarted as `incarnation`: delivers what the old one
    /// left buffered (in order, skipping holes; it will never fill them),
    /// retires the old incarnation until `retired_until` and starts a fresh
    /// window at `start`.
    pub(super) fn restart(
        &mut self,
        incarnation: u64,
        start: u64,
        retired_until: Instant,
        out: &mut Delivery<'_, impl FnMut(SocketAddr, &str)>,
    ) {
        while let Some(slot) = self.buffer.pop_front() {
            match slot {
                Some(message) => out.one(&message),
                None => out.stats.skipped += 1,
            }
        }
        self.buffer = VecDeque::new();
        self.message_bytes = 0;
        self.retired[self.retired_next] = Some((self.incarnation, retired_until));
        self.retired_next = (self.retired_next + 1) % RETIRED_INCARNATIONS;
        self.incarnation = incarnation;
        self.next = u128::from(start);
    }

    /// Handles `Data { seq, floor, message }` from the current incarnation.
    ///
    /// First moves the window up to `floor` (the sender gave up on
    /// everything below it), discarding what is buffered there and skipping
    /// holes; then places `seq`. In the common case (`seq` is the next
    /// expected and nothing is buffered) the message is delivered straight
    /// from `message` with no allocation.
    ///
    /// Buffering may add at most `room` bytes to [`held_bytes`]; a message
    /// that would need more is refused ([`Verdict::OverCapacity`]). The
    /// next message in order always goes through: it needs no room.
    ///
    /// [`held_bytes`]: ReceiveState::held_bytes
    pub(super) fn on_data(
        &mut self,
        seq: u64,
        floor: u64,
        message: &str,
        window: usize,
        room: usize,
        out: &mut Delivery<'_, impl FnMut(SocketAddr, &str)>,
    ) -> Verdict {
        // A sender is still trying the message it sends, so floor <= seq; a
        // larger floor is read as seq rather than trusted to skip it.
        let floor = u128::from(floor.min(seq));
        if floor > self.next {
            self.advance_to(floor, out);
        }
        let Some(offset) = u128::from(seq).checked_sub(self.next) else {
            return Verdict::Duplicate;
        };
        let index = match usize::try_from(offset) {
            Ok(index) if index < window => index,
            _ => return Verdict::OutOfWindow,
        };
        if index == 0 {
            // The front slot, if any, is a hole (never `Some`): fill it.
            self.buffer.pop_front();
            self.next += 1;
            out.one(message);
            self.deliver_ready(out);
            return Verdict::Delivered;
        }
        if self.buffer.get(index).is_some_and(Option::is_some) {
            return Verdict::Duplicate;
        }
        let slots = (index + 1).saturating_sub(self.buffer.capacity());
        let cost = message.len() + MESSAGE_OVERHEAD + slots * 2 * SLOT_BYTES;
        if cost > room {
            return Verdict::OverCapacity;
        }
        if self.buffer.len() <= index {
            self.buffer.resize(index + 1, None);
        }
        self.buffer[index] = Some(message.to_owned());
        self.message_bytes += message.len() + MESSAGE_OVERHEAD;
        Verdict::Buffered
    }

    /// Moves `next` up to `floor`: discards buffered messages below it
    /// (given up by the sender), skips holes, then delivers whatever
    /// became ready.
    fn advance_to(&mut self, floor: u128, out: &mut Delivery<'_, impl FnMut(SocketAddr, &str)>) {
        while self.next < floor {
            match self.buffer.pop_front() {
                // The sender gave it up (only a message given up can be
                // below its floor and not acknowledged cumulatively) and
                // reported it undelivered: so it must never be delivered.
                Some(Some(message)) => {
                    self.message_bytes -= message.len() + MESSAGE_OVERHEAD;
                    out.stats.discarded += 1;
                }
                Some(None) => out.stats.skipped += 1,
                None => {
                    let gap = u64::try_from(floor - self.next).unwrap_or(u64::MAX);
                    out.stats.skipped = out.stats.skipped.saturating_add(gap);
                    self.next = floor;
                    break;
                }
            }
            self.next += 1;
        }
        self.deliver_ready(out);
    }

    /// Delivers the run of buffered messages at the front of the window.
    fn deliver_ready(&mut self, out: &mut Delivery<'_, impl FnMut(SocketAddr, &str)>) {
        while let Some(Some(_)) = self.buffer.front() {
            if let Some(Some(message)) = self.buffer.pop_front() {
                self.message_bytes -= message.len() + MESSAGE_OVERHEAD;
                out.one(&message);
            }
            self.next += 1;
        }
        // A drained buffer gives its memory back, so a burst of reordering
        // (or a sender that opened a wide window and left) costs nothing
        // afterwards.
        if self.buffer.is_empty() && self.buffer.capacity() > 0 {
            self.buffer = VecDeque::new();
        }
    }
}

/// `seq`, or 2^64 − 1 if it is beyond (a stream that used every number).
fn clamp(seq: u128) -> u64 {
    u64::try_from(seq).unwrap_or(u64::MAX)
}

/// Where delivered messages go: the application's callback, with the
/// sender's address, and the counters.
pub(super) struct Delivery<'a, F> {
    /// The sender's address, passed to `deliver`.
    pub(super) from: SocketAddr,
    /// The application's callback.
    pub(super) deliver: &'a mut F,
    /// Counters.
    pub(super) stats: &'a mut Stats,
}

impl<F: FnMut(SocketAddr, &str)> Delivery<'_, F> {
    /// Hands one message to the application, unless it is an announcement.
    fn one(&mut self, message: &str) {
        if !message.is_empty() {
            self.stats.delivered += 1;
            (self.deliver)(self.from, message);
        }
    }
}
