//! A reference master (the "global AFE") for tests and demos: it serves
//! `shard_heartbeat` with the semantics of §8 over the dialect of §2, on the
//! same AFE schema and store crate as the shard, plus `get_hosts` for a
//! client's self-healing.
//!
//! Two modes ([`Mode`]): strict (the default) keeps the reference master's
//! stricter rules, one transaction per heartbeat; upstream behaves as the
//! real master does where a client can tell (§11): no transaction, the
//! newer error names, no `parent_job_id` in jobs, jobs following their
//! board to another shard, aborts only while a job has not started on the
//! master, and ACL checks on host statuses.
//!
//! Assignment is set-based and race-safe like the original: select the
//! candidates, update them conditionally (re-checking label, lease and, in
//! strict mode, owner), then read back what was really assigned.

pub mod acl;
pub mod assign;
mod error;
pub mod get_hosts;
pub mod heartbeat;
pub mod load;
mod mode;
pub mod render;
pub mod request;
pub mod rng;
pub mod rpc;
pub mod seed;
pub mod server;
pub mod statuses;
pub mod suites;
pub mod uploads;

pub use error::Fault;
pub use heartbeat::{heartbeat_with, shard_heartbeat};
pub use mode::{Call, Mode};
