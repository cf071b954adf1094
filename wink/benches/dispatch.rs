//! The cost of Wink's dispatch against a hand-written `match` and `statig`.
//!
//! One machine, written three ways with the same observable work:
//!
//! ```text
//! Root            "root n": total += n
//! ├── Mid         "mid n":  total += n               entry/exit counted
//! │   └── Leaf    "inc n":  total += n               entry/exit counted
//! │               "away n": total += n, → Side       (exits Leaf, Mid; enters Side)
//! └── Side        "back n": total += n, → Leaf       (exits Side; enters Mid, Leaf)
//!                                                    entry/exit counted
//! ```
//!
//! The stream is `inc 3`, `mid 5`, `root 7`, `away 1`, `back 2`: one message
//! handled at each level of the lineage, then a transition across subtrees
//! and back. Every implementation starts from text and parses the name and
//! the integer argument, rejecting missing, bad and extra words, so the
//! ratios measure the state table and dispatch, not the parsing:
//!
//! - `wink`: `#[wink::machine]`, its state table driven alone
//!   (`wink::testing::Dispatcher`: `Hsm::dispatch` on a context of its
//!   own). This is the figure the target is about: at most 2× `statig`.
//! - `wink+node`: the same machine through `wink::testing::Harness`, which
//!   is the runtime's whole per-message path (`wink::node`: control words
//!   told apart, supervision bookkeeping, effects carried out), plus the
//!   harness recording every step and effect (cleared after every stream
//!   so nothing grows).
//! - `match`: the text parsed into an enum with `split_ascii_whitespace` and
//!   `parse`, then a hand-written `match` on (state, message).
//! - `statig`: the same parse into the same enum, as a `statig` event, to a
//!   machine with superstates `root` and `mid`.
//! - `match/preparsed` and `statig/preparsed`: the same, fed the parsed
//!   enums, to show what parsing costs.
//!
//! After criterion, a plain timing loop prints ns per message and the ratios.

use std::fmt::Debug;
use std::hint::black_box;
use std::num::ParseIntError;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};

/// The messages of one round: each level once, then away and back.
const STREAM: [&str; 5] = ["inc 3", "mid 5", "root 7", "away 1", "back 2"];
/// What one round adds to `total`.
const ROUND_TOTAL: i64 = 3 + 5 + 7 + 1 + 2;
/// Entry (and exit) actions one round runs: away enters Side, back enters
/// Mid and Leaf.
const ROUND_ENTRIES: u64 = 3;

/// Stops the run if a message failed; never taken.
#[inline]
fn check<E: Debug>(result: Result<(), E>) {
    if let Err(e) = result {
        panic!("message failed: {e:?}");
    }
}

// ---------------------------------------------------------------- (1) Wink

#[wink::machine]
mod winked {
    #[derive(Default)]
    pub struct Counter {
        pub total: i64,
        pub entries: u64,
        pub exits: u64,
    }

    pub enum State {
        Root,
        #[parent(Root)]
        Mid,
        #[initial]
        #[parent(Mid)]
        Leaf,
        #[parent(Root)]
        Side,
    }

    impl Counter {
        #[receive(Leaf, "inc")]
        fn inc(&mut self, _cx: &mut Context<Self>, n: i64) {
            self.total += n;
        }

        #[receive(Mid, "mid")]
        fn mid(&mut self, _cx: &mut Context<Self>, n: i64) {
            self.total += n;
        }

        #[receive(Root, "root")]
        fn root(&mut self, _cx: &mut Context<Self>, n: i64) {
            self.total += n;
        }

        #[receive(Leaf, "away")]
        fn away(&mut self, cx: &mut Context<Self>, n: i64) {
            self.total += n;
            cx.transition(State::Side);
        }

        #[receive(Side, "back")]
        fn back(&mut self, cx: &mut Context<Self>, n: i64) {
            self.total += n;
            cx.transition(State::Leaf);
        }

        #[entry(Mid)]
        fn enter_mid(&mut self, _cx: &mut Context<Self>) {
            self.entries += 1;
        }

        #[exit(Mid)]
        fn exit_mid(&mut self, _cx: &mut Context<Self>) {
            self.exits += 1;
        }

        #[entry(Leaf)]
        fn enter_leaf(&mut self, _cx: &mut Context<Self>) {
            self.entries += 1;
        }

        #[exit(Leaf)]
        fn exit_leaf(&mut self, _cx: &mut Context<Self>) {
            self.exits += 1;
        }

