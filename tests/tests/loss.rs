//! A lossy link between two hosts, real processes on both (issue 8): 30% of
//! the packets dropped each way on the first host's end, `echo/Echo` on
//! the first host, and on the second a load client with a window in flight,
//! then `pinger/Pinger`. Every reply comes back once and in order and
//! nothing is given up: what any correct transport gives, whatever its
//! wire format. Counts are checked, never timings.
//!
//! Two network namespaces with iptables `statistic` rules. Needs root and
//! iptables, which CI has; with `CI` set and either missing, it fails.

use std::path::Path;
use std::time::Duration;

use wink_tests::loss::{Lab, Load, Stop};

const LOSS: f64 = 0.3;

/// Far longer than a run takes even under a debug build on a busy
/// machine; only a broken transport waits this long.
const TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn every_reply_comes_back_once_and_in_order_at_30_percent_loss() {
    let Some(mut lab) = Lab::create("ls", 2, LOSS) else {
        return;
    };
    let load = Load {
        messages: 1_000,
        in_flight: 64,
        timeout: TIMEOUT,
        ..Load::default()
    };
    let client = Path::new(env!("CARGO_BIN_EXE_wink-loss"));
    let report = lab.load(client, &load).expect("run the load client");
    eprintln!("{report}");
    let counts = &report.counts;
    assert_eq!(counts.stop, Stop::Finished, "{report}");
    assert_eq!(counts.sent, load.messages, "{report}");
    assert_eq!(counts.replies, counts.sent, "{report}");
    assert_eq!(counts.lost, 0, "{report}");
    assert_eq!(counts.duplicated, 0, "{report}");
    assert_eq!(counts.reordered, 0, "{report}");
    assert_eq!(counts.unexpected, 0, "{report}");
    assert_eq!(counts.gave_up, 0, "{report}");
    assert_eq!(counts.gave_up_events, 0, "{report}");
    assert!(
        report.echo_gave_up.is_empty(),
        "{report}: {:?}",
        report.echo_gave_up
    );
}

#[test]
fn a_pinger_across_a_lossy_link_finishes() {
    let Some(mut lab) = Lab::create("lp", 3, LOSS) else {
        return;
    };
    let report = lab.ping(1_000, TIMEOUT).expect("run pinger/Pinger");
    eprintln!("{report}");
    assert_eq!(report.outcome, "exited normal", "{report}");
    assert!(report.finished, "{report}");
    assert!(
        report.pinger_gave_up.is_empty(),
        "{report}: {:?}",
        report.pinger_gave_up
    );
    assert!(
        report.echo_gave_up.is_empty(),
        "{report}: {:?}",
        report.echo_gave_up
    );
}
