//! Two transports on a simulated network that loses, duplicates, delays
//! and reorders packets in both directions, with simulated time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::wire::MAX_DATAGRAM;

/// How the simulated network treats packets.
#[derive(Debug, Clone)]
struct Faults {
    /// Chance of losing a packet, per mille.
    loss: u32,
    /// Chance of delivering a packet twice, per mille.
    duplication: u32,
    /// Least one-way delay.
    latency: Duration,
    /// Most extra one-way delay, chosen per packet: reorders packets.
    jitter: Duration,
    /// From this time on, everything node 0 sends is lost (node 1 became
    /// unreachable), while what node 1 sends still arrives.
    cut: Option<Instant>,
}

impl Faults {
    fn lossless(latency: Duration) -> Self {
        Faults {
            loss: 0,
            duplication: 0,
            latency,
            jitter: Duration::ZERO,
            cut: None,
        }
    }
}

/// One endpoint: its transport and what it sent, delivered and gave up.
struct Node {
    addr: SocketAddr,
    transport: Transport,
    /// Number of messages this node has sent; message `i` is `"m<i>"`.
    sent: u64,
    /// Indexes of messages delivered to this node, in delivery order.
    delivered: Vec<u64>,
    /// Indexes of messages this node gave up on.
    gave_up: Vec<u64>,
}

/// A packet in the air: arrival time, a tie-breaker, destination node,
/// bytes.
type InAir = Reverse<(Instant, u64, usize, Vec<u8>)>;

struct Net {
    rng: fastrand::Rng,
    faults: Faults,
    now: Instant,
    air: BinaryHeap<InAir>,
    order: u64,
    nodes: [Node; 2],
    buf: Vec<u8>,
}

impl Net {
    fn new(seed: u64, faults: Faults, config: TransportConfig) -> Self {
        let node = |port: u16, incarnation: u64| Node {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            transport: Transport::new(incarnation, config.clone()),
            sent: 0,
            delivered: Vec::new(),
            gave_up: Vec::new(),
        };
        Net {
            rng: fastrand::Rng::with_seed(seed),
            faults,
            now: Instant::now(),
            air: BinaryHeap::new(),
            order: 0,
            nodes: [node(5000, 0xA), node(5001, 0xB)],
            buf: vec![0; MAX_DATAGRAM],
        }
    }

    /// Node `from` sends its next `count` messages to the other node.
    fn send(&mut self, from: usize, count: u64) {
        let to = self.nodes[1 - from].addr;
        let node = &mut self.nodes[from];
        for _ in 0..count {
            let seq = node.transport.send(to, format!("m{}", node.sent));
            assert!(seq.is_ok(), "send refused: {seq:?}");
            node.sent += 1;
        }
    }

    /// Puts everything both nodes want to send into the air, through the
    /// faults.
    fn transmit(&mut self) {
        for from in 0..2 {
            while let Some((to, len)) = self.nodes[from]
                .transport
                .poll_transmit(self.now, &mut self.buf)
            {
                assert_eq!(to, self.nodes[1 - from].addr);
                let datagram = self.buf[..len].to_vec();
                if self.lose(from) {
                    continue;
                }
                let copies = if self.rng.u32(0..1000) < self.faults.duplication {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let jitter = self.rng.u64(0..=self.faults.jitter.as_micros() as u64);
                    let at = self.now + self.faults.latency + Duration::from_micros(jitter);
                    self.order += 1;
                    self.air
                        .push(Reverse((at, self.order, 1 - from, datagram.clone())));
                }
            }
        }
    }

    /// Whether to lose a datagram sent by node `from`.
    fn lose(&mut self, from: usize) -> bool {
        if from == 0 && self.faults.cut.is_some_and(|cut| self.now >= cut) {
            return true;
        }
        if from == 1 && self.faults.cut.is_some() {
            return false;
        }
        self.rng.u32(0..1000) < self.faults.loss
    }

