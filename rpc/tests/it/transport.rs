//! The transport around one call: refused connections and silent masters
//! within the budget, cancellation, the response size limit and gzip.

use std::time::Duration;

use crate::common::{
    Server, Silent, TestResult, chunked, config, envelope, gzipped, respond, success,
};
use serde_json::{Value, json};
use shard_rpc::{AfeClient, FailureKind, Reply, RpcConfig, RpcError};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a cancelled call may take to return (the bound).
const CANCEL_BOUND: Duration = Duration::from_millis(100);

/// Scheduling slack on a loaded machine for bounds of a whole budget.
const SLACK: Duration = Duration::from_millis(500);

async fn call_value(config: RpcConfig) -> Result<Reply<Value>, RpcError> {
    let client = AfeClient::new(config)?;
    client
        .call("shard_heartbeat", &json!({}), &CancellationToken::new())
        .await
}

fn expect_error(
    outcome: Result<Reply<Value>, RpcError>,
) -> Result<RpcError, Box<dyn std::error::Error + Send + Sync>> {
    match outcome {
        Ok(reply) => Err(format!("expected an error, got {reply:?}").into()),
        Err(error) => Ok(error),
    }
}

/// A call of `client` running in its own task, and the token that cancels
/// it.
fn spawn_call(
    client: AfeClient,
) -> (
    CancellationToken,
    JoinHandle<Result<Reply<Value>, RpcError>>,
) {
    let cancel = CancellationToken::new();
    let call = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            client
                .call::<_, Value>("shard_heartbeat", &json!({}), &cancel)
                .await
        }
    });
    (cancel, call)
}

/// Cancels `cancel` and waits for `call`: its outcome, and how long it took
/// to return after the cancel.
async fn cancel_and_wait(
    cancel: &CancellationToken,
    call: JoinHandle<Result<Reply<Value>, RpcError>>,
) -> Result<(Result<Reply<Value>, RpcError>, Duration), JoinError> {
    let cancelled_at = Instant::now();
    cancel.cancel();
    let outcome = call.await?;
    Ok((outcome, cancelled_at.elapsed()))
}

/// An address where nothing listens: a port just released.
async fn refused_addr() -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    listener.local_addr()
}

#[tokio::test]
async fn connection_refused_is_retried_and_fails_within_the_budget() -> TestResult {
    let addr = refused_addr().await?;
    let budget = Duration::from_secs(1);
    let config = RpcConfig {
        budget,
        ..config(&addr.to_string())
    };

    let start = Instant::now();
    let error = expect_error(call_value(config).await)?;
    let elapsed = start.elapsed();

    assert_eq!(error.kind(), FailureKind::Connection, "{error}");
    assert!(error.to_string().contains(&addr.to_string()), "{error}");
    // Retried until the budget was spent, and not longer.
    assert!(elapsed >= budget, "gave up after {elapsed:?}");
    assert!(elapsed < budget + SLACK, "took {elapsed:?}");
    Ok(())
}

#[tokio::test]
async fn a_silent_master_times_out_each_attempt_within_the_budget() -> TestResult {
    let silent = Silent::start().await?;
    let budget = Duration::from_secs(1);
    let config = RpcConfig {
        budget,
        request_timeout: Duration::from_millis(300),
        ..config(&silent.url())
    };

    let start = Instant::now();
    let error = expect_error(call_value(config).await)?;
    let elapsed = start.elapsed();

    assert_eq!(error.kind(), FailureKind::Timeout, "{error}");
    let RpcError::Timeout { after, .. } = error else {
        return Err("not a timeout".into());
    };
    assert!(after <= Duration::from_millis(300), "{after:?}");
    // Each timed-out attempt dropped its connection; the retries opened new ones.
    assert!(
        silent.connection_count() >= 2,
        "{}",
        silent.connection_count()
    );
    assert!(elapsed < budget + SLACK, "took {elapsed:?}");
    Ok(())
}

#[tokio::test]
async fn cancel_ends_an_attempt_in_flight_at_once() -> TestResult {
    let silent = Silent::start().await?;
    let config = RpcConfig {
        budget: Duration::from_secs(60),
        request_timeout: Duration::from_secs(60),
        ..config(&silent.url())
    };
    let (cancel, call) = spawn_call(AfeClient::new(config)?);
    silent.request_seen.notified().await;

    let (outcome, took) = cancel_and_wait(&cancel, call).await?;

    let error = expect_error(outcome)?;
    assert_eq!(error.kind(), FailureKind::Cancelled, "{error}");
    assert_eq!(error.kind().as_str(), "cancelled");
    assert!(took < CANCEL_BOUND, "returned {took:?} after cancel");
    assert_eq!(silent.connection_count(), 1);
    Ok(())
}

#[tokio::test]
async fn cancel_ends_a_backoff_sleep_at_once() -> TestResult {
    let first_seen = std::sync::Arc::new(tokio::sync::Notify::new());
    let seen = first_seen.clone();
    let server = Server::start(move |_, _| {
        seen.notify_one();
        respond(503, "busy")
    })
    .await?;
    let config = RpcConfig {
        delay: Duration::from_secs(30),
        budget: Duration::from_secs(60),
        ..config(&server.url())
    };
    let (cancel, call) = spawn_call(AfeClient::new(config)?);
    first_seen.notified().await;
    // Let the 503 reach the client, which then sleeps for about 30 s.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let (outcome, took) = cancel_and_wait(&cancel, call).await?;

    let error = expect_error(outcome)?;
    assert_eq!(error.kind(), FailureKind::Cancelled, "{error}");
    assert!(took < CANCEL_BOUND, "returned {took:?} after cancel");
    assert_eq!(server.request_count(), 1);
    Ok(())
}

