//! Sample machines.
