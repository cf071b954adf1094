//! A partition longer than the heartbeat timeout between a parent's host
//! and its child's host: both sides learn it, and nothing is left running
//! after the link comes back (fault 2 of the supervision issue: before, the
//! child ran on forever).
//!
//! Two network namespaces; the link is cut by setting one end down. Needs
//! root, which CI has; with `CI` set and no root, it fails.

use std::time::{Duration, Instant};

use wink_tests::netns::Hosts;
use wink_tests::PATIENCE;

const HEARTBEAT_MS: u64 = 1500;

#[test]
fn both_sides_of_a_partition_converge_and_leave_no_orphan() {
    let Some(hosts) = Hosts::create("pt", 1) else {
        return;
    };
    let staged = wink_tests::Staged::new().expect("stage");
    let env = [
        ("WINK_PULSE_MS", "250"),
        ("WINK_HEARTBEAT_TIMEOUT_MS", "1500"),
        ("WINK_LINGER_MS", "300"),
    ];
    let server_a = format!("{}:42000", hosts.ip_a);
    let server_b = format!("{}:42000", hosts.ip_b);
    let mut a = Hosts::serve(&hosts.a, &staged, &server_a, &env).expect("server on host A");
    let mut b = Hosts::serve(&hosts.b, &staged, &server_b, &env).expect("server on host B");

    // A boss on host A with one worker on host B.
    let worker = format!("w@{}", hosts.ip_b);
    let out = Hosts::wink(
        &hosts.a,
        &["-s", &server_a, "start", "crew/Boss", ":0", &worker],
    )
    .expect("run wink");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let forked = b
        .expect_all(&["Forked: ", "crew/Worker#w"], PATIENCE)
        .expect("host B starts the worker");
    let pid = wink_tests::word(&forked.text, 1).expect("the worker's pid");
    // The worker is heard from (its first pulses cross the link).
    a.expect_all(&[" < ", " pulsed crew/Worker#w"], PATIENCE)
        .expect("the boss hears the worker");

    hosts.cut().expect("cut the link");
    let cut = Instant::now();
    let patience = Duration::from_millis(HEARTBEAT_MS * 4);
    // Host A: the boss writes the worker off.
    a.expect_all(
        &["child ", "crew/Worker#w lost: heartbeat timeout"],
        patience,
    )
    .expect("the boss learns the worker is lost");
    let parent_learnt = cut.elapsed();
    // Host B: the worker, hearing nothing from its parent, exits.
    b.expect_all(&["crew/Worker#w", "orphaned"], patience)
        .expect("the worker learns its parent is lost");
    b.expect_all(
        &["Reaped: ", &pid, "crew/Worker#w", "exit status 0"],
        patience,
    )
    .expect("and exits in order");
    let child_learnt = cut.elapsed();
    eprintln!(
        "partition: parent learnt in {:.2}s, child exited in {:.2}s (heartbeat {:.1}s)",
        parent_learnt.as_secs_f64(),
        child_learnt.as_secs_f64(),
        HEARTBEAT_MS as f64 / 1000.0
    );
    let bound = Duration::from_millis(HEARTBEAT_MS + 1000 + 1500);
    assert!(child_learnt < bound, "the orphan lived {child_learnt:?}");

    hosts.mend().expect("mend the link");
    // The boss restarts the worker once the link is back; exactly one
    // worker runs on host B then.
    b.expect_all(&["Forked: ", "crew/Worker#w"], PATIENCE)
        .expect("the boss restarts the worker after the heal");
    a.expect_all(&[" < ", " started crew/Worker#w"], PATIENCE)
        .expect("and hears it start");
    let out = Hosts::wink(&hosts.b, &["-s", &server_b, "list"]).expect("wink list on B");
    let list = String::from_utf8_lossy(&out.stdout);
    let workers = list.lines().filter(|l| l.contains("crew/Worker#w")).count();
    assert_eq!(workers, 1, "{list}");
}