        #[entry(Side)]
        fn enter_side(&mut self, _cx: &mut Context<Self>) {
            self.entries += 1;
        }

        #[exit(Side)]
        fn exit_side(&mut self, _cx: &mut Context<Self>) {
            self.exits += 1;
        }
    }
}

type WinkTable = wink::testing::Dispatcher<winked::Counter>;

fn wink_machine() -> WinkTable {
    let mut d = WinkTable::new(winked::Counter::default());
    check(d.start());
    d
}

fn wink_round(d: &mut WinkTable, stream: &[&str]) {
    for text in stream {
        check(d.receive(black_box(text)));
    }
}

type WinkHarness = wink::testing::Harness<winked::Counter>;

fn node_machine() -> WinkHarness {
    let mut h = WinkHarness::new(winked::Counter::default());
    check(h.start());
    h.clear();
    h
}

fn node_round(h: &mut WinkHarness, stream: &[&str]) {
    for text in stream {
        check(h.receive(black_box(text)));
    }
    // The harness keeps every step for the test to read; forget them so the
    // run does not grow a vector.
    h.clear();
}

// ------------------------------------------- the parse shared by (2) and (3)

/// A parsed message: the event of the `match` and `statig` machines.
#[derive(Debug, Clone, Copy)]
pub enum Msg {
    Inc(i64),
    Mid(i64),
    Root(i64),
    Away(i64),
    Back(i64),
}

#[derive(Debug)]
#[allow(dead_code)] // Read only through Debug when a message fails.
enum MsgError {
    UnknownName,
    Missing,
    Bad(ParseIntError),
    Extra,
    Unhandled,
}

/// `name n` → [`Msg`], as Wink reads it: the name is the first word, the
/// argument the next, and nothing may follow.
#[inline]
fn parse(text: &str) -> Result<Msg, MsgError> {
    let mut words = text.split_ascii_whitespace();
    let make: fn(i64) -> Msg = match words.next().unwrap_or("") {
        "inc" => Msg::Inc,
        "mid" => Msg::Mid,
        "root" => Msg::Root,
        "away" => Msg::Away,
        "back" => Msg::Back,
        _ => return Err(MsgError::UnknownName),
    };
    let n = words
        .next()
        .ok_or(MsgError::Missing)?
        .parse()
        .map_err(MsgError::Bad)?;
    if words.next().is_some() {
        return Err(MsgError::Extra);
    }
    Ok(make(n))
}

// --------------------------------------------------- (2) hand-written match

/// The leaf states; Root and Mid are never current, only enclosing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hand {
    Leaf,
    Side,
}

#[derive(Debug)]
struct Handwritten {
    state: Hand,
    total: i64,
    entries: u64,
    exits: u64,
}

impl Handwritten {
    fn new() -> Self {
        // Start: enter Root, Mid, Leaf (Mid and Leaf count their entry).
        Handwritten {
            state: Hand::Leaf,
            total: 0,
            entries: 2,
            exits: 0,
        }
    }

    #[inline]
    fn dispatch(&mut self, msg: Msg) -> Result<(), MsgError> {
        match (self.state, msg) {
            (Hand::Leaf, Msg::Inc(n)) => self.total += n,
            (Hand::Leaf, Msg::Away(n)) => {
                self.total += n;
                self.exits += 1; // Leaf
                self.exits += 1; // Mid
                self.entries += 1; // Side
                self.state = Hand::Side;
            }
            (Hand::Leaf, Msg::Mid(n)) => self.total += n,
            (Hand::Side, Msg::Back(n)) => {
                self.total += n;
                self.exits += 1; // Side
                self.entries += 1; // Mid
                self.entries += 1; // Leaf
                self.state = Hand::Leaf;
            }
            (_, Msg::Root(n)) => self.total += n,
            _ => return Err(MsgError::Unhandled),
        }
        Ok(())
    }

    fn receive(&mut self, text: &str) -> Result<(), MsgError> {
        let msg = parse(text)?;
        self.dispatch(msg)
    }
}

fn match_round(m: &mut Handwritten, stream: &[&str]) {
    for text in stream {
        check(m.receive(black_box(text)));
    }
}

fn match_round_preparsed(m: &mut Handwritten, stream: &[Msg]) {
    for msg in stream {
        check(m.dispatch(black_box(*msg)));
    }
}

// ------------------------------------------------------------ (3) statig

mod stat {
    use super::Msg;
    use statig::prelude::*;

