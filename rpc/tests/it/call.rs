//! One call against a local master: what goes on the wire, and how each kind
//! of answer (result, error object, HTTP status, broken body) comes back.

use std::time::Duration;

use crate::common::{Server, TestResult, USER, config, fixture_json, respond, success};
use serde_json::{Value, json};
use shard_model::{HeartbeatRequest, HeartbeatResponse};
use shard_rpc::{AfeClient, FailureKind, RpcConfig, RpcError};
use tokio_util::sync::CancellationToken;

/// Calls `method` on `server` with the test configuration.
async fn call<R: serde::de::DeserializeOwned>(
    server: &Server,
    params: &Value,
) -> Result<shard_rpc::Reply<R>, Box<dyn std::error::Error + Send + Sync>> {
    let client = AfeClient::new(config(&server.url()))?;
    Ok(client
        .call("shard_heartbeat", params, &CancellationToken::new())
        .await?)
}

/// Like [`call`], expecting a failure.
async fn call_error(server: &Server) -> Result<RpcError, Box<dyn std::error::Error + Send + Sync>> {
    let client = AfeClient::new(config(&server.url()))?;
    match client
        .call::<_, Value>("shard_heartbeat", &json!({}), &CancellationToken::new())
        .await
    {
        Ok(reply) => Err(format!("expected an error, got {reply:?}").into()),
        Err(error) => Ok(error),
    }
}

#[tokio::test]
async fn success_returns_the_result_and_the_sizes() -> TestResult {
    let result = json!({"hosts": [], "jobs": [], "suite_keyvals": [], "incorrect_host_ids": [7]});
    let body = crate::common::envelope(&result).to_string();
    let answer = body.clone();
    let server = Server::start(move |_, _| respond(200, answer.clone())).await?;

    let reply = call::<Value>(&server, &json!({"shard_hostname": "shard1"})).await?;

    assert_eq!(reply.result, result);
    assert_eq!(reply.attempts, 1);
    assert_eq!(reply.response_bytes, body.len() as u64);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(reply.request_bytes, requests[0].body.len() as u64);
    Ok(())
}

#[tokio::test]
async fn request_is_the_afe_dialect_on_the_wire() -> TestResult {
    let server = Server::start(|_, _| success(&json!(null))).await?;

    call::<Value>(
        &server,
        &json!({"shard_hostname": "shard1", "known_job_ids": [1, 2]}),
    )
    .await?;

    let requests = server.requests();
    let [request] = requests.as_slice() else {
        return Err(format!("expected one request, got {}", requests.len()).into());
    };
    assert_eq!(request.method, http::Method::POST);
    assert_eq!(request.uri.path(), "/afe/server/noauth/rpc/");
    assert_eq!(request.uri.query(), Some("method=shard_heartbeat"));
    assert_eq!(request.header("authorization"), USER);
    assert_eq!(request.header("content-type"), "application/json");
    assert_eq!(request.header("accept-encoding"), "gzip");
    assert_eq!(request.header("host"), server.addr.to_string());
    assert_eq!(
        request.header("content-length"),
        request.body.len().to_string()
    );
    let body = request.json()?;
    assert_eq!(
        body,
        json!({
            "method": "shard_heartbeat",
            "params": [{"shard_hostname": "shard1", "known_job_ids": [1, 2]}],
            "id": "jsonrpc"
        })
    );
    Ok(())
}

#[tokio::test]
async fn default_user_is_sent_as_authorization() -> TestResult {
    let server = Server::start(|_, _| success(&json!(null))).await?;
    let client = AfeClient::new(RpcConfig::new(server.url()))?;

    client
        .call::<_, Value>("echo", &json!({}), &CancellationToken::new())
        .await?;

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].header("authorization"),
        shard_rpc::default_user()
    );
    assert_eq!(requests[0].uri.query(), Some("method=echo"));
    Ok(())
}

#[tokio::test]
async fn heartbeat_request_fixture_arrives_equal_as_json() -> TestResult {
    let fixture = fixture_json("request-upload.json")?;
    let packet: HeartbeatRequest = serde_json::from_value(fixture["params"][0].clone())?;
    let server = Server::start(|_, _| success(&json!(null))).await?;
    let client = AfeClient::new(config(&server.url()))?;

    let method = fixture["method"].as_str().unwrap_or_default();
    client
        .call::<_, Value>(method, &packet, &CancellationToken::new())
        .await?;

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let body = requests[0].json()?;
    assert_eq!(body["params"][0], fixture["params"][0]);
    assert_eq!(body, fixture);
    Ok(())
}

#[tokio::test]
async fn heartbeat_response_fixture_decodes_into_the_model() -> TestResult {
    let result = fixture_json("response-basic.json")?["result"].clone();
    let answer = result.clone();
    let server = Server::start(move |_, _| success(&answer)).await?;

    let reply = call::<HeartbeatResponse>(&server, &json!({})).await?;

    assert_eq!(
        reply.result,
        HeartbeatResponse::from_json(result.to_string().as_bytes())?
    );
    assert!(!reply.result.hosts.is_empty());
    Ok(())
}

#[tokio::test]
async fn error_object_is_a_json_rpc_failure_and_not_retried() -> TestResult {
    let body = std::fs::read(crate::common::fixture("error-unknown-shard.json"))?;
    let server = Server::start(move |_, _| respond(200, body.clone())).await?;

    let error = call_error(&server).await?;

    assert_eq!(error.kind(), FailureKind::JsonRpc);
    assert_eq!(server.request_count(), 1);
    let RpcError::JsonRpc {
        name,
        message,
        traceback,
        ..
    } = &error
    else {
        return Err(format!("not a JSON-RPC error: {error:?}").into());
    };
    assert_eq!(name, "DoesNotExist");
    assert_eq!(message, "Shard matching query does not exist.");
    assert!(traceback.starts_with("Traceback (most recent call last):"));
    let display = error.to_string();
    assert!(
        display.contains("DoesNotExist: Shard matching query does not exist."),
        "{display}"
    );
    assert!(display.contains("method=shard_heartbeat"), "{display}");
    assert!(!display.contains("Traceback"), "{display}");
    Ok(())
}

