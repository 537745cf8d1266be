//! The integration tests of `shard-store`, one binary with a module per
//! subject (`cargo test -p shard-store --test it`); [`common`] holds the
//! record builders and row readers they share, and `oracle::budget` the
//! case count and seed of both oracles.

// A panic is how a test fails; unwrapping here is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adopted;
mod apply;
mod common;
mod hostile;
mod migrate;
mod oracle;
mod packet;
mod packet_oracle;
mod reconcile;
mod schema;
