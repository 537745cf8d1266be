//! The master's HTTP side (§2): the AFE JSON-RPC dialect over HTTP/1.1,
//! on SQLite (the backends are covered by the other tests).

// A panic is how a test fails; unwrapping here is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use shard_model::HeartbeatResponse;
use shard_store::testing::{Backend, TestDb};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const RPC_PATH: &str = "/afe/server/noauth/rpc/";

/// A master serving `db` on a loopback port.
struct Master {
    addr: SocketAddr,
    /// The fault switch (absent: no fault).
    fault_file: std::path::PathBuf,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    db: TestDb,
}

impl Master {
    async fn start() -> Master {
        let db = TestDb::migrated(Backend::Sqlite).await.unwrap();
        add_shard(&db, 1, &[1]).await;
        seed(&db, vec![host(1, &[1])], vec![], vec![]).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let fault_file = std::env::temp_dir().join(format!(
            "shard-master-fault-{}-{}",
            std::process::id(),
            addr.port()
        ));
        let task = tokio::spawn(shard_master::server::serve_with_faults(
            listener,
            db.store.connection().clone(),
            RPC_PATH.to_owned(),
            Some(fault_file.clone()),
            shutdown.clone(),
        ));
        Master {
            addr,
            fault_file,
            shutdown,
            task,
            db,
        }
    }

    /// Sends one request and returns the status and the body.
    async fn send(&self, method: Method, path: &str, body: &str) -> (StatusCode, Vec<u8>) {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        let connection = tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.addr.to_string())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::AUTHORIZATION, "chromeos-test")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        drop(sender);
        connection.await.unwrap().unwrap();
        (status, body.to_vec())
    }

    /// POSTs a JSON-RPC call to the RPC path and returns the status and the
    /// parsed body.
    async fn call(&self, call: &Value) -> (StatusCode, Value) {
        let path = format!("{RPC_PATH}?method=shard_heartbeat");
        let (status, body) = self.send(Method::POST, &path, &call.to_string()).await;
        let body = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {body:?}"));
        (status, body)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }
}

fn kwargs(shard_hostname: &str) -> Value {
    json!({
        "shard_hostname": shard_hostname,
        "known_job_ids": [],
        "known_host_ids": [],
        "known_host_statuses": [],
        "jobs": [],
        "hqes": [],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_heartbeat_gets_http_200_with_a_result() {
    let master = Master::start().await;

    let (status, body) = master
        .call(&json!({"method": "shard_heartbeat", "params": [kwargs("shard1")], "id": "jsonrpc"}))
        .await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], "jsonrpc");
    assert_eq!(body["error"], Value::Null);
    let result = serde_json::to_vec(&body["result"]).unwrap();
    let response = HeartbeatResponse::from_json(&result).unwrap();
    assert_eq!(response.rejected, vec![]);
    assert_eq!(host_ids(&response), vec![1]);
    master.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_shard_gets_http_200_with_a_does_not_exist_error() {
    let master = Master::start().await;

    let (status, body) = master
        .call(&json!({"method": "shard_heartbeat", "params": [kwargs("nobody")], "id": 7}))
        .await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], 7);
    assert_eq!(body["result"], Value::Null);
    let error = &body["error"];
    assert_eq!(error["name"], "DoesNotExist");
    assert!(error["message"].is_string(), "message: {error}");
    assert!(error["traceback"].is_string(), "traceback: {error}");
    master.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn params_that_are_not_a_one_element_list_get_an_error_object() {
    let master = Master::start().await;
    let cases = [
        json!([]),
        json!([kwargs("shard1"), kwargs("shard1")]),
        kwargs("shard1"),
        Value::Null,
    ];

    for params in cases {
        let (status, body) = master
            .call(&json!({"method": "shard_heartbeat", "params": params, "id": "jsonrpc"}))
            .await;

        assert_eq!(status, StatusCode::OK, "params {params}");
        assert_eq!(body["result"], Value::Null, "params {params}");
        let error = &body["error"];
        assert!(error["name"].is_string(), "params {params}: {error}");
        assert!(error["message"].is_string(), "params {params}: {error}");
        assert!(error["traceback"].is_string(), "params {params}: {error}");
    }
    assert_eq!(
        host_shard(&master.db, 1).await,
        None,
        "nothing was assigned"
    );
    master.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_gets_http_405() {
    let master = Master::start().await;

    let (status, _) = master.send(Method::GET, RPC_PATH, "").await;

    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    master.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_path_gets_http_404() {
    let master = Master::start().await;
    let call = json!({"method": "shard_heartbeat", "params": [kwargs("shard1")], "id": "jsonrpc"});

    let (status, _) = master
        .send(Method::POST, "/afe/server/rpc/", &call.to_string())
        .await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        host_shard(&master.db, 1).await,
        None,
        "nothing was assigned"
    );
    master.stop().await;
}

#[tokio::test]
async fn the_fault_switch_answers_each_injected_fault_then_heals() {
    let master = Master::start().await;
    let call = json!({
        "method": "shard_heartbeat",
        "params": [{"shard_hostname": "shard1"}],
        "id": "jsonrpc",
    })
    .to_string();

    std::fs::write(&master.fault_file, "http_500").unwrap();
    let (status, _) = master.send(Method::POST, RPC_PATH, &call).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    std::fs::write(&master.fault_file, "garbage").unwrap();
    let (status, body) = master.send(Method::POST, RPC_PATH, &call).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        serde_json::from_slice::<Value>(&body).is_err(),
        "the body is not JSON"
    );

    std::fs::write(&master.fault_file, "malformed_record").unwrap();
    let (status, body) = master.send(Method::POST, RPC_PATH, &call).await;
    assert_eq!(status, StatusCode::OK);
    let envelope: Value = serde_json::from_slice(&body).unwrap();
    let result = serde_json::to_vec(&envelope["result"]).unwrap();
    let response = HeartbeatResponse::from_json(&result).unwrap();
    assert_eq!(response.hosts.len(), 1, "the real answer is still there");
    assert_eq!(
        response.rejected.len(),
        1,
        "plus one record that cannot parse"
    );

    std::fs::remove_file(&master.fault_file).unwrap();
    let (status, body) = master.send(Method::POST, RPC_PATH, &call).await;
    assert_eq!(status, StatusCode::OK);
    let envelope: Value = serde_json::from_slice(&body).unwrap();
    assert!(envelope["error"].is_null(), "{envelope}");
    master.stop().await;
}
