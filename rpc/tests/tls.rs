//! HTTPS against a local server whose certificate is signed by a throw-away
//! CA: trusted through `extra_ca_file`, refused without it.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{Server, TestResult, config, success};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use shard_rpc::{AfeClient, FailureKind, RpcConfig};
use tokio_util::sync::CancellationToken;

type BoxResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A TLS server for 127.0.0.1 and the PEM file of the CA that signed it.
struct TlsMaster {
    server: Server,
    ca_file: PathBuf,
}

impl TlsMaster {
    async fn start(name: &str) -> BoxResult<Self> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "shard-rpc test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let leaf_key = KeyPair::generate()?;
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?
            .signed_by(&leaf_key, &ca)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let server = Server::start_tls(acceptor, |_, _| success(&json!({"secure": true}))).await?;

        let ca_file = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("shard-rpc-{name}-{}-ca.pem", std::process::id()));
        std::fs::write(&ca_file, ca.pem())?;
        Ok(TlsMaster { server, ca_file })
    }

    fn url(&self) -> String {
        format!("https://{}", self.server.addr)
    }
}

impl Drop for TlsMaster {
    fn drop(&mut self) {
        // Best effort: the file lives in the target directory anyway.
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

#[tokio::test]
async fn https_with_a_trusted_extra_ca_succeeds() -> TestResult {
    let master = TlsMaster::start("trusted").await?;
    let client = AfeClient::new(RpcConfig {
        extra_ca_file: Some(master.ca_file.clone()),
        ..config(&master.url())
    })?;

    let reply = client
        .call::<_, Value>("shard_heartbeat", &json!({}), &CancellationToken::new())
        .await?;

    assert_eq!(reply.result, json!({"secure": true}));
    let requests = master.server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].uri.query(), Some("method=shard_heartbeat"));
    Ok(())
}

#[tokio::test]
async fn https_with_an_untrusted_ca_is_a_connection_failure() -> TestResult {
    let master = TlsMaster::start("untrusted").await?;
    let client = AfeClient::new(RpcConfig {
        budget: Duration::from_millis(500),
        ..config(&master.url())
    })?;

    let outcome = client
        .call::<_, Value>("shard_heartbeat", &json!({}), &CancellationToken::new())
        .await;

    let error = outcome
        .err()
        .ok_or("an untrusted certificate was accepted")?;
    assert_eq!(error.kind(), FailureKind::Connection, "{error}");
    assert!(error.to_string().contains("certificate"), "{error}");
    assert_eq!(master.server.request_count(), 0);
    assert!(master.server.connection_count() >= 1);
    Ok(())
}
