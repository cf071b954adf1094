//! Reliable, ordered delivery of messages over datagrams, as plain
//! bookkeeping: no sockets, no clocks.
//!
//! A [`Transport`] holds everything one process (one socket) needs to
//! deliver its messages to each peer exactly once and in order: sequence
//! numbers, the window of messages in flight and the queue behind it, acks,
//! retransmission timers with a timeout from measured round trips
//! (RFC 6298, Karn's rule), and for each sender a receive window that puts
//! reordered messages back in order and drops duplicates. The caller moves
//! bytes between it and a socket, and passes the time in, in the style of
//! `quinn-proto`:
//!
//! - [`Transport::send`] queues a message for a peer;
//! - [`Transport::receive`] takes a datagram from the socket and hands the
//!   messages that are now in order to a callback;
//! - [`Transport::poll_transmit`] yields the next datagram to put on the
//!   socket (acks first, then messages and retransmissions);
//! - [`Transport::poll_timeout`] / [`Transport::handle_timeout`] drive
//!   retransmission and giving up;
//! - [`Transport::poll_event`] reports messages given up on and peers that
//!   restarted.
//!
//! ```
//! use std::time::Instant;
//! use wink::transport::{Transport, TransportConfig};
//! use wink::wire::MAX_DATAGRAM;
//!
//! let (a_addr, b_addr) = ("127.0.0.1:4000".parse()?, "127.0.0.1:4001".parse()?);
//! let mut a = Transport::new(1, TransportConfig::default());
//! let mut b = Transport::new(2, TransportConfig::default());
//! let now = Instant::now();
//! let mut buf = vec![0; MAX_DATAGRAM];
//!
//! a.send(b_addr, "ping 1")?;
//! let (to, len) = a.poll_transmit(now, &mut buf).ok_or("nothing to send")?;
//! assert_eq!(to, b_addr);
//! let mut got = Vec::new();
//! b.receive(now, a_addr, &buf[..len], |from, message| got.push((from, message.to_owned())))?;
//! assert_eq!(got, [(a_addr, "ping 1".to_owned())]);
//!
//! // b acknowledges; the ack clears a's message.
//! let (to, len) = b.poll_transmit(now, &mut buf).ok_or("no ack")?;
//! assert_eq!(to, a_addr);
//! a.receive(now, b_addr, &buf[..len], |_, _| {})?;
//! assert_eq!(a.in_flight(b_addr), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The protocol itself (what `seq`, `floor`, `incarnation` and floor
//! announcements mean on the wire) is described in `docs/protocol.md`.

mod recv;
mod rtt;
mod send;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::wire::{self, Body, Packet, WireError, MAX_MESSAGE_LEN};
use recv::{Delivery, ReceiveState, Verdict};
use send::SendState;

pub use recv::RETIRED_INCARNATIONS;

