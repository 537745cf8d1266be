//! A JSON-RPC error as the master answers it: an exception-style `name`
//! (the class a Django master would raise) and a message.

use shard_store::StoreError;

/// A refusal or failure of the master, sent back as the JSON-RPC `error`
/// object (HTTP 200, as the original does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct Fault {
    /// The exception class, e.g. `DoesNotExist`, `UnallowedRecordsSentToMaster`.
    pub name: String,
    /// What went wrong.
    pub message: String,
}

impl Fault {
    /// A fault with the given exception name.
    pub fn new(name: &str, message: impl Into<String>) -> Self {
        Fault {
            name: name.to_owned(),
            message: message.into(),
        }
    }
}

impl From<StoreError> for Fault {
    fn from(e: StoreError) -> Self {
        Fault::new("DatabaseError", e.to_string())
    }
}

impl From<sea_orm::DbErr> for Fault {
    fn from(e: sea_orm::DbErr) -> Self {
        Fault::new("DatabaseError", e.to_string())
    }
}
