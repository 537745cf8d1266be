//! The master's HTTP side: the AFE JSON-RPC dialect of §2 on hyper. Every
//! answer is HTTP 200 with `{"result", "id", "error"}`; a refusal is an
//! `error` object with an exception-style `name`, as a Django master sends.
//! As the real master (§11), answers are labelled `text/html;
//! charset=utf-8` and set a Django session cookie, which a client must
//! neither insist on nor need.

use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{Fault, Mode, rpc};

/// The largest request body accepted (a shard uploads at most a few
/// thousand jobs).
const MAX_REQUEST_BYTES: usize = 256 << 20;

/// How the master serves: where, by which rules, and the test-only fault
/// switch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServeOptions {
    /// The JSON-RPC path (the AFE's is `/afe/server/noauth/rpc/`).
    pub rpc_path: String,
    /// Strict (the default) or upstream rules.
    pub mode: Mode,
    /// TEST ONLY: see [`serve_with_faults`].
    pub fault_file: Option<PathBuf>,
}

/// Serves the master's methods on `listener` at `rpc_path` until
/// `shutdown`, by the strict rules.
pub async fn serve(
    listener: TcpListener,
    db: DatabaseConnection,
    rpc_path: String,
    shutdown: CancellationToken,
) {
    let options = ServeOptions {
        rpc_path,
        ..ServeOptions::default()
    };
    serve_with(listener, db, options, shutdown).await;
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
    let options = ServeOptions {
        rpc_path,
        mode: Mode::Strict,
        fault_file,
    };
    serve_with(listener, db, options, shutdown).await;
}

/// Serves the master's methods (`shard_heartbeat`, `get_hosts`) on
/// `listener` as `options` say, until `shutdown`.
pub async fn serve_with(
    listener: TcpListener,
    db: DatabaseConnection,
    options: ServeOptions,
    shutdown: CancellationToken,
) {
    let state = Arc::new(State { db, options });
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
    options: ServeOptions,
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
    let path = state.options.fault_file.as_ref()?;
    let text = tokio::fs::read_to_string(path).await.ok()?;
    FaultMode::parse(&text)
}

async fn handle(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let rpc_path = state.options.rpc_path.as_str();
    if req.uri().path() != rpc_path {
        return plain(
            StatusCode::NOT_FOUND,
            format!("no RPC endpoint here; try {rpc_path}\n"),
        );
    }
    // Header values that are not text name no user (the original would see
    // none either and fall back to its debug user).
    let login = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
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
    let mut outcome = rpc::call(&state.db, &call, state.options.mode, login.as_deref()).await;
    if injected == Some(FaultMode::MalformedRecord)
        && let Ok(result) = &mut outcome
        && let Some(hosts) = result.get_mut("hosts").and_then(Value::as_array_mut)
    {
        // A whitelisted field of the wrong type: the record cannot parse,
        // whether the shard has the host or not.
        hosts.push(json!({"id": 2_147_483_000, "invalid": ["not", "a", "boolean"]}));
    }
    envelope(id, outcome)
}

fn envelope(id: Value, outcome: Result<Value, Fault>) -> Response<Full<Bytes>> {
    let body = match outcome {
        Ok(result) => json!({"result": result, "id": id, "error": null}),
        Err(fault) => {
            tracing::info!(name = %fault.name, reason = %fault.message, "call refused");
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
    let headers = response.headers_mut();
    // What Django's HttpResponse says of the JSON it carries.
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(cookie) = HeaderValue::from_str(&session_cookie()) {
        headers.insert(SET_COOKIE, cookie);
    }
    response
}

/// How long Django keeps a session: two weeks (`SESSION_COOKIE_AGE`).
const SESSION_SECONDS: i64 = 1_209_600;

/// A fresh Django session cookie, as the real master sets on every answer.
fn session_cookie() -> String {
    let expires = chrono::Utc::now() + chrono::TimeDelta::seconds(SESSION_SECONDS);
    format!(
        "sessionid={}; expires={}; HttpOnly; Max-Age={SESSION_SECONDS}; Path=/",
        session_id(),
        expires.format("%a, %d-%b-%Y %H:%M:%S GMT"),
    )
}

/// 32 random hex digits. The session means nothing to this master, so the
/// standard library's randomly keyed hasher is random enough: no secret
/// rests on it.
fn session_id() -> String {
    let state = std::collections::hash_map::RandomState::new();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut id = String::with_capacity(32);
    for half in 0..2u8 {
        let mut hasher = state.build_hasher();
        hasher.write_u8(half);
        hasher.write_u128(nanos);
        id.push_str(&format!("{:016x}", hasher.finish()));
    }
    id
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
}
