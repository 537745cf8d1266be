//! The shard database: Autotest's AFE schema and the rules that read and
//! write it.
//!
//! The engine never builds SQL: every query it needs is a named function
//! here (`known_job_ids`, `jobs_to_upload`, `apply`, ...), taking any
//! sea-orm connection or transaction, so the caller decides the transaction
//! boundaries.

mod apply;
pub mod chunk;
pub mod convert;
pub mod entity;
mod error;
pub mod layout;
pub mod migration;
mod packet;
mod reconcile;
pub mod rows;
pub mod schema;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use apply::{ApplyReport, apply};
pub use error::{StoreError, redact_url};
pub use layout::Layout;
pub use packet::{
    KnownHosts, Marked, Missed, Running, Upload, jobs_to_upload, known_hosts, known_job_ids,
    mark_uploaded, release_missed, running_in_marked_jobs, shard_id_by_hostname,
};
pub use reconcile::{remove_incorrect_hosts, resync_completed_jobs};
pub use store::{MigrateReport, Store, StoreOptions, begin_write};
