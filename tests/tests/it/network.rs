//! Network parity with the original client (issue 12 §3): the client goes
//! through the proxy of `http_proxy`/`https_proxy` unless `no_proxy` names
//! the master, tunnels TLS end to end through it, and trusts the system's
//! CA store (here `SSL_CERT_FILE`) as well as `rpc_ca_file`.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};
use shard_rpc::{AfeClient, FailureKind, ProxyConfig, RpcConfig};
use shard_store::testing::{Backend, TestDb};
use shard_tests::{RecordingProxy, ScriptedMaster, ShardClient, TlsFront};
use tokio_util::sync::CancellationToken;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A scratch file of this test, in the target directory.
fn scratch(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "network-{name}-{}-{}.pem",
        std::process::id(),
        unique_user()
    ))
}

async fn sqlite() -> TestDb {
    TestDb::empty(Backend::Sqlite)
        .await
        .expect("SQLite is always there")
}

/// `once` against `master_url` with `env` added, to its end.
async fn once_with(master_url: &str, db: &TestDb, env: &[(&str, &str)]) -> shard_tests::Output {
    let env: Vec<(&str, &str)> = ENV.iter().copied().chain(env.iter().copied()).collect();
    ShardClient::run_to_end(args_to("once", master_url, db), &env, TIMEOUT).await
}

#[tokio::test]
async fn once_goes_through_the_http_proxy_of_the_environment() {
    let master = ScriptedMaster::start(shard_tests::Script::default()).await;
    let proxy = RecordingProxy::start().await.unwrap();
    let db = sqlite().await;

    let output = once_with(&master.url(), &db, &[("http_proxy", &proxy.url())]).await;

    assert_eq!(output.code, Some(0), "{output}");
    let seen = proxy.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    // Absolute-form, as urllib sends it to a proxy.
    let expected = format!(
        "POST {}/afe/server/noauth/rpc/?method=shard_heartbeat HTTP/1.1",
        master.url()
    );
    assert_eq!(seen[0].line, expected);
    assert_eq!(master.heartbeats().len(), 1);
    master.assert_no_violations();
}

#[tokio::test]
async fn no_proxy_sends_the_master_direct() {
    let master = ScriptedMaster::start(shard_tests::Script::default()).await;
    let proxy = RecordingProxy::start().await.unwrap();
    let db = sqlite().await;
    let env = [
        ("HTTP_PROXY", proxy.url()),
        ("NO_PROXY", "localhost,127.0.0.1".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let output = once_with(&master.url(), &db, &env).await;

    assert_eq!(output.code, Some(0), "{output}");
    assert_eq!(proxy.requests(), vec![], "no_proxy names the master");
    assert_eq!(master.heartbeats().len(), 1);
}

#[tokio::test]
async fn an_https_master_is_reached_through_a_connect_tunnel_with_credentials() {
    let master = ScriptedMaster::start(shard_tests::Script::default()).await;
    let ca_file = scratch("tunnel");
    let front = TlsFront::start(master.addr(), &ca_file).await.unwrap();
    let proxy = RecordingProxy::start().await.unwrap();
    let proxy_url = proxy.url().replace("http://", "http://alice:hunter2@");
    let db = sqlite().await;
    let mut args = args_to("once", &front.url(), &db);
    args.extend(["--rpc-ca-file".to_owned(), ca_file.display().to_string()]);
    let env: Vec<(&str, &str)> = ENV
        .iter()
        .copied()
        .chain([("https_proxy", proxy_url.as_str())])
        .collect();

    let output = ShardClient::run_to_end(args, &env, TIMEOUT).await;
    let _ = std::fs::remove_file(&ca_file);

    assert_eq!(output.code, Some(0), "{output}");
    let seen = proxy.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].line, format!("CONNECT {} HTTP/1.1", front.addr()));
    // base64("alice:hunter2")
    assert_eq!(
        seen[0].proxy_authorization.as_deref(),
        Some("Basic YWxpY2U6aHVudGVyMg==")
    );
    assert_eq!(
        master.heartbeats().len(),
        1,
        "TLS ran end to end inside the tunnel"
    );
    assert!(
        !output.stderr.contains("hunter2") && !output.stdout.contains("hunter2"),
        "the proxy password reached the output:\n{output}"
    );
}

#[tokio::test]
async fn a_lab_ca_in_the_system_store_is_trusted_without_rpc_ca_file() {
    let master = ScriptedMaster::start(shard_tests::Script::default()).await;
    let ca_file = scratch("system-store");
    let front = TlsFront::start(master.addr(), &ca_file).await.unwrap();
    let db = sqlite().await;

    // SSL_CERT_FILE stands for the system store: it replaces it, as
    // OpenSSL's variable does.
    let trusted = once_with(
        &front.url(),
        &db,
        &[("SSL_CERT_FILE", &ca_file.display().to_string())],
    )
    .await;
    let untrusted = once_with(&front.url(), &db, &[]).await;
    let _ = std::fs::remove_file(&ca_file);

    assert_eq!(trusted.code, Some(0), "{trusted}");
    assert_eq!(master.heartbeats().len(), 1);
    assert_eq!(untrusted.code, Some(1), "{untrusted}");
    assert!(
        untrusted.stderr.contains("certificate"),
        "the failure names the certificate:\n{untrusted}"
    );
}

