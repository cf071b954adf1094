//! name (in progress).