/// Timings and sizes of reliable delivery.
///
/// Every field can be changed; the defaults suit a LAN or one host, and
/// keep the seed's contract ("resend after at most 10 s, up to 3 times") as
/// the outer bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// Most sequence numbers in flight (sent, not yet acknowledged) to one
    /// recipient, counted from the lowest one still in flight; further
    /// messages wait in a queue for that recipient, however many there
    /// are. Default 256: enough to keep a loopback link busy while acks
    /// return, small enough that a burst does not overflow the recipient's
    /// socket buffer. At least 1 is used.
    pub window: usize,
    /// How far ahead of the next message to deliver a sender's messages are
    /// buffered; beyond it, `Data` is dropped unacknowledged and the sender
    /// retries. Must be at least every peer's `window` (it then never
    /// drops anything). Default 1024, four times the default `window`,
    /// so peers configured with a larger window still work. Memory is
    /// used only for messages actually held. At least 1 is used.
    pub receive_window: usize,
    /// Retransmission timeout before any round trip has been measured.
    /// Default 100 ms: well above any LAN round trip, so the first messages
    /// are not resent needlessly, yet a lost first message costs a tenth of
    /// a second, not the RFC's second.
    pub initial_rto: Duration,
    /// Lower bound of the retransmission timeout. Default 10 ms: round
    /// trips on loopback and LANs are tens of microseconds, so the measured
    /// timeout would be far below what a busy receiver needs to answer.
    /// At 2 ms, a receiver descheduled for a few milliseconds on a loaded
    /// host had its whole window resent (0.5% of a 500k burst in the
    /// release benchmark, a third under a debug build on a busy machine);
    /// 10 ms cut that fourfold while a lost packet still costs
    /// milliseconds, not the RFC's second.
    pub min_rto: Duration,
    /// Upper bound of the retransmission timeout, also after exponential
    /// backoff. Default 10 s: the seed's resend interval.
    pub max_rto: Duration,
    /// Retransmissions of one message before giving up on it. Default 3:
    /// the seed's contract.
    pub retries: u32,
    /// How long, after a peer restarts, late `Data` from its earlier
    /// incarnation is dropped (unacknowledged) rather than taken for yet
    /// another restart (the last [`RETIRED_INCARNATIONS`] incarnations of
    /// each address are remembered). Default 2 s: far longer than a packet
    /// lingers in a LAN. It is bounded because incarnations are random, not
    /// ordered: were an old packet ever to overtake a new incarnation's
    /// first one at a receiver that had not heard the old one, the live
    /// incarnation would be retired by mistake, and it must not be shut
    /// out for good.
    pub retired_for: Duration,
    /// How long a peer must be idle (nothing in flight, queued or buffered
    /// from it, nothing heard) before everything about it is forgotten, so
    /// memory follows the peers in use, not every address ever seen.
    /// Default 90 s: longer than any sender with these defaults keeps
    /// retrying (initial try plus 3 retries, each at most 10 s apart), so
    /// no retransmission of a message already delivered can arrive after
    /// its sender's record is gone and be delivered twice. Raise it with
    /// `retries` × `max_rto`.
    pub peer_idle: Duration,
    /// Most peers remembered when some are idle: beyond it, the idle ones
    /// heard from longest ago are forgotten (down to half), so a process
    /// that talks to ever new addresses (a parent restarting children, a
    /// server) holds memory for the peers in use, not for every address
    /// it ever met. Peers with messages in flight, queued or buffered are
    /// never forgotten, nor peers heard from in the last [`EVICT_AFTER`].
    /// Default 1024. What a forgotten peer's receive
    /// window expected next is kept in a fixed table of
    /// [`TOMBSTONES`] entries, so a late retransmission from it is still
    /// known for a duplicate.
    pub max_peers: usize,
}

/// How many messages past the lowest one in flight must be acknowledged
/// before it is retransmitted without waiting for its timeout.
pub const FAST_RETRANSMIT_AFTER: u64 = 3;

/// Entries in the fixed table that remembers, for forgotten peers, which
/// sequence number their stream was at.
pub const TOMBSTONES: usize = 4096;

/// How long a peer must have been quiet before [`TransportConfig::max_peers`]
/// may make it forgotten: long enough for anything it sent before our
/// acks reached it to have arrived.
pub const EVICT_AFTER: Duration = Duration::from_secs(2);

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            window: 256,
            receive_window: 1024,
            initial_rto: Duration::from_millis(100),
            min_rto: Duration::from_millis(10),
            max_rto: Duration::from_secs(10),
            retries: 3,
            retired_for: Duration::from_secs(2),
            peer_idle: Duration::from_secs(90),
            max_peers: 1024,
        }
    }
}

/// Why [`Transport::send`] refused a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The message does not fit one datagram.
    #[error("message of {len} bytes exceeds the limit of {max} bytes for one datagram")]
    TooLarge {
        /// Its length in bytes.
        len: usize,
        /// The limit, [`MAX_MESSAGE_LEN`].
        max: usize,
    },
    /// The message is empty; an empty `Data` is a floor announcement on the
    /// wire, never a message.
    #[error("empty message")]
    Empty,
    /// 2^64 − 1 messages have been sent to this recipient.
    #[error("sequence numbers to {to} are exhausted")]
    SequenceExhausted {
        /// The recipient.
        to: SocketAddr,
    },
}

/// Something the application may want to know about or log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// A message was retransmitted `retries` times without an ack and
    /// dropped. It may or may not have been delivered (its acks may be
    /// what was lost).
    GaveUp {
        /// The recipient.
        to: SocketAddr,
        /// Its sequence number.
        seq: u64,
        /// Its text.
        message: String,
    },
    /// A packet (`Data`, or an ack of ours) from a new incarnation arrived
    /// from an address we had heard from: the peer restarted. Its messages
    /// start a fresh window.
    PeerRestarted {
        /// The peer's address.
        peer: SocketAddr,
        /// Its previous incarnation.
        previous: u64,
        /// Its new incarnation.
        incarnation: u64,
    },
}

