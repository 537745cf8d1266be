//! The integration tests of `shard-model`, one binary with a module
//! per subject (`cargo test -p shard-model --test it`).

// A panic is how a test fails; unwrapping here is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixtures;
mod quirks;