    /// Advances time to the next arrival or timeout and handles it; false
    /// when nothing is left to happen.
    fn step(&mut self) -> bool {
        self.transmit();
        let next = [
            self.air.peek().map(|Reverse((at, ..))| *at),
            self.nodes[0].transport.poll_timeout(),
            self.nodes[1].transport.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            return false;
        };
        self.now = self.now.max(next);
        while let Some(Reverse((at, ..))) = self.air.peek() {
            if *at > self.now {
                break;
            }
            let Some(Reverse((_, _, to, datagram))) = self.air.pop() else {
                break;
            };
            let from = self.nodes[1 - to].addr;
            let node = &mut self.nodes[to];
            let delivered = &mut node.delivered;
            let result = node
                .transport
                .receive(self.now, from, &datagram, |sender, message| {
                    assert_eq!(sender, from);
                    delivered.push(index_of(message));
                });
            assert_eq!(result, Ok(()));
        }
        for node in &mut self.nodes {
            node.transport.handle_timeout(self.now);
            while let Some(event) = node.transport.poll_event() {
                if let TransportEvent::GaveUp { message, .. } = event {
                    node.gave_up.push(index_of(&message));
                }
            }
        }
        true
    }

    /// Runs until nothing is in the air and no timer is pending.
    fn run(&mut self) {
        let mut steps = 0u64;
        while self.step() {
            steps += 1;
            assert!(steps < 50_000_000, "the simulation does not settle");
        }
    }
}

/// The index `i` of message `"m<i>"`.
fn index_of(message: &str) -> u64 {
    match message.strip_prefix('m').and_then(|i| i.parse().ok()) {
        Some(index) => index,
        None => panic!("a message that was never sent: {message:?}"),
    }
}

/// The default configuration, with timeouts for a simulated link whose
/// round trip is at most `2 × (latency + jitter)`, and a small window so
/// that holes and queues are common.
fn config_for(faults: &Faults) -> TransportConfig {
    let round_trip = 2 * (faults.latency + faults.jitter);
    TransportConfig {
        window: 16,
        receive_window: 16,
        initial_rto: round_trip + Duration::from_millis(1),
        ..TransportConfig::default()
    }
}

/// Sends batches from both nodes while the network runs, then lets it
/// settle.
fn run_batches(net: &mut Net, batches: &[(u8, u8)]) {
    for &(a, b) in batches {
        net.send(0, u64::from(a));
        net.send(1, u64::from(b));
        for _ in 0..3 {
            net.step();
        }
    }
    net.run();
}

