//! What the `wink` command does that other tools use too: staging a
//! crate's machines for a server ([`stage`]; `cargo xtask stage` stages
//! the examples with it).
#![deny(missing_docs)]

pub mod man;
pub mod stage;