/// Counters, all since the transport was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages accepted by [`Transport::send`].
    pub sent: u64,
    /// Floor announcements queued.
    pub announcements: u64,
    /// `Data` datagrams produced, first transmissions and retransmissions.
    pub data_transmitted: u64,
    /// Retransmissions among them.
    pub retransmits: u64,
    /// Ack datagrams produced.
    pub acks_transmitted: u64,
    /// Packets that could not be encoded into the caller's buffer and were
    /// dropped as if lost.
    pub encode_failures: u64,
    /// Messages (and announcements) cleared by an ack.
    pub acked: u64,
    /// Messages given up after all retries (announcements not included).
    pub gave_up: u64,
    /// Floor announcements given up after all retries.
    pub announcements_gave_up: u64,
    /// Datagrams that decoded.
    pub received: u64,
    /// Datagrams that did not decode, dropped.
    pub undecodable: u64,
    /// Messages handed to the application.
    pub delivered: u64,
    /// `Data` seen before, acked again and not delivered.
    pub duplicates: u64,
    /// `Data` beyond the receive window, dropped unacknowledged.
    pub out_of_window: u64,
    /// `Data` from an earlier incarnation of its address, dropped
    /// unacknowledged.
    pub stale: u64,
    /// Sequence numbers never received that a sender's floor moved past.
    pub skipped: u64,
    /// Peers seen restarting (a new incarnation at a known address).
    pub peer_restarts: u64,
    /// Retransmissions sent early, because later messages were
    /// acknowledged past them (counted in `retransmits` too).
    pub fast_retransmits: u64,
    /// Acks for a message no longer in flight (already acked or given up).
    pub duplicate_acks: u64,
    /// Acks for another incarnation of ours, or from an address we have no
    /// messages for, ignored.
    pub foreign_acks: u64,
    /// Peers forgotten after being idle for [`TransportConfig::peer_idle`].
    pub peers_forgotten: u64,
}

/// A retransmission timer. Stale when its message is no longer in flight
/// or has a newer deadline (lazy deletion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    deadline: Instant,
    peer: u64,
    seq: u64,
    to: SocketAddr,
}

/// A message waiting to be (re)transmitted.
#[derive(Debug, Clone, Copy)]
struct Ready {
    to: SocketAddr,
    peer: u64,
    seq: u64,
}

/// An ack waiting to be transmitted.
#[derive(Debug, Clone, Copy)]
struct PendingAck {
    to: SocketAddr,
    seq: u64,
    incarnation: u64,
}

/// Everything about one peer address.
#[derive(Debug)]
struct Peer {
    /// Distinguishes this record from an earlier one for the same address
    /// (after [`Transport::forget`]), so old timers and queue entries are
    /// recognised as stale.
    id: u64,
    send: SendState,
    recv: Option<ReceiveState>,
    /// When a live packet (Data, or an ack of ours) last came from it.
    heard: Option<Instant>,
    /// The incarnation its latest live packet carried.
    incarnation: Option<u64>,
    /// When a message was first transmitted to it.
    since: Option<Instant>,
    /// Since when the sweeps have found it idle.
    idle_since: Option<Instant>,
}

impl Peer {
    /// Notes a live packet from incarnation `incarnation` at `now`; true
    /// if that is a new incarnation of a peer heard before (it restarted).
    fn heard(&mut self, now: Instant, incarnation: u64) -> Option<u64> {
        self.heard = Some(now);
        self.idle_since = None;
        match self.incarnation.replace(incarnation) {
            Some(previous) if previous != incarnation => Some(previous),
            _ => None,
        }
    }

    /// Nothing in flight, queued or due to it, and nothing buffered from
    /// it — or only messages behind a hole from a sender silent for
    /// `silent` (it is gone: the hole will never fill): it can be
    /// forgotten.
    fn is_idle(&self, now: Instant, silent: Duration) -> bool {
        self.send.is_idle()
            && !self.send.announce_pending
            && (self.recv.as_ref().is_none_or(ReceiveState::is_drained)
                || self
                    .heard
                    .is_none_or(|heard| now.saturating_duration_since(heard) >= silent))
    }

    /// Whether a packet from `incarnation` is from an earlier life of this
    /// peer, retired when a newer one appeared.
    fn is_retired(&self, incarnation: u64, now: Instant) -> bool {
        self.recv.as_ref().is_some_and(|recv| {
            recv.incarnation != incarnation && recv.is_retired(incarnation, now)
        })
    }
}

