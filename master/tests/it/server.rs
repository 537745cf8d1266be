//! The master's HTTP side (§2, §11): the AFE JSON-RPC dialect over
//! HTTP/1.1 as the real master speaks it, on SQLite (the backends are
//! covered by the other tests).

use std::net::SocketAddr;

use crate::common::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HeaderMap, SET_COOKIE};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use shard_master::Mode;
use shard_master::server::ServeOptions;
use shard_model::{HeartbeatResponse, Host, Hqe, Job};
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
        Master::start_with(Mode::Strict, vec![host(1, &[1])], vec![]).await
    }

    /// A master in `mode` with shard 1 (label 1), `hosts` and `jobs`.
    async fn start_with(mode: Mode, hosts: Vec<Host>, jobs: Vec<Job>) -> Master {
        let db = TestDb::migrated(Backend::Sqlite).await.unwrap();
        add_shard(&db, 1, &[1]).await;
        seed(&db, hosts, jobs, vec![keyval(1000, "suite", "bvt")]).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let fault_file = std::env::temp_dir().join(format!(
            "shard-master-fault-{}-{}",
            std::process::id(),
            addr.port()
        ));
        let options = ServeOptions {
            rpc_path: RPC_PATH.to_owned(),
            mode,
            fault_file: Some(fault_file.clone()),
        };
        let task = tokio::spawn(shard_master::server::serve_with(
            listener,
            db.store.connection().clone(),
            options,
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
        let (status, _, body) = self.exchange(method, path, body).await;
        (status, body)
    }

    /// Sends one request and returns the status, the headers and the body.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: &str,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
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
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        drop(sender);
        connection.await.unwrap().unwrap();
        (status, headers, body.to_vec())
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

    /// Calls `method` with `kwargs` and returns the headers and the parsed
    /// body.
    async fn rpc(&self, method: &str, kwargs: Value) -> (HeaderMap, Value) {
        let call = json!({"method": method, "params": [kwargs], "id": "jsonrpc"});
        let path = format!("{RPC_PATH}?method={method}");
        let (status, headers, body) = self.exchange(Method::POST, &path, &call.to_string()).await;
        assert_eq!(status, StatusCode::OK);
        (headers, serde_json::from_slice(&body).unwrap())
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

/// The session id a `Set-Cookie` header sets, checked to look like Django's.
fn session_id(headers: &HeaderMap) -> String {
    let cookie = headers
        .get(SET_COOKIE)
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap();
    let (pair, attributes) = cookie.split_once(';').unwrap();
    let id = pair.strip_prefix("sessionid=").unwrap();
    assert_eq!(id.len(), 32, "{cookie}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{cookie}");
    assert!(attributes.contains("Path=/"), "{cookie}");
    id.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_and_errors_are_text_html_with_a_session_cookie() {
    let master = Master::start().await;

    let (ok_headers, ok) = master.rpc("shard_heartbeat", kwargs("shard1")).await;
    let (error_headers, error) = master.rpc("shard_heartbeat", kwargs("nobody")).await;

    assert!(ok["error"].is_null(), "{ok}");
    assert_eq!(error["error"]["name"], "DoesNotExist");
    for headers in [&ok_headers, &error_headers] {
        assert_eq!(
            headers.get(CONTENT_TYPE).unwrap(),
            "text/html; charset=utf-8"
        );
    }
    assert_ne!(session_id(&ok_headers), session_id(&error_headers));
    master.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datetimes_are_written_as_django_writes_them() {
    let locked = Host {
        lock_time: Some(at("2015-01-02T03:04:05.5")),
        ..host(1, &[1])
    };
    let fraction = Job {
        created_on: Some(at("2014-09-23T15:56:10.678999")),
        ..job(
            5,
            vec![Hqe {
                started_on: Some(at("2014-09-23T15:57:00.000500")),
                ..hqe_meta(50, 1)
            }],
        )
    };
    let whole = Job {
        created_on: Some(at("2014-09-23T15:56:10")),
        ..job(6, vec![hqe_meta(60, 1)])
    };
    let master = Master::start_with(Mode::Strict, vec![locked], vec![fraction, whole]).await;

    let (_, body) = master.rpc("shard_heartbeat", kwargs("shard1")).await;

    let result = &body["result"];
    assert_eq!(result["hosts"][0]["lock_time"], "2015-01-02T03:04:05.500");
    assert_eq!(result["jobs"][0]["created_on"], "2014-09-23T15:56:10.678");
    // Django cuts any non-zero fraction to three digits, even `.000`.
    assert_eq!(
        result["jobs"][0]["hostqueueentry_set"][0]["started_on"],
        "2014-09-23T15:57:00.000"
    );
    assert_eq!(result["jobs"][1]["created_on"], "2014-09-23T15:56:10");
    let response = HeartbeatResponse::from_json(&serde_json::to_vec(result).unwrap()).unwrap();
    assert_eq!(response.rejected, vec![]);
    master.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_hosts_is_served_on_the_same_path_and_transport() {
    let master = Master::start().await;

    let (headers, body) = master
        .rpc("get_hosts", json!({"id__in": [1, 2], "valid_only": false}))
        .await;

    assert!(body["error"].is_null(), "{body}");
    assert_eq!(body["id"], "jsonrpc");
    let hosts = body["result"].as_array().unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0]["id"], 1);
    assert_eq!(hosts[0]["hostname"], "host1");
    assert_eq!(
        headers.get(CONTENT_TYPE).unwrap(),
        "text/html; charset=utf-8"
    );
    session_id(&headers);
    master.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_server_answers_by_the_upstream_rules() {
    let child = Job {
        parent_job_id: Some(1000),
        ..job(5, vec![hqe_meta(50, 1)])
    };
    let master = Master::start_with(Mode::Upstream, vec![host(1, &[1])], vec![child]).await;

    let (_, body) = master.rpc("shard_heartbeat", kwargs("shard1")).await;
    let (_, missing) = master
        .rpc(
            "shard_heartbeat",
            json!({"shard_hostname": "shard1", "jobs": [{"id": 99}]}),
        )
        .await;

    let job = body["result"]["jobs"][0].as_object().unwrap();
    assert_eq!(job["id"], 5);
    assert!(!job.contains_key("parent_job_id"), "{job:?}");
    assert_eq!(body["result"]["suite_keyvals"][0]["job_id"], 1000);
    assert_eq!(missing["error"]["name"], "UnallowedRecordsSentToMain");
    // The AUTHORIZATION user was created on first use.
    let users = shard_store::schema::entity::afe_users::Entity::find()
        .all(master.db.store.connection())
        .await
        .unwrap();
    assert_eq!(
        users.iter().map(|u| u.login.clone()).collect::<Vec<_>>(),
        vec![Some("chromeos-test".to_owned())]
    );
    master.stop().await;
}