fn batches() -> impl Strategy<Value = Vec<(u8, u8)>> {
    proptest::collection::vec((0u8..12, 0u8..12), 1..20)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        // Failures are turned into named tests, not files.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any loss up to 50 %, duplication and reordering, both ways, with the
    /// default retry budget: nothing is given up, and everything is
    /// delivered exactly once, in order.
    #[test]
    fn a_reachable_recipient_gets_everything_once_in_order(
        seed in any::<u64>(),
        loss in 0u32..=500,
        duplication in 0u32..=300,
        jitter_us in 0u64..=3000,
        spurious in any::<bool>(),
        batches in batches(),
    ) {
        let faults = Faults {
            loss,
            duplication,
            latency: Duration::from_micros(100),
            jitter: Duration::from_micros(jitter_us),
            cut: None,
        };
        let mut config = config_for(&faults);
        // Also let delay cause spurious retransmissions, sometimes.
        if spurious {
            config.initial_rto = Duration::from_micros(300);
            config.min_rto = Duration::from_micros(300);
        }
        let mut net = Net::new(seed, faults, config);
        run_batches(&mut net, &batches);
        for to in 0..2 {
            let sender = &net.nodes[1 - to];
            prop_assert_eq!(sender.transport.stats().gave_up, 0);
            prop_assert!(sender.gave_up.is_empty());
            let all: Vec<u64> = (0..sender.sent).collect();
            prop_assert_eq!(&net.nodes[to].delivered, &all);
            prop_assert_eq!(net.nodes[to].transport.buffered(sender.addr), 0);
            prop_assert_eq!(net.nodes[to].transport.buffered_bytes(), 0);
        }
    }

    /// The recipient becomes unreachable at a random moment (nothing sent
    /// to it arrives any more; what it sends still does): every message is
    /// either delivered or reported undelivered, never both, never twice.
    #[test]
    fn an_unreachable_recipient_leaves_every_message_delivered_or_undelivered(
        seed in any::<u64>(),
        loss in 0u32..=500,
        duplication in 0u32..=300,
        jitter_us in 0u64..=3000,
        cut_ms in 0u64..=40,
        count in 1u64..300,
    ) {
        let start = Instant::now();
        let faults = Faults {
            loss,
            duplication,
            latency: Duration::from_micros(100),
            jitter: Duration::from_micros(jitter_us),
            cut: Some(start + Duration::from_millis(cut_ms)),
        };
        let config = config_for(&faults);
        let mut net = Net::new(seed, faults, config);
        net.now = start;
        net.send(0, count);
        net.run();
        let delivered = &net.nodes[1].delivered;
        let gave_up = &net.nodes[0].gave_up;
        prop_assert!(delivered.windows(2).all(|w| w[0] < w[1]), "once, in order: {:?}", delivered);
        prop_assert!(gave_up.windows(2).all(|w| w[0] < w[1]), "reported once each: {:?}", gave_up);
        let delivered: std::collections::HashSet<u64> = delivered.iter().copied().collect();
        for index in 0..count {
            let reported = gave_up.contains(&index);
            prop_assert!(
                delivered.contains(&index) != reported,
                "message {} delivered: {}, reported undelivered: {}",
                index,
                delivered.contains(&index),
                reported
            );
        }
        prop_assert_eq!(net.nodes[0].transport.in_flight(net.nodes[1].addr), 0);
    }
}

#[test]
fn thirty_percent_loss_each_way_delivers_10_000_once_in_order() {
    let faults = Faults {
        loss: 300,
        duplication: 20,
        latency: Duration::from_micros(50),
        jitter: Duration::from_micros(200),
        cut: None,
    };
    let mut net = Net::new(30, faults, TransportConfig::default());
    net.send(0, 10_000);
    net.run();
    let all: Vec<u64> = (0..10_000).collect();
    assert_eq!(net.nodes[1].delivered, all);
    let stats = net.nodes[0].transport.stats();
    assert_eq!(stats.gave_up, 0);
    assert!(stats.retransmits > 1_000, "{stats:?}");
    assert!(stats.window_reductions > 0, "{stats:?}");
}

#[test]
fn burst_of_100_000_to_one_peer_arrives_in_order_in_few_datagrams() {
    let faults = Faults::lossless(Duration::from_micros(20));
    let mut net = Net::new(1, faults, TransportConfig::default());
    net.send(0, 100_000);
    assert_eq!(net.nodes[0].transport.in_flight(net.nodes[1].addr), 256);
    net.run();
    assert_eq!(net.nodes[1].delivered.len(), 100_000);
    assert!(net.nodes[1].delivered.iter().copied().eq(0..100_000));
    let stats = net.nodes[0].transport.stats();
    assert_eq!(stats.retransmits, 0);
    assert_eq!(stats.data_transmitted, 100_000);
    // `m<i>` messages are at most 8 bytes: a hundred or so per datagram.
    assert!(stats.datagrams_transmitted < 2_000, "{stats:?}");
    let acks = net.nodes[1].transport.stats();
    assert!(
        acks.datagrams_transmitted < stats.datagrams_transmitted,
        "{acks:?}"
    );
    assert_eq!(net.nodes[0].transport.queued(net.nodes[1].addr), 0);
}

fn lossy_link() -> Faults {
    Faults {
        loss: 200,
        duplication: 50,
        latency: Duration::from_micros(50),
        jitter: Duration::from_micros(500),
        cut: None,
    }
}

fn patient_config() -> TransportConfig {
    TransportConfig::default()
}

