//! Sample Wink machines. Each module is one machine (or a parent and its
//! child), with tests that drive it through `wink::testing::Harness`;
//! `src/bin/` turns them into the executables that `wink-server` starts
//! (see `examples/README.md` and [`MACHINES`]).
#![deny(missing_docs)]

pub mod counter;
pub mod crew;
pub mod echo;
pub mod family;
pub mod greeter;
pub mod pinger;
pub mod player;
pub mod switch;
pub mod timer;

/// Each machine's name and the cargo binary that runs it: `cargo xtask
/// stage <dir>` copies binary `b` to `<dir>/<name>`.
pub const MACHINES: [(&str, &str); 13] = [
    ("switch/Switch", "switch"),
    ("family/Parent", "family-parent"),
    ("family/Child", "family-child"),
    ("echo/Echo", "echo"),
    ("time/After", "time-after"),
    ("greeter/Host", "greeter-host"),
    ("greeter/Greeter", "greeter-greeter"),
    ("player/Player", "player"),
    ("pinger/Pinger", "pinger"),
    ("crew/Boss", "crew-boss"),
    ("crew/Worker", "crew-worker"),
    ("counter/Counter", "counter-counter"),
    ("counter/Feeder", "counter-feeder"),
];
