//! `cargo xtask chaos`: the demo lab under injected faults, then the
//! invariants that must hold whatever failed (nothing lost, nothing
//! duplicated, no database half-written, no entry's end lost on its way to
//! the master).

mod dbproxy;
mod lab;
pub mod proxy;
mod race;
mod run;

pub use run::{Missing, Options, ShardBackend, ends_missing_on_master, hold_sqlite_lock, run};
