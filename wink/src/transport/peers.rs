//! Every peer's state in a slab: found by address once per datagram, then
//! by a generation-checked id, so timers and queues that outlive a peer
//! never reach the next one in its slot.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::recv::ReceiveState;
use super::send::SendState;

/// A peer's place in the slab and the generation of that place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct PeerId {
    index: u32,
    generation: u32,
}

/// What is owed to a peer in acknowledgements.
#[derive(Debug, Default)]
pub(super) struct AckState {
    /// An ack frame is owed: messages arrived since the last one sent.
    pub(super) due: bool,
    /// Datagrams with messages since the last ack sent.
    pub(super) unacked: u32,
    /// When a delayed ack is to go out alone, if nothing carries it first.
    pub(super) deadline: Option<Instant>,
    /// The peer is in the transport's queue of acks to send now.
    pub(super) queued: bool,
}

/// Everything about one peer address.
#[derive(Debug)]
pub(super) struct Peer {
    pub(super) addr: SocketAddr,
    pub(super) send: SendState,
    pub(super) recv: Option<ReceiveState>,
    /// Sequence numbers of messages to it waiting to be (re)transmitted.
    pub(super) ready: VecDeque<u64>,
    /// The peer is in the transport's queue of peers with messages ready.
    pub(super) sendable: bool,
    pub(super) ack: AckState,
    /// When a live packet (Data, or an ack of ours) last came from it.
    pub(super) heard: Option<Instant>,
    /// The incarnation its latest live packet carried.
    pub(super) incarnation: Option<u64>,
    /// When a message was first transmitted to it.
    pub(super) since: Option<Instant>,
}

impl Peer {
    pub(super) fn new(addr: SocketAddr, first_seq: u64, window: usize) -> Self {
        Peer {
            addr,
            send: SendState::starting_at(first_seq, window),
            recv: None,
            ready: VecDeque::new(),
            sendable: false,
            ack: AckState::default(),
            heard: None,
            incarnation: None,
            since: None,
        }
    }

    /// Notes a live packet from incarnation `incarnation` at `now`; the
    /// previous incarnation if that is a new one of a peer heard before
    /// (it restarted).
    pub(super) fn heard(&mut self, now: Instant, incarnation: u64) -> Option<u64> {
        self.heard = Some(now);
        match self.incarnation.replace(incarnation) {
            Some(previous) if previous != incarnation => Some(previous),
            _ => None,
        }
    }

    /// Nothing in flight, queued or due to it, and nothing buffered from
    /// it — or only messages behind a hole from a sender silent for
    /// `silent` (it is gone: the hole will never fill): it can be
    /// forgotten.
    pub(super) fn is_idle(&self, now: Instant, silent: Duration) -> bool {
        self.send.is_idle()
            && !self.send.announce_pending
            && !self.ack.due
            && (self.recv.as_ref().is_none_or(ReceiveState::is_drained)
                || self
                    .heard
                    .is_none_or(|heard| now.saturating_duration_since(heard) >= silent))
    }

    /// Whether `incarnation` is older than one already heard from this
    /// address (incarnations grow with their process's start time).
    pub(super) fn is_superseded(&self, incarnation: u64) -> bool {
        self.incarnation.is_some_and(|known| incarnation < known)
            || self
                .recv
                .as_ref()
                .is_some_and(|recv| incarnation < recv.incarnation)
    }

    /// Whether a packet from `incarnation` is from an earlier life of this
    /// peer, retired when a newer one appeared.
    pub(super) fn is_retired(&self, incarnation: u64, now: Instant) -> bool {
        self.recv.as_ref().is_some_and(|recv| {
            recv.incarnation != incarnation && recv.is_retired(incarnation, now)
        })
    }

    /// Bytes its reorder buffer is counted for.
    pub(super) fn held_bytes(&self) -> usize {
        self.recv.as_ref().map_or(0, ReceiveState::held_bytes)
    }
}

/// A place in the slab. The peer is boxed, so a free place costs 16
/// bytes, not a peer's few hundred: after a flood of senders, the slab
/// keeps little even where a live peer holds a place at its end.
#[derive(Debug)]
struct Slot {
    generation: u32,
    peer: Option<Box<Peer>>,
}

/// The slab of peers and the index by address.
#[derive(Debug, Default)]
pub(super) struct Peers {
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_addr: HashMap<SocketAddr, PeerId>,
    /// The generation the next peer gets, whatever slot it lands in (so a
    /// slot dropped by [`Peers::compact`] and made again cannot repeat an
    /// id).
    next_generation: u32,
    /// The address last looked up and its id: a request/reply looks up
    /// one peer again and again, and skips hashing the address (the index
    /// hashes with SipHash, whose keys a forger cannot guess).
    last: Cell<Option<(SocketAddr, PeerId)>>,
}

