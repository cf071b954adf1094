//! Sample Wink machines. Each module is one machine, with tests that drive it
//! through `wink::testing::Harness`; `src/bin/` turns them into the
//! executables that `wink-server` starts (see `examples/README.md`).
#![deny(missing_docs)]

pub mod player;
