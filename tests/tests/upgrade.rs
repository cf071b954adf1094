//! A live upgrade under a real server: `counter/Feeder` streams 10,000
//! `count <n>` messages to its child `counter/Counter`, which errors on
//! any message lost, repeated or out of order; halfway through, `wink
//! upgrade` replaces the counter's program. Every message is counted
//! once, in order, the count carried over, and the feeder (the parent)
//! hears an upgrade, not an error.

use std::time::Duration;

use wink_tests::{Error, Result, Server, PATIENCE};

const TOTAL: u64 = 10_000;

#[test]
fn an_upgrade_midstream_loses_nothing_repeats_nothing_and_keeps_the_count() -> Result<()> {
    let mut server = Server::start()?;
    let total = TOTAL.to_string();
    // 20 every millisecond: messages keep coming while the counter
    // changes programs.
    server.start_machine("counter/Feeder", &[&total, "20", "1"])?;
    let started = server.expect_line("Feeder: counter/Counter started at ", PATIENCE)?;
    let counter = started
        .text
        .rsplit(' ')
        .next()
        .ok_or_else(|| Error::new("no address"))?
        .to_owned();
    let pid = server.registered(counter.parse().map_err(|e| Error::new(format!("{e}")))?)?;
    server.expect_line("Feeder: sent 3000", PATIENCE)?;
    let out = server.wink_ok(&["upgrade", &counter, "--to", "counter/Counter#v2"])?;
    assert_eq!(
        out.stdout.trim(),
        format!("upgraded {counter} counter/Counter to counter/Counter#v2")
    );
    server.expect_line(
        &format!("Feeder: counter/Counter at {counter} upgraded to counter/Counter#v2"),
        PATIENCE,
    )?;
    server.expect_line(&format!("Feeder: total {TOTAL} {TOTAL}"), PATIENCE)?;

    let lines = server.process().lines().to_vec();
    let errors: Vec<&str> = lines
        .iter()
        .map(|l| l.text.as_str())
        .filter(|t| t.contains("errored") || t.contains("exited"))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The same process, under its new name.
    let row = server
        .list()?
        .into_iter()
        .find(|r| r.address == counter)
        .ok_or_else(|| Error::new("the counter is not listed"))?;
    assert_eq!((row.pid, row.name.as_str()), (pid, "counter/Counter#v2"));

    // How long nothing was delivered to the counter: from the last `count`
    // the old program took to the first the new one took.
    let received = |t: &str| {
        t.starts_with(&format!("{counter} ")) && t.contains(" < ") && t.contains(" count ")
    };
    let upgrading = lines
        .iter()
        .position(|l| {
            l.text
                .contains(&format!("{counter} counter/Counter upgrading to"))
        })
        .ok_or_else(|| Error::new("no `upgrading to` line"))?;
    let before = lines[..upgrading]
        .iter()
        .rev()
        .find(|l| received(&l.text))
        .ok_or_else(|| Error::new("nothing counted before the upgrade"))?;
    let after = lines[upgrading..]
        .iter()
        .find(|l| received(&l.text))
        .ok_or_else(|| Error::new("nothing counted after the upgrade"))?;
    let gap: Duration = after.at.saturating_duration_since(before.at);
    let stopped: Duration = after.at.saturating_duration_since(lines[upgrading].at);
    eprintln!(
        "the counter took nothing for {:.1} ms (`{}` to `{}`), {:.1} ms of it from the upgrade order to the first count taken by the new program",
        gap.as_secs_f64() * 1000.0,
        before.text,
        after.text,
        stopped.as_secs_f64() * 1000.0
    );
    Ok(())
}