/// Reliable-delivery bookkeeping for one process: see the [module
/// documentation](self).
#[derive(Debug)]
pub struct Transport {
    incarnation: u64,
    config: TransportConfig,
    peers: HashMap<SocketAddr, Peer>,
    next_peer_id: u64,
    acks: VecDeque<PendingAck>,
    ready: VecDeque<Ready>,
    timers: BinaryHeap<Reverse<Timer>>,
    /// Messages in flight to all peers, to bound the stale timers kept.
    in_flight: usize,
    events: VecDeque<TransportEvent>,
    stats: Stats,
    /// When idle peers are next looked for, once there are peers.
    next_sweep: Option<Instant>,
    /// What forgotten peers' windows expected, by a hash of the address
    /// (allocated at the first forgetting).
    tombstones: Vec<Option<Tombstone>>,
    /// The latest time the transport was given, once it was given one.
    now: Option<Instant>,
    /// Sequence numbers given out so far, to all peers: a peer record made
    /// anew (after an idle one was forgotten) starts above every number
    /// its address was ever sent, so a recipient that still remembers the
    /// old stream does not take the new one for duplicates.
    seqs_given: u64,
}

impl Transport {
    /// Bookkeeping for a process whose incarnation (random, chosen at each
    /// start) is `incarnation`.
    pub fn new(incarnation: u64, config: TransportConfig) -> Self {
        Transport {
            incarnation,
            config,
            peers: HashMap::new(),
            next_peer_id: 0,
            acks: VecDeque::new(),
            ready: VecDeque::new(),
            timers: BinaryHeap::new(),
            in_flight: 0,
            events: VecDeque::new(),
            stats: Stats::default(),
            next_sweep: None,
            tombstones: Vec::new(),
            now: None,
            seqs_given: 0,
        }
    }

