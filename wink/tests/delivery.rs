//! Reliable delivery between two endpoints on real loopback sockets: under
//! injected loss, duplication and reordering; in a burst far larger than
//! the window; and across a restart of either peer at the same port.
//!
//! Both endpoints are driven from one thread: each turn waits (bounded) for
//! either socket or the next retransmission, then lets both read and
//! retransmit. Every test has an overall time limit and says what was
//! missing when it runs out, instead of hanging.

use std::error::Error;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use std::os::fd::AsFd;

mod support;

use support::{Faults, Faulty};
use wink::runtime::socket::Socket;
use wink::runtime::{Endpoint, Inbox};
use wink::transport::{TransportConfig, TransportEvent};
use wink::Address;

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn any_port() -> Address {
    Address::from(loopback())
}

/// One turn for two endpoints: retransmit what is due, wait until either
/// socket has something (or the next retransmission, at most `until`), then
/// read what both have into their inboxes.
fn turn<S: Socket, T: Socket>(
    a: &mut Endpoint<S>,
    a_inbox: &mut Inbox,
    b: &mut Endpoint<T>,
    b_inbox: &mut Inbox,
    until: Instant,
) -> io::Result<()> {
    let now = Instant::now();
    a.handle_timeout(now);
    b.handle_timeout(now);
    // `a`'s wait flushes it and adds its own deadline; `b` is flushed here.
    b.flush()?;
    let deadline = [b.next_deadline(), Some(until)].into_iter().flatten().min();
    let ready = a.wait_with(deadline, Some(b.as_fd()))?;
    let now = Instant::now();
    if ready.readable {
        a.receive_ready(now, a_inbox)?;
    }
    if ready.other {
        b.receive_ready(now, b_inbox)?;
    }
    Ok(())
}

/// Checks that `inbox` holds, from `from`, exactly the next messages of
/// the sequence `prefix0, prefix1, …` after the `*next` already seen, and
/// advances `*next`.
fn expect_in_order(inbox: &mut Inbox, from: Address, prefix: &str, next: &mut u64) {
    for i in 0..inbox.len() {
        let Some((sender, text)) = inbox.get(i) else {
            unreachable!("index below len");
        };
        assert_eq!(sender, from, "message `{text}` from an unexpected sender");
        let expected = format!("{prefix}{next}");
        assert_eq!(
            text, expected,
            "delivered out of order, twice, or with a gap"
        );
        *next += 1;
    }
    inbox.clear();
}

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Sends `count` messages `m0…` from `a` to `b` and runs both until `b` has
/// them all and `a` has every ack, or `limit` passes (a panic naming what
/// is missing). Returns how long it took.
fn deliver_all<S: Socket, T: Socket>(
    a: &mut Endpoint<S>,
    b: &mut Endpoint<T>,
    count: u64,
    limit: Duration,
) -> Result<Duration> {
    let start = Instant::now();
    let give_up = start + limit;
    let to = b.local_addr();
    let from = a.local_addr();
    for i in 0..count {
        a.send(to, format!("m{i}"))?;
    }
    let (mut a_inbox, mut b_inbox) = (Inbox::default(), Inbox::default());
    let mut next = 0;
    while next < count || !a.is_settled() || !b.is_settled() {
        assert!(
            Instant::now() < give_up,
            "after {limit:?}: {next} of {count} delivered; sender {:?}; receiver {:?}",
            a.stats(),
            b.stats()
        );
        turn(a, &mut a_inbox, b, &mut b_inbox, give_up)?;
        assert!(a_inbox.is_empty(), "nothing is sent back but acks");
        expect_in_order(&mut b_inbox, from, "m", &mut next);
    }
    assert_eq!(next, count);
    Ok(start.elapsed())
}

/// 30% of the datagrams lost in each direction, plus duplicates and
/// reordering: 10,000 messages arrive exactly once and in order, and none
/// is given up on.
#[test]
fn ten_thousand_messages_through_thirty_percent_loss_each_way() -> Result<()> {
    let faults = |seed| Faults {
        loss: 0.3,
        duplicate: 0.05,
        reorder: 0.05,
        seed,
    };
    // With a data packet and its ack each lost 30% of the time, one try
    // gets through both ways with probability 0.49; 40 tries leave a chance
    // of 0.51^40 ≈ 2·10⁻¹² per message that one is given up on. Short
    // timeouts keep the run to seconds.
    let config = TransportConfig {
        retries: 40,
        initial_rto: Duration::from_millis(5),
        min_rto: Duration::from_millis(1),
        max_rto: Duration::from_millis(20),
        ..TransportConfig::default()
    };
    let sender = Faulty::bind(loopback(), faults(0x5EED_0001))?;
    let receiver = Faulty::bind(loopback(), faults(0x5EED_0002))?;
    let mut a = Endpoint::with_socket(sender, config.clone())?;
    let mut b = Endpoint::with_socket(receiver, config)?;

    let took = deliver_all(&mut a, &mut b, 10_000, Duration::from_secs(120))?;

    let (sent, received) = (a.stats(), b.stats());
    eprintln!("10,000 through 30% loss in {took:?}; sender {sent:?}; receiver {received:?}");
    assert_eq!(sent.gave_up, 0, "nothing given up below the retry budget");
    assert_eq!(sent.acked, 10_000);
    assert_eq!(received.delivered, 10_000);
    // The faults did happen: retransmissions and duplicates were needed.
    assert!(sent.retransmits > 1_000, "{sent:?}");
    assert!(received.duplicates > 0, "{received:?}");
    Ok(())
}

