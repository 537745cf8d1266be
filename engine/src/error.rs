//! Why a heartbeat failed, as the metric label `failure_type` counts it.

use shard_rpc::{FailureKind, RpcError};
use shard_store::StoreError;

/// The start of the master's message when a known host id does not exist
/// there (Django's `Host.DoesNotExist`).
const UNKNOWN_HOST: &str = "Host matching query does not exist";

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

    /// True when the master refused the heartbeat because a known host id
    /// is one it does not have (a host deleted on the master while this
    /// shard had it, §11): every heartbeat fails so until the shard forgets
    /// that host.
    pub fn names_an_unknown_host(&self) -> bool {
        matches!(
            self,
            HeartbeatError::Rpc(RpcError::JsonRpc { name, message, .. })
                if name == "DoesNotExist" && message.starts_with(UNKNOWN_HOST)
        )
    }

    /// What an operator can do about this failure, when the master's answer
    /// says more than its own message.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            HeartbeatError::Rpc(RpcError::JsonRpc { name, .. }) if name == "AclAccessViolation" => {
                Some(
                    "the master checks the rpc_user's ACL groups when it saves a host status: \
                     the rpc_user must have access to every host of this shard on the master \
                     (in practice, a superuser)",
                )
            }
            _ if self.names_an_unknown_host() => Some(
                "the master no longer has a host this shard reports; the client asks it \
                 which hosts exist and forgets the others",
            ),
            _ => None,
        }
    }

    /// True when the heartbeat was abandoned because shutdown was
    /// requested: not a failure of the master or the database.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, HeartbeatError::Rpc(e) if e.kind() == FailureKind::Cancelled)
    }
}
