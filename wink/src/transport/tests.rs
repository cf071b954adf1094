//! Unit tests of the transport, one behaviour each, packets built by hand.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::wire::{self, Frame, Writer, MAX_DATAGRAM, MAX_MESSAGE_LEN};

const A: u64 = 0xA;
const B: u64 = 0xB;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn a_addr() -> SocketAddr {
    addr(4000)
}

fn b_addr() -> SocketAddr {
    addr(4001)
}

/// The defaults, but acks go out at once (most tests look at them right
/// after the messages they answer).
fn config() -> TransportConfig {
    TransportConfig {
        ack_delay: Duration::ZERO,
        ..TransportConfig::default()
    }
}

/// Every datagram `t` wants to send now.
fn transmit_all(t: &mut Transport, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut buf = vec![0; MAX_DATAGRAM];
    let mut out = Vec::new();
    while let Some((to, len)) = t.poll_transmit(now, &mut buf) {
        out.push((to, buf[..len].to_vec()));
    }
    out
}

/// Data frames among `datagrams`, as (seq, floor, message).
fn data_of(datagrams: &[(SocketAddr, Vec<u8>)]) -> Vec<(u64, u64, String)> {
    let mut out = Vec::new();
    for (_, d) in datagrams {
        if let Ok(decoded) = wire::decode(d) {
            for frame in decoded.frames() {
                if let Frame::Data(f) = frame {
                    out.push((f.seq, f.floor, f.message.to_owned()));
                }
            }
        }
    }
    out
}

/// Ack frames among `datagrams`, as (next, ranges).
fn acks_of(datagrams: &[(SocketAddr, Vec<u8>)]) -> Vec<(u64, Vec<(u64, u64)>)> {
    let mut out = Vec::new();
    for (_, d) in datagrams {
        if let Ok(decoded) = wire::decode(d) {
            for frame in decoded.frames() {
                if let Frame::Ack(f) = frame {
                    out.push((f.next, f.ranges().collect()));
                }
            }
        }
    }
    out
}

/// Feeds one datagram to `t` and returns what it delivered.
fn feed(t: &mut Transport, now: Instant, from: SocketAddr, datagram: &[u8]) -> Vec<String> {
    let mut got = Vec::new();
    let result = t.receive(now, from, datagram, |_, m| got.push(m.to_owned()));
    assert_eq!(result, Ok(()));
    got
}

/// A datagram from `incarnation` with one `Data` frame.
fn data(incarnation: u64, seq: u64, floor: u64, message: &str) -> Vec<u8> {
    let mut buf = vec![0; MAX_DATAGRAM];
    let mut w = Writer::new(&mut buf, incarnation).unwrap();
    assert!(w.push_data(seq, floor, message));
    let len = w.finish();
    buf.truncate(len);
    buf
}

/// A datagram from `incarnation` acknowledging, of the sender
/// `acked`, everything below `next` and `ranges`.
fn ack(incarnation: u64, acked: u64, next: u64, ranges: &[(u64, u64)]) -> Vec<u8> {
    let mut buf = vec![0; 1024];
    let mut w = Writer::new(&mut buf, incarnation).unwrap();
    assert!(w.push_ack(acked, next, ranges));
    let len = w.finish();
    buf.truncate(len);
    buf
}

/// b's ack of a's messages below `next`.
fn ack_below(next: u64) -> Vec<u8> {
    ack(B, A, next, &[])
}

fn receiver() -> Transport {
    Transport::new(B, config())
}

#[test]
fn sequence_numbers_count_per_recipient_from_above_any_given_before() {
    let mut a = Transport::new(A, config());
    assert_eq!(a.send(b_addr(), "one"), Ok(0));
    assert_eq!(a.send(b_addr(), "two"), Ok(1));
    // A recipient's stream starts above every number given out so far, so
    // one forgotten and met again never sees a number twice.
    assert_eq!(a.send(addr(5000), "other"), Ok(2));
    assert_eq!(a.send(b_addr(), "three"), Ok(2));
    assert_eq!(a.stats().sent, 4);
}

#[test]
fn in_order_message_is_delivered_and_acked() {
    let now = Instant::now();
    let mut a = Transport::new(A, config());
    let mut b = receiver();
    a.send(b_addr(), "ping 1").ok();
    let out = transmit_all(&mut a, now);
    assert_eq!(data_of(&out), [(0, 0, "ping 1".to_owned())]);
    assert_eq!(feed(&mut b, now, a_addr(), &out[0].1), ["ping 1"]);
    let acks = transmit_all(&mut b, now);
    assert_eq!(acks_of(&acks), [(1, vec![])]);
    assert_eq!(acks[0].0, a_addr());
    assert_eq!(
        feed(&mut a, now, b_addr(), &acks[0].1),
        Vec::<String>::new()
    );
    assert_eq!(a.in_flight(b_addr()), 0);
    assert_eq!(a.stats().acked, 1);
}

#[test]
fn reordered_packet_is_not_a_duplicate() {
    let now = Instant::now();
    let mut b = receiver();
    assert_eq!(
        feed(&mut b, now, a_addr(), &data(A, 1, 0, "second")),
        Vec::<String>::new()
    );
    assert_eq!(
        feed(&mut b, now, a_addr(), &data(A, 2, 0, "third")),
        Vec::<String>::new()
    );
    assert_eq!(b.buffered(a_addr()), 2);
    assert_eq!(
        feed(&mut b, now, a_addr(), &data(A, 0, 0, "first")),
        ["first", "second", "third"]
    );
    assert_eq!(b.stats().duplicates, 0);
    // One ack, owed since the first: everything below 3.
    assert_eq!(acks_of(&transmit_all(&mut b, now)), [(3, vec![])]);
}

#[test]
fn duplicate_is_reacked_not_redelivered() {
    let now = Instant::now();
    let mut b = receiver();
    let packet = data(A, 0, 0, "once");
    assert_eq!(feed(&mut b, now, a_addr(), &packet), ["once"]);
    assert_eq!(feed(&mut b, now, a_addr(), &packet), Vec::<String>::new());
    // A duplicate of a buffered (out-of-order) message too.
    let ahead = data(A, 2, 0, "ahead");
    feed(&mut b, now, a_addr(), &ahead);
    feed(&mut b, now, a_addr(), &ahead);
    assert_eq!(b.stats().duplicates, 2);
    assert_eq!(acks_of(&transmit_all(&mut b, now)), [(1, vec![(2, 3)])]);
}

#[test]
fn restarted_peer_is_not_a_duplicate() {
    let now = Instant::now();
    let mut b = receiver();
    for seq in 0..5 {
        feed(&mut b, now, a_addr(), &data(A, seq, seq, "old life"));
    }
    // Same address, new incarnation, sequence numbers from 0 again.
    const A2: u64 = 0xA2;
    assert_eq!(
        feed(&mut b, now, a_addr(), &data(A2, 0, 0, "new life")),
        ["new life"]
    );
    assert_eq!(b.stats().duplicates, 0);
    assert_eq!(b.stats().peer_restarts, 1);
    assert_eq!(
        b.poll_event(),
        Some(TransportEvent::PeerRestarted {
            peer: a_addr(),
            previous: A,
            incarnation: A2
        })
    );
}

#[test]
fn restart_delivers_what_the_old_life_left_buffered() {
    let now = Instant::now();
    let mut b = receiver();
    feed(&mut b, now, a_addr(), &data(A, 1, 0, "behind a hole"));
    assert_eq!(
        feed(&mut b, now, a_addr(), &data(0xA2, 0, 0, "new")),
        ["behind a hole", "new"]
    );
}

