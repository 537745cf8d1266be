//! What the client logs: one warning per retry, the master's traceback at
//! debug level only, and never the `AUTHORIZATION` value.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use crate::common::{Server, TestResult, config, respond};
use serde_json::{Value, json};
use shard_rpc::{AfeClient, FailureKind, RpcConfig};
use tokio_util::sync::CancellationToken;

/// A log sink the test can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Write for Captured {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        bytes.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// The subscriber is this thread's default: the current-thread runtime runs
// the call (and the server) on it.
#[tokio::test(flavor = "current_thread")]
async fn retries_warn_and_the_traceback_stays_at_debug() -> TestResult {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let error_body = std::fs::read(crate::common::fixture("error-unknown-shard.json"))?;
    let server = Server::start(move |index, _| match index {
        0 => respond(503, "busy"),
        _ => respond(200, error_body.clone()),
    })
    .await?;
    let client = AfeClient::new(RpcConfig {
        user: "s3cr3t-user".to_owned(),
        ..config(&server.url())
    })?;

    let outcome = client
        .call::<_, Value>("shard_heartbeat", &json!({}), &CancellationToken::new())
        .await;

    assert_eq!(
        outcome.err().map(|error| error.kind()),
        Some(FailureKind::JsonRpc)
    );
    let lines: Vec<_> = logs
        .lines()
        .into_iter()
        .filter(|line| line.contains("shard_rpc"))
        .collect();
    let warnings: Vec<_> = lines
        .iter()
        .filter(|line| line.contains(" WARN "))
        .collect();
    assert_eq!(warnings.len(), 1, "{lines:#?}");
    assert!(
        warnings[0].contains("failure_type=\"http_status\""),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains("503"), "{}", warnings[0]);
    let traceback: Vec<_> = lines
        .iter()
        .filter(|line| line.contains("Traceback (most recent call last)"))
        .collect();
    assert_eq!(traceback.len(), 1, "{lines:#?}");
    assert!(traceback[0].contains(" DEBUG "), "{}", traceback[0]);
    // One line per event: the traceback's newlines are escaped.
    assert!(
        traceback[0].contains(r"\n  ...\nDoesNotExist"),
        "{}",
        traceback[0]
    );
    let everything = logs.lines().join("\n");
    assert!(!everything.contains("s3cr3t-user"), "{everything}");
    Ok(())
}
