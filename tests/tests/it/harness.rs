//! Smoke tests of the harness itself, without the `shard-client` binary: a
//! plain hyper client talks to the scripted master.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use shard_model::testing::fixture;
use shard_model::{HeartbeatRequest, HeartbeatResponse};
use shard_tests::{Reply, Script, ScriptedMaster, WaitTimeout, empty_result};

const PATH: &str = "/afe/server/noauth/rpc/?method=shard_heartbeat";

/// A pooling client, as the shard client is.
fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A request as the shard client sends it, with `body`.
fn call(master: &ScriptedMaster, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post(format!("{}{PATH}", master.url()))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, "tester")
        .body(Full::new(body.into()))
        .unwrap()
}

/// The body of a heartbeat call with nothing known and nothing to upload.
fn heartbeat() -> Value {
    json!({
        "method": "shard_heartbeat",
        "params": [{
            "shard_hostname": "shard1",
            "known_job_ids": [],
            "known_host_ids": [],
            "known_host_statuses": [],
            "jobs": [],
            "hqes": [],
        }],
        "id": "jsonrpc",
    })
}

/// Sends `request`; the status and the body.
async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> (StatusCode, Bytes) {
    let response = client.request(request).await.unwrap();
    let status = response.status();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

/// Sends a heartbeat; the status and the body parsed as JSON.
async fn send_heartbeat(master: &ScriptedMaster) -> (StatusCode, Value) {
    let (status, body) = send(&client(), call(master, heartbeat().to_string())).await;
    (status, serde_json::from_slice(&body).unwrap())
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

#[tokio::test]
async fn a_heartbeat_gets_the_scripted_result_and_is_recorded() {
    let result = json!({"hosts": [], "jobs": [], "suite_keyvals": [], "incorrect_host_ids": [7]});
    let master = ScriptedMaster::start([Reply::Result(result.clone())]).await;

    let (status, body) = send_heartbeat(&master).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"result": result, "id": "jsonrpc", "error": null})
    );
    let requests = master.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, Method::POST);
    assert_eq!(requests[0].path_and_query, PATH);
    assert_eq!(requests[0].header("authorization"), Some("tester"));
    assert_eq!(requests[0].body, heartbeat());
    master.assert_no_violations();
}

#[tokio::test]
async fn replies_follow_the_script_in_order() {
    let master = ScriptedMaster::start([
        Reply::Status(503),
        Reply::Result(json!({"n": 2})),
        Reply::Raw {
            status: 200,
            body: b"<html>not json".to_vec(),
        },
    ])
    .await;
    let client = client();

    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(send(&client, call(&master, heartbeat().to_string())).await);
    }

    assert_eq!(answers[0].0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answers[0].1, "503 Service Unavailable\n");
    assert_eq!(answers[1].0, StatusCode::OK);
    let second: Value = serde_json::from_slice(&answers[1].1).unwrap();
    assert_eq!(second["result"], json!({"n": 2}));
    assert_eq!(answers[2], (StatusCode::OK, Bytes::from("<html>not json")));
    assert_eq!(master.heartbeats().len(), 3);
    master.assert_no_violations();
}

#[tokio::test]
async fn a_pooling_client_keeps_one_connection() {
    let master = ScriptedMaster::start(Script::default()).await;
    let client = client();

    for _ in 0..3 {
        let (status, _) = send(&client, call(&master, heartbeat().to_string())).await;
        assert_eq!(status, StatusCode::OK);
    }

    assert_eq!(master.connections(), 1);
}

#[tokio::test]
async fn an_error_reply_has_the_shape_of_the_fixture() {
    let master = ScriptedMaster::start([Reply::error(
        "DoesNotExist",
        "Shard matching query does not exist.",
    )])
    .await;

    let (status, body) = send_heartbeat(&master).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, fixture_json("error-unknown-shard.json"));
}

#[tokio::test]
async fn a_response_reply_is_written_in_the_masters_shape() {
    let basic = fixture_json("response-basic.json");
    let response = HeartbeatResponse::from_json(basic["result"].to_string().as_bytes()).unwrap();
    assert!(response.rejected.is_empty());
    let master = ScriptedMaster::start([Reply::Response(response.clone())]).await;

    let (_, body) = send_heartbeat(&master).await;

    let result = &body["result"];
    assert!(
        result["jobs"][0]["hostqueueentry_set"].is_array(),
        "{result}"
    );
    let parsed = HeartbeatResponse::from_json(result.to_string().as_bytes()).unwrap();
    assert_eq!(parsed, response);
}

