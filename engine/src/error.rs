//! Why a heartbeat failed, as the metric label `failure_type` counts it.

use shard_rpc::{FailureKind, RpcError};
use shard_store::StoreError;

/// A failed heartbeat. Whatever failed, the shard database is as it was
/// before the heartbeat: uploads stay unmarked, nothing is applied.
#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    /// The call to the master failed (after its retries).
    #[error("the master call failed: {0}")]
    Rpc(#[from] RpcError),
    /// The shard database failed.
    #[error("the shard database failed: {0}")]
    Database(#[from] StoreError),
}

impl HeartbeatError {
    /// The `failure_type` label: `connection`, `timeout`, `http_status`,
    /// `json_rpc`, `invalid_response` or `database`.
    pub fn failure_type(&self) -> &'static str {
        match self {
            HeartbeatError::Rpc(e) => e.kind().as_str(),
            HeartbeatError::Database(_) => "database",
        }
    }

    /// True when the heartbeat was abandoned because shutdown was
    /// requested: not a failure of the master or the database.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, HeartbeatError::Rpc(e) if e.kind() == FailureKind::Cancelled)
    }
}
