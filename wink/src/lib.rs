//! Wink: fault-tolerant systems from independent hierarchical state machines.
#![deny(missing_docs)]

pub mod address;
pub mod log;
pub mod name;
pub mod transport;
pub mod wire;