    #[derive(Debug, Default)]
    pub struct Counter {
        pub total: i64,
        pub entries: u64,
        pub exits: u64,
    }

    #[state_machine(initial = "State::leaf()")]
    impl Counter {
        #[state(superstate = "mid", entry_action = "enter", exit_action = "exit")]
        fn leaf(&mut self, event: &Msg) -> Response<State> {
            match event {
                Msg::Inc(n) => {
                    self.total += n;
                    Handled
                }
                Msg::Away(n) => {
                    self.total += n;
                    Transition(State::side())
                }
                _ => Super,
            }
        }

        #[superstate(superstate = "root", entry_action = "enter", exit_action = "exit")]
        fn mid(&mut self, event: &Msg) -> Response<State> {
            match event {
                Msg::Mid(n) => {
                    self.total += n;
                    Handled
                }
                _ => Super,
            }
        }

        #[state(superstate = "root", entry_action = "enter", exit_action = "exit")]
        fn side(&mut self, event: &Msg) -> Response<State> {
            match event {
                Msg::Back(n) => {
                    self.total += n;
                    Transition(State::leaf())
                }
                _ => Super,
            }
        }

        #[superstate]
        fn root(&mut self, event: &Msg) -> Response<State> {
            match event {
                Msg::Root(n) => {
                    self.total += n;
                    Handled
                }
                _ => Super,
            }
        }

        #[action]
        fn enter(&mut self) {
            self.entries += 1;
        }

        #[action]
        fn exit(&mut self) {
            self.exits += 1;
        }
    }
}

type Statig = statig::blocking::InitializedStateMachine<stat::Counter>;

fn statig_machine() -> Statig {
    use statig::prelude::*;
    // Enters root, mid and leaf, like the others' start.
    stat::Counter::default()
        .uninitialized_state_machine()
        .init()
}

fn statig_receive(sm: &mut Statig, text: &str) -> Result<(), MsgError> {
    let msg = parse(text)?;
    sm.handle(&msg);
    Ok(())
}

fn statig_round(sm: &mut Statig, stream: &[&str]) {
    for text in stream {
        check(statig_receive(sm, black_box(text)));
    }
}

fn statig_round_preparsed(sm: &mut Statig, stream: &[Msg]) {
    for msg in stream {
        sm.handle(black_box(msg));
    }
}

// ----------------------------------------------------------- the benches

fn preparsed(stream: &[&str]) -> Vec<Msg> {
    stream
        .iter()
        .map(|t| match parse(t) {
            Ok(m) => m,
            Err(e) => panic!("bad message {t:?}: {e:?}"),
        })
        .collect()
}

