//! Reliable, ordered delivery of messages over datagrams, as plain
//! bookkeeping: no sockets, no clocks.
//!
//! A [`Transport`] holds everything one process (one socket) needs to
//! deliver its messages to each peer exactly once and in order: sequence
//! numbers, the window of messages in flight (with a congestion window that
//! halves at a loss and grows back) and the queue behind it, cumulative and
//! selective acks (delayed, or carried by messages going the other way),
//! loss detection by later acks and by timeouts from measured round trips
//! (RFC 6298, Karn's rule), several messages per datagram, and for each
//! sender a receive window that puts reordered messages back in order and
//! drops duplicates, within bounded memory. The caller moves
//! bytes between it and a socket, and passes the time in, in the style of
//! `quinn-proto`:
//!
//! - [`Transport::send`] queues a message for a peer;
//! - [`Transport::receive`] takes a datagram from the socket and hands the
//!   messages that are now in order to a callback;
//! - [`Transport::poll_transmit`] yields the next datagram to put on the
//!   socket (an ack, and as many messages for the same peer as fit);
//! - [`Transport::poll_timeout`] / [`Transport::handle_timeout`] drive
//!   delayed acks, retransmission and giving up;
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
//! // Acknowledge at once rather than after `ack_delay`.
//! let immediate = TransportConfig { ack_delay: std::time::Duration::ZERO, ..TransportConfig::default() };
//! let mut b = Transport::new(2, immediate);
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

mod peers;
mod recv;
mod rtt;
mod send;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::{Keys, SEAL_LEN};

use crate::wire::{
    self, AckFrame, DataFrame, Frame, WireError, Writer, MAX_ACK_RANGES, MAX_MESSAGE_LEN,
};
use peers::{Peer, PeerId, Peers};
use recv::{Delivery, ReceiveState, Verdict};

pub use recv::RETIRED_INCARNATIONS;
pub use send::MIN_CWND;

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
    /// socket buffer. At least 1 is used. It is also where the congestion
    /// window starts and the most it grows back to; a loss halves it, down
    /// to [`MIN_CWND`].
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
    /// known for a duplicate; the table goes once `peer_idle` has passed
    /// since the last peer put in it was heard.
    pub max_peers: usize,
    /// How long an ack may wait for a message going the same way to carry
    /// it: a peer that received one datagram of messages is acknowledged
    /// after this delay, one that received two at once, and one that sent
    /// something out of order (a hole, a duplicate) immediately. Default
    /// 1 ms: a tenth of the least retransmission timeout, and long enough
    /// for a reply computed at once to carry the ack. Zero acknowledges
    /// every datagram at once.
    pub ack_delay: Duration,
    /// Most bytes of a datagram that carries several messages. A message
    /// larger than this still goes, alone, in a datagram of up to
    /// [`MAX_DATAGRAM`](crate::wire::MAX_DATAGRAM). Default 1,472: one
    /// Ethernet frame (1,500 bytes less the IPv4 and UDP headers), so a
    /// batch is never fragmented on a LAN.
    pub datagram_size: usize,
    /// Most bytes buffered from one sender ahead of a hole (messages plus
    /// [`BUFFER_OVERHEAD`] each, and the buffer's slots); beyond it, such
    /// messages are dropped unacknowledged and retried by their sender.
    /// The next message in order is always taken. Default 4 MiB.
    pub max_buffered_per_peer: usize,
    /// Most bytes buffered ahead of holes from all senders together.
    /// Default 32 MiB: with at most 4 × `max_peers` peers of a few hundred
    /// bytes each, a transport's memory stays below 64 MB whatever its
    /// peers send.
    pub max_buffered: usize,
    /// The cluster's keys, if it has any: every datagram is then sealed
    /// with the current one, and only datagrams sealed with one of them,
    /// within `max_skew` of this host's clock, are read (see
    /// [`crate::auth`]). A sender's older incarnation is then refused for
    /// good once a newer one was heard. Default none: open, as without
    /// a key.
    pub keys: Option<Arc<Keys>>,
    /// How far a sealed datagram's clock may be from ours, either way,
    /// before it is refused as a replay (or a badly set clock). Default
    /// 30 s: hosts of a cluster keep their clocks within that of each
    /// other.
    pub max_skew: Duration,
}

/// Bytes a message buffered ahead of a hole is counted for beyond its text.
pub const BUFFER_OVERHEAD: usize = recv::MESSAGE_OVERHEAD;

/// An incarnation for a process started at `unix` (time since the Unix
/// epoch): its milliseconds in the high 42 bits (enough until 2109),
/// `random`'s low 22 bits below, so a later start at the same address has
/// a larger incarnation (unless the clock went back), and two processes
/// started in the same millisecond differ but for one chance in 4,194,304.
pub fn incarnation_at(unix: Duration, random: u32) -> u64 {
    let millis = u64::try_from(unix.as_millis()).unwrap_or(u64::MAX) & ((1 << 42) - 1);
    (millis << 22) | (u64::from(random) & ((1 << 22) - 1))
}

/// A message is taken for lost, and retransmitted without waiting for its
/// timeout, once a message sent this many datagrams after it to the same
/// recipient is acknowledged.
pub const FAST_RETRANSMIT_AFTER: u64 = 3;

/// A message is retransmitted at least this many times during the retry
/// budget (`retries` × `max_rto`) of silence after which it is given up:
/// its backed-off timeout is at most a 64th of the budget (0.47 s by
/// default).
pub const PROBES: u32 = 64;

/// How many times [`TransportConfig::max_peers`] peers are ever held: past
/// it, a new peer takes the place of the idle one heard from longest ago,
/// or is refused if none is idle.
pub const HARD_PEER_FACTOR: usize = 4;

/// Sender incarnations a sealed transport remembers the address of, at
/// most (see [`TransportConfig::keys`]).
pub const INCARNATIONS: usize = 16_384;

/// Entries in the fixed table that remembers, for forgotten peers, which
/// sequence number their stream was at.
pub const TOMBSTONES: usize = 4096;

/// How long a peer must have been quiet before [`TransportConfig::max_peers`]
/// may make it forgotten: long enough for anything it sent before our
/// acks reached it to have arrived.
pub const EVICT_AFTER: Duration = Duration::from_secs(2);

impl TransportConfig {
    /// How long after a sealed datagram was last heard a replay of it could
    /// still be accepted: its sender's clock and ours may each be off by
    /// `max_skew`, and the seal holds whole seconds.
    pub fn replay_window(&self) -> Duration {
        self.max_skew * 2 + Duration::from_secs(1)
    }
}

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
            ack_delay: Duration::from_millis(1),
            datagram_size: 1472,
            max_buffered_per_peer: 4 << 20,
            max_buffered: 32 << 20,
            keys: None,
            max_skew: Duration::from_secs(30),
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
    /// A message was given up: the recipient acknowledged nothing for the
    /// whole retry budget (`retries` × `max_rto`). It is not known to be
    /// delivered, and will not be delivered after this.
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
    /// A datagram of another protocol version came from `peer` (reported
    /// once per peer; every such datagram is counted in
    /// [`Stats::wrong_version`]).
    WrongVersion {
        /// Who sent it.
        peer: SocketAddr,
        /// The version it carried.
        version: u8,
    },
    /// A datagram from `peer` was refused by the cluster key: not sealed,
    /// sealed with another key or for another recipient, tampered with,
    /// outside the clock skew, or a replay (reported once per peer, and at
    /// most [`REPORTS_PER_SECOND`] a second; every such datagram is
    /// counted, in [`Stats::unauthenticated`], [`Stats::outdated`] or, for
    /// its `Data` frames, [`Stats::stale`]).
    Refused {
        /// Who (by its source address) sent it.
        peer: SocketAddr,
        /// Why it was refused.
        why: WireError,
    },
}