#[tokio::test]
async fn params_not_a_list_is_a_violation_answered_400_that_uses_no_step() {
    let master = ScriptedMaster::start([Reply::Result(json!("first step"))]).await;
    let mut body = heartbeat();
    body["params"] = body["params"][0].clone();

    let (status, text) = send(&client(), call(&master, body.to_string())).await;
    let (_, next) = send_heartbeat(&master).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        String::from_utf8_lossy(&text).contains("\"params\" is {"),
        "{text:?}"
    );
    let violations = master.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].starts_with(&format!("request #0 (POST {PATH}): \"params\" is {{")),
        "{violations:?}"
    );
    assert_eq!(next["result"], "first step");
    assert_eq!(master.requests().len(), 2);
    assert_eq!(master.heartbeats().len(), 1);
}

#[tokio::test]
async fn a_get_without_query_type_or_user_breaks_every_rule() {
    let master = ScriptedMaster::start(Script::default()).await;
    let request = Request::get(format!("{}/afe/server/noauth/rpc/", master.url()))
        .body(Full::new(Bytes::from("{}")))
        .unwrap();

    let (status, _) = send(&client(), request).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    let violations: Vec<String> = master
        .violations()
        .into_iter()
        .map(|v| {
            v.trim_start_matches("request #0 (GET /afe/server/noauth/rpc/): ")
                .to_owned()
        })
        .collect();
    assert_eq!(
        violations,
        [
            "method GET, not POST",
            "no method=shard_heartbeat in the query (query: \"\")",
            "Content-Type is None, not application/json",
            "no AUTHORIZATION header naming the user",
            "body has no \"id\"",
            "body \"method\" is absent, not \"shard_heartbeat\" as in the query",
            "\"params\" is absent, not a list",
        ]
    );
}

#[tokio::test]
async fn an_upload_with_a_relation_key_is_a_violation() {
    let master = ScriptedMaster::start(Script::default()).await;
    let mut body = fixture_json("request-upload.json");
    body["params"][0]["jobs"][0]["hostqueueentry_set"] = json!([]);
    body["params"][0]["hqes"][0]
        .as_object_mut()
        .unwrap()
        .remove("host_id");

    let (status, _) = send(&client(), call(&master, body.to_string())).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    let violations = master.violations();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(
        violations[0]
            .ends_with("jobs[0] (id 1001) has key \"hostqueueentry_set\", which it must not carry"),
        "{violations:?}"
    );
    assert!(
        violations[1].ends_with("hqes[0] (id 5001) lacks key \"host_id\""),
        "{violations:?}"
    );
}

#[tokio::test]
async fn a_hang_does_not_answer() {
    let master = ScriptedMaster::start([Reply::Hang]).await;
    let client = client();

    let answer = tokio::time::timeout(
        Duration::from_millis(300),
        send(&client, call(&master, heartbeat().to_string())),
    )
    .await;

    assert!(answer.is_err(), "answered: {answer:?}");
    assert_eq!(master.requests().len(), 1);
    tokio::time::timeout(Duration::from_secs(5), master.shutdown())
        .await
        .expect("shutdown closes the hanging connection");
}

