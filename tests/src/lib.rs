//! Harness for the cross-crate integration tests: a scripted master that
//! plays the global AFE, and a runner for the real `shard-client` binary.
//!
//! A test starts a [`ScriptedMaster`] with a [`Script`] of [`Reply`] steps,
//! points the client at [`ScriptedMaster::url`], runs it with
//! [`ShardClient`], then reads what the master received
//! ([`ScriptedMaster::heartbeats`], [`ScriptedMaster::requests`]) and
//! asserts that nothing broke the dialect
//! ([`ScriptedMaster::assert_no_violations`]). [`scrape`] reads the
//! client's metrics endpoint.
//!
//! ```no_run
//! # async fn example() {
//! use std::time::Duration;
//! use shard_tests::{Reply, ScriptedMaster, ShardClient};
//!
//! // One overloaded answer, then (by default) empty results.
//! let master = ScriptedMaster::start([Reply::Status(503)]).await;
//! let url = master.url();
//! let args = ["once", "--global-afe-hostname", &url, "--shard-hostname", "shard1"];
//! let env = [("SHARD_CLIENT_RPC_DELAY_SEC", "0.05")];
//! let output = ShardClient::run_to_end(args, &env, Duration::from_secs(30)).await;
//! assert_eq!(output.code, Some(0), "{output}");
//! assert_eq!(master.heartbeats().len(), 2, "the 503 is retried");
//! master.assert_no_violations();
//! # }
//! ```

pub mod bin;
mod dialect;
pub mod master;
pub mod proxy;
pub mod scheduler;
pub mod scrape;
pub mod script;
pub mod tls;

pub use bin::{Output, Running, ShardClient, shard_client_path};
pub use master::{Received, ScriptedMaster, WaitTimeout};
pub use proxy::{ProxyRequest, RecordingProxy};
pub use script::{Reply, Script, empty_result};
pub use tls::TlsFront;
