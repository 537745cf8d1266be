//! The cross-crate acceptance tests, one binary with a module per subject
//! (`cargo test -p shard-tests --test it`); [`common`] holds what they
//! share: one test per backend, records, command lines, readers of rows.

// A panic is how a test fails; unwrapping here is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adopted;
mod apply;
mod common;
mod cycle;
mod daemon;
mod deploy;
mod failures;
mod harness;
mod heal;
mod lab;
mod metrics;
mod network;
mod scheduler;
mod secrets;
mod status;
mod upload;