fn bench_dispatch(c: &mut Criterion) {
    let parsed = preparsed(&STREAM);
    let mut group = c.benchmark_group("dispatch");
    group.throughput(Throughput::Elements(STREAM.len() as u64));

    let mut h = wink_machine();
    group.bench_function("wink", |b| b.iter(|| wink_round(&mut h, &STREAM)));

    let mut n = node_machine();
    group.bench_function("wink+node", |b| b.iter(|| node_round(&mut n, &STREAM)));

    let mut m = Handwritten::new();
    group.bench_function("match", |b| b.iter(|| match_round(&mut m, &STREAM)));

    let mut sm = statig_machine();
    group.bench_function("statig", |b| b.iter(|| statig_round(&mut sm, &STREAM)));

    let mut m = Handwritten::new();
    group.bench_function("match/preparsed", |b| {
        b.iter(|| match_round_preparsed(&mut m, &parsed))
    });

    let mut sm = statig_machine();
    group.bench_function("statig/preparsed", |b| {
        b.iter(|| statig_round_preparsed(&mut sm, &parsed))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = bench_dispatch
}

// ------------------------------------------------------------- the summary

/// Messages per implementation and stream in the summary, timed in
/// `CHUNKS` interleaved chunks so that a noisy moment (two shared cores)
/// hits one chunk of one implementation, not a whole figure.
const MESSAGES: usize = 1_000_000;
const CHUNKS: usize = 20;

/// Times one chunk of `MESSAGES / CHUNKS` messages (in rounds of
/// `stream_len`) and keeps the fastest in `best`, in ns per message.
fn time_chunk(best: &mut f64, stream_len: usize, mut round: impl FnMut()) {
    let rounds = MESSAGES / CHUNKS / stream_len;
    let start = Instant::now();
    for _ in 0..rounds {
        round();
    }
    let ns = start.elapsed().as_secs_f64() * 1e9 / (rounds * stream_len) as f64;
    *best = best.min(ns);
}

/// Checks that the three machines did the same work for the same messages.
fn check_same_work() {
    const ROUNDS: i64 = 1000;
    let mut h = wink_machine();
    let mut n = node_machine();
    let mut m = Handwritten::new();
    let mut sm = statig_machine();
    for _ in 0..ROUNDS {
        wink_round(&mut h, &STREAM);
        node_round(&mut n, &STREAM);
        match_round(&mut m, &STREAM);
        statig_round(&mut sm, &STREAM);
    }
    let w = h.machine();
    // The start entered Mid and Leaf.
    let expected = (
        ROUNDS * ROUND_TOTAL,
        2 + ROUNDS as u64 * ROUND_ENTRIES,
        ROUNDS as u64 * ROUND_ENTRIES,
    );
    assert_eq!((w.total, w.entries, w.exits), expected, "wink");
    let w = n.machine();
    assert_eq!((w.total, w.entries, w.exits), expected, "wink+node");
    assert_eq!((m.total, m.entries, m.exits), expected, "match");
    assert_eq!((sm.total, sm.entries, sm.exits), expected, "statig");
    assert_eq!(h.state(), "Leaf");
    assert_eq!(m.state, Hand::Leaf);
}

struct Row {
    stream: &'static str,
    wink: f64,
    node: f64,
    matched: f64,
    statig: f64,
    matched_pre: f64,
    statig_pre: f64,
}

fn measure(name: &'static str, stream: &[&'static str]) -> Row {
    let parsed = preparsed(stream);
    let n = stream.len();
    let mut h = wink_machine();
    let mut node = node_machine();
    let mut m = Handwritten::new();
    let mut sm = statig_machine();
    let mut m_pre = Handwritten::new();
    let mut sm_pre = statig_machine();
    let mut row = Row {
        stream: name,
        wink: f64::INFINITY,
        node: f64::INFINITY,
        matched: f64::INFINITY,
        statig: f64::INFINITY,
        matched_pre: f64::INFINITY,
        statig_pre: f64::INFINITY,
    };
    for _ in 0..CHUNKS {
        time_chunk(&mut row.wink, n, || wink_round(&mut h, stream));
        time_chunk(&mut row.node, n, || node_round(&mut node, stream));
        time_chunk(&mut row.matched, n, || match_round(&mut m, stream));
        time_chunk(&mut row.statig, n, || statig_round(&mut sm, stream));
        time_chunk(&mut row.matched_pre, n, || {
            match_round_preparsed(&mut m_pre, &parsed)
        });
        time_chunk(&mut row.statig_pre, n, || {
            statig_round_preparsed(&mut sm_pre, &parsed)
        });
    }
    row
}

fn summary() {
    check_same_work();
    let rows = [
        measure("all five", &STREAM),
        measure("handled only", &STREAM[..3]),
        measure("away+back only", &STREAM[3..]),
    ];
    println!();
    println!(
        "dispatch summary: ns per message, fastest of {CHUNKS} chunks of {} messages",
        MESSAGES / CHUNKS
    );
    println!("  stream: {}", STREAM.join(" | "));
    println!(
        "  {:<15} {:>7} {:>9} {:>7} {:>7} {:>11} {:>11} {:>11} {:>11}",
        "messages",
        "wink",
        "wink+node",
        "match",
        "statig",
        "wink/match",
        "wink/statig",
        "match/pre",
        "statig/pre"
    );
    for r in &rows {
        println!(
            "  {:<15} {:>7.1} {:>9.1} {:>7.1} {:>7.1} {:>10.2}x {:>10.2}x {:>11.1} {:>11.1}",
            r.stream,
            r.wink,
            r.node,
            r.matched,
            r.statig,
            r.wink / r.matched,
            r.wink / r.statig,
            r.matched_pre,
            r.statig_pre,
        );
    }
    println!(
        "  (wink: the state table alone; wink+node: the runtime's whole \
         per-message path, with the test harness's bookkeeping; match/pre, \
         statig/pre: the same machines fed parsed messages)"
    );
}

fn main() {
    benches();
    let criterion = Criterion::default().configure_from_args();
    criterion.final_summary();
    // `cargo test --benches`, `--list` and `--profile-time` are not runs
    // to summarise.
    let args: Vec<String> = std::env::args().collect();
    if !args
        .iter()
        .any(|a| a == "--test" || a == "--list" || a == "--profile-time")
    {
        summary();
    }
}