#[test]
fn late_packet_from_retired_incarnation_is_dropped_unacked() {
    let now = Instant::now();
    let mut b = receiver();
    feed(&mut b, now, a_addr(), &data(A, 0, 0, "old"));
    feed(&mut b, now, a_addr(), &data(0xA2, 0, 0, "new"));
    transmit_all(&mut b, now);
    // A delayed retransmission from the old life must not reset the window.
    assert_eq!(
        feed(&mut b, now, a_addr(), &data(A, 1, 0, "late")),
        Vec::<String>::new()
    );
    assert_eq!(b.stats().stale, 1);
    assert!(transmit_all(&mut b, now).is_empty());
    // The new life continues undisturbed.
    assert_eq!(
        feed(&mut b, now, a_addr(), &data(0xA2, 1, 0, "next")),
        ["next"]
    );
}

#[test]
fn live_incarnation_retired_by_mistake_is_heard_again_after_retired_for() {
    let now = Instant::now();
    let mut b = receiver();
    // b never heard the old life; the new one's first packet arrives, then
    // a delayed packet of the old life overtakes the new one's next.
    feed(&mut b, now, a_addr(), &data(0xA2, 0, 0, "new 0"));
    feed(&mut b, now, a_addr(), &data(A, 7, 7, "old, late"));
    assert_eq!(
        feed(&mut b, now, a_addr(), &data(0xA2, 1, 0, "new 1")),
        Vec::<String>::new()
    );
    assert_eq!(b.stats().stale, 1);
    // Not for good: once `retired_for` has passed, the live one is heard.
    let later = now + TransportConfig::default().retired_for;
    assert_eq!(
        feed(&mut b, later, a_addr(), &data(0xA2, 1, 1, "new 1")),
        ["new 1"]
    );
}

#[test]
fn ack_from_other_port_does_not_clear() {
    let now = Instant::now();
    let mut a = Transport::new(A, config());
    a.send(b_addr(), "hello").ok();
    transmit_all(&mut a, now);
    let ack = ack_below(1);
    // Same IP, other port; other IP, same port: neither is the recipient.
    feed(&mut a, now, addr(4002), &ack);
    feed(&mut a, now, SocketAddr::from(([127, 0, 0, 2], 4001)), &ack);
    assert_eq!(a.in_flight(b_addr()), 1);
    assert_eq!(a.stats().foreign_acks, 2);
    feed(&mut a, now, b_addr(), &ack);
    assert_eq!(a.in_flight(b_addr()), 0);
}

#[test]
fn ack_for_other_incarnation_does_not_clear() {
    let now = Instant::now();
    let mut a = Transport::new(A, config());
    a.send(b_addr(), "hello").ok();
    transmit_all(&mut a, now);
    // An ack meant for an earlier life of this address.
    feed(&mut a, now, b_addr(), &ack(B, 0xA0, 1, &[]));
    assert_eq!(a.in_flight(b_addr()), 1);
    assert_eq!(a.stats().foreign_acks, 1);
}

/// Drives `a`'s timers from `start` until it has nothing left in flight,
/// collecting the data packets it sends, with their times (none are
/// delivered anywhere).
fn run_timers_to_the_end(a: &mut Transport, start: Instant) -> Vec<(Instant, u64, String)> {
    let stamp = |now: Instant, sent: Vec<(u64, u64, String)>| {
        sent.into_iter().map(move |(seq, _, m)| (now, seq, m))
    };
    let mut sent: Vec<_> = stamp(start, data_of(&transmit_all(a, start))).collect();
    let mut now = start;
    while let Some(deadline) = a.poll_timeout() {
        now = now.max(deadline);
        a.handle_timeout(now);
        sent.extend(stamp(now, data_of(&transmit_all(a, now))));
    }
    sent
}

#[test]
fn a_message_is_given_up_only_after_the_recipient_is_silent_for_the_retry_budget() {
    let start = Instant::now();
    let config = config();
    let budget = config.max_rto * config.retries;
    let mut a = Transport::new(A, config);
    a.send(b_addr(), "kept").ok();
    a.send(b_addr(), "lost").ok();
    transmit_all(&mut a, start);
    // The recipient acks "kept", then falls silent (gone, or cut off).
    feed(&mut a, start, b_addr(), &ack_below(1));
    let sent = run_timers_to_the_end(&mut a, start);
    let lost: Vec<Instant> = sent
        .iter()
        .filter(|(_, seq, _)| *seq == 1)
        .map(|(at, _, _)| *at)
        .collect();
    // Tried well past its three retries, for as long as the budget lasts.
    assert!(lost.len() > 4, "{} transmissions", lost.len());
    assert!(*lost.last().unwrap() - start < budget);
    assert_eq!(a.stats().gave_up, 1);
    assert_eq!(
        a.poll_event(),
        Some(TransportEvent::GaveUp {
            to: b_addr(),
            seq: 1,
            message: "lost".to_owned()
        })
    );
    // No announcement: the recipient answers nothing.
    assert_eq!(a.stats().announcements, 0);
    assert!(sent.iter().all(|(_, _, m)| !m.is_empty()));
    assert_eq!(a.in_flight(b_addr()), 0);
}

#[test]
fn a_message_is_never_given_up_while_the_recipient_answers() {
    // The recipient acks everything but one message, whose every packet is
    // lost: it is retried on and on, not given up after three tries.
    let config = config();
    let budget = config.max_rto * config.retries;
    let mut a = Transport::new(A, config);
    let mut now = Instant::now();
    a.send(b_addr(), "unlucky").ok();
    transmit_all(&mut a, now);
    let mut sent = 0;
    let until = now + budget * 4;
    while now < until {
        a.send(b_addr(), "fine").ok();
        sent += 1;
        let sent_now = data_of(&transmit_all(&mut a, now));
        if sent_now.iter().any(|(seq, _, _)| *seq != 0) {
            // Everything but the unlucky one has arrived.
            feed(&mut a, now, b_addr(), &ack(B, A, 0, &[(1, sent + 1)]));
        }
        now += Duration::from_secs(1);
        a.handle_timeout(now);
    }
    assert!(sent > 100);
    assert_eq!(a.stats().gave_up, 0);
    assert!(a.stats().retransmits > 3);
    // The others are received, kept only until acknowledged below `next`.
    assert_eq!(a.stats().sacked, sent);
    feed(&mut a, now, b_addr(), &ack_below(sent + 1));
    assert_eq!(a.in_flight(b_addr()), 0);
}

#[test]
fn three_acks_past_a_hole_retransmit_it_at_once() {
    let now = Instant::now();
    let mut a = Transport::new(A, config());
    // One message per datagram.
    for i in 0..5 {
        a.send(b_addr(), format!("m{i}")).ok();
        transmit_all(&mut a, now);
    }
    // 0 is lost; 1, 2 and 3 are received.
    for seq in 1..3 {
        feed(&mut a, now, b_addr(), &ack(B, A, 0, &[(1, seq + 1)]));
        assert!(transmit_all(&mut a, now).is_empty());
    }
    feed(&mut a, now, b_addr(), &ack(B, A, 0, &[(1, 4)]));
    assert_eq!(
        data_of(&transmit_all(&mut a, now)),
        [(0, 0, "m0".to_owned())]
    );
    assert_eq!(a.stats().fast_retransmits, 1);
    assert_eq!(a.stats().window_reductions, 1);
    // Once per transmission: a fourth ack does not send it again, nor the
    // messages it reports received.
    feed(&mut a, now, b_addr(), &ack(B, A, 0, &[(1, 5)]));
    assert!(transmit_all(&mut a, now).is_empty());
    assert_eq!(
        a.in_flight(b_addr()),
        5,
        "kept until acknowledged below next"
    );
    feed(&mut a, now, b_addr(), &ack_below(5));
    assert_eq!(a.in_flight(b_addr()), 0);
}

