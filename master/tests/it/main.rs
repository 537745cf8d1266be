//! The integration tests of `shard-master`, one binary with a module per
//! subject (`cargo test -p shard-master --test it`); [`common`] holds the
//! builders of a master database and the readers of its rows.

// A panic is how a test fails; unwrapping here is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod acl;
mod common;
mod get_hosts;
mod heartbeat;
mod hosts;
mod jobs;
mod seed;
mod server;
mod uploads;