    /// This process's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The configuration.
    pub fn config(&self) -> &TransportConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Queues `message` for `to` and returns its sequence number (per
    /// recipient, from 0). It goes out through [`poll_transmit`] once the
    /// recipient's window has room; it is never dropped for waiting.
    ///
    /// A message longer than [`MAX_MESSAGE_LEN`] bytes, or empty, is
    /// refused.
    ///
    /// [`poll_transmit`]: Transport::poll_transmit
    pub fn send(&mut self, to: SocketAddr, message: impl Into<String>) -> Result<u64, SendError> {
        let message = message.into();
        if message.len() > MAX_MESSAGE_LEN {
            return Err(SendError::TooLarge {
                len: message.len(),
                max: MAX_MESSAGE_LEN,
            });
        }
        if message.is_empty() {
            return Err(SendError::Empty);
        }
        let peer = peer_entry(&mut self.peers, &mut self.next_peer_id, self.seqs_given, to);
        let seq = peer
            .send
            .push(message)
            .ok_or(SendError::SequenceExhausted { to })?;
        self.seqs_given = self.seqs_given.saturating_add(1);
        self.stats.sent += 1;
        self.admit(to);
        self.limit_peers();
        Ok(seq)
    }

    /// Handles one datagram from `from`, calling `deliver` with each message
    /// that is now next in order (from `from`, possibly several when it
    /// fills a hole). The common case, the next message in order, is
    /// delivered straight from `datagram` without allocating.
    ///
    /// A datagram that does not decode is counted, dropped and returned as
    /// the error; nothing else about it can fail.
    pub fn receive(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        mut deliver: impl FnMut(SocketAddr, &str),
    ) -> Result<(), WireError> {
        self.now = self.now.max(Some(now));
        let packet = match wire::decode(datagram) {
            Ok(packet) => packet,
            Err(error) => {
                self.stats.undecodable += 1;
                return Err(error);
            }
        };
        self.stats.received += 1;
        match packet.body {
            Body::Data {
                seq,
                floor,
                message,
            } => self.on_data(
                now,
                from,
                packet.incarnation,
                (seq, floor, message),
                &mut deliver,
            ),
            Body::Ack { seq, incarnation } => {
                self.on_ack(now, from, packet.incarnation, seq, incarnation)
            }
        }
        self.limit_peers();
        Ok(())
    }

    /// Writes the next datagram to send into `buf` and returns where it goes
    /// and its length, or `None` when there is nothing to send now. Acks go
    /// first, then messages (first transmissions and retransmissions) in
    /// the order they became ready. Starts the retransmission timer of each
    /// message it yields.
    ///
    /// `buf` should hold [`MAX_DATAGRAM`](crate::wire::MAX_DATAGRAM) bytes;
    /// a packet that does not fit a smaller one is dropped as if lost
    /// (counted in [`Stats::encode_failures`]).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        while let Some(ack) = self.acks.pop_front() {
            let packet = Packet::ack(self.incarnation, ack.seq, ack.incarnation);
            match wire::encode(&packet, buf) {
                Ok(len) => {
                    self.stats.acks_transmitted += 1;
                    return Some((ack.to, len));
                }
                Err(_) => self.stats.encode_failures += 1,
            }
        }
        while let Some(ready) = self.ready.pop_front() {
            let Some(peer) = self.peers.get_mut(&ready.to) else {
                continue;
            };
            if peer.id != ready.peer {
                continue;
            }
            let floor = peer.send.floor();
            let first_rto = peer.send.rtt.rto(&self.config);
            let Some(entry) = peer.send.get_mut(ready.seq) else {
                continue;
            };
            if entry.deadline.is_some() {
                continue;
            }
            let retransmission = entry.transmitted_at.is_some();
            peer.since.get_or_insert(now);
            if !retransmission {
                entry.rto = first_rto;
            }
            let deadline = now + entry.rto;
            entry.transmitted_at = Some(now);
            entry.deadline = Some(deadline);
            let packet = Packet::data(self.incarnation, ready.seq, floor, &entry.message);
            let encoded = wire::encode(&packet, buf);
            self.push_timer(Timer {
                deadline,
                peer: ready.peer,
                seq: ready.seq,
                to: ready.to,
            });
            match encoded {
                Ok(len) => {
                    self.stats.data_transmitted += 1;
                    if retransmission {
                        self.stats.retransmits += 1;
                    }
                    return Some((ready.to, len));
                }
                // Treated as a loss: the timer retries, then gives up.
                Err(_) => self.stats.encode_failures += 1,
            }
        }
        None
    }

    /// The earliest retransmission deadline, if any message is in flight.
    /// It may belong to a message acknowledged since (timers are deleted
    /// lazily); calling [`handle_timeout`](Transport::handle_timeout) then
    /// does nothing but discard it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse(timer)| timer.deadline)
    }

    /// Retransmits, or gives up on, every message whose timeout is due at
    /// `now`. Retransmissions go out through
    /// [`poll_transmit`](Transport::poll_transmit); each give-up is a
    /// [`TransportEvent::GaveUp`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(Some(now));
        while let Some(&Reverse(timer)) = self.timers.peek() {
            if timer.deadline > now {
                break;
            }
            self.timers.pop();
            let Some(peer) = self.peers.get_mut(&timer.to) else {
                continue;
            };
            if peer.id != timer.peer {
                continue;
            }
            let Some(entry) = peer.send.get_mut(timer.seq) else {
                continue;
            };
            if entry.deadline != Some(timer.deadline) {
                continue;
            }
            // Give-up means unreachable: after its retries, a message is
            // tried on (at the longest timeout) for as long as the recipient
            // answers anything, and given up only once it has answered
            // nothing for the whole retry budget.
            let budget = self
                .config
                .max_rto
                .saturating_mul(self.config.retries.max(1));
            let silent = peer
                .heard
                .or(peer.since)
                .is_none_or(|last| now.saturating_duration_since(last) >= budget);
            if entry.retransmits < self.config.retries || !silent {
                entry.retransmits = entry.retransmits.saturating_add(1);
                entry.fast = false;
                entry.deadline = None;
                entry.rto = rtt::clamp_rto(entry.rto.saturating_mul(2), &self.config);
                let backed_off = entry.rto;
                peer.send.rtt.back_off(backed_off);
                self.ready.push_back(Ready {
                    to: timer.to,
                    peer: timer.peer,
                    seq: timer.seq,
                });
            } else {
                self.give_up(timer.to, timer.seq);
            }
        }
        self.prune_timers();
        self.sweep(now);
    }

    /// Every half [`TransportConfig::peer_idle`]: forgets the peers found
    /// idle by the sweeps for at least `peer_idle`. A pass over the peers
    /// every tens of seconds, not per packet. It has no deadline of its
    /// own: it runs when [`Transport::handle_timeout`] is called late
    /// enough, which a process that talks at all does (a machine at least
    /// every pulse); one that is silent has nothing new to forget.
    fn sweep(&mut self, now: Instant) {
        let interval = (self.config.peer_idle / 2).max(Duration::from_millis(1));
        match self.next_sweep {
            None if !self.peers.is_empty() => self.next_sweep = Some(now + interval),
            Some(at) if now >= at => {
                let idle_for = self.config.peer_idle;
                let before = self.peers.len();
                let tombstones = &mut self.tombstones;
                self.peers.retain(|addr, peer| {
                    if !peer.is_idle(now, idle_for) {
                        peer.idle_since = None;
                        return true;
                    }
                    let since = *peer.idle_since.get_or_insert(now);
                    let keep = now.duration_since(since) < idle_for;
                    if !keep {
                        bury(tombstones, *addr, peer);
                    }
                    keep
                });
                self.stats.peers_forgotten += (before - self.peers.len()) as u64;
                self.next_sweep = (!self.peers.is_empty()).then_some(now + interval);
            }
            _ => {}
        }
    }

    /// Above [`TransportConfig::max_peers`], forgets the idle peers heard
    /// from longest ago, down to half of it: a pass over the peers every
    /// `max_peers / 2` new ones, amortised O(1) per packet.
    fn limit_peers(&mut self) {
        let max = self.config.max_peers.max(2);
        if self.peers.len() <= max {
            return;
        }
        let Some(now) = self.now else {
            return;
        };
        let silent = self.config.peer_idle;
        // A peer heard from just now may still send what it sent before
        // our ack reached it: its next `Data` would start a new window
        // below messages already delivered. So only peers quiet for
        // [`EVICT_AFTER`] go.
        let mut idle: Vec<(Option<Instant>, SocketAddr)> = self
            .peers
            .iter()
            .filter(|(_, peer)| {
                peer.is_idle(now, silent)
                    && peer
                        .heard
                        .is_none_or(|heard| now.saturating_duration_since(heard) >= EVICT_AFTER)
            })
            .map(|(addr, peer)| (peer.heard, *addr))
            .collect();
        let excess = self.peers.len().saturating_sub(max / 2).min(idle.len());
        if excess == 0 {
            return;
        }
        idle.select_nth_unstable(excess - 1);
        for (_, addr) in &idle[..excess] {
            if let Some(peer) = self.peers.remove(addr) {
                bury(&mut self.tombstones, *addr, &peer);
                self.stats.peers_forgotten += 1;
            }
        }
    }

    /// How many peers are remembered.
    pub fn peers(&self) -> usize {
        self.peers.len()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<TransportEvent> {
        self.events.pop_front()
    }

    /// Whether every message sent is acknowledged or given up on, and no
    /// packet (data or ack) waits to be written.
    pub fn is_idle(&self) -> bool {
        self.in_flight == 0 && self.acks.is_empty() && self.ready.is_empty()
    }

    /// Messages to `to` in flight (sent, not yet acknowledged or given up).
    pub fn in_flight(&self, to: SocketAddr) -> usize {
        self.peers.get(&to).map_or(0, |peer| peer.send.in_flight())
    }

    /// Messages to `to` waiting for room in its window.
    pub fn queued(&self, to: SocketAddr) -> usize {
        self.peers.get(&to).map_or(0, |peer| peer.send.queued())
    }

    /// Messages from `from` received ahead of a gap and held until it fills
    /// (or the sender's floor passes it). Costs a scan of the window; for
    /// diagnostics.
    pub fn buffered(&self, from: SocketAddr) -> usize {
        self.peers
            .get(&from)
            .and_then(|peer| peer.recv.as_ref())
            .map_or(0, ReceiveState::buffered)
    }

    /// When a live packet last came from `peer`: a `Data`, or an ack of a
    /// message of ours (not one from an earlier, retired incarnation).
    pub fn last_heard(&self, peer: SocketAddr) -> Option<Instant> {
        self.peers.get(&peer).and_then(|peer| peer.heard)
    }

    /// The incarnation of `peer`'s latest live packet.
    pub fn peer_incarnation(&self, peer: SocketAddr) -> Option<u64> {
        self.peers.get(&peer).and_then(|peer| peer.incarnation)
    }

    /// The smoothed round-trip time to `peer`, once measured.
    pub fn srtt(&self, peer: SocketAddr) -> Option<Duration> {
        self.peers.get(&peer).and_then(|peer| peer.send.rtt.srtt())
    }

    /// The retransmission timeout the next message to `peer` starts with.
    pub fn rto(&self, peer: SocketAddr) -> Duration {
        self.peers.get(&peer).map_or_else(
            || rtt::clamp_rto(self.config.initial_rto, &self.config),
            |peer| peer.send.rtt.rto(&self.config),
        )
    }

    /// Drops everything about `peer`: messages in flight or queued to it
    /// (silently, no [`TransportEvent::GaveUp`]) and its receive window.
    /// Use it when the peer is known to be gone for good. If it sends again,
    /// it is a new peer: a retransmission of a message already delivered
    /// would be delivered again. Returns how many messages were dropped.
    pub fn forget(&mut self, peer: SocketAddr) -> usize {
        match self.peers.remove(&peer) {
            Some(state) => {
                bury(&mut self.tombstones, peer, &state);
                self.in_flight -= state.send.in_flight();
                state.send.in_flight() + state.send.queued()
            }
            None => 0,
        }
    }

    fn on_data(
        &mut self,
        now: Instant,
        from: SocketAddr,
        incarnation: u64,
        (seq, floor, message): (u64, u64, &str),
        deliver: &mut impl FnMut(SocketAddr, &str),
    ) {
        let window = self.config.receive_window.max(1);
        // A sender with no window here (new, or forgotten and met again,
        // perhaps after we sent it something) may be one we forgot: its
        // tombstone says where its stream was.
        let resumed = if self.peers.get(&from).is_some_and(|p| p.recv.is_some()) {
            None
        } else {
            exhume(&self.tombstones, from, incarnation)
        };
        let peer = peer_entry(
            &mut self.peers,
            &mut self.next_peer_id,
            self.seqs_given,
            from,
        );
        if peer.is_retired(incarnation, now) {
            self.stats.stale += 1;
            return;
        }
        if let Some(previous) = peer.heard(now, incarnation) {
            self.stats.peer_restarts += 1;
            self.events.push_back(TransportEvent::PeerRestarted {
                peer: from,
                previous,
                incarnation,
            });
        }
        let mut out = Delivery {
            from,
            deliver,
            stats: &mut self.stats,
        };
        let recv = match &mut peer.recv {
            Some(recv) if recv.incarnation == incarnation => recv,
            Some(recv) => {
                let retired_until = now + self.config.retired_for;
                recv.restart(incarnation, floor.min(seq), retired_until, &mut out);
                recv
            }
            slot @ None => slot.insert(match resumed {
                Some(next) => ReceiveState::resume(incarnation, next),
                None => ReceiveState::new(incarnation, floor.min(seq)),
            }),
        };
        match recv.on_data(seq, floor, message, window, &mut out) {
            Verdict::Accepted => {}
            Verdict::Duplicate => out.stats.duplicates += 1,
            Verdict::OutOfWindow => {
                out.stats.out_of_window += 1;
                return;
            }
        }
        self.acks.push_back(PendingAck {
            to: from,
            seq,
            incarnation,
        });
    }

    fn on_ack(
        &mut self,
        now: Instant,
        from: SocketAddr,
        recipient_incarnation: u64,
        seq: u64,
        acked_incarnation: u64,
    ) {
        if acked_incarnation != self.incarnation {
            self.stats.foreign_acks += 1;
            return;
        }
        // Exact address match: an ack from another port (or another host
        // with the same port) is not from the recipient.
        let Some(peer) = self.peers.get_mut(&from) else {
            self.stats.foreign_acks += 1;
            return;
        };
        if !peer.is_retired(recipient_incarnation, now) {
            if let Some(previous) = peer.heard(now, recipient_incarnation) {
                self.stats.peer_restarts += 1;
                self.events.push_back(TransportEvent::PeerRestarted {
                    peer: from,
                    previous,
                    incarnation: recipient_incarnation,
                });
            }
        }
        let send = &mut peer.send;
        match send.recipient_incarnation.replace(recipient_incarnation) {
            // The recipient restarted: messages its earlier life acked may be
            // holes in its new window, so announce the floor once idle.
            Some(previous) if previous != recipient_incarnation => send.announce_pending = true,
            _ => {}
        }
        let Some(entry) = send.remove(seq) else {
            self.stats.duplicate_acks += 1;
            return;
        };
        self.in_flight -= 1;
        self.stats.acked += 1;
        // Karn's rule: a message sent more than once gives no sample, since
        // the ack may answer any of its transmissions.
        if entry.retransmits == 0 {
            if let Some(sent) = entry.transmitted_at {
                send.rtt.sample(now.saturating_duration_since(sent));
            }
        }
        send.rtt.forgive();
        // Fast retransmit: three messages past the lowest one in flight are
        // acknowledged, so it was most likely lost; send it again now,
        // once per transmission, rather than wait for its timeout.
        let floor = send.floor();
        if seq >= floor.saturating_add(FAST_RETRANSMIT_AFTER) {
            if let Some(lowest) = send.get_mut(floor) {
                if lowest.deadline.is_some() && !lowest.fast {
                    lowest.fast = true;
                    lowest.deadline = None;
                    lowest.retransmits = lowest.retransmits.saturating_add(1);
                    self.stats.fast_retransmits += 1;
                    self.ready.push_back(Ready {
                        to: from,
                        peer: peer.id,
                        seq: floor,
                    });
                }
            }
        }
        self.admit(from);
        self.prune_timers();
    }

    /// Gives up on `seq` to `to`: drops it, counts it, reports it.
    fn give_up(&mut self, to: SocketAddr, seq: u64) {
        let Some(peer) = self.peers.get_mut(&to) else {
            return;
        };
        let Some(entry) = peer.send.remove(seq) else {
            return;
        };
        self.in_flight -= 1;
        if entry.message.is_empty() {
            // An announcement that got no ack: the recipient is unreachable;
            // do not announce again (the next message carries the floor).
            self.stats.announcements_gave_up += 1;
        } else {
            // Given up means the recipient answered nothing for the whole
            // retry budget: no floor announcement, which would only retry
            // in turn; the next message to it carries the floor.
            self.stats.gave_up += 1;
            self.events.push_back(TransportEvent::GaveUp {
                to,
                seq,
                message: entry.message,
            });
        }
        self.admit(to);
    }

    /// Lets queued messages to `to` into its window, and queues a floor
    /// announcement if one is due and nothing else is left to send.
    fn admit(&mut self, to: SocketAddr) {
        let Some(peer) = self.peers.get_mut(&to) else {
            return;
        };
        let window = self.config.window.max(1);
        let rto = peer.send.rtt.rto(&self.config);
        if peer.send.announce_pending && peer.send.is_idle() {
            peer.send.announce_pending = false;
            if peer.send.push(String::new()).is_some() {
                self.seqs_given = self.seqs_given.saturating_add(1);
                self.stats.announcements += 1;
            }
        }
        let id = peer.id;
        let ready = &mut self.ready;
        let in_flight = &mut self.in_flight;
        peer.send.admit(window, rto, |seq| {
            *in_flight += 1;
            ready.push_back(Ready { to, peer: id, seq });
        });
    }

    fn push_timer(&mut self, timer: Timer) {
        self.timers.push(Reverse(timer));
        // Acked messages leave their timers behind; rebuild the heap when
        // they dominate it, so memory stays proportional to what is in
        // flight (amortised O(1) per timer).
        if self.timers.len() > 64 && self.timers.len() > 4 * self.in_flight {
            let peers = &self.peers;
            self.timers.retain(|Reverse(timer)| is_live(peers, timer));
        }
    }

    /// Discards stale timers at the top of the heap, so that
    /// [`poll_timeout`](Transport::poll_timeout) names a live deadline when
    /// it can.
    fn prune_timers(&mut self) {
        while let Some(Reverse(timer)) = self.timers.peek() {
            if is_live(&self.peers, timer) {
                break;
            }
            self.timers.pop();
        }
    }
}

