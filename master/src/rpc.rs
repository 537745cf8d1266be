//! The JSON-RPC methods the master serves, independent of HTTP: one call
//! object (`{"method", "params": [kwargs], "id"}`) in, the `result` value
//! or a [`Fault`] out. The server wraps this in the envelope of §2; tests
//! can call it on any backend.

use sea_orm::DatabaseConnection;
use serde_json::Value;

use crate::get_hosts::{HostQuery, get_hosts};
use crate::request::Heartbeat;
use crate::{Call, Fault, Mode, heartbeat, render};

/// Answers one JSON-RPC call in `mode`, made by the user the
/// `AUTHORIZATION` header names (`login`). In upstream mode the user is
/// looked up, and created on first use, before the method runs, as the
/// real master's middleware does.
pub async fn call(
    db: &DatabaseConnection,
    request: &Value,
    mode: Mode,
    login: Option<&str>,
) -> Result<Value, Fault> {
    let call = match mode {
        Mode::Strict => Call::strict(),
        Mode::Upstream => Call::upstream(db, login).await?,
    };
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kwargs = match request
        .get("params")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([kwargs]) => kwargs,
        _ => {
            return Err(Fault::new(
                "TypeError",
                "params must be a list of one object of keyword arguments",
            ));
        }
    };
    match method {
        "shard_heartbeat" => {
            let request: Heartbeat = serde_json::from_value(kwargs.clone())
                .map_err(|e| Fault::new("TypeError", format!("shard_heartbeat arguments: {e}")))?;
            let response = heartbeat::heartbeat_with(db, &request, &call).await?;
            render::heartbeat(&response, mode)
        }
        "get_hosts" => get_hosts(db, &HostQuery::from_kwargs(kwargs)?).await,
        _ => Err(Fault::new(
            "AttributeError",
            format!(
                "no such RPC method: {method:?} (this master serves shard_heartbeat and get_hosts)"
            ),
        )),
    }
}