#[test]
fn any_acknowledgement_ends_a_backoff() {
    let start = Instant::now();
    let mut a = Transport::new(A, config());
    let initial = a.rto(b_addr());
    a.send(b_addr(), "slow").ok();
    transmit_all(&mut a, start);
    // Two timeouts: the backoff grows.
    let mut now = start;
    for _ in 0..2 {
        now = a.poll_timeout().unwrap();
        a.handle_timeout(now);
        transmit_all(&mut a, now);
    }
    assert!(a.rto(b_addr()) > initial);
    // The ack of the retransmitted message gives no sample (Karn), but it
    // shows the recipient is there: the next message starts afresh.
    feed(&mut a, now, b_addr(), &ack_below(1));
    assert_eq!(a.rto(b_addr()), initial);
}

#[test]
fn announcement_that_gets_no_ack_is_not_repeated() {
    // The recipient restarted (its acks carry a new incarnation): the floor
    // is announced; the new life never acks it; it is given up once, not
    // announced again, and reported to nobody.
    let start = Instant::now();
    let mut a = Transport::new(A, config());
    a.send(b_addr(), "one").ok();
    transmit_all(&mut a, start);
    feed(&mut a, start, b_addr(), &ack_below(1));
    a.send(b_addr(), "two").ok();
    transmit_all(&mut a, start);
    feed(&mut a, start, b_addr(), &ack(0xC, A, 2, &[]));
    let sent = run_timers_to_the_end(&mut a, start);
    assert!(sent.iter().any(|(_, _, m)| m.is_empty()), "{sent:?}");
    assert_eq!(a.stats().announcements, 1);
    assert_eq!(a.stats().announcements_gave_up, 1);
    assert_eq!(a.stats().gave_up, 0);
    assert_eq!(
        a.poll_event()
            .map(|e| matches!(e, TransportEvent::PeerRestarted { .. })),
        Some(true)
    );
    assert_eq!(a.poll_event(), None, "no GaveUp for the announcement");
}

#[test]
fn a_floor_past_buffered_messages_discards_them() {
    let now = Instant::now();
    let mut b = receiver();
    // seq 0 never arrives; 1 and 2 wait behind it. A sender gives up only
    // everything in flight at once, and reports each undelivered: so what
    // its floor passes must not be delivered.
    feed(&mut b, now, a_addr(), &data(A, 1, 0, "one"));
    feed(&mut b, now, a_addr(), &data(A, 2, 0, "two"));
    // The next message: seq 3, floor 3.
    assert_eq!(
        feed(&mut b, now, a_addr(), &data(A, 3, 3, "three")),
        ["three"]
    );
    assert_eq!(b.stats().skipped, 1);
    assert_eq!(b.stats().discarded, 2);
    assert_eq!(b.buffered_bytes(), 0);
    assert_eq!(acks_of(&transmit_all(&mut b, now)), [(4, vec![])]);
}

#[test]
fn floor_skips_holes_the_sender_gave_up_on() {
    let now = Instant::now();
    let mut b = receiver();
    feed(&mut b, now, a_addr(), &data(A, 0, 0, "zero"));
    // The sender gave up on 1 to 4; seq 5 carries floor 5.
    assert_eq!(
        feed(&mut b, now, a_addr(), &data(A, 5, 5, "five")),
        ["five"]
    );
    assert_eq!(b.stats().skipped, 4);
    // A late copy of a skipped message is a duplicate, not a delivery.
    assert_eq!(
        feed(&mut b, now, a_addr(), &data(A, 3, 1, "three")),
        Vec::<String>::new()
    );
}

