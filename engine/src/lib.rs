//! One heartbeat of the shard client (§7), step by step: build the packet,
//! call `shard_heartbeat`, mark the uploads, apply the response, remove
//! incorrect hosts, re-sync completed jobs.
//!
//! The engine orchestrates; it never builds SQL (the store does) and never
//! speaks HTTP (the RPC client does). It owns the heartbeat's report, its
//! log lines and its metrics, named once in [`metrics`].

mod error;
mod heal;
mod heartbeat;
pub mod metrics;
mod report;

pub use error::HeartbeatError;
pub use heartbeat::{Carried, Shard, heartbeat};
pub use report::{PerKind, Phases, Report};