#[tokio::test]
async fn after_the_script_every_request_gets_the_default() {
    let master = ScriptedMaster::start([Reply::Status(500)]).await;

    let first = send_heartbeat_status(&master).await;
    let (_, second) = send_heartbeat(&master).await;
    let (_, third) = send_heartbeat(&master).await;

    assert_eq!(first, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(second["result"], empty_result());
    assert_eq!(third["result"], empty_result());
}

#[tokio::test]
async fn a_chosen_default_answers_after_the_script() {
    let master = ScriptedMaster::start(Script::new([]).then_always(Reply::Status(502))).await;

    assert_eq!(
        send_heartbeat_status(&master).await,
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(
        send_heartbeat_status(&master).await,
        StatusCode::BAD_GATEWAY
    );
}

async fn send_heartbeat_status(master: &ScriptedMaster) -> StatusCode {
    send(&client(), call(master, heartbeat().to_string()))
        .await
        .0
}

#[tokio::test]
async fn a_request_waits_for_the_step_pushed_for_it() {
    let master = ScriptedMaster::start(Script::default().then_wait_for_push()).await;
    let request = call(&master, heartbeat().to_string());
    let answer = tokio::spawn(async move { send(&client(), request).await });

    master
        .wait_for_requests(1, Duration::from_secs(5))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!answer.is_finished());
    master.push(Reply::Result(json!("decided late")));
    let (status, body) = answer.await.unwrap();

    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["result"],
        "decided late"
    );
}

#[tokio::test]
async fn waiting_for_requests_that_do_not_come_times_out() {
    let master = ScriptedMaster::start(Script::default()).await;

    let waited = master.wait_for_requests(1, Duration::from_millis(50)).await;

    assert_eq!(
        waited.unwrap_err(),
        WaitTimeout {
            wanted: 1,
            received: 0,
            waited: Duration::from_millis(50),
        }
    );
}

#[tokio::test]
async fn heartbeats_parse_the_upload_fixture() {
    let master = ScriptedMaster::start(Script::default()).await;

    let (status, _) = send(&client(), call(&master, fixture("request-upload.json"))).await;

    assert_eq!(status, StatusCode::OK);
    master.assert_no_violations();
    let expected: HeartbeatRequest =
        serde_json::from_value(fixture_json("request-upload.json")["params"][0].clone()).unwrap();
    let heartbeats = master.heartbeats();
    assert_eq!(heartbeats, [expected]);
    assert_eq!(heartbeats[0].shard_hostname, "shard1");
    assert_eq!(heartbeats[0].jobs[0].id, 1001);
    assert_eq!(heartbeats[0].hqes[0].id, 5001);
}

#[tokio::test]
async fn an_invalid_scripted_status_is_a_violation() {
    let master = ScriptedMaster::start([Reply::Status(42)]).await;

    assert_eq!(
        send_heartbeat_status(&master).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let violations = master.violations();
    assert_eq!(violations.len(), 1);
    assert!(
        violations[0].starts_with("script: invalid status 42"),
        "{violations:?}"
    );
}

/// A `get_hosts` call as a healing shard client sends it.
fn get_hosts(master: &ScriptedMaster, kwargs: Value) -> Request<Full<Bytes>> {
    let body = json!({"method": "get_hosts", "params": [kwargs], "id": "jsonrpc"});
    Request::post(format!(
        "{}/afe/server/noauth/rpc/?method=get_hosts",
        master.url()
    ))
    .header(header::CONTENT_TYPE, "application/json")
    .header(header::AUTHORIZATION, "tester")
    .body(Full::new(Bytes::from(body.to_string())))
    .unwrap()
}

#[tokio::test]
async fn a_get_hosts_query_is_answered_from_the_script_as_the_real_master_answers() {
    let master = ScriptedMaster::start([Reply::Result(json!([{"id": 3}]))]).await;

    let response = client()
        .request(get_hosts(
            &master,
            json!({"id__in": [3, 7], "valid_only": false}),
        ))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header(header::CONTENT_TYPE).as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert!(
        header(header::SET_COOKIE).is_some_and(|c| c.starts_with("sessionid=")),
        "{:?}",
        response.headers()
    );
    let body: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["result"], json!([{"id": 3}]));
    assert_eq!(
        master.get_hosts_calls(),
        vec![shard_model::GetHostsRequest::ids(vec![3, 7])]
    );
    assert_eq!(master.heartbeats().len(), 0);
    master.assert_no_violations();
}

#[tokio::test]
async fn a_get_hosts_query_that_would_hide_invalid_hosts_is_a_violation() {
    let master = ScriptedMaster::start(Script::default()).await;

    let (status, _) = send(
        &client(),
        get_hosts(&master, json!({"id__in": [3], "valid_only": true})),
    )
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    let violations = master.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].contains("valid_only is true, not false"),
        "{violations:?}"
    );
    assert_eq!(master.get_hosts_calls(), vec![]);
}
