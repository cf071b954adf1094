//! The `#[machine]` proc-macro of Wink.
