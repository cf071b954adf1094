//! address (in progress).
