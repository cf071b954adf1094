//! Compile-time checks of `#[machine]`: each file in `tests/ui/` is a
//! mistake a user can make, with the error it must produce in the `.stderr`
//! next to it; `tests/ui/pass/` holds machines that must compile.
//!
//! The snapshots depend on the compiler version (pinned by
//! `rust-toolchain.toml`). After changing a message on purpose, regenerate
//! them with `TRYBUILD=overwrite cargo test -p wink-macros --test ui` and
//! read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/*.rs");
}