/// Counters, all since the transport was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages accepted by [`Transport::send`].
    pub sent: u64,
    /// Floor announcements queued.
    pub announcements: u64,
    /// Datagrams produced.
    pub datagrams_transmitted: u64,
    /// `Data` frames produced, first transmissions and retransmissions.
    pub data_transmitted: u64,
    /// Retransmissions among them.
    pub retransmits: u64,
    /// `Ack` frames produced (alone or with messages).
    pub acks_transmitted: u64,
    /// Acks that went out alone, not carried by a message.
    pub lone_acks: u64,
    /// Messages that could not be encoded into the caller's buffer and
    /// were dropped as if lost.
    pub encode_failures: u64,
    /// Messages (and announcements) acknowledged cumulatively.
    pub acked: u64,
    /// Messages reported as received ahead of a hole (counted once each).
    pub sacked: u64,
    /// Messages given up (announcements not included).
    pub gave_up: u64,
    /// Floor announcements given up.
    pub announcements_gave_up: u64,
    /// Datagrams that decoded.
    pub received: u64,
    /// Datagrams that did not decode, dropped.
    pub undecodable: u64,
    /// Datagrams of another protocol version, dropped (not counted in
    /// `undecodable`).
    pub wrong_version: u64,
    /// Datagrams not sealed with one of our keys (unsealed where a key is
    /// required, sealed with another key, a tag that does not match),
    /// dropped before anything but their first two bytes was read (not
    /// counted in `undecodable`).
    pub unauthenticated: u64,
    /// Sealed datagrams whose sender's clock is more than `max_skew` from
    /// ours: replays, or a host whose clock is off. Dropped.
    pub outdated: u64,
    /// Messages handed to the application.
    pub delivered: u64,
    /// `Data` seen before, acked again and not delivered.
    pub duplicates: u64,
    /// `Data` beyond the receive window, dropped unacknowledged.
    pub out_of_window: u64,
    /// `Data` ahead of a hole that would have taken more buffer memory
    /// than allowed, dropped unacknowledged.
    pub over_capacity: u64,
    /// `Data` from an earlier incarnation of its address, dropped
    /// unacknowledged; with a key also `Data` of a sealed replay (an
    /// incarnation heard at another address).
    pub stale: u64,
    /// Sequence numbers never received that a sender's floor moved past.
    pub skipped: u64,
    /// Messages buffered ahead of a hole that a sender's floor moved past
    /// (it gave them up), dropped undelivered.
    pub discarded: u64,
    /// Messages buffered ahead of a hole dropped when their sender was
    /// forgotten (it keeps them until they are acknowledged cumulatively).
    pub reneged: u64,
    /// Peers seen restarting (a new incarnation at a known address).
    pub peer_restarts: u64,
    /// Retransmissions sent early, because a message sent after them was
    /// acknowledged (counted in `retransmits` too).
    pub fast_retransmits: u64,
    /// Probes: a message sent again because nothing was acknowledged for
    /// a probe timeout (counted in `retransmits` too).
    pub probes: u64,
    /// Times a congestion window was halved.
    pub window_reductions: u64,
    /// Acks that acknowledged nothing new.
    pub duplicate_acks: u64,
    /// Acks for another incarnation of ours, or from an address we have no
    /// messages for, ignored.
    pub foreign_acks: u64,
    /// Peers forgotten (idle, or to make room for new ones).
    pub peers_forgotten: u64,
    /// Datagrams from new addresses dropped because every peer slot was
    /// taken by a busy peer.
    pub peers_refused: u64,
}

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    /// A delayed ack to a peer.
    Ack,
    /// The retransmission timeout of message `seq`.
    Retransmit,
    /// A peer's probe timeout.
    Probe,
}

/// A timer. Stale when its peer is gone, or its message or ack has
/// another deadline by now (lazy deletion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    deadline: Instant,
    kind: TimerKind,
    peer: PeerId,
    seq: u64,
}

/// Reliable-delivery bookkeeping for one process: see the [module
/// documentation](self).
#[derive(Debug)]
pub struct Transport {
    incarnation: u64,
    config: TransportConfig,
    peers: Peers,
    /// Peers owed an ack now.
    acks_due: VecDeque<PeerId>,
    /// Peers with messages ready to (re)transmit, served in turn.
    sendable: VecDeque<PeerId>,
    timers: BinaryHeap<Reverse<Timer>>,
    /// Messages in flight to all peers, to bound the stale timers kept.
    in_flight: usize,
    /// Bytes buffered ahead of holes, all senders together.
    held: usize,
    /// Peers owed an ack (`ack.due`), queued or waiting for their delay.
    acks_owed: usize,
    events: VecDeque<TransportEvent>,
    stats: Stats,
    /// When idle peers are next looked for, once there are peers.
    next_sweep: Option<Instant>,
    /// What forgotten peers' windows expected, by a hash of the address
    /// (allocated at the first forgetting that needs one).
    tombstones: Vec<Tombstone>,
    /// Until when a tombstone may still be needed: `peer_idle` after the
    /// latest buried peer was last heard. Past it, no retransmission from
    /// any of them can arrive and the table is dropped.
    tombstones_until: Option<Instant>,
    /// A sweep let go of memory (forgot peers, dropped the tombstones)
    /// since [`Transport::gave_back`] was last asked.
    gave_back: bool,
    /// What this host's clock read (since the Unix epoch) at an instant,
    /// for sealed datagrams (see [`Transport::set_clock`]).
    clock: Option<(Instant, Duration)>,
    /// The address datagrams to us are sent to, which their seal names
    /// (see [`Transport::set_local_addr`]).
    local: SocketAddr,
    /// The latest time the transport was given, once it was given one.
    now: Option<Instant>,
    /// Sequence numbers given out so far, to all peers: a peer record made
    /// anew (after an idle one was forgotten) starts above every number
    /// its address was ever sent, so a recipient that still remembers the
    /// old stream does not take the new one for duplicates.
    seqs_given: u64,
    /// Peers already reported sending another protocol version.
    wrong_version_seen: HashSet<SocketAddr>,
    /// Peers already reported sending datagrams the key refused.
    refused_seen: HashSet<SocketAddr>,
    /// When the current second of refusal reports began, and how many.
    reports: Option<(Instant, u32)>,
    /// Sealed: the address each sender incarnation heard lately came from,
    /// and when; the same incarnation from another address is a replay.
    incarnations: HashMap<u64, (SocketAddr, Instant)>,
    /// Until when a full table is not searched again for a peer to evict.
    full_until: Option<Instant>,
    /// Scratch space for the ranges of an ack.
    ranges: Vec<(u64, u64)>,
    /// Closed to new messages (an upgrade under way): `Data` is dropped
    /// unacknowledged, so its senders retry it with the next image.
    closed: bool,
}

/// What a process hands the program it becomes at an upgrade, so that its
/// peers see no restart: its incarnation, the sequence numbers it gave
/// out, and where each sender's stream stands (`docs/protocol.md`,
/// "Upgrade"). Messages held ahead of a hole are not carried (their
/// senders still have them, and send them again).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Handover {
    /// The process's incarnation, kept.
    pub incarnation: u64,
    /// Sequence numbers given out so far: every stream to a recipient
    /// starts above them.
    pub seqs_given: u64,
    /// Each sender's address, incarnation and next sequence number to
    /// deliver.
    pub senders: Vec<(SocketAddr, u64, u128)>,
    /// The table of senders forgotten while a retransmission from them
    /// could still arrive: slot, key, incarnation, next.
    pub tombstones: Vec<(u32, u64, u64, u128)>,
}