#[test]
fn rto_follows_rtt_karns_rule() {
    let start = Instant::now();
    let config = config();
    let mut a = Transport::new(A, config.clone());
    let mut buf = vec![0; MAX_DATAGRAM];
    assert_eq!(a.rto(b_addr()), config.initial_rto);

    // First sample, 10 ms: SRTT = 10, RTTVAR = 5, RTO = 10 + 4·5 = 30 ms.
    a.send(b_addr(), "m0").ok();
    a.poll_transmit(start, &mut buf);
    feed(&mut a, start + ms(10), b_addr(), &ack_below(1));
    assert_eq!(a.srtt(b_addr()), Some(ms(10)));
    assert_eq!(a.rto(b_addr()), ms(30));

    // Second sample, 18 ms: RTTVAR = 3/4·5 + 1/4·8 = 5.75;
    // SRTT = 7/8·10 + 1/8·18 = 11; RTO = 11 + 23 = 34 ms.
    let t1 = start + ms(100);
    a.send(b_addr(), "m1").ok();
    a.poll_transmit(t1, &mut buf);
    feed(&mut a, t1 + ms(18), b_addr(), &ack_below(2));
    assert_eq!(a.srtt(b_addr()), Some(ms(11)));
    assert_eq!(a.rto(b_addr()), ms(34));

    // Karn: a retransmitted message gives no sample, however late its ack.
    let t2 = start + ms(200);
    a.send(b_addr(), "m2").ok();
    a.poll_transmit(t2, &mut buf);
    a.handle_timeout(t2 + ms(34));
    assert!(a.poll_transmit(t2 + ms(34), &mut buf).is_some());
    assert_eq!(a.stats().retransmits, 1);
    // Until a new sample, new messages start from the backed-off timeout.
    assert_eq!(a.rto(b_addr()), ms(68));
    feed(&mut a, t2 + ms(500), b_addr(), &ack_below(3));
    assert_eq!(a.srtt(b_addr()), Some(ms(11)));
    assert_eq!(a.in_flight(b_addr()), 0);

    // A clean sample ends the backoff.
    let t3 = start + ms(1000);
    a.send(b_addr(), "m3").ok();
    a.poll_transmit(t3, &mut buf);
    feed(&mut a, t3 + ms(11), b_addr(), &ack_below(4));
    assert_eq!(a.srtt(b_addr()), Some(ms(11)));
    assert!(a.rto(b_addr()) < ms(68));
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn rto_is_clamped_to_min_and_to_a_fraction_of_the_budget() {
    let start = Instant::now();
    let config = TransportConfig {
        min_rto: ms(2),
        max_rto: ms(300),
        retries: 10,
        ..config()
    };
    let mut a = Transport::new(A, config);
    let mut buf = vec![0; MAX_DATAGRAM];
    // A loopback round trip of 20 µs gives the minimum, 2 ms.
    a.send(b_addr(), "fast").ok();
    a.poll_transmit(start, &mut buf);
    let fast = start + Duration::from_micros(20);
    feed(&mut a, fast, b_addr(), &ack_below(1));
    assert_eq!(a.rto(b_addr()), ms(2));
    // Backoff doubles per retry but stops at max_rto.
    a.send(b_addr(), "lost").ok();
    let times: Vec<Instant> = run_timers_to_the_end(&mut a, fast)
        .into_iter()
        .filter(|(_, seq, _)| *seq == 1)
        .map(|(at, _, _)| at)
        .collect();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Doubling, but never past a 64th of the budget (10 × 300 ms), so
    // a silent recipient is probed at least 64 times before it is given up.
    // (Probes go out between the timeouts, from a millisecond on.)
    let probe = ms(300) * 10 / PROBES;
    assert!(
        gaps.iter().all(|gap| *gap >= ms(1) && *gap <= probe),
        "{gaps:?}"
    );
    assert!(gaps.len() >= PROBES as usize, "{gaps:?}");
    assert!(*times.last().unwrap() - times[0] < ms(3000), "{gaps:?}");
    assert_eq!(a.stats().gave_up, 1);
}

#[test]
fn window_limits_in_flight_and_the_queue_drains_in_order() {
    let now = Instant::now();
    let config = TransportConfig {
        window: 4,
        datagram_size: 1,
        ..config()
    };
    let mut a = Transport::new(A, config);
    let mut b = receiver();
    for i in 0..10 {
        a.send(b_addr(), format!("m{i}")).ok();
    }
    assert_eq!(a.in_flight(b_addr()), 4);
    assert_eq!(a.queued(b_addr()), 6);
    let first = transmit_all(&mut a, now);
    assert_eq!(first.len(), 4);
    let mut delivered = Vec::new();
    let mut in_the_air = first;
    while !in_the_air.is_empty() {
        for (_, d) in &in_the_air {
            delivered.extend(feed(&mut b, now, a_addr(), d));
        }
        for (_, ack) in transmit_all(&mut b, now) {
            feed(&mut a, now, b_addr(), &ack);
        }
        in_the_air = transmit_all(&mut a, now);
        assert!(in_the_air.len() <= 4);
    }
    let expected: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    assert_eq!(delivered, expected);
    assert_eq!(a.queued(b_addr()), 0);
    assert_eq!(a.in_flight(b_addr()), 0);
}

#[test]
fn window_counts_from_the_floor_not_the_number_in_flight() {
    let now = Instant::now();
    let config = TransportConfig {
        window: 4,
        datagram_size: 1,
        ..config()
    };
    let mut a = Transport::new(A, config);
    for i in 0..8 {
        a.send(b_addr(), format!("m{i}")).ok();
    }
    transmit_all(&mut a, now);
    // Acks for 1..3 while 0 is outstanding do not open the window: the
    // recipient could not buffer seq 4 + floor 0 in a window of 4.
    // (They do retransmit 0 at once: three acks past it.)
    feed(&mut a, now, b_addr(), &ack(B, A, 0, &[(1, 4)]));
    assert_eq!(
        data_of(&transmit_all(&mut a, now)),
        [(0, 0, "m0".to_owned())]
    );
    feed(&mut a, now, b_addr(), &ack_below(4));
    assert_eq!(
        data_of(&transmit_all(&mut a, now))
            .iter()
            .map(|(seq, floor, _)| (*seq, *floor))
            .collect::<Vec<_>>(),
        [(4, 4), (5, 4), (6, 4), (7, 4)]
    );
}

#[test]
fn data_beyond_the_receive_window_is_dropped_unacked() {
    let now = Instant::now();
    let config = TransportConfig {
        receive_window: 8,
        ..config()
    };
    let mut b = Transport::new(B, config);
    feed(&mut b, now, a_addr(), &data(A, 8, 0, "too far"));
    assert_eq!(b.stats().out_of_window, 1);
    assert!(transmit_all(&mut b, now).is_empty());
    feed(&mut b, now, a_addr(), &data(A, 7, 0, "just in"));
    assert_eq!(acks_of(&transmit_all(&mut b, now)), [(0, vec![(7, 8)])]);
}

#[test]
fn sequence_number_two_to_the_64_minus_1_does_not_wedge() {
    let now = Instant::now();
    let mut b = receiver();
    let max = u64::MAX;
    assert_eq!(
        feed(&mut b, now, a_addr(), &data(A, max, max, "last")),
        ["last"]
    );
    assert_eq!(
        feed(&mut b, now, a_addr(), &data(A, max, max, "last")),
        Vec::<String>::new()
    );
    assert_eq!(
        feed(&mut b, now, a_addr(), &data(A, 0, 0, "old")),
        Vec::<String>::new()
    );
    // Below 2^64 − 1 everything is received; 2^64 − 1 itself cannot be
    // said (it would take 2^64), so its sender keeps it until it gives up.
    assert_eq!(acks_of(&transmit_all(&mut b, now)), [(max, vec![])]);
    // The peer can still restart and be heard.
    assert_eq!(
        feed(&mut b, now, a_addr(), &data(0xA2, 0, 0, "new")),
        ["new"]
    );
    // A floor of 2^64 − 1 ahead of a hole skips it without looping.
    let mut c = receiver();
    feed(&mut c, now, a_addr(), &data(A, 0, 0, "zero"));
    assert_eq!(
        feed(&mut c, now, a_addr(), &data(A, max, max, "end")),
        ["end"]
    );
    assert_eq!(c.stats().skipped, max - 1);
}

#[test]
fn floor_above_seq_is_read_as_seq() {
    let now = Instant::now();
    let mut b = receiver();
    feed(&mut b, now, a_addr(), &data(A, 0, 0, "zero"));
    assert_eq!(feed(&mut b, now, a_addr(), &data(A, 1, 9, "one")), ["one"]);
    assert_eq!(feed(&mut b, now, a_addr(), &data(A, 2, 2, "two")), ["two"]);
}

#[test]
fn undecodable_datagram_is_counted_and_dropped() {
    let now = Instant::now();
    let mut b = receiver();
    let mut delivered = 0;
    for junk in [&[][..], &[2, 9, 9], &[2, 0, 0]] {
        assert!(b
            .receive(now, a_addr(), junk, |_, _| delivered += 1)
            .is_err());
    }
    // A key byte we have no key for is counted as unauthenticated.
    assert_eq!(b.stats().undecodable, 2);
    assert_eq!(b.stats().unauthenticated, 1);
    assert_eq!(b.stats().received, 0);
    assert_eq!(delivered, 0);
    assert!(transmit_all(&mut b, now).is_empty());
}

#[test]
fn oversized_or_empty_message_is_refused_at_send() {
    let mut a = Transport::new(A, config());
    let big = "x".repeat(MAX_MESSAGE_LEN + 1);
    assert_eq!(
        a.send(b_addr(), big),
        Err(SendError::TooLarge {
            len: MAX_MESSAGE_LEN + 1,
            max: MAX_MESSAGE_LEN
        })
    );
    assert_eq!(a.send(b_addr(), ""), Err(SendError::Empty));
    assert_eq!(a.send(b_addr(), "x".repeat(MAX_MESSAGE_LEN)), Ok(0));
    let mut buf = vec![0; MAX_DATAGRAM];
    assert!(a.poll_transmit(Instant::now(), &mut buf).is_some());
}

#[test]
fn small_transmit_buffer_loses_the_packet_not_the_message() {
    let now = Instant::now();
    let mut a = Transport::new(A, config());
    a.send(b_addr(), "does not fit ten bytes").ok();
    let mut small = [0u8; 10];
    assert_eq!(a.poll_transmit(now, &mut small), None);
    assert_eq!(a.stats().encode_failures, 1);
    // The timer still runs: the message is retransmitted later.
    let later = a.poll_timeout().unwrap_or(now);
    a.handle_timeout(later);
    assert_eq!(data_of(&transmit_all(&mut a, later)).len(), 1);
}

#[test]
fn recipient_restart_announces_the_floor() {
    let now = Instant::now();
    let mut a = Transport::new(A, config());
    a.send(b_addr(), "m0").ok();
    a.send(b_addr(), "m1").ok();
    transmit_all(&mut a, now);
    // The old life of b acks 1, then b restarts and its new life acks 0:
    // the new life may hold messages waiting for 1, which will never come.
    feed(&mut a, now, b_addr(), &ack(B, A, 0, &[(1, 2)]));
    feed(&mut a, now, b_addr(), &ack(0xB2, A, 1, &[]));
    // The new life does not hold 1 (its ack does not list it): sent again,
    // and once everything is acknowledged, the floor is announced.
    assert_eq!(
        data_of(&transmit_all(&mut a, now)),
        [(1, 1, "m1".to_owned())]
    );
    feed(&mut a, now, b_addr(), &ack(0xB2, A, 2, &[]));
    assert_eq!(data_of(&transmit_all(&mut a, now)), [(2, 2, String::new())]);
}

#[test]
fn forget_drops_everything_about_a_peer() {
    let now = Instant::now();
    let mut a = Transport::new(A, config());
    a.send(b_addr(), "m0").ok();
    a.send(b_addr(), "m1").ok();
    transmit_all(&mut a, now);
    assert_eq!(a.forget(b_addr()), 2);
    assert_eq!(a.in_flight(b_addr()), 0);
    // Its timers are stale now: nothing is retransmitted.
    if let Some(deadline) = a.poll_timeout() {
        a.handle_timeout(deadline);
    }
    assert!(transmit_all(&mut a, now).is_empty());
    assert_eq!(a.poll_timeout(), None);
    // Met again, it is a new stream, above every number it was sent.
    assert_eq!(a.send(b_addr(), "again"), Ok(2));
}

#[test]
fn acked_timers_do_not_pile_up() {
    let mut now = Instant::now();
    let mut a = Transport::new(A, config());
    for i in 0..10_000u64 {
        a.send(b_addr(), "m").ok();
        transmit_all(&mut a, now);
        now += Duration::from_micros(1);
        feed(&mut a, now, b_addr(), &ack_below(i + 1));
    }
    assert!(a.timers.len() <= 64, "{} timers kept", a.timers.len());
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn an_ack_from_a_new_incarnation_reports_the_peer_restarted() {
    let mut a = Transport::new(A, config());
    let now = Instant::now();
    a.send(b_addr(), "one").unwrap();
    transmit_all(&mut a, now);
    feed(&mut a, now, b_addr(), &ack_below(1));
    assert_eq!(a.peer_incarnation(b_addr()), Some(B));
    assert_eq!(a.last_heard(b_addr()), Some(now));
    assert_eq!(a.poll_event(), None);
    // b restarts as 0xC and acks the next message: no Data from it needed.
    a.send(b_addr(), "two").unwrap();
    transmit_all(&mut a, now);
    let later = now + Duration::from_millis(5);
    feed(&mut a, later, b_addr(), &ack(0xC, A, 2, &[]));
    assert_eq!(
        a.poll_event(),
        Some(TransportEvent::PeerRestarted {
            peer: b_addr(),
            previous: B,
            incarnation: 0xC
        })
    );
    assert_eq!(a.last_heard(b_addr()), Some(later));
}

#[test]
fn an_ack_for_another_incarnation_of_ours_is_not_hearing_from_the_peer() {
    let mut a = Transport::new(A, config());
    let now = Instant::now();
    a.send(b_addr(), "one").unwrap();
    transmit_all(&mut a, now);
    feed(&mut a, now, b_addr(), &ack(B, 0xDEAD, 1, &[]));
    assert_eq!(a.last_heard(b_addr()), None);
}

#[test]
fn idle_peers_are_forgotten_after_peer_idle() {
    let config = config();
    let idle = config.peer_idle;
    let mut b = Transport::new(B, config);
    let now = Instant::now();
    // Three senders, each delivering one message.
    for port in 5000..5003 {
        feed(&mut b, now, addr(port), &data(A, 0, 0, "hi"));
    }
    transmit_all(&mut b, now);
    assert_eq!(b.peers(), 3);
    // The sweeps run when the transport is given the time.
    b.handle_timeout(now);
    b.handle_timeout(now + idle / 2);
    assert_eq!(b.peers(), 3);
    // One sender goes on talking; the others are forgotten.
    let later = now + idle;
    feed(&mut b, later, addr(5000), &data(A, 1, 1, "still here"));
    transmit_all(&mut b, later);
    b.handle_timeout(later);
    b.handle_timeout(now + idle * 3 / 2);
    assert_eq!(b.peers(), 1);
    assert_eq!(b.stats().peers_forgotten, 2);
}

#[test]
fn a_peer_with_messages_in_flight_is_never_forgotten() {
    let config = TransportConfig {
        retries: 1000,
        ..config()
    };
    let idle = config.peer_idle;
    let mut a = Transport::new(A, config);
    let now = Instant::now();
    a.send(b_addr(), "unanswered").unwrap();
    for i in 0..10u32 {
        let t = now + idle * i;
        a.handle_timeout(t);
        transmit_all(&mut a, t);
    }
    assert_eq!(a.peers(), 1);
    assert_eq!(a.in_flight(b_addr()), 1);
}

#[test]
fn a_sender_that_forgot_an_idle_recipient_is_not_taken_for_duplicates() {
    // The sender forgets its idle recipient; the recipient still remembers
    // the sender's stream. The next message must be delivered, not acked
    // as a duplicate and dropped.
    let config = config();
    let idle = config.peer_idle;
    let mut a = Transport::new(A, config.clone());
    let mut b = Transport::new(
        B,
        TransportConfig {
            peer_idle: idle * 10,
            ..config
        },
    );
    let now = Instant::now();
    for text in ["one", "two"] {
        a.send(b_addr(), text).unwrap();
        for (_, d) in transmit_all(&mut a, now) {
            assert_eq!(feed(&mut b, now, a_addr(), &d), [text]);
        }
        for (_, d) in transmit_all(&mut b, now) {
            feed(&mut a, now, b_addr(), &d);
        }
    }
    a.handle_timeout(now);
    a.handle_timeout(now + idle);
    a.handle_timeout(now + idle * 2);
    assert_eq!(a.peers(), 0, "a forgot b");
    let later = now + idle * 2;
    a.send(b_addr(), "three").unwrap();
    let datagrams = transmit_all(&mut a, later);
    let got: Vec<String> = datagrams
        .iter()
        .flat_map(|(_, d)| feed(&mut b, later, a_addr(), d))
        .collect();
    assert_eq!(got, ["three"]);
}

#[test]
fn at_most_max_peers_are_remembered_and_a_forgotten_ones_retransmission_is_a_duplicate() {
    let config = TransportConfig {
        max_peers: 8,
        ..config()
    };
    let mut b = Transport::new(B, config);
    let now = Instant::now();
    // Twenty senders, one message each: b keeps at most 8 of them.
    for port in 5000..5020 {
        // Half a second apart: peers quiet for EVICT_AFTER may go.
        let t = now + Duration::from_millis(500 * u64::from(port - 5000));
        let data = data(A, 0, 0, "hi");
        assert_eq!(feed(&mut b, t, addr(port), &data), ["hi"]);
        transmit_all(&mut b, t);
        assert!(b.peers() <= 8, "{} peers", b.peers());
    }
    assert!(b.stats().peers_forgotten >= 12);
    // The first sender, long forgotten, retransmits its message (its ack
    // was lost): a duplicate, acked, not delivered again.
    let later = now + Duration::from_secs(30);
    let again = data(A, 0, 0, "hi");
    assert_eq!(
        feed(&mut b, later, addr(5000), &again),
        Vec::<String>::new()
    );
    assert_eq!(acks_of(&transmit_all(&mut b, later)), [(1, vec![])]);
    // And its next message is delivered.
    let next = data(A, 1, 1, "more");
    assert_eq!(feed(&mut b, later, addr(5000), &next), ["more"]);
}

#[test]
fn tombstones_go_once_no_retransmission_from_their_peers_can_arrive() {
    let config = TransportConfig {
        max_peers: 8,
        ..config()
    };
    let idle = config.peer_idle;
    let mut b = Transport::new(B, config);
    let now = Instant::now();
    for port in 5000..5020 {
        let t = now + Duration::from_millis(500 * u64::from(port - 5000));
        feed(&mut b, t, addr(port), &data(A, 0, 0, "hi"));
        transmit_all(&mut b, t);
        b.handle_timeout(t);
    }
    assert!(!b.tombstones.is_empty(), "evicted peers were buried");
    // Within peer_idle of being heard, a forgotten sender's retransmission
    // is still known for a duplicate, sweeps or not.
    let mid = now + idle / 2 + Duration::from_secs(10);
    b.handle_timeout(mid);
    assert_eq!(
        feed(&mut b, mid, addr(5001), &data(A, 0, 0, "hi")),
        Vec::<String>::new()
    );
    transmit_all(&mut b, mid);
    assert!(!b.tombstones.is_empty());
    // Past it, every peer is forgotten (quiet ones need no tombstone) and
    // the table is let go.
    for halves in 2..=8 {
        b.handle_timeout(mid + idle * halves / 2);
    }
    assert_eq!(b.peers(), 0);
    assert!(b.tombstones.is_empty());
    assert!(b.gave_back(), "the sweeps let go of memory");
    assert!(!b.gave_back(), "and said so once");
}

#[test]
fn a_sender_gone_behind_a_hole_is_forgotten_once_silent() {
    // Messages 1 and 2 arrive, 0 never will (its sender died): they are
    // buffered behind the hole. Once the sender has been silent for
    // peer_idle, the peer can be forgotten like an idle one.
    let config = config();
    let idle = config.peer_idle;
    let mut b = Transport::new(B, config);
    let now = Instant::now();
    for seq in [1, 2] {
        feed(&mut b, now, a_addr(), &data(A, seq, 0, "later"));
    }
    transmit_all(&mut b, now);
    assert_eq!(b.buffered(a_addr()), 2);
    b.handle_timeout(now);
    b.handle_timeout(now + idle / 2);
    assert_eq!(b.peers(), 1, "heard recently: kept");
    b.handle_timeout(now + idle);
    b.handle_timeout(now + idle * 2);
    assert_eq!(b.peers(), 0);
}

#[test]
fn a_recipient_silent_for_the_whole_retry_budget_gets_no_announcement() {
    // It never answered (gone, or cut off): announcing the floor to it
    // would only keep retrying; the next message carries the floor.
    let start = Instant::now();
    let mut a = Transport::new(A, config());
    a.send(b_addr(), "lost").ok();
    let sent = run_timers_to_the_end(&mut a, start);
    assert!(sent.len() > 4, "tried for the whole budget: {sent:?}");
    assert_eq!(a.stats().gave_up, 1);
    assert_eq!(a.stats().announcements, 0);
    assert_eq!(a.in_flight(b_addr()), 0);
    a.send(b_addr(), "next").ok();
    assert_eq!(
        data_of(&transmit_all(&mut a, start)),
        [(1, 1, "next".to_owned())]
    );
}

#[test]
fn a_forgotten_senders_late_duplicate_is_known_even_after_we_sent_to_it() {
    let now = Instant::now();
    let mut b = Transport::new(B, config());
    let data = data(A, 0, 0, "once");
    assert_eq!(feed(&mut b, now, a_addr(), &data), ["once"]);
    transmit_all(&mut b, now);
    b.forget(a_addr());
    // We send to it again (a reply), making a new record without a window.
    b.send(a_addr(), "reply").unwrap();
    transmit_all(&mut b, now);
    // A late copy of its message arrives: a duplicate.
    assert_eq!(feed(&mut b, now, a_addr(), &data), Vec::<String>::new());
    assert_eq!(b.stats().duplicates, 1);
}

#[test]
fn several_messages_share_a_datagram_up_to_datagram_size() {
    let now = Instant::now();
    let mut a = Transport::new(A, config());
    for i in 0..200 {
        a.send(b_addr(), format!("message {i:04}")).ok();
    }
    let out = transmit_all(&mut a, now);
    assert_eq!(data_of(&out).len(), 200);
    let size = config().datagram_size;
    assert!(out.iter().all(|(_, d)| d.len() <= size));
    // 17 bytes a frame: about 86 per datagram.
    assert_eq!(
        out.len(),
        3,
        "{:?}",
        out.iter().map(|(_, d)| d.len()).collect::<Vec<_>>()
    );
    // A message larger than a batch goes alone, whole.
    let big = "x".repeat(5000);
    a.send(b_addr(), big.clone()).ok();
    let out = transmit_all(&mut a, now);
    assert_eq!(out.len(), 1);
    assert_eq!(data_of(&out)[0].2, big);
}

#[test]
fn one_datagram_is_acked_after_ack_delay_and_two_at_once() {
    let now = Instant::now();
    let delayed = TransportConfig::default();
    let delay = delayed.ack_delay;
    let mut b = Transport::new(B, delayed);
    feed(&mut b, now, a_addr(), &data(A, 0, 0, "one"));
    assert!(
        transmit_all(&mut b, now).is_empty(),
        "waits for a reply to carry it"
    );
    assert!(!b.is_idle(), "an ack is owed");
    assert_eq!(b.poll_timeout(), Some(now + delay));
    b.handle_timeout(now + delay);
    let out = transmit_all(&mut b, now + delay);
    assert_eq!(acks_of(&out), [(1, vec![])]);
    assert_eq!(b.stats().lone_acks, 1);
    assert!(b.is_idle());
    // Two datagrams unacknowledged: acked at once.
    feed(&mut b, now, a_addr(), &data(A, 1, 1, "two"));
    feed(&mut b, now, a_addr(), &data(A, 2, 1, "three"));
    assert_eq!(acks_of(&transmit_all(&mut b, now)), [(3, vec![])]);
    // Out of order: at once, with the range.
    feed(&mut b, now, a_addr(), &data(A, 5, 3, "six"));
    assert_eq!(acks_of(&transmit_all(&mut b, now)), [(3, vec![(5, 6)])]);
}

#[test]
fn a_reply_carries_the_ack_of_the_request() {
    let now = Instant::now();
    let mut b = Transport::new(B, TransportConfig::default());
    feed(&mut b, now, a_addr(), &data(A, 0, 0, "ping"));
    b.send(a_addr(), "pong").ok();
    let out = transmit_all(&mut b, now);
    assert_eq!(out.len(), 1);
    assert_eq!(acks_of(&out), [(1, vec![])]);
    assert_eq!(data_of(&out), [(0, 0, "pong".to_owned())]);
    assert_eq!(b.stats().lone_acks, 0);
    // No ack is left to send alone when the delay has passed.
    let later = now + TransportConfig::default().ack_delay;
    b.handle_timeout(later);
    assert!(transmit_all(&mut b, later).is_empty());
}

#[test]
fn a_message_reported_received_is_not_retransmitted_at_its_timeout() {
    let now = Instant::now();
    let mut a = Transport::new(A, config());
    a.send(b_addr(), "lost").ok();
    a.send(b_addr(), "arrived").ok();
    transmit_all(&mut a, now);
    feed(&mut a, now, b_addr(), &ack(B, A, 0, &[(1, 2)]));
    let later = a.poll_timeout().unwrap();
    a.handle_timeout(later);
    assert_eq!(
        data_of(&transmit_all(&mut a, later)),
        [(0, 0, "lost".to_owned())]
    );
    assert_eq!(a.in_flight(b_addr()), 2);
    feed(&mut a, later, b_addr(), &ack_below(2));
    assert_eq!(a.in_flight(b_addr()), 0);
}

#[test]
fn a_message_the_recipient_no_longer_reports_is_sent_again() {
    let now = Instant::now();
    let mut a = Transport::new(A, config());
    for text in ["zero", "one", "two"] {
        a.send(b_addr(), text).ok();
    }
    transmit_all(&mut a, now);
    feed(&mut a, now, b_addr(), &ack(B, A, 0, &[(1, 3)]));
    assert!(transmit_all(&mut a, now).is_empty());
    // It forgot us meanwhile (what it held ahead of the hole is gone): it
    // acknowledges the retransmission of 0 alone.
    feed(&mut a, now, b_addr(), &ack_below(1));
    assert_eq!(
        data_of(&transmit_all(&mut a, now)),
        [(1, 1, "one".to_owned()), (2, 1, "two".to_owned())]
    );
}

#[test]
fn the_congestion_window_halves_at_a_loss_and_grows_back() {
    let mut now = Instant::now();
    let mut a = Transport::new(A, config());
    let window = config().window;
    assert_eq!(a.congestion_window(b_addr()), window);
    for i in 0..window as u64 {
        a.send(b_addr(), format!("m{i}")).ok();
        transmit_all(&mut a, now);
    }
    // 0 is lost, the rest arrives.
    feed(&mut a, now, b_addr(), &ack(B, A, 0, &[(1, window as u64)]));
    assert_eq!(a.congestion_window(b_addr()), window / 2);
    assert_eq!(a.stats().window_reductions, 1);
    // Another loss of the same round trip does not halve it again.
    let later = now + Duration::from_secs(1);
    a.handle_timeout(later);
    assert_eq!(a.congestion_window(b_addr()), window / 2);
    feed(&mut a, later, b_addr(), &ack_below(window as u64));
    // A clean stream grows it back, one for each window's worth.
    let mut next = window as u64;
    while a.congestion_window(b_addr()) < window && next < 100_000 {
        now += Duration::from_millis(1);
        a.send(b_addr(), "more").ok();
        transmit_all(&mut a, now);
        next += 1;
        feed(&mut a, now, b_addr(), &ack_below(next));
    }
    assert_eq!(a.congestion_window(b_addr()), window);
    let grown = next - window as u64;
    assert!(
        grown > 10_000 && grown < 30_000,
        "{grown} messages to grow back"
    );
}

#[test]
fn buffering_ahead_of_a_hole_is_capped_per_peer_and_in_total() {
    let now = Instant::now();
    let mut b = Transport::new(
        B,
        TransportConfig {
            max_buffered_per_peer: 10_000,
            max_buffered: 15_000,
            ..config()
        },
    );
    let text = "x".repeat(1_000);
    for seq in 1..100 {
        feed(&mut b, now, a_addr(), &data(A, seq, 0, &text));
    }
    assert!(b.buffered_bytes() <= 10_000, "{}", b.buffered_bytes());
    let one = b.buffered(a_addr());
    assert!(one > 5 && one < 10, "{one}");
    for seq in 1..100 {
        feed(&mut b, now, addr(5000), &data(A, seq, 0, &text));
    }
    assert!(b.buffered_bytes() <= 15_000, "{}", b.buffered_bytes());
    assert!(b.stats().over_capacity > 150);
    // The next message in order always gets through, and lets the rest go.
    let got = feed(&mut b, now, a_addr(), &data(A, 0, 0, "first"));
    assert_eq!(got.len(), one + 1);
    assert!(b.buffered_bytes() < 10_000);
}

#[test]
fn past_the_hard_limit_a_new_peer_takes_an_idle_ones_place_or_is_refused() {
    let now = Instant::now();
    let max = 4;
    let hard = max * HARD_PEER_FACTOR;
    let mut b = Transport::new(
        B,
        TransportConfig {
            max_peers: max,
            ..config()
        },
    );
    // Busy peers: each holds a message behind a hole.
    for port in 0..hard as u16 {
        feed(&mut b, now, addr(6000 + port), &data(A, 1, 0, "held"));
    }
    assert_eq!(b.peers(), hard);
    feed(&mut b, now, addr(7000), &data(A, 0, 0, "new"));
    assert_eq!(b.peers(), hard);
    assert_eq!(b.stats().peers_refused, 1);
    // One drains (its hole fills): it is idle, and makes room.
    feed(&mut b, now, addr(6000), &data(A, 0, 0, "filled"));
    transmit_all(&mut b, now);
    let later = now + Duration::from_millis(5);
    assert_eq!(
        feed(&mut b, later, addr(7000), &data(A, 0, 0, "new")),
        ["new"]
    );
    assert_eq!(b.peers(), hard);
}

#[test]
fn another_version_is_counted_and_reported_once_per_peer() {
    let now = Instant::now();
    let mut b = receiver();
    let v1 = [1u8, 5, 0, 0, 0, 2, b'h', b'i'];
    for _ in 0..3 {
        assert_eq!(
            b.receive(now, a_addr(), &v1, |_, _| {}),
            Err(WireError::UnknownVersion(1))
        );
    }
    assert_eq!(b.stats().wrong_version, 3);
    assert_eq!(b.stats().undecodable, 0);
    assert_eq!(
        b.poll_event(),
        Some(TransportEvent::WrongVersion {
            peer: a_addr(),
            version: 1
        })
    );
    assert_eq!(b.poll_event(), None);
}

#[test]
fn a_silent_recipient_has_everything_in_flight_given_up_at_once() {
    let start = Instant::now();
    let mut a = Transport::new(A, config());
    for text in ["zero", "one", "two"] {
        a.send(b_addr(), text).ok();
    }
    transmit_all(&mut a, start);
    // It holds 1 and 2 ahead of the hole, then falls silent.
    feed(&mut a, start, b_addr(), &ack(B, A, 0, &[(1, 3)]));
    run_timers_to_the_end(&mut a, start);
    let mut given_up = Vec::new();
    while let Some(event) = a.poll_event() {
        if let TransportEvent::GaveUp { seq, .. } = event {
            given_up.push(seq);
        }
    }
    assert_eq!(given_up, [0, 1, 2]);
    assert_eq!(a.in_flight(b_addr()), 0);
}

#[test]
fn senders_gone_behind_holes_give_back_everything_they_held() {
    let now = Instant::now();
    let config = TransportConfig {
        peer_idle: Duration::from_secs(2),
        ..config()
    };
    let mut b = Transport::new(B, config);
    let text = "x".repeat(1000);
    for port in 0..300 {
        for seq in 1..100 {
            feed(&mut b, now, addr(10_000 + port), &data(A, seq, 0, &text));
        }
        transmit_all(&mut b, now);
    }
    assert!(b.buffered_bytes() > 20 << 20, "{}", b.buffered_bytes());
    let mut t = now;
    while t < now + Duration::from_secs(6) {
        t += Duration::from_millis(100);
        b.handle_timeout(t);
    }
    assert_eq!(b.peers(), 0);
    assert_eq!(b.buffered_bytes(), 0);
}

// ------------------------------------------------------------ sealed

/// The cluster key of these tests, and another cluster's.
fn cluster_keys() -> Arc<Keys> {
    Arc::new(Keys::parse(&"5e".repeat(32)).unwrap())
}

fn other_keys() -> Arc<Keys> {
    Arc::new(Keys::parse(&"a7".repeat(32)).unwrap())
}

/// Unix time at the tests' `now`.
const UNIX: Duration = Duration::from_secs(1_800_000_000);

/// A transport with `keys`, its clock reading [`UNIX`] at `now`.
fn sealed(incarnation: u64, keys: Arc<Keys>, now: Instant) -> Transport {
    let mut t = Transport::new(
        incarnation,
        TransportConfig {
            keys: Some(keys),
            ..config()
        },
    );
    t.set_clock(now, UNIX);
    t.set_local_addr(b_addr());
    t
}

/// A datagram of `message` from a sealed transport of `incarnation`.
fn sealed_data(incarnation: u64, keys: Arc<Keys>, now: Instant, message: &str) -> Vec<u8> {
    let mut a = sealed(incarnation, keys, now);
    a.send(b_addr(), message).unwrap();
    let mut out = transmit_all(&mut a, now);
    assert_eq!(out.len(), 1);
    out.remove(0).1
}

#[test]
fn sealed_transports_deliver_to_each_other_and_nothing_unsealed_gets_in() {
    let now = Instant::now();
    let mut b = sealed(B, cluster_keys(), now);
    let request = sealed_data(A, cluster_keys(), now, "stop 5000");
    assert_eq!(feed(&mut b, now, a_addr(), &request), ["stop 5000"]);
    // The ack goes back sealed.
    let acks = transmit_all(&mut b, now);
    assert_eq!(acks.len(), 1);
    assert!(wire::decode(&acks[0].1).is_err());
    assert!(wire::open(&acks[0].1, &cluster_keys(), a_addr()).is_ok());

    // Unsealed, or sealed with another cluster's key: dropped before it
    // is read, counted, no peer made, nothing sent back.
    let mut c = sealed(B, cluster_keys(), now);
    let forged = [
        data(A, 0, 0, "stop 5000"),
        sealed_data(A, other_keys(), now, "stop 5000"),
    ];
    for datagram in &forged {
        assert!(c
            .receive(now, a_addr(), datagram, |_, m| panic!("{m}"))
            .is_err());
    }
    let mut tampered = request.clone();
    let last = tampered.len() - 20;
    tampered[last] ^= 1;
    assert!(c
        .receive(now, a_addr(), &tampered, |_, m| panic!("{m}"))
        .is_err());
    assert_eq!(c.stats().unauthenticated, 3);
    assert_eq!((c.stats().received, c.peers()), (0, 0));
    assert!(transmit_all(&mut c, now).is_empty());
}

#[test]
fn a_sealed_datagram_replayed_beyond_the_skew_is_refused() {
    let now = Instant::now();
    let skew = TransportConfig::default().max_skew;
    let request = sealed_data(A, cluster_keys(), now, "stop 5000");
    // A receiver whose clock is ahead by the skew: still in time.
    let mut b = sealed(B, cluster_keys(), now);
    b.set_clock(now, UNIX + skew);
    assert_eq!(feed(&mut b, now, a_addr(), &request), ["stop 5000"]);
    // A second later than that (or behind by as much): a replay.
    for clock in [
        UNIX + skew + Duration::from_secs(1),
        UNIX - skew - Duration::from_secs(1),
    ] {
        let mut late = sealed(B, cluster_keys(), now);
        late.set_clock(now, clock);
        assert_eq!(
            late.receive(now, a_addr(), &request, |_, m| panic!("{m}")),
            Err(WireError::Outdated(1_800_000_000))
        );
        assert_eq!(late.stats().outdated, 1);
        assert_eq!(late.peers(), 0);
    }
}

#[test]
fn a_replay_of_an_earlier_incarnation_is_refused_for_good_when_sealed() {
    let now = Instant::now();
    let old = incarnation_at(UNIX, 1);
    let new = incarnation_at(UNIX + Duration::from_millis(1), 0);
    assert!(old < new, "a later start has a larger incarnation");
    let captured = sealed_data(old, cluster_keys(), now, "died 4000");
    let mut b = sealed(B, cluster_keys(), now);
    assert_eq!(feed(&mut b, now, a_addr(), &captured), ["died 4000"]);
    transmit_all(&mut b, now);
    // The sender restarts at the same address.
    let fresh = sealed_data(new, cluster_keys(), now, "hello");
    assert_eq!(feed(&mut b, now, a_addr(), &fresh), ["hello"]);
    transmit_all(&mut b, now);
    // Long after `retired_for`, the earlier life's datagram comes again
    // (within the skew): refused, the live incarnation untouched.
    let later = now + b.config().retired_for * 5;
    assert_eq!(
        feed(&mut b, later, a_addr(), &captured),
        Vec::<String>::new()
    );
    assert_eq!(b.stats().stale, 1);
    assert_eq!(b.peer_incarnation(a_addr()), Some(new));
    assert!(transmit_all(&mut b, later).is_empty(), "not acknowledged");
    // And a replay of the live incarnation's own datagram is a duplicate.
    assert_eq!(feed(&mut b, later, a_addr(), &fresh), Vec::<String>::new());
    assert_eq!(b.stats().duplicates, 1);
}

#[test]
fn unsealed_an_earlier_incarnation_is_taken_back_after_retired_for_as_today() {
    // Without a key, incarnations are not trusted to be ordered: an
    // earlier one is refused only for `retired_for`.
    let now = Instant::now();
    let mut b = receiver();
    assert_eq!(feed(&mut b, now, a_addr(), &data(A, 0, 0, "one")), ["one"]);
    assert_eq!(
        feed(&mut b, now, a_addr(), &data(A + 1, 0, 0, "two")),
        ["two"]
    );
    let later = now + b.config().retired_for * 2;
    assert_eq!(
        feed(&mut b, later, a_addr(), &data(A, 0, 0, "one")),
        ["one"]
    );
}

#[test]
fn a_sealed_datagram_replayed_from_another_address_is_refused() {
    // An attacker without the key captures a sealed `stop` and sends it
    // again, within the skew, from an address of its own: the incarnation
    // it carries lives at another address.
    let now = Instant::now();
    let captured = sealed_data(A, cluster_keys(), now, "stop 5000");
    let mut b = sealed(B, cluster_keys(), now);
    assert_eq!(feed(&mut b, now, a_addr(), &captured), ["stop 5000"]);
    transmit_all(&mut b, now);
    let later = now + Duration::from_secs(5);
    assert_eq!(
        feed(&mut b, later, addr(6666), &captured),
        Vec::<String>::new()
    );
    assert_eq!(b.stats().stale, 1);
    assert!(transmit_all(&mut b, later).is_empty(), "not acknowledged");
    // Remembered for twice the skew, then forgotten with the sweeps.
    let skew = b.config().max_skew;
    let idle = b.config().peer_idle;
    for step in 1..=8 {
        b.handle_timeout(now + idle * step / 2);
    }
    assert!(b.incarnations.is_empty());
    assert!(now + idle * 4 > now + skew * 2);
}

#[test]
fn a_sealed_datagram_is_refused_by_any_recipient_but_its_own() {
    // Captured on its way to b, sent to another receiver that runs a
    // machine on the same port, say: sealed for b, refused there.
    let now = Instant::now();
    let captured = sealed_data(A, cluster_keys(), now, "stop 5000");
    let mut c = sealed(B, cluster_keys(), now);
    c.set_local_addr(addr(4002));
    assert_eq!(
        c.receive(now, a_addr(), &captured, |_, m| panic!("{m}")),
        Err(WireError::BadTag(cluster_keys().current().id()))
    );
    assert_eq!((c.stats().unauthenticated, c.peers()), (1, 0));
}

/// Delivers every datagram of `datagrams` to `t` as from `from`; returns
/// the messages delivered.
fn deliver_all(
    t: &mut Transport,
    now: Instant,
    from: SocketAddr,
    datagrams: &[(SocketAddr, Vec<u8>)],
) -> Vec<String> {
    let mut got = Vec::new();
    for (_, d) in datagrams {
        let _ = t.receive(now, from, d, |_, m| got.push(m.to_owned()));
    }
    got
}

#[test]
fn a_transport_handed_over_goes_on_where_it_was_and_its_peers_see_no_restart() {
    let now = Instant::now();
    let mut a = Transport::new(A, config());
    let mut b = Transport::new(B, config());
    for i in 0..3 {
        a.send(b_addr(), format!("m{i}")).unwrap();
    }
    let first = transmit_all(&mut a, now);
    assert_eq!(
        deliver_all(&mut b, now, a_addr(), &first),
        ["m0", "m1", "m2"]
    );
    b.send(a_addr(), "hello").unwrap();
    let answer = transmit_all(&mut b, now);
    assert_eq!(deliver_all(&mut a, now, b_addr(), &answer), ["hello"]);

    // b closes: a new message is not taken (nor acknowledged) ...
    b.close();
    a.send(b_addr(), "m3").unwrap();
    let during = transmit_all(&mut a, now);
    assert!(deliver_all(&mut b, now, a_addr(), &during).is_empty());
    assert!(transmit_all(&mut b, now).is_empty(), "nothing acknowledged");

    // ... and the next image takes over.
    let handover = b.handover();
    assert_eq!(handover.incarnation, B);
    let bytes = postcard::to_stdvec(&handover).unwrap();
    let handover: Handover = postcard::from_bytes(&bytes).unwrap();
    let mut b = Transport::resume(&handover, config(), now);
    // What was delivered before is a duplicate; what was not comes now.
    assert!(deliver_all(&mut b, now, a_addr(), &first).is_empty());
    assert_eq!(deliver_all(&mut b, now, a_addr(), &during), ["m3"]);
    assert_eq!(b.stats().duplicates, 3);
    // Its messages to a go on past the old stream, from the same
    // incarnation: a delivers them and sees no restart.
    b.send(a_addr(), "again").unwrap();
    let after = transmit_all(&mut b, now);
    assert_eq!(deliver_all(&mut a, now, b_addr(), &after), ["again"]);
    assert_eq!(a.stats().peer_restarts, 0);
    assert!(std::iter::from_fn(|| a.poll_event()).next().is_none());
}