/// The record for `addr`, created if new.
fn peer_entry<'a>(
    peers: &'a mut HashMap<SocketAddr, Peer>,
    next_peer_id: &mut u64,
    first_seq: u64,
    addr: SocketAddr,
) -> &'a mut Peer {
    match peers.entry(addr) {
        Entry::Occupied(entry) => entry.into_mut(),
        Entry::Vacant(entry) => {
            let id = *next_peer_id;
            *next_peer_id += 1;
            entry.insert(Peer {
                id,
                send: SendState::starting_at(first_seq),
                recv: None,
                heard: None,
                incarnation: None,
                since: None,
                idle_since: None,
            })
        }
    }
}

/// What is kept of a forgotten peer: where its stream was.
#[derive(Debug, Clone, Copy)]
struct Tombstone {
    addr: SocketAddr,
    incarnation: u64,
    next: u128,
}

fn tomb_slot(addr: SocketAddr) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    addr.hash(&mut hasher);
    (hasher.finish() % TOMBSTONES as u64) as usize
}

/// Keeps where `peer`'s receive window was, overwriting whatever shared
/// its slot.
fn bury(tombstones: &mut Vec<Option<Tombstone>>, addr: SocketAddr, peer: &Peer) {
    let Some(recv) = &peer.recv else {
        return;
    };
    if tombstones.is_empty() {
        tombstones.resize(TOMBSTONES, None);
    }
    tombstones[tomb_slot(addr)] = Some(Tombstone {
        addr,
        incarnation: recv.incarnation,
        next: recv.next(),
    });
}

/// Where the stream of `addr`'s `incarnation` was when it was forgotten.
fn exhume(tombstones: &[Option<Tombstone>], addr: SocketAddr, incarnation: u64) -> Option<u128> {
    let tomb = tombstones.get(tomb_slot(addr))?.as_ref()?;
    (tomb.addr == addr && tomb.incarnation == incarnation).then_some(tomb.next)
}

/// `timer` still belongs to a message in flight with that deadline.
fn is_live(peers: &HashMap<SocketAddr, Peer>, timer: &Timer) -> bool {
    peers
        .get(&timer.to)
        .filter(|peer| peer.id == timer.peer)
        .and_then(|peer| peer.send.get(timer.seq))
        .is_some_and(|entry| entry.deadline == Some(timer.deadline))
}