/// Most peers remembered as having sent another protocol version (or
/// datagrams the key refused); past it, the memory starts again (and they
/// may be reported again).
const REPORTED_MEMORY: usize = 1024;

/// Refused datagrams reported (as [`TransportEvent::Refused`]) a second at
/// most.
pub const REPORTS_PER_SECOND: u32 = 16;

impl Transport {
    /// Bookkeeping for a process whose incarnation (random, chosen at each
    /// start) is `incarnation`.
    pub fn new(incarnation: u64, config: TransportConfig) -> Self {
        Transport {
            incarnation,
            config,
            peers: Peers::default(),
            acks_due: VecDeque::new(),
            sendable: VecDeque::new(),
            timers: BinaryHeap::new(),
            in_flight: 0,
            held: 0,
            acks_owed: 0,
            events: VecDeque::new(),
            stats: Stats::default(),
            next_sweep: None,
            tombstones: Vec::new(),
            tombstones_until: None,
            gave_back: false,
            clock: None,
            local: SocketAddr::from(([0, 0, 0, 0], 0)),
            now: None,
            seqs_given: 0,
            wrong_version_seen: HashSet::new(),
            refused_seen: HashSet::new(),
            reports: None,
            incarnations: HashMap::new(),
            full_until: None,
            ranges: Vec::new(),
            closed: false,
        }
    }

    /// Bookkeeping taken over from an earlier program of this process
    /// (see [`Handover`]): the same incarnation, streams to recipients
    /// above every number it gave out, and each sender's stream where it
    /// stood, so a message it delivered is a duplicate here.
    pub fn resume(handover: &Handover, config: TransportConfig, now: Instant) -> Self {
        let mut transport = Transport::new(handover.incarnation, config);
        transport.seqs_given = handover.seqs_given;
        transport.now = Some(now);
        for &(addr, incarnation, next) in &handover.senders {
            let id = transport.add_peer(addr);
            if let Some(peer) = transport.peers.get_mut(id) {
                peer.recv = Some(ReceiveState::resume(incarnation, next));
                // Heard now: kept as long as any sender's (and buried if
                // forgotten), and a new incarnation of it is a restart.
                peer.heard = Some(now);
                peer.incarnation = Some(incarnation);
            }
        }
        if !handover.tombstones.is_empty() {
            transport.tombstones = vec![Tombstone::default(); TOMBSTONES];
            for &(slot, key, incarnation, next) in &handover.tombstones {
                if let Some(tomb) = transport.tombstones.get_mut(slot as usize) {
                    *tomb = Tombstone {
                        key,
                        incarnation,
                        next,
                    };
                }
            }
            transport.tombstones_until = now.checked_add(transport.config.peer_idle);
        }
        transport
    }

    /// Gives up on every message in flight or queued, to every peer: each
    /// is reported ([`TransportEvent::GaveUp`]), as if its recipient had
    /// not answered. For a program that hands over with messages still
    /// unacknowledged.
    pub fn give_up_everything(&mut self) {
        let ids: Vec<PeerId> = self.peers.iter().map(|(id, _)| id).collect();
        for id in ids {
            let left = |t: &Self| {
                t.peers
                    .get(id)
                    .map_or(0, |p| p.send.in_flight() + p.send.queued())
            };
            // Each round gives up the window and lets the queue into it:
            // never more rounds than messages.
            let mut rounds = left(self) + 1;
            while left(self) > 0 && rounds > 0 {
                self.give_up_all(id);
                rounds -= 1;
            }
        }
    }

    /// Stops taking new messages: from now on every `Data` is dropped
    /// unacknowledged (acks are still taken), for [`Transport::handover`].
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// What [`Transport::resume`] needs to go on in another program.
    /// Meant for a closed transport with nothing in flight (see
    /// [`Transport::is_idle`]): messages still in flight are not carried.
    pub fn handover(&self) -> Handover {
        let senders = self
            .peers
            .iter()
            .filter_map(|(_, peer)| {
                let recv = peer.recv.as_ref()?;
                Some((peer.addr, recv.incarnation, recv.next()))
            })
            .collect();
        let tombstones = self
            .tombstones
            .iter()
            .enumerate()
            .filter(|(_, t)| t.key != 0)
            .filter_map(|(slot, t)| Some((u32::try_from(slot).ok()?, t.key, t.incarnation, t.next)))
            .collect();
        Handover {
            incarnation: self.incarnation,
            seqs_given: self.seqs_given,
            senders,
            tombstones,
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

    /// Bytes buffered ahead of holes from all senders (see
    /// [`TransportConfig::max_buffered`]).
    pub fn buffered_bytes(&self) -> usize {
        self.held
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
        let id = match self.peers.lookup(to) {
            Some(id) => id,
            None => self.add_peer(to),
        };
        let Some(peer) = self.peers.get_mut(id) else {
            return Err(SendError::SequenceExhausted { to });
        };
        let seq = peer
            .send
            .push(message)
            .ok_or(SendError::SequenceExhausted { to })?;
        self.seqs_given = self.seqs_given.saturating_add(1);
        self.stats.sent += 1;
        self.admit(id);
        self.limit_peers();
        Ok(seq)
    }

    /// Handles one datagram from `from`, calling `deliver` with each message
    /// that is now next in order (from `from`, possibly several when it
    /// fills a hole). Messages next in order are delivered straight from
    /// `datagram`, without allocating.
    ///
    /// A datagram that does not decode is counted, dropped and returned as
    /// the error (nothing of it is used); nothing else about it can fail.
    pub fn receive(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        mut deliver: impl FnMut(SocketAddr, &str),
    ) -> Result<(), WireError> {
        self.now = self.now.max(Some(now));
        let read = match &self.config.keys {
            None => wire::decode(datagram),
            Some(keys) => match wire::open(datagram, keys, self.local) {
                Ok((decoded, time)) if self.in_time(now, time) => Ok(decoded),
                Ok((_, time)) => Err(WireError::Outdated(time)),
                Err(error) => Err(error),
            },
        };
        let decoded = match read {
            Ok(decoded) => decoded,
            Err(error) => {
                let refused = match error {
                    WireError::Unsealed | WireError::UnknownKey(_) | WireError::BadTag(_) => {
                        self.stats.unauthenticated += 1;
                        true
                    }
                    WireError::Outdated(_) => {
                        self.stats.outdated += 1;
                        true
                    }
                    _ => false,
                };
                if refused {
                    self.report_refused(from, error);
                } else if let WireError::UnknownVersion(version) = error {
                    self.stats.wrong_version += 1;
                    if self.wrong_version_seen.len() >= REPORTED_MEMORY {
                        self.wrong_version_seen.clear();
                    }
                    if self.wrong_version_seen.insert(from) {
                        self.events.push_back(TransportEvent::WrongVersion {
                            peer: from,
                            version,
                        });
                    }
                } else {
                    self.stats.undecodable += 1;
                }
                return Err(error);
            }
        };
        self.stats.received += 1;
        let incarnation = decoded.incarnation();
        let has_data = decoded.has_data();
        // Sealed, incarnations are ordered and cannot be forged: one heard
        // at another address, or older than one heard from this address, is
        // a replay, refused whole before it costs a peer record.
        let keyed = self.config.keys.is_some();
        if keyed && self.is_replay(from, incarnation) {
            self.stats.stale += decoded
                .frames()
                .filter(|f| matches!(f, Frame::Data(_)))
                .count() as u64;
            self.report_refused(from, WireError::Replayed);
            return Ok(());
        }
        let id = match self.peers.lookup(from) {
            Some(id) => Some(id),
            None if has_data => self.admit_new_peer(now, from),
            None => None,
        };
        let Some(id) = id else {
            for frame in decoded.frames() {
                match frame {
                    Frame::Ack(_) => self.stats.foreign_acks += 1,
                    Frame::Data(_) => self.stats.peers_refused += 1,
                }
            }
            return Ok(());
        };
        let retired = self
            .peers
            .get(id)
            .is_some_and(|peer| peer.is_retired(incarnation, now));
        if !retired && (has_data || decoded.has_ack_for(self.incarnation)) {
            self.heard(id, now, incarnation);
            if keyed {
                self.note_incarnation(incarnation, from, now);
            }
        }
        let mut urgent = false;
        let mut accepted = false;
        for frame in decoded.frames() {
            match frame {
                Frame::Ack(ack) => self.on_ack(id, now, incarnation, ack),
                Frame::Data(_) if retired => self.stats.stale += 1,
                Frame::Data(_) if self.closed => {}
                Frame::Data(data) => match self.on_data(id, now, incarnation, data, &mut deliver) {
                    Some(Verdict::Delivered) => accepted = true,
                    Some(_) => {
                        accepted = true;
                        urgent = true;
                    }
                    None => {}
                },
            }
        }
        if accepted {
            self.owe_ack(id, now, urgent);
        }
        self.limit_peers();
        Ok(())
    }

    /// Writes the next datagram to send into `buf` and returns where it goes
    /// and its length, or `None` when there is nothing to send now. Acks
    /// owed now go first; a datagram carries the ack owed to its peer, if
    /// any, and as many of the messages ready for that peer as fit in
    /// [`TransportConfig::datagram_size`] bytes (a larger message goes
    /// alone). Starts the retransmission timer of each message it carries.
    ///
    /// `buf` should hold [`MAX_DATAGRAM`](crate::wire::MAX_DATAGRAM) bytes;
    /// a message that does not fit a smaller one is dropped as if lost
    /// (counted in [`Stats::encode_failures`]).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        self.now = self.now.max(Some(now));
        loop {
            let id = match self.acks_due.pop_front() {
                Some(id) => {
                    if let Some(peer) = self.peers.get_mut(id) {
                        peer.ack.queued = false;
                    }
                    id
                }
                None => {
                    let id = self.sendable.pop_front()?;
                    if let Some(peer) = self.peers.get_mut(id) {
                        peer.sendable = false;
                    }
                    id
                }
            };
            if let Some(written) = self.write_datagram(now, id, buf) {
                return Some(written);
            }
        }
    }

    /// The earliest deadline, if any: a delayed ack or a retransmission. It
    /// may belong to something done since (timers are deleted lazily);
    /// calling [`handle_timeout`](Transport::handle_timeout) then does
    /// nothing but discard it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse(timer)| timer.deadline);
        match (timer, self.next_sweep) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends the delayed acks, and retransmits or gives up on the messages,
    /// whose time has come at `now`. They go out through
    /// [`poll_transmit`](Transport::poll_transmit); each give-up is a
    /// [`TransportEvent::GaveUp`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(Some(now));
        while let Some(&Reverse(timer)) = self.timers.peek() {
            if timer.deadline > now {
                break;
            }
            self.timers.pop();
            match timer.kind {
                TimerKind::Ack => self.on_ack_timer(timer),
                TimerKind::Retransmit => self.on_retransmit_timer(now, timer),
                TimerKind::Probe => self.on_probe_timer(timer),
            }
        }
        self.sweep(now);
    }