/// 100,000 messages queued at once to one peer over real loopback, with
/// the default configuration: flow control keeps the burst from
/// overflowing anything, so all arrive once, in order, and nothing is
/// given up on.
#[test]
fn burst_of_one_hundred_thousand_arrives_complete_and_in_order() -> Result<()> {
    let config = TransportConfig::default();
    let mut a = Endpoint::bind(any_port(), config.clone())?;
    let mut b = Endpoint::bind(any_port(), config)?;

    let took = deliver_all(&mut a, &mut b, 100_000, Duration::from_secs(120))?;

    let (sent, received) = (a.stats(), b.stats());
    eprintln!("burst of 100,000 in {took:?}; sender {sent:?}; receiver {received:?}");
    assert_eq!(sent.gave_up, 0);
    assert_eq!(sent.acked, 100_000);
    assert_eq!(received.delivered, 100_000);
    Ok(())
}

/// Sends `texts` from `a` to `b` and runs both until `b` delivered that
/// many messages and `a` is settled; returns what `b` delivered.
fn exchange<S: Socket, T: Socket>(
    a: &mut Endpoint<S>,
    b: &mut Endpoint<T>,
    texts: &[String],
) -> Result<Vec<(Address, String)>> {
    for text in texts {
        a.send(b.local_addr(), text.as_str())?;
    }
    let give_up = Instant::now() + Duration::from_secs(10);
    let (mut a_inbox, mut b_inbox) = (Inbox::default(), Inbox::default());
    let mut got = Vec::new();
    while got.len() < texts.len() || !a.is_settled() {
        assert!(
            Instant::now() < give_up,
            "got {got:?} of {texts:?}; sender {:?}; receiver {:?}",
            a.stats(),
            b.stats()
        );
        turn(a, &mut a_inbox, b, &mut b_inbox, give_up)?;
        for i in 0..b_inbox.len() {
            if let Some((from, text)) = b_inbox.get(i) {
                got.push((from, text.to_owned()));
            }
        }
        b_inbox.clear();
    }
    Ok(got)
}

fn texts(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix} {i}")).collect()
}

fn from(sender: Address, texts: &[String]) -> Vec<(Address, String)> {
    texts.iter().map(|t| (sender, t.clone())).collect()
}

/// A sender that restarts at the same port starts its sequence numbers at
/// 0 again with a new incarnation: the receiver delivers its messages
/// instead of taking them for duplicates of the old life's.
#[test]
fn restarted_sender_at_the_same_port_is_heard() -> Result<()> {
    let config = TransportConfig::default();
    let mut b = Endpoint::bind(any_port(), config.clone())?;
    let mut a = Endpoint::bind(any_port(), config.clone())?;
    let a_addr = a.local_addr();

    let first = texts("first life", 5);
    assert_eq!(exchange(&mut a, &mut b, &first)?, from(a_addr, &first));
    drop(a);

    let mut a = Endpoint::bind(a_addr, config)?;
    assert_eq!(a.local_addr(), a_addr);
    let second = texts("second life", 5);
    assert_eq!(exchange(&mut a, &mut b, &second)?, from(a_addr, &second));

    assert_eq!(b.stats().peer_restarts, 1);
    assert_eq!(b.stats().duplicates, 0);
    assert_eq!(b.stats().delivered, 10);
    assert!(matches!(
        b.poll_event(),
        Some(TransportEvent::PeerRestarted { peer, .. }) if peer == a_addr.socket_addr()
    ));
    assert_eq!(a.stats().gave_up, 0);
    Ok(())
}

/// A recipient that restarts at the same port gets the sender's later
/// messages, although their sequence numbers continue from the old life's.
#[test]
fn restarted_recipient_at_the_same_port_is_heard() -> Result<()> {
    let config = TransportConfig::default();
    let mut a = Endpoint::bind(any_port(), config.clone())?;
    let mut b = Endpoint::bind(any_port(), config.clone())?;
    let b_addr = b.local_addr();
    let a_addr = a.local_addr();

    let first = texts("to the first life", 5);
    assert_eq!(exchange(&mut a, &mut b, &first)?, from(a_addr, &first));
    drop(b);

    let mut b = Endpoint::bind(b_addr, config)?;
    let second = texts("to the second life", 5);
    assert_eq!(exchange(&mut a, &mut b, &second)?, from(a_addr, &second));
    assert_eq!(a.stats().gave_up, 0);
    // Its new life acked the new messages, plus the floor announcement the
    // sender makes to a restarted recipient.
    assert_eq!(a.stats().acked, 10 + a.stats().announcements);
    Ok(())
}
