//! The metrics endpoint: `/metrics` (Prometheus text) and `/healthz`, on a
//! small hyper server bound to `metrics_addr` (loopback by default).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::health::{Health, Verdict};
use crate::process;

/// Buckets of the heartbeat duration histogram, in seconds: a healthy
/// heartbeat takes milliseconds, a retried one up to the retry budget.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Installs the Prometheus recorder behind the `metrics` facade.
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(shard_engine::metrics::HEARTBEAT_DURATION.to_owned()),
            &DURATION_BUCKETS,
        )
        .context("configuring the heartbeat duration buckets")?
        .set_buckets_for_metric(
            Matcher::Full(shard_engine::metrics::PHASE_DURATION.to_owned()),
            &DURATION_BUCKETS,
        )
        .context("configuring the phase duration buckets")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    shard_engine::metrics::describe();
    shard_engine::metrics::build_info(env!("CARGO_PKG_VERSION"), env!("SHARD_CLIENT_REVISION"));
    process::describe(std::time::SystemTime::now());
    Ok(handle)
}

/// Binds `addr` and serves until `shutdown`. Returns the bound address
/// (useful with port 0) once listening.
pub async fn serve(
    addr: SocketAddr,
    handle: PrometheusHandle,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on metrics_addr {addr}"))?;
    let bound = listener
        .local_addr()
        .context("reading the metrics address")?;
    // Histograms need periodic upkeep in the exporter.
    let upkeep = handle.clone();
    let upkeep_stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(5)) => upkeep.run_upkeep(),
                () = upkeep_stop.cancelled() => break,
            }
        }
    });
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics endpoint: accept failed");
                        continue;
                    }
                },
                () = shutdown.cancelled() => break,
            };
            let handle = handle.clone();
            let health = Arc::clone(&health);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let response = route(&req, &handle, &health);
                    async move { Ok::<_, Infallible>(response) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "metrics endpoint: connection ended");
                }
            });
        }
    });
    Ok(bound)
}

fn route(
    req: &Request<Incoming>,
    handle: &PrometheusHandle,
    health: &Health,
) -> Response<Full<Bytes>> {
    match req.uri().path() {
        "/metrics" => {
            process::sample();
            reply(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                handle.render(),
            )
        }
        "/healthz" => probe(health.verdict()),
        "/livez" => probe(health.liveness()),
        "/readyz" => probe(health.readiness()),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /metrics, /healthz, /livez or /readyz\n".to_owned(),
        ),
    }
}

/// A probe's answer: 200 or 503, with its one line of JSON.
fn probe(verdict: Verdict) -> Response<Full<Bytes>> {
    let status = if verdict.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    reply(status, "application/json", verdict.body + "\n")
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}