    /// Sends every ack owed now rather than after `ack_delay`: for a
    /// process about to close its socket, so that its peers do not retry
    /// what it received.
    pub fn ack_now(&mut self) {
        for id in self.peers.ids() {
            if let Some(peer) = self.peers.get_mut(id) {
                if peer.ack.due && !peer.ack.queued {
                    peer.ack.queued = true;
                    self.acks_due.push_back(id);
                }
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
    /// datagram (messages or an ack) waits to be written.
    pub fn is_idle(&self) -> bool {
        self.in_flight == 0
            && self.acks_due.is_empty()
            && self.sendable.is_empty()
            && self.acks_owed == 0
    }

    /// Messages to `to` in flight (sent, not yet acknowledged or given up).
    pub fn in_flight(&self, to: SocketAddr) -> usize {
        self.peers
            .by_addr(to)
            .map_or(0, |peer| peer.send.in_flight())
    }

    /// Messages to `to` waiting for room in its window.
    pub fn queued(&self, to: SocketAddr) -> usize {
        self.peers.by_addr(to).map_or(0, |peer| peer.send.queued())
    }

    /// The congestion window to `to`, in messages.
    pub fn congestion_window(&self, to: SocketAddr) -> usize {
        self.peers
            .by_addr(to)
            .map_or(self.config.window, |peer| peer.send.cwnd)
    }

    /// Messages from `from` received ahead of a gap and held until it fills
    /// (or the sender's floor passes it). Costs a scan of the window; for
    /// diagnostics.
    pub fn buffered(&self, from: SocketAddr) -> usize {
        self.peers
            .by_addr(from)
            .and_then(|peer| peer.recv.as_ref())
            .map_or(0, ReceiveState::buffered)
    }

    /// When a live packet last came from `peer`: a `Data`, or an ack of a
    /// message of ours (not one from an earlier, retired incarnation).
    pub fn last_heard(&self, peer: SocketAddr) -> Option<Instant> {
        self.peers.by_addr(peer).and_then(|peer| peer.heard)
    }

    /// The incarnation of `peer`'s latest live packet.
    pub fn peer_incarnation(&self, peer: SocketAddr) -> Option<u64> {
        self.peers.by_addr(peer).and_then(|peer| peer.incarnation)
    }

    /// The smoothed round-trip time to `peer`, once measured.
    pub fn srtt(&self, peer: SocketAddr) -> Option<Duration> {
        self.peers
            .by_addr(peer)
            .and_then(|peer| peer.send.rtt.srtt())
    }

    /// The retransmission timeout the next message to `peer` starts with.
    pub fn rto(&self, peer: SocketAddr) -> Duration {
        self.peers.by_addr(peer).map_or_else(
            || rtt::clamp_rto(self.config.initial_rto, &self.config),
            |peer| peer.send.rtt.rto(&self.config),
        )
    }

    /// Whether a sealed datagram of `incarnation` from `from` is a replay:
    /// that incarnation was heard at another address, or a later one at
    /// this address (by its peer record, or the table of forgotten ones).
    fn is_replay(&self, from: SocketAddr, incarnation: u64) -> bool {
        if self
            .incarnations
            .get(&incarnation)
            .is_some_and(|&(addr, _)| addr != from)
        {
            return true;
        }
        let peer = self.peers.by_addr(from);
        peer.is_some_and(|peer| peer.is_superseded(incarnation))
            || (peer.is_none_or(|peer| peer.recv.is_none())
                && buried(&self.tombstones, from).is_some_and(|buried| incarnation < buried))
    }

    /// Reports, once per address, that the key refused a datagram from
    /// `from`.
    /// At most [`REPORTS_PER_SECOND`] a second, so that forged sources
    /// cannot turn into a flood of log lines (every datagram is counted
    /// all the same).
    fn report_refused(&mut self, from: SocketAddr, why: WireError) {
        if let Some(now) = self.now {
            match self.reports {
                Some((since, count))
                    if now.saturating_duration_since(since) < Duration::from_secs(1) =>
                {
                    if count >= REPORTS_PER_SECOND {
                        return;
                    }
                    self.reports = Some((since, count + 1));
                }
                _ => self.reports = Some((now, 1)),
            }
        }
        if self.refused_seen.len() >= REPORTED_MEMORY {
            self.refused_seen.clear();
        }
        if self.refused_seen.insert(from) {
            self.events
                .push_back(TransportEvent::Refused { peer: from, why });
        }
    }

    /// Notes that sealed datagrams of `incarnation` come from `from`, for
    /// as long as a replay of one could be accepted: twice `max_skew`
    /// (its clock and ours may each be off by that). Beyond
    /// [`INCARNATIONS`] remembered, the ones heard longest ago go first.
    fn note_incarnation(&mut self, incarnation: u64, from: SocketAddr, now: Instant) {
        if self.incarnations.len() >= INCARNATIONS && !self.incarnations.contains_key(&incarnation)
        {
            let keep = self.config.replay_window();
            self.incarnations
                .retain(|_, &mut (_, heard)| now.saturating_duration_since(heard) < keep);
            if self.incarnations.len() >= INCARNATIONS {
                let oldest = self
                    .incarnations
                    .iter()
                    .min_by_key(|(_, &(_, heard))| heard)
                    .map(|(&incarnation, _)| incarnation);
                if let Some(oldest) = oldest {
                    self.incarnations.remove(&oldest);
                }
            }
        }
        self.incarnations.insert(incarnation, (from, now));
    }

    /// Tells the transport the address it receives on: a sealed datagram
    /// names its recipient, and one sealed for another address is refused.
    /// A transport with keys must be told it (until then it refuses every
    /// sealed datagram).
    pub fn set_local_addr(&mut self, local: SocketAddr) {
        self.local = local;
    }

    /// Seals with, and accepts, `keys` from now on (after the key file was
    /// read again, for a rotation); `None` opens the transport.
    pub fn set_keys(&mut self, keys: Option<Arc<Keys>>) {
        self.config.keys = keys;
    }

    /// Tells the transport what this host's clock (time since the Unix
    /// epoch) reads at `now`; it counts on from there with the `now`s it
    /// is given. Sealed datagrams carry that clock; a transport with keys
    /// must be told it before it sends (until then it seals with time 0,
    /// which every receiver refuses), and again now and then, so its
    /// count follows the system's clock.
    pub fn set_clock(&mut self, now: Instant, unix: Duration) {
        self.clock = Some((now, unix));
    }

    /// This host's clock at `now`, in Unix seconds (0 if never told).
    fn unix_secs(&self, now: Instant) -> u64 {
        self.clock.map_or(0, |(at, unix)| {
            if now >= at {
                (unix + (now - at)).as_secs()
            } else {
                unix.saturating_sub(at - now).as_secs()
            }
        })
    }

    /// Whether a datagram sealed at `time` (Unix seconds) is within
    /// `max_skew` of our clock at `now`.
    fn in_time(&self, now: Instant, time: u32) -> bool {
        let ours = self.unix_secs(now);
        ours.abs_diff(u64::from(time)) <= self.config.max_skew.as_secs()
    }

    /// Whether a sweep for idle peers let go of memory since this was last
    /// asked: it forgot peers, or dropped the tombstones once none could
    /// be needed. The process may then give freed pages back to the system.
    pub fn gave_back(&mut self) -> bool {
        std::mem::take(&mut self.gave_back)
    }

    /// Drops everything about `peer`: messages in flight or queued to it
    /// (silently, no [`TransportEvent::GaveUp`]) and its receive window.
    /// Use it when the peer is known to be gone for good. If it sends again,
    /// it is a new peer: a retransmission of a message already delivered
    /// would be delivered again. Returns how many messages were dropped.
    pub fn forget(&mut self, peer: SocketAddr) -> usize {
        match self.peers.lookup(peer).and_then(|id| self.remove_peer(id)) {
            Some(state) => state.send.in_flight() + state.send.queued(),
            None => 0,
        }
    }

    // ------------------------------------------------------------ peers

    /// A new peer record for `addr`, its stream starting above every
    /// sequence number given out so far.
    fn add_peer(&mut self, addr: SocketAddr) -> PeerId {
        let window = self.config.window.max(1);
        self.peers.insert(Peer::new(addr, self.seqs_given, window))
    }

    /// A record for a new sender `addr`, unless every slot is taken by a
    /// busy peer: past [`HARD_PEER_FACTOR`] × `max_peers` peers, the idle
    /// one heard from longest ago makes room (its tombstone keeps where its
    /// stream was).
    fn admit_new_peer(&mut self, now: Instant, addr: SocketAddr) -> Option<PeerId> {
        let hard = self
            .config
            .max_peers
            .max(2)
            .saturating_mul(HARD_PEER_FACTOR);
        if self.peers.len() >= hard {
            if self.full_until.is_some_and(|until| now < until) {
                return None;
            }
            let silent = self.config.peer_idle;
            let victim = self
                .peers
                .iter()
                .filter(|(_, peer)| peer.is_idle(now, silent))
                .min_by_key(|(_, peer)| peer.heard)
                .map(|(id, _)| id);
            match victim {
                Some(victim) => {
                    self.remove_peer(victim);
                    self.stats.peers_forgotten += 1;
                }
                None => {
                    // Looking again at every datagram would cost a scan
                    // each; a millisecond later is soon enough.
                    self.full_until = Some(now + Duration::from_millis(1));
                    return None;
                }
            }
        }
        Some(self.add_peer(addr))
    }

    /// Takes `id` out, keeping a tombstone of its receive window and the
    /// totals straight.
    fn remove_peer(&mut self, id: PeerId) -> Option<Peer> {
        let peer = self.peers.remove(id)?;
        self.bury(&peer);
        self.in_flight -= peer.send.in_flight();
        self.held -= peer.held_bytes();
        self.acks_owed -= usize::from(peer.ack.due);
        if let Some(recv) = &peer.recv {
            self.stats.reneged += recv.buffered() as u64;
        }
        Some(peer)
    }

    /// Keeps where `peer`'s receive window was, as long as a
    /// retransmission from it could still arrive: until `peer_idle` after
    /// it was last heard (longer than any sender keeps retrying).
    fn bury(&mut self, peer: &Peer) {
        let (Some(recv), Some(heard)) = (&peer.recv, peer.heard) else {
            return;
        };
        let until = heard.checked_add(self.config.peer_idle);
        if until.is_some_and(|until| self.now.is_some_and(|now| now >= until)) {
            return;
        }
        let first = self.tombstones.is_empty();
        bury(&mut self.tombstones, peer.addr, recv);
        self.tombstones_until = match (first, self.tombstones_until, until) {
            (true, _, until) => until,
            (false, Some(a), Some(b)) => Some(a.max(b)),
            // A `peer_idle` too long to add to a time: the table stays.
            _ => None,
        };
    }

    fn heard(&mut self, id: PeerId, now: Instant, incarnation: u64) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        if let Some(previous) = peer.heard(now, incarnation) {
            self.stats.peer_restarts += 1;
            self.events.push_back(TransportEvent::PeerRestarted {
                peer: peer.addr,
                previous,
                incarnation,
            });
        }
    }

    /// Every half [`TransportConfig::peer_idle`] while there are peers (a
    /// deadline of [`Transport::poll_timeout`]): forgets the idle peers
    /// not heard from for `peer_idle`. A pass over the peers every tens of
    /// seconds, not per packet.
    fn sweep(&mut self, now: Instant) {
        let idle_for = self.config.peer_idle;
        let interval = (idle_for / 2).max(Duration::from_millis(1));
        match self.next_sweep {
            None if !self.peers.is_empty() || !self.tombstones.is_empty() => {
                self.next_sweep = Some(now + interval)
            }
            Some(at) if now >= at => {
                let mut gone = Vec::new();
                for id in self.peers.ids() {
                    let Some(peer) = self.peers.get_mut(id) else {
                        continue;
                    };
                    let quiet = peer
                        .heard
                        .or(peer.since)
                        .is_none_or(|last| now.saturating_duration_since(last) >= idle_for);
                    if quiet && peer.is_idle(now, idle_for) {
                        gone.push(id);
                    }
                }
                self.gave_back |= !gone.is_empty();
                for id in gone {
                    if self.remove_peer(id).is_some() {
                        self.stats.peers_forgotten += 1;
                    }
                }
                if self.tombstones_until.is_some_and(|until| now >= until) {
                    self.tombstones = Vec::new();
                    self.tombstones_until = None;
                    self.gave_back = true;
                }
                let keep = self.config.replay_window();
                self.incarnations
                    .retain(|_, &mut (_, heard)| now.saturating_duration_since(heard) < keep);
                self.peers.compact();
                if self.peers.len() < 64 {
                    // After a flood, the queues may have grown far beyond
                    // what is left to do.
                    self.acks_due.shrink_to(64);
                    self.sendable.shrink_to(64);
                    self.timers.shrink_to(4 * (self.in_flight + 64));
                    self.wrong_version_seen.shrink_to(64);
                    self.refused_seen.shrink_to(64);
                    self.incarnations.shrink_to(64);
                }
                let remembering = !self.tombstones.is_empty() || !self.incarnations.is_empty();
                self.next_sweep = (!self.peers.is_empty() || remembering).then_some(now + interval);
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
        // our ack reached it: only peers quiet for [`EVICT_AFTER`] go
        // (a tombstone keeps where their stream was, but a tombstone's
        // slot may be taken by another address).
        let mut idle: Vec<(Option<Instant>, PeerId)> = self
            .peers
            .iter()
            .filter(|(_, peer)| {
                peer.is_idle(now, silent)
                    && peer
                        .heard
                        .is_none_or(|heard| now.saturating_duration_since(heard) >= EVICT_AFTER)
            })
            .map(|(id, peer)| (peer.heard, id))
            .collect();
        let excess = self.peers.len().saturating_sub(max / 2).min(idle.len());
        if excess == 0 {
            return;
        }
        idle.select_nth_unstable(excess - 1);
        for (_, id) in &idle[..excess] {
            if self.remove_peer(*id).is_some() {
                self.stats.peers_forgotten += 1;
            }
        }
    }

    // ------------------------------------------------------------ sending

    /// Writes one datagram to peer `id`: its ack, if one is owed, and the
    /// messages ready for it that fit. `None` if there was nothing to write.
    fn write_datagram(
        &mut self,
        now: Instant,
        id: PeerId,
        buf: &mut [u8],
    ) -> Option<(SocketAddr, usize)> {
        // The clock a sealed datagram carries, in 32 bits until 2106.
        let time = &u32::try_from(self.unix_secs(now)).unwrap_or(u32::MAX);
        let Transport {
            incarnation,
            config,
            peers,
            sendable,
            timers,
            stats,
            ranges,
            acks_owed,
            ..
        } = self;
        let peer = peers.get_mut(id)?;
        let written = match config.keys.as_deref() {
            None => Writer::new(buf, *incarnation),
            Some(keys) => Writer::sealed(buf, *incarnation, keys.current(), *time, peer.addr),
        };
        let Ok(mut writer) = written else {
            stats.encode_failures += 1;
            return None;
        };
        let seal = if config.keys.is_some() { SEAL_LEN } else { 0 };
        let batch = config
            .datagram_size
            .saturating_sub(seal)
            .max(wire::header_len(*incarnation) + 1);
        let mut acked = false;
        if peer.ack.due {
            if let Some(recv) = &peer.recv {
                recv.ranges(MAX_ACK_RANGES, ranges);
                if writer.push_ack(recv.incarnation, recv.next_u64(), ranges) {
                    stats.acks_transmitted += 1;
                    acked = true;
                }
            }
            peer.ack = peers::AckState {
                queued: peer.ack.queued,
                ..peers::AckState::default()
            };
            *acks_owed -= 1;
        }
        let order = peer.send.datagrams + 1;
        let floor = peer.send.floor();
        let first_rto = peer.send.rtt.rto(config);
        let mut frames = 0u64;
        while let Some(&seq) = peer.ready.front() {
            let Some(entry) = peer.send.get_mut(seq) else {
                peer.ready.pop_front();
                continue;
            };
            if entry.deadline.is_some() || entry.sacked {
                // Transmitted already, or received: a stale entry.
                peer.ready.pop_front();
                continue;
            }
            let len = wire::data_frame_len(seq, floor, &entry.message);
            if !writer.is_empty() && writer.len() + len > batch {
                break;
            }
            let retransmission = entry.transmitted_at.is_some();
            if !retransmission {
                entry.rto = first_rto;
            }
            let deadline = now + entry.rto;
            entry.transmitted_at = Some(now);
            entry.deadline = Some(deadline);
            entry.order = order;
            peer.ready.pop_front();
            timers.push(Reverse(Timer {
                deadline,
                kind: TimerKind::Retransmit,
                peer: id,
                seq,
            }));
            if writer.push_data(seq, floor, &entry.message) {
                frames += 1;
                stats.data_transmitted += 1;
                if retransmission {
                    stats.retransmits += 1;
                }
            } else {
                // Does not fit the caller's buffer even alone: treated as a
                // loss (the timer retries, then gives up).
                stats.encode_failures += 1;
            }
            peer.since.get_or_insert(now);
        }
        if frames > 0 {
            peer.send.datagrams = order;
        }
        let probe_due = frames > 0;
        if !peer.ready.is_empty() && !peer.sendable {
            peer.sendable = true;
            sendable.push_back(id);
        }
        if writer.is_empty() {
            return None;
        }
        if acked && frames == 0 {
            stats.lone_acks += 1;
        }
        stats.datagrams_transmitted += 1;
        let to = peer.addr;
        let len = writer.finish();
        if probe_due {
            self.arm_probe(id, now);
        }
        self.bound_timers();
        Some((to, len))
    }

    /// Lets queued messages to `id` into its window, and queues a floor
    /// announcement if one is due and nothing else is left to send.
    fn admit(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get_mut(id) else {
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
        let in_flight = &mut self.in_flight;
        let ready = &mut peer.ready;
        peer.send.admit(window, rto, |seq| {
            *in_flight += 1;
            ready.push_back(seq);
        });
        self.mark_sendable(id);
    }

    /// Puts `id` in the queue of peers to send to, if it has messages
    /// ready and is not there yet.
    fn mark_sendable(&mut self, id: PeerId) {
        if let Some(peer) = self.peers.get_mut(id) {
            if !peer.ready.is_empty() && !peer.sendable {
                peer.sendable = true;
                self.sendable.push_back(id);
            }
        }
    }

    /// Notes that `id` sent us messages: an ack is owed, now if `urgent`
    /// (a hole or a duplicate: the sender needs to know), or if this is
    /// the second datagram unacknowledged, else after `ack_delay`.
    fn owe_ack(&mut self, id: PeerId, now: Instant, urgent: bool) {
        let delay = self.config.ack_delay;
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        self.acks_owed += usize::from(!peer.ack.due);
        peer.ack.due = true;
        peer.ack.unacked = peer.ack.unacked.saturating_add(1);
        if urgent || peer.ack.unacked >= 2 || delay.is_zero() {
            if !peer.ack.queued {
                peer.ack.queued = true;
                self.acks_due.push_back(id);
            }
        } else if peer.ack.deadline.is_none() {
            let deadline = now + delay;
            peer.ack.deadline = Some(deadline);
            self.timers.push(Reverse(Timer {
                deadline,
                kind: TimerKind::Ack,
                peer: id,
                seq: 0,
            }));
        }
    }

    fn on_ack_timer(&mut self, timer: Timer) {
        let Some(peer) = self.peers.get_mut(timer.peer) else {
            return;
        };
        if peer.ack.deadline != Some(timer.deadline) {
            return;
        }
        peer.ack.deadline = None;
        if peer.ack.due && !peer.ack.queued {
            peer.ack.queued = true;
            self.acks_due.push_back(timer.peer);
        }
    }

    fn on_retransmit_timer(&mut self, now: Instant, timer: Timer) {
        let budget = self
            .config
            .max_rto
            .saturating_mul(self.config.retries.max(1));
        let retries = self.config.retries;
        let Some(peer) = self.peers.get_mut(timer.peer) else {
            return;
        };
        let silent = peer
            .heard
            .or(peer.since)
            .is_none_or(|last| now.saturating_duration_since(last) >= budget);
        let base = peer.send.rtt.rto(&self.config);
        let progress = peer.send.progress;
        let Some(entry) = peer.send.get_mut(timer.seq) else {
            return;
        };
        if entry.deadline != Some(timer.deadline) {
            return;
        }
        // Give-up means unreachable: after its retries, a message is tried
        // on (at the longest timeout) for as long as the recipient answers
        // anything, and given up only once it has answered nothing for the
        // whole retry budget — and then so is everything else in flight to
        // it, which has waited as long.
        if entry.retransmits < retries || !silent {
            entry.retransmits = entry.retransmits.saturating_add(1);
            entry.deadline = None;
            // Backed off, but never so far that the recipient is probed
            // fewer than `PROBES` times in the budget: a reachable one on
            // a link losing half of everything each way answers one probe
            // in four, so 64 probes leave it a chance of 1e-8 to be taken
            // for unreachable.
            //
            // The doubling is RFC 6298's backoff, and like its estimate
            // (see `forgive`) it ends when the recipient acknowledges
            // anything new: a message whose retransmission was lost on a
            // link that still delivers others is retried at the measured
            // timeout again, not at a timeout that has doubled with every
            // unlucky try.
            let answered = progress
                .zip(entry.transmitted_at)
                .is_some_and(|(progress, sent)| progress > sent);
            entry.rto = if answered {
                base
            } else {
                rtt::clamp_rto(entry.rto.saturating_mul(2), &self.config)
                    .min((budget / PROBES).max(self.config.min_rto))
            };
            let (backed_off, order) = (entry.rto, entry.order);
            peer.send.rtt.back_off(backed_off);
            if peer.send.on_loss(order) {
                self.stats.window_reductions += 1;
            }
            peer.ready.push_back(timer.seq);
            self.mark_sendable(timer.peer);
        } else {
            self.give_up_all(timer.peer);
        }
    }

    /// Gives up on everything in flight to `id`: drops it, counts it,
    /// reports it.
    fn give_up_all(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let to = peer.addr;
        while peer.send.in_flight() > 0 {
            let seq = peer.send.floor();
            let Some(entry) = peer.send.remove(seq) else {
                break;
            };
            self.in_flight -= 1;
            if entry.message.is_empty() {
                // An announcement that got no ack: the recipient is
                // unreachable; do not announce again (the next message
                // carries the floor).
                self.stats.announcements_gave_up += 1;
            } else {
                self.stats.gave_up += 1;
                self.events.push_back(TransportEvent::GaveUp {
                    to,
                    seq,
                    message: entry.message,
                });
            }
        }
        peer.ready.clear();
        self.admit(id);
    }

    fn bound_timers(&mut self) {
        // Acked messages leave their timers behind; rebuild the heap when
        // they dominate it, so memory stays proportional to what is in
        // flight (amortised O(1) per timer).
        if self.timers.len() > 64 && self.timers.len() > 4 * (self.in_flight + self.peers.len()) {
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

    // ------------------------------------------------------------ receiving

    /// One `Data` frame from peer `id`'s `incarnation`. `None` if it was
    /// dropped unacknowledged.
    fn on_data(
        &mut self,
        id: PeerId,
        now: Instant,
        incarnation: u64,
        data: DataFrame<'_>,
        deliver: &mut impl FnMut(SocketAddr, &str),
    ) -> Option<Verdict> {
        let window = self.config.receive_window.max(1);
        let retired_for = self.config.retired_for;
        let (per_peer, total) = (self.config.max_buffered_per_peer, self.config.max_buffered);
        let tombstones = &self.tombstones;
        let peer = self.peers.get_mut(id)?;
        let before = peer.held_bytes();
        let room = per_peer
            .saturating_sub(before)
            .min(total.saturating_sub(self.held));
        let mut out = Delivery {
            from: peer.addr,
            deliver,
            stats: &mut self.stats,
        };
        let DataFrame {
            seq,
            floor,
            message,
        } = data;
        let recv = match &mut peer.recv {
            Some(recv) if recv.incarnation == incarnation => recv,
            Some(recv) => {
                recv.restart(incarnation, floor.min(seq), now + retired_for, &mut out);
                recv
            }
            // A sender with no window here (new, or forgotten and met
            // again, perhaps after we sent it something) may be one we
            // forgot: its tombstone says where its stream was.
            slot @ None => slot.insert(match exhume(tombstones, peer.addr, incarnation) {
                Some(next) => ReceiveState::resume(incarnation, next),
                None => ReceiveState::new(incarnation, floor.min(seq)),
            }),
        };
        let verdict = recv.on_data(seq, floor, message, window, room, &mut out);
        let after = recv.held_bytes();
        self.held = self.held + after - before;
        match verdict {
            Verdict::Delivered | Verdict::Buffered => Some(verdict),
            Verdict::Duplicate => {
                self.stats.duplicates += 1;
                Some(verdict)
            }
            Verdict::OutOfWindow => {
                self.stats.out_of_window += 1;
                None
            }
            Verdict::OverCapacity => {
                self.stats.over_capacity += 1;
                None
            }
        }
    }

    /// One `Ack` frame from peer `id`, whose incarnation is
    /// `recipient_incarnation`.
    fn on_ack(&mut self, id: PeerId, now: Instant, recipient_incarnation: u64, ack: AckFrame<'_>) {
        if ack.incarnation != self.incarnation {
            self.stats.foreign_acks += 1;
            return;
        }
        let window = self.config.window.max(1);
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let send = &mut peer.send;
        match send.recipient_incarnation.replace(recipient_incarnation) {
            // The recipient restarted: messages its earlier life acked may be
            // holes in its new window, so announce the floor once idle.
            Some(previous) if previous != recipient_incarnation => send.announce_pending = true,
            _ => {}
        }
        let mut newly = 0usize;
        let mut removed = 0usize;
        let mut largest_order = 0u64;
        let mut sample: Option<(u64, Instant)> = None;
        let mut note = |entry: &send::InFlight| {
            largest_order = largest_order.max(entry.order);
            // Karn's rule: a message sent more than once gives no sample,
            // since the ack may answer any of its transmissions.
            if entry.retransmits == 0 && !entry.sacked {
                if let Some(sent) = entry.transmitted_at {
                    if sample.is_none_or(|(order, _)| entry.order > order) {
                        sample = Some((entry.order, sent));
                    }
                }
            }
        };
        // Everything below `next` is received for good.
        while send.in_flight() > 0 && send.floor() < ack.next {
            let seq = send.floor();
            let Some(entry) = send.remove(seq) else {
                break;
            };
            if !entry.sacked {
                newly += 1;
                note(&entry);
            }
            removed += 1;
        }
        // The ranges: received ahead of a hole, not retransmitted while so.
        let end = send.window_end();
        let mut covered_to = ack.next;
        let complete = ack.range_count() < MAX_ACK_RANGES as u64;
        for (start, stop) in ack.ranges() {
            if start >= end {
                break;
            }
            covered_to = stop;
            for seq in start.max(send.floor())..stop.min(end) {
                let Some(entry) = send.get_mut(seq) else {
                    continue;
                };
                if !entry.sacked {
                    note(entry);
                    entry.sacked = true;
                    entry.deadline = None;
                    newly += 1;
                    send.sacked_count += 1;
                    self.stats.sacked += 1;
                }
            }
        }
        self.in_flight -= removed;
        self.stats.acked += removed as u64;
        if newly == 0 && removed == 0 {
            self.stats.duplicate_acks += 1;
        }
        if let Some((_, sent)) = sample {
            send.rtt.sample(now.saturating_duration_since(sent));
        }
        if newly > 0 || removed > 0 {
            send.progress = Some(now);
            send.rtt.forgive();
            send.grow(newly, window);
        }
        // A message the recipient held ahead of a hole and no longer
        // reports (it forgot us meanwhile) must be sent again. An ack lists
        // everything it holds unless it lists the most ranges it may.
        let limit = if complete { u64::MAX } else { covered_to };
        let mut again = Vec::new();
        if send.sacked_count > 0 {
            let mut listed = ack.ranges().peekable();
            for (seq, entry) in send.iter_mut() {
                if !entry.sacked || seq >= limit {
                    continue;
                }
                while listed.peek().is_some_and(|&(_, stop)| stop <= seq) {
                    listed.next();
                }
                let held = listed.peek().is_some_and(|&(start, _)| start <= seq);
                if !held {
                    entry.sacked = false;
                    again.push(seq);
                }
            }
            send.sacked_count -= again.len();
        }
        // Loss: a message sent `FAST_RETRANSMIT_AFTER` datagrams before one
        // now acknowledged, and not acknowledged itself, is sent again now
        // rather than after its timeout.
        // So is one sent before it, in an earlier datagram, long enough
        // ago that its ack would be here (9/8 of a round trip, at least a
        // millisecond): QUIC's time threshold.
        send.largest_acked = send.largest_acked.max(largest_order);
        let largest = send.largest_acked;
        let threshold = largest.saturating_sub(FAST_RETRANSMIT_AFTER);
        let reorder = send
            .rtt
            .srtt()
            .map_or(self.config.initial_rto, |srtt| srtt * 9 / 8)
            .max(Duration::from_millis(1));
        let mut lost_order = None;
        if largest > 0 {
            for (seq, entry) in send.iter_mut() {
                let late = entry.order < largest
                    && entry
                        .transmitted_at
                        .is_some_and(|sent| now.saturating_duration_since(sent) >= reorder);
                if !entry.sacked
                    && entry.deadline.is_some()
                    && entry.order > 0
                    && (entry.order <= threshold || late)
                {
                    entry.deadline = None;
                    entry.retransmits = entry.retransmits.saturating_add(1);
                    lost_order = lost_order.max(Some(entry.order));
                    self.stats.fast_retransmits += 1;
                    again.push(seq);
                }
            }
        }
        if let Some(order) = lost_order {
            if send.on_loss(order) {
                self.stats.window_reductions += 1;
            }
        }
        if newly > 0 || removed > 0 {
            send.probes = 0;
        }
        peer.ready.extend(again);
        self.admit(id);
        self.arm_probe(id, now);
        self.prune_timers();
    }

    /// Sets `id`'s probe timer, if messages to it are in flight and not
    /// reported received: a probe timeout (QUIC's PTO) after the last
    /// transmission or acknowledgement, `SRTT + max(4·RTTVAR, 1 ms) +
    /// ack_delay`, doubled for each probe since the last progress, and no
    /// longer than the message's own timeout.
    fn arm_probe(&mut self, id: PeerId, now: Instant) {
        let (initial, ack_delay) = (self.config.initial_rto, self.config.ack_delay);
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let send = &mut peer.send;
        if send.in_flight() <= send.sacked_count {
            send.probe = None;
            return;
        }
        let pto = send
            .rtt
            .pto(initial, ack_delay)
            .saturating_mul(1 << send.probes.min(16));
        let deadline = now + pto;
        send.probe = Some(deadline);
        self.timers.push(Reverse(Timer {
            deadline,
            kind: TimerKind::Probe,
            peer: id,
            seq: 0,
        }));
    }

    /// Nothing was acknowledged for a probe timeout: the last datagrams
    /// may all be lost, with nothing after them to tell. The lowest
    /// message not reported received is sent again, so its ack reports
    /// what did arrive and the rest is recovered without waiting for the
    /// retransmission timeout.
    fn on_probe_timer(&mut self, timer: Timer) {
        let Some(peer) = self.peers.get_mut(timer.peer) else {
            return;
        };
        if peer.send.probe != Some(timer.deadline) {
            return;
        }
        peer.send.probe = None;
        let mut probe = None;
        for (seq, entry) in peer.send.iter_mut() {
            if !entry.sacked && entry.deadline.is_some() {
                entry.deadline = None;
                entry.retransmits = entry.retransmits.saturating_add(1);
                probe = Some(seq);
                break;
            }
        }
        let Some(seq) = probe else {
            return;
        };
        peer.send.probes = peer.send.probes.saturating_add(1);
        peer.ready.push_front(seq);
        self.stats.probes += 1;
        self.mark_sendable(timer.peer);
    }
}

/// What is kept of a forgotten peer: where its stream was. A `key` of 0
/// is an empty slot.
#[derive(Debug, Clone, Copy, Default)]
struct Tombstone {
    /// A hash of the address (never 0), so an entry is 32 bytes.
    key: u64,
    incarnation: u64,
    next: u128,
}

/// The slot of `addr` in the table, and its key there.
fn tomb_slot(addr: SocketAddr) -> (usize, u64) {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    addr.hash(&mut hasher);
    let hash = hasher.finish();
    ((hash % TOMBSTONES as u64) as usize, hash.max(1))
}

/// Keeps where the receive window `recv` of `addr` was, overwriting
/// whatever shared its slot.
fn bury(tombstones: &mut Vec<Tombstone>, addr: SocketAddr, recv: &ReceiveState) {
    if tombstones.is_empty() {
        tombstones.resize(TOMBSTONES, Tombstone::default());
    }
    let (slot, key) = tomb_slot(addr);
    tombstones[slot] = Tombstone {
        key,
        incarnation: recv.incarnation,
        next: recv.next(),
    };
}

/// The incarnation of `addr` the table remembers, if any.
fn buried(tombstones: &[Tombstone], addr: SocketAddr) -> Option<u64> {
    let (slot, key) = tomb_slot(addr);
    let tomb = tombstones.get(slot)?;
    (tomb.key == key).then_some(tomb.incarnation)
}

/// Where the stream of `addr`'s `incarnation` was when it was forgotten.
fn exhume(tombstones: &[Tombstone], addr: SocketAddr, incarnation: u64) -> Option<u128> {
    let (slot, key) = tomb_slot(addr);
    let tomb = tombstones.get(slot)?;
    (tomb.key == key && tomb.incarnation == incarnation).then_some(tomb.next)
}

/// `timer` still has work to do: its peer is there and its message (or
/// ack) has that deadline.
fn is_live(peers: &Peers, timer: &Timer) -> bool {
    let Some(peer) = peers.get(timer.peer) else {
        return false;
    };
    match timer.kind {
        TimerKind::Ack => peer.ack.deadline == Some(timer.deadline),
        TimerKind::Probe => peer.send.probe == Some(timer.deadline),
        TimerKind::Retransmit => peer
            .send
            .get(timer.seq)
            .is_some_and(|entry| entry.deadline == Some(timer.deadline)),
    }
}