#[tokio::test]
async fn server_errors_are_retried_until_success() -> TestResult {
    let server = Server::start(|index, _| match index {
        0 => respond(500, "boom"),
        1 => respond(503, "busy"),
        _ => success(&json!({"ok": true})),
    })
    .await?;

    let reply = call::<Value>(&server, &json!({})).await?;

    assert_eq!(reply.result, json!({"ok": true}));
    assert_eq!(reply.attempts, 3);
    assert_eq!(server.request_count(), 3);
    Ok(())
}

#[tokio::test]
async fn too_many_requests_is_retried() -> TestResult {
    let server = Server::start(|index, _| match index {
        0 => respond(429, "slow down"),
        _ => success(&json!(1)),
    })
    .await?;

    let reply = call::<Value>(&server, &json!({})).await?;

    assert_eq!((reply.result, reply.attempts), (json!(1), 2));
    Ok(())
}

/// A master that says when to come back (`Retry-After`) is heeded, even
/// past the client's own (50 ms) back-off, within the (2 s) budget.
#[tokio::test]
async fn retry_after_is_heeded_within_the_budget() -> TestResult {
    let server = Server::start(|index, _| match index {
        0 => {
            let mut busy = respond(503, "busy");
            busy.headers_mut()
                .insert("retry-after", http::HeaderValue::from_static("1"));
            busy
        }
        _ => success(&json!(1)),
    })
    .await?;

    let started = std::time::Instant::now();
    let reply = call::<Value>(&server, &json!({})).await?;

    assert_eq!((reply.result, reply.attempts), (json!(1), 2));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retried after {:?}, before the asked second",
        started.elapsed()
    );
    assert_eq!(server.request_count(), 2);
    Ok(())
}

#[tokio::test]
async fn client_error_status_is_not_retried() -> TestResult {
    let server = Server::start(|_, _| respond(400, "bad request: no such method")).await?;

    let error = call_error(&server).await?;

    assert_eq!(error.kind(), FailureKind::HttpStatus);
    assert_eq!(server.request_count(), 1);
    let RpcError::HttpStatus {
        status, excerpt, ..
    } = &error
    else {
        return Err(format!("not an HTTP status error: {error:?}").into());
    };
    assert_eq!(status.as_u16(), 400);
    assert_eq!(excerpt, "bad request: no such method");
    assert!(error.to_string().contains("400"), "{error}");
    Ok(())
}

#[tokio::test]
async fn status_excerpt_is_at_most_200_chars() -> TestResult {
    let server = Server::start(|_, _| respond(404, "x".repeat(10_000))).await?;

    let error = call_error(&server).await?;

    let RpcError::HttpStatus { excerpt, .. } = &error else {
        return Err(format!("not an HTTP status error: {error:?}").into());
    };
    assert_eq!(excerpt.chars().count(), 200);
    Ok(())
}

#[tokio::test]
async fn invalid_json_is_an_invalid_response_and_not_retried() -> TestResult {
    let server = Server::start(|_, _| respond(200, "<html>Proxy Error</html>")).await?;

    let error = call_error(&server).await?;

    assert_eq!(error.kind(), FailureKind::InvalidResponse);
    assert_eq!(server.request_count(), 1);
    let display = error.to_string();
    assert!(display.contains("not JSON"), "{display}");
    assert!(display.contains("<html>Proxy Error</html>"), "{display}");
    Ok(())
}

#[tokio::test]
async fn json_that_is_not_the_envelope_is_an_invalid_response() -> TestResult {
    let server = Server::start(|index, _| match index {
        0 => respond(200, r#"{"hello": "world"}"#),
        _ => respond(200, r#"[{"result": 1, "error": null}]"#),
    })
    .await?;

    let first = call_error(&server).await?;
    let second = call_error(&server).await?;

    assert_eq!(first.kind(), FailureKind::InvalidResponse);
    assert!(first.to_string().contains("envelope"), "{first}");
    assert_eq!(second.kind(), FailureKind::InvalidResponse);
    assert!(second.to_string().contains("not an object"), "{second}");
    assert_eq!(server.request_count(), 2);
    Ok(())
}

#[tokio::test]
async fn result_of_the_wrong_shape_is_an_invalid_response() -> TestResult {
    let server = Server::start(|_, _| success(&json!({"hosts": 5, "jobs": []}))).await?;
    let client = AfeClient::new(config(&server.url()))?;

    let error = client
        .call::<_, HeartbeatResponse>("shard_heartbeat", &json!({}), &CancellationToken::new())
        .await
        .err()
        .ok_or("a result with hosts = 5 was accepted")?;

    assert_eq!(error.kind(), FailureKind::InvalidResponse);
    assert!(error.to_string().contains("result"), "{error}");
    assert_eq!(server.request_count(), 1);
    Ok(())
}

#[tokio::test]
async fn connections_are_kept_alive_across_calls() -> TestResult {
    let server = Server::start(|_, _| success(&json!(null))).await?;
    let client = AfeClient::new(config(&server.url()))?;

    for _ in 0..3 {
        client
            .call::<_, Value>("shard_heartbeat", &json!({}), &CancellationToken::new())
            .await?;
    }

    assert_eq!(server.request_count(), 3);
    assert_eq!(server.connection_count(), 1);
    Ok(())
}