#[test]
fn sender_restarted_mid_stream_is_heard_in_full() {
    let mut net = Net::new(7, lossy_link(), patient_config());
    net.send(0, 500);
    // Until part of the stream is through.
    while net.nodes[1].delivered.len() < 100 && net.step() {}
    // Node 0 dies with messages in flight and packets in the air, and
    // starts again at the same address: sequence numbers from 0.
    net.nodes[0].transport = Transport::new(0xA2, patient_config());
    net.nodes[0].sent = 1_000_000;
    net.send(0, 500);
    net.run();
    let delivered = &net.nodes[1].delivered;
    let (old, new): (Vec<u64>, Vec<u64>) = delivered.iter().partition(|&&i| i < 1_000_000);
    assert!(
        old.windows(2).all(|w| w[0] < w[1]),
        "old life once, in order"
    );
    assert!(
        !old.is_empty() && old.len() < 500,
        "the crash cut the old life short"
    );
    assert_eq!(new, (1_000_000..1_000_500).collect::<Vec<u64>>());
    assert_eq!(
        &delivered[..old.len()],
        &old[..],
        "the old life comes first"
    );
    assert_eq!(net.nodes[1].transport.stats().peer_restarts, 1);
    assert_eq!(net.nodes[0].transport.stats().gave_up, 0);
}

#[test]
fn recipient_restarted_mid_stream_gets_the_rest_and_nothing_is_stuck() {
    let mut net = Net::new(8, lossy_link(), patient_config());
    net.send(0, 500);
    // Until part of the stream is through.
    while net.nodes[1].delivered.len() < 100 && net.step() {}
    // Node 1 dies and starts again at the same address.
    let before = net.nodes[1].delivered.len();
    assert!(
        before > 0 && before < 500,
        "the old life heard part: {before}"
    );
    net.nodes[1].transport = Transport::new(0xB2, patient_config());
    net.run();
    let after = &net.nodes[1].delivered[before..];
    assert!(after.windows(2).all(|w| w[0] < w[1]), "once, in order");
    assert_eq!(after.last(), Some(&499), "the new life hears the end");
    let sender = net.nodes[0].addr;
    assert_eq!(net.nodes[1].transport.buffered(sender), 0, "nothing stuck");
    assert_eq!(net.nodes[0].transport.stats().gave_up, 0);
}

/// Request/reply with 128 in flight at 30% loss each way: every reply
/// comes back once, in order, nothing is given up. (The simulated time it
/// takes is printed with `--nocapture`; `scripts/loss.sh` measures real
/// processes.)
#[test]
fn request_reply_at_thirty_percent_loss_gets_every_reply_once_in_order() {
    let faults = Faults {
        loss: 300,
        duplication: 10,
        latency: Duration::from_micros(50),
        jitter: Duration::from_micros(20),
        cut: None,
    };
    let mut net = Net::new(31, faults, TransportConfig::default());
    let start = net.now;
    let total = 10_000u64;
    net.send(0, 128);
    while net.nodes[0].delivered.len() < total as usize && net.step() {
        // Node 1 echoes what it got; node 0 sends one more per reply.
        let got = net.nodes[1].delivered.len() as u64;
        if got > net.nodes[1].sent {
            let echoed = got - net.nodes[1].sent;
            net.send(1, echoed);
        }
        let back = net.nodes[0].delivered.len() as u64;
        let due = (back + 128).min(total).saturating_sub(net.nodes[0].sent);
        net.send(0, due);
    }
    let elapsed = net.now - start;
    println!(
        "{total} request/replies in {elapsed:?} of simulated time: {:.0}/s; {:?}",
        total as f64 / elapsed.as_secs_f64(),
        net.nodes[0].transport.stats()
    );
    let all: Vec<u64> = (0..total).collect();
    assert_eq!(net.nodes[0].delivered, all);
    assert_eq!(net.nodes[0].transport.stats().gave_up, 0);
    assert_eq!(net.nodes[1].transport.stats().gave_up, 0);
}
