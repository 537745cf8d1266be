//! Wire types of the Autotest shard heartbeat (`shard_heartbeat`).
//!
//! This crate owns the JSON shapes of §3–§5 of the protocol: the records a
//! master sends (with their relations), the upload shape a shard sends back,
//! and the value quirks real masters produce. It knows nothing of databases
//! or HTTP; the store and the RPC client build on it.

pub mod hosts;
pub mod packet;
pub mod record;
pub mod repair;
pub mod status;
#[cfg(feature = "testing")]
pub mod testing;
pub mod value;

pub use hosts::{GetHostsRequest, ListedHost};
pub use packet::{HeartbeatRequest, HeartbeatResponse, RecordKind, Rejected};
pub use record::{AclGroup, Host, HostAttribute, Hqe, Job, JobKeyval, Label, Shard, User};
pub use repair::Defect;
pub use value::{ToOne, format_datetime, parse_datetime};
