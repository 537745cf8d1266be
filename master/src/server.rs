//! The master's HTTP side: the AFE JSON-RPC dialect of §2 on hyper. Every
//! answer is HTTP 200 with `{"result", "id", "error"}`; a refusal is an
//! `error` object with an exception-style `name`, as a Django master sends.

use std::convert::Infallible;
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
    let state = Arc::new((db, rpc_path));
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
                async move { Ok::<_, Infallible>(handle(req, &state.0, &state.1).await) }
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

async fn handle(
    req: Request<Incoming>,
    db: &DatabaseConnection,
    rpc_path: &str,
) -> Response<Full<Bytes>> {
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
    let outcome = dispatch(&call, db).await;
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
