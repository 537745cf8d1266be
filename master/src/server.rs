//! The master's HTTP side: the AFE JSON-RPC dialect of §2 on hyper. Every
//! answer is HTTP 200 with `{"result", "id", "error"}`; a refusal is an
//! `error` object with an exception-style `name`, as a Django master sends.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use shard_model::HeartbeatRequest;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{Fault, shard_heartbeat};

/// The largest request body accepted (a shard uploads at most a few
/// thousand jobs).
const MAX_REQUEST_BYTES: usize = 256 << 20;

/// Serves `shard_heartbeat` on `listener` at `rpc_path` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    db: DatabaseConnection,
    rpc_path: String,
    shutdown: CancellationToken,
) {
    serve_with_faults(listener, db, rpc_path, None, shutdown).await;
}

/// [`serve`], with a fault switch for fault-injection tests (`cargo xtask
/// chaos`); never for a real lab. While `fault_file` exists and names a
/// [`Fault`](FaultMode), every call is answered with that fault instead of
/// (or, for a malformed record, besides) the real answer.
pub async fn serve_with_faults(
    listener: TcpListener,
    db: DatabaseConnection,
    rpc_path: String,
    fault_file: Option<PathBuf>,
    shutdown: CancellationToken,
) {
    let state = Arc::new(State {
        db,
        rpc_path,
        fault_file,
    });
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(req, &state).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}

/// What every connection shares.
struct State {
    db: DatabaseConnection,
    rpc_path: String,
    fault_file: Option<PathBuf>,
}

/// A fault the master can be told to answer with (test-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// HTTP 500 with a short text body.
    Http500,
    /// HTTP 200 with a body that is not JSON.
    Garbage,
    /// The real answer, plus one host record that cannot parse.
    MalformedRecord,
}

impl FaultMode {
    /// The mode a fault file names (`http_500`, `garbage`,
    /// `malformed_record`); anything else is no fault.
    pub fn parse(text: &str) -> Option<FaultMode> {
        match text.trim() {
            "http_500" => Some(FaultMode::Http500),
            "garbage" => Some(FaultMode::Garbage),
            "malformed_record" => Some(FaultMode::MalformedRecord),
            _ => None,
        }
    }
}

/// The fault in force, read per call so a test can switch it at any time.
async fn fault(state: &State) -> Option<FaultMode> {
    let path = state.fault_file.as_ref()?;
    let text = tokio::fs::read_to_string(path).await.ok()?;
    FaultMode::parse(&text)
}

async fn handle(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let rpc_path = state.rpc_path.as_str();
    if req.uri().path() != rpc_path {
        return plain(
            StatusCode::NOT_FOUND,
            format!("no RPC endpoint here; try {rpc_path}\n"),
        );
    }
    if req.method() != Method::POST {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST a JSON-RPC request\n".to_owned(),
        );
    }
    let body = match Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return plain(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request: {e}\n"),
            );
        }
    };
    let call: Value = match serde_json::from_slice(&body) {
        Ok(call) => call,
        Err(e) => {
            return envelope(
                Value::Null,
                Err(Fault::new(
                    "ValueError",
                    format!("request is not JSON: {e}"),
                )),
            );
        }
    };
    let id = call.get("id").cloned().unwrap_or(Value::Null);
    let injected = fault(state).await;
    match injected {
        Some(FaultMode::Http500) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "injected fault: internal server error\n".to_owned(),
            );
        }
        Some(FaultMode::Garbage) => {
            return plain(
                StatusCode::OK,
                "<html>injected fault: not JSON</html>".to_owned(),
            );
        }
        Some(FaultMode::MalformedRecord) | None => {}
    }
    let mut outcome = dispatch(&call, &state.db).await;
    if injected == Some(FaultMode::MalformedRecord)
        && let Ok(result) = &mut outcome
        && let Some(hosts) = result.get_mut("hosts").and_then(Value::as_array_mut)
    {
        hosts.push(json!({"id": 2_147_483_000, "hostname": ["not", "a", "string"]}));
    }
    envelope(id, outcome)
}

async fn dispatch(call: &Value, db: &DatabaseConnection) -> Result<Value, Fault> {
    let method = call
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if method != "shard_heartbeat" {
        return Err(Fault::new(
            "AttributeError",
            format!("no such RPC method: {method:?}"),
        ));
    }
    let kwargs = match call
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
    let request: HeartbeatRequest = serde_json::from_value(kwargs.clone())
        .map_err(|e| Fault::new("TypeError", format!("shard_heartbeat arguments: {e}")))?;
    let response = shard_heartbeat(db, &request).await?;
    serde_json::to_value(&response).map_err(|e| Fault::new("ValueError", e.to_string()))
}

fn envelope(id: Value, outcome: Result<Value, Fault>) -> Response<Full<Bytes>> {
    let body = match outcome {
        Ok(result) => json!({"result": result, "id": id, "error": null}),
        Err(fault) => {
            tracing::info!(name = %fault.name, message = %fault.message, "heartbeat refused");
            json!({
                "result": null,
                "id": id,
                "error": {
                    "name": fault.name,
                    "message": fault.message,
                    "traceback": format!("Traceback (most recent call last):\n  (shard-master)\n{}: {}\n", fault.name, fault.message),
                },
            })
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
}