#[tokio::test]
async fn a_proxy_that_refuses_is_named_in_the_error() {
    let master = ScriptedMaster::start(shard_tests::Script::default()).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let db = sqlite().await;

    let output = once_with(&master.url(), &db, &[("http_proxy", &proxy_url)]).await;

    assert_eq!(output.code, Some(1), "{output}");
    assert!(
        output
            .stderr
            .contains(&format!("through proxy {proxy_url}/")),
        "the failure names the proxy:\n{output}"
    );
    assert_eq!(master.requests().len(), 0);
}

#[tokio::test]
async fn an_unusable_proxy_variable_is_a_configuration_error_naming_it() {
    let db = sqlite().await;
    let env = [("https_proxy", "socks5://bob:secret@127.0.0.1:1080")];
    for command in ["once", "config"] {
        let env: Vec<(&str, &str)> = ENV.iter().copied().chain(env).collect();
        let output =
            ShardClient::run_to_end(args_to(command, "https://afe.example", &db), &env, TIMEOUT)
                .await;
        assert_eq!(output.code, Some(2), "{command}: {output}");
        assert!(
            output.stderr.contains("https_proxy is unusable"),
            "{command}: {output}"
        );
        assert!(!output.stderr.contains("secret"), "{command}: {output}");
    }
}

/// The same through the library, where the settings are given rather than
/// read: an `http://` master with proxy credentials gets them on every
/// request.
#[tokio::test]
async fn the_library_sends_proxy_authorization_on_forwarded_requests() {
    let master = ScriptedMaster::start(shard_tests::Script::default()).await;
    let proxy = RecordingProxy::start().await.unwrap();
    let client = AfeClient::new(RpcConfig {
        proxy: ProxyConfig {
            http: Some(proxy.url().replace("http://", "http://alice:s3cret@")),
            ..ProxyConfig::none()
        },
        ..RpcConfig::new(master.url())
    })
    .unwrap();
    assert_eq!(client.proxy(), Some(format!("{}/", proxy.url()).as_str()));

    let reply = client
        .call::<_, Value>(
            "get_hosts",
            &json!({"id__in": [1], "valid_only": false}),
            &CancellationToken::new(),
        )
        .await;

    assert!(reply.is_ok(), "{reply:?}");
    let seen = proxy.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    // base64("alice:s3cret")
    assert_eq!(
        seen[0].proxy_authorization.as_deref(),
        Some("Basic YWxpY2U6czNjcmV0")
    );
    assert!(
        seen[0].line.starts_with(&format!("POST {}/", master.url())),
        "{seen:?}"
    );
}

#[tokio::test]
async fn the_library_trusts_its_extra_ca_file_and_refuses_an_unknown_ca() {
    let master = ScriptedMaster::start(shard_tests::Script::default()).await;
    let ca_file = scratch("library");
    let front = TlsFront::start(master.addr(), &ca_file).await.unwrap();
    let config = RpcConfig {
        budget: Duration::from_millis(300),
        delay: Duration::from_millis(50),
        ..RpcConfig::new(front.url())
    };
    let trusting = AfeClient::new(RpcConfig {
        extra_ca_file: Some(ca_file.clone()),
        ..config.clone()
    })
    .unwrap();
    let untrusting = AfeClient::new(config).unwrap();
    let _ = std::fs::remove_file(&ca_file);
    let cancel = CancellationToken::new();

    let trusted = trusting
        .call::<_, Value>(
            "get_hosts",
            &json!({"id__in": [1], "valid_only": false}),
            &cancel,
        )
        .await;
    let served = master.requests().len();
    let refused = untrusting
        .call::<_, Value>(
            "get_hosts",
            &json!({"id__in": [1], "valid_only": false}),
            &cancel,
        )
        .await
        .expect_err("a certificate of an unknown CA is refused");

    assert!(trusted.is_ok(), "{trusted:?}");
    assert_eq!(served, 1);
    assert_eq!(refused.kind(), FailureKind::Connection, "{refused}");
    assert!(refused.to_string().contains("certificate"), "{refused}");
    assert_eq!(
        master.requests().len(),
        1,
        "nothing reaches an untrusted master"
    );
}

#[tokio::test]
async fn an_untrusted_master_through_a_tunnel_is_a_connection_failure() {
    let master = ScriptedMaster::start(shard_tests::Script::default()).await;
    let ca_file = scratch("untrusted-tunnel");
    let front = TlsFront::start(master.addr(), &ca_file).await.unwrap();
    let _ = std::fs::remove_file(&ca_file);
    let proxy = RecordingProxy::start().await.unwrap();
    let client = AfeClient::new(RpcConfig {
        budget: Duration::from_millis(300),
        delay: Duration::from_millis(50),
        proxy: ProxyConfig {
            https: Some(proxy.url()),
            ..ProxyConfig::none()
        },
        ..RpcConfig::new(front.url())
    })
    .unwrap();

    let error = client
        .call::<_, Value>("shard_heartbeat", &json!({}), &CancellationToken::new())
        .await
        .expect_err("a certificate of an unknown CA is refused through the tunnel too");

    assert_eq!(error.kind(), FailureKind::Connection, "{error}");
    assert!(error.to_string().contains("certificate"), "{error}");
    assert!(!proxy.requests().is_empty());
    assert_eq!(master.requests().len(), 0);
}
