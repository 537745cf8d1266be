//! The integration tests of `shard-rpc`, one binary with a module per
//! subject (`cargo test -p shard-rpc --test it`); [`common`] holds the
//! local servers they call.

mod call;
mod common;
mod logs;
mod transport;