impl Peers {
    /// How many peers there are.
    pub(super) fn len(&self) -> usize {
        self.by_addr.len()
    }

    /// Whether there are none.
    pub(super) fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }

    /// The id of the peer at `addr`.
    pub(super) fn lookup(&self, addr: SocketAddr) -> Option<PeerId> {
        if let Some((last, id)) = self.last.get() {
            if last == addr {
                return Some(id);
            }
        }
        let id = self.by_addr.get(&addr).copied();
        if let Some(id) = id {
            self.last.set(Some((addr, id)));
        }
        id
    }

    /// The peer `id`, unless it was removed since.
    pub(super) fn get(&self, id: PeerId) -> Option<&Peer> {
        let slot = self.slots.get(id.index as usize)?;
        (slot.generation == id.generation)
            .then_some(slot.peer.as_deref())
            .flatten()
    }

    /// The peer `id`, unless it was removed since.
    pub(super) fn get_mut(&mut self, id: PeerId) -> Option<&mut Peer> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.peer.as_deref_mut()
    }

    /// The peer at `addr`.
    pub(super) fn by_addr(&self, addr: SocketAddr) -> Option<&Peer> {
        self.get(self.lookup(addr)?)
    }

    /// Adds `peer` (whose address has no peer yet) and returns its id.
    pub(super) fn insert(&mut self, peer: Peer) -> PeerId {
        let addr = peer.addr;
        let generation = self.next_generation;
        self.next_generation = generation.wrapping_add(1);
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index as usize] = Slot {
                    generation,
                    peer: Some(Box::new(peer)),
                };
                index
            }
            None => {
                self.slots.push(Slot {
                    generation,
                    peer: Some(Box::new(peer)),
                });
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let id = PeerId { index, generation };
        self.by_addr.insert(addr, id);
        id
    }

    /// Takes the peer `id` out; its slot's next tenant gets another
    /// generation.
    pub(super) fn remove(&mut self, id: PeerId) -> Option<Peer> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let peer = slot.peer.take()?;
        self.free.push(id.index);
        self.by_addr.remove(&peer.addr);
        if self.last.get().is_some_and(|(_, last)| last == id) {
            self.last.set(None);
        }
        Some(*peer)
    }

    /// Every peer with its id.
    pub(super) fn iter(&self) -> impl Iterator<Item = (PeerId, &Peer)> {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            let peer = slot.peer.as_deref()?;
            Some((
                PeerId {
                    index: index as u32,
                    generation: slot.generation,
                },
                peer,
            ))
        })
    }

    /// The ids of every peer.
    pub(super) fn ids(&self) -> Vec<PeerId> {
        self.iter().map(|(id, _)| id).collect()
    }

    /// Gives back the memory of a slab that shrank a lot: once most slots
    /// are free, the free ones at the end are dropped.
    pub(super) fn compact(&mut self) {
        if self.slots.len() > 64 && self.by_addr.len() < self.slots.len() / 4 {
            while self.slots.last().is_some_and(|slot| slot.peer.is_none()) {
                self.slots.pop();
            }
            let len = self.slots.len() as u32;
            self.free.retain(|&index| index < len);
            self.slots.shrink_to_fit();
            self.free.shrink_to_fit();
            self.by_addr.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> Peer {
        Peer::new(SocketAddr::from(([127, 0, 0, 1], port)), 0, 8)
    }

    #[test]
    fn the_last_address_looked_up_never_outlives_its_peer() {
        let mut peers = Peers::default();
        let a = peers.insert(peer(1));
        let b = peers.insert(peer(2));
        let (a_addr, b_addr) = (peer(1).addr, peer(2).addr);
        assert_eq!(peers.lookup(a_addr), Some(a));
        assert_eq!(peers.lookup(a_addr), Some(a), "from the cache");
        assert_eq!(peers.lookup(b_addr), Some(b));
        peers.remove(b);
        assert_eq!(peers.lookup(b_addr), None);
        let again = peers.insert(peer(2));
        assert_ne!(again, b);
        assert_eq!(peers.lookup(b_addr), Some(again));
        assert_eq!(peers.lookup(a_addr), Some(a));
        peers.remove(a);
        assert_eq!(peers.lookup(a_addr), None);
        assert!(peers.get(a).is_none());
    }
}
