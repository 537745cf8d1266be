//! The AFE JSON-RPC client: one POST per call, in the dialect of the Autotest
//! frontend (`{"method", "params": [kwargs], "id": "jsonrpc"}`, spec §2), with
//! retries as the original's `RetryingAFE`, a size limit on responses, and
//! cancellation.
//!
//! ```no_run
//! # async fn heartbeat(packet: &serde_json::Value) -> Result<(), shard_rpc::RpcError> {
//! use shard_rpc::{AfeClient, RpcConfig};
//! use tokio_util::sync::CancellationToken;
//!
//! let client = AfeClient::new(RpcConfig::new("cautotest"))?;
//! let reply = client
//!     .call::<_, serde_json::Value>("shard_heartbeat", packet, &CancellationToken::new())
//!     .await?;
//! println!("{} bytes after {} attempts", reply.response_bytes, reply.attempts);
//! # Ok(())
//! # }
//! ```
//!
//! The crate knows the transport and the envelope only: the packets are
//! `shard-model`'s, and what a failure means for a heartbeat is the engine's.

mod body;
mod client;
mod config;
mod envelope;
mod error;
mod proxy;
mod retry;
mod tls;
mod transport;

pub use client::{ATTEMPTS, AfeClient, RETRIES, Reply};
pub use config::{
    DEFAULT_BUDGET, DEFAULT_DELAY, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_PATH,
    DEFAULT_REQUEST_TIMEOUT, FALLBACK_USER, RpcConfig, default_user,
};
pub use error::{BoxError, EXCERPT_CHARS, FailureKind, RpcError};
pub use proxy::{ProxyConfig, without_credentials};
