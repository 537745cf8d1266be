//! `cargo xtask chaos`: the demo lab under injected faults, then the
//! invariants that must hold whatever failed (nothing lost, nothing
//! duplicated, no database half-written).

mod dbproxy;
mod lab;
pub mod proxy;
mod run;

pub use run::{Options, hold_sqlite_lock, run};
