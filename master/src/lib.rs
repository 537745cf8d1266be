//! A reference master (the "global AFE") for tests and demos: it serves
//! `shard_heartbeat` with the semantics of §8 over the dialect of §2, on the
//! same AFE schema and store crate as the shard.
//!
//! Assignment is set-based and race-safe like the original: select the
//! candidates, update them conditionally (re-checking label, lease and
//! owner), then read back what was really assigned. Every step of a
//! heartbeat runs in one transaction.

pub mod assign;
mod error;
pub mod heartbeat;
pub mod load;
pub mod rng;
pub mod seed;
pub mod server;
pub mod suites;
pub mod uploads;

pub use error::Fault;
pub use heartbeat::shard_heartbeat;