#[tokio::test]
async fn a_cancelled_token_sends_nothing() -> TestResult {
    let server = Server::start(|_, _| success(&json!(null))).await?;
    let client = AfeClient::new(config(&server.url()))?;
    let cancel = CancellationToken::new();
    cancel.cancel();

    let outcome = client
        .call::<_, Value>("shard_heartbeat", &json!({}), &cancel)
        .await;

    assert_eq!(expect_error(outcome)?.kind(), FailureKind::Cancelled);
    assert_eq!(server.request_count(), 0);
    Ok(())
}

/// A successful body of exactly `len` bytes (padded with spaces).
fn body_of_len(len: usize) -> Result<Vec<u8>, String> {
    let mut body = envelope(&json!({"hosts": []})).to_string().into_bytes();
    if body.len() > len {
        return Err(format!("{len} bytes is too short for an envelope"));
    }
    body.resize(len, b' ');
    Ok(body)
}

/// Asserts that `error` is the refusal of a body past `max_response_bytes`.
fn assert_over_the_limit(error: &RpcError) {
    assert_eq!(error.kind(), FailureKind::InvalidResponse, "{error}");
    assert!(error.to_string().contains("max_response_bytes"), "{error}");
}

fn with_limit(server: &Server, limit: u64) -> RpcConfig {
    RpcConfig {
        max_response_bytes: limit,
        ..config(&server.url())
    }
}

#[tokio::test]
async fn a_body_at_the_limit_is_accepted() -> TestResult {
    let body = body_of_len(1000)?;
    let server = Server::start(move |_, _| respond(200, body.clone())).await?;

    let reply = call_value(with_limit(&server, 1000)).await?;

    assert_eq!(reply.result, json!({"hosts": []}));
    assert_eq!(reply.response_bytes, 1000);
    Ok(())
}

#[tokio::test]
async fn a_body_one_byte_over_the_limit_is_an_invalid_response() -> TestResult {
    let body = body_of_len(1001)?;
    let server = Server::start(move |_, _| respond(200, body.clone())).await?;

    let error = expect_error(call_value(with_limit(&server, 1000)).await)?;

    assert_over_the_limit(&error);
    assert_eq!(server.request_count(), 1);
    Ok(())
}

#[tokio::test]
async fn a_chunked_body_one_byte_over_the_limit_is_an_invalid_response() -> TestResult {
    let body = body_of_len(1001)?;
    let server = Server::start(move |_, _| chunked(&body, 100)).await?;

    let error = expect_error(call_value(with_limit(&server, 1000)).await)?;

    assert_over_the_limit(&error);
    assert_eq!(server.request_count(), 1);
    Ok(())
}

#[tokio::test]
async fn a_chunked_body_at_the_limit_is_accepted() -> TestResult {
    let body = body_of_len(1000)?;
    let server = Server::start(move |_, _| chunked(&body, 100)).await?;

    let reply = call_value(with_limit(&server, 1000)).await?;

    assert_eq!(reply.response_bytes, 1000);
    Ok(())
}

#[tokio::test]
async fn a_gzip_body_is_decoded() -> TestResult {
    let result = json!({"hosts": [{"id": 1, "hostname": "h1"}], "jobs": []});
    let body = envelope(&result).to_string();
    let response_len = body.len() as u64;
    let server = Server::start(move |_, _| {
        gzipped(body.as_bytes()).unwrap_or_else(|error| respond(500, error.to_string()))
    })
    .await?;

    let reply = call_value(config(&server.url())).await?;

    assert_eq!(reply.result, result);
    assert_eq!(reply.response_bytes, response_len);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("accept-encoding"), "gzip");
    Ok(())
}

#[tokio::test]
async fn a_gzip_body_decoding_past_the_limit_is_an_invalid_response() -> TestResult {
    // 1 MB of spaces after the envelope compresses to about a kilobyte.
    let body = body_of_len(1_000_000)?;
    let server = Server::start(move |_, _| {
        gzipped(&body).unwrap_or_else(|error| respond(500, error.to_string()))
    })
    .await?;

    let error = expect_error(call_value(with_limit(&server, 100_000)).await)?;

    assert_over_the_limit(&error);
    Ok(())
}

#[tokio::test]
async fn a_corrupt_gzip_body_is_an_invalid_response() -> TestResult {
    let server = Server::start(|_, _| {
        let mut response = respond(200, "this is not gzip");
        response.headers_mut().insert(
            http::header::CONTENT_ENCODING,
            http::HeaderValue::from_static("gzip"),
        );
        response
    })
    .await?;

    let error = expect_error(call_value(config(&server.url())).await)?;

    assert_eq!(error.kind(), FailureKind::InvalidResponse, "{error}");
    assert!(error.to_string().contains("bad gzip body"), "{error}");
    Ok(())
}
