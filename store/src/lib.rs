//! The shard database: Autotest's AFE schema and the rules that read and
//! write it.
//!
//! The engine never builds SQL and holds no connection: a heartbeat is two
//! operations on a [`Store`], [`Store::build_packet`] (§7 step 1) and
//! [`Store::write_answer`] (steps 3–6, one transaction). Below them, each
//! query is a named function (`known_job_ids`, `jobs_to_upload`, `apply`,
//! ...) taking any sea-orm connection or transaction; tests, the
//! simulator and the bench call those one by one.

mod apply;
mod error;
mod heartbeat;
pub mod layout;
mod packet;
mod reconcile;
pub mod schema;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use apply::{ApplyReport, apply};
pub use error::{StoreError, redact_url};
pub use heartbeat::{Packet, Written};
pub use layout::Layout;
pub use packet::{
    KnownHosts, Marked, Missed, Running, Upload, jobs_to_upload, known_hosts, known_job_ids,
    mark_uploaded, release_missed, running_in_marked_jobs, shard_id_by_hostname,
};
pub use reconcile::{remove_incorrect_hosts, resync_completed_jobs};
pub use store::{MigrateReport, Store, StoreOptions, begin_write};
