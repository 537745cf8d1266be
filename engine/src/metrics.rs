//! The Prometheus names of §10, declared once. The engine records through
//! the `metrics` facade; the daemon installs the exporter.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use shard_model::RecordKind;

use crate::Report;

/// Gauge: size of the last heartbeat request body.
pub const REQUEST_SIZE_BYTES: &str = "shard_client_heartbeat_request_size_bytes";
/// Gauge: size of the last heartbeat response body.
pub const RESPONSE_SIZE_BYTES: &str = "shard_client_heartbeat_response_size_bytes";
/// Gauge: hosts in the last response.
pub const HOSTS_RECEIVED: &str = "shard_client_hosts_received";
/// Gauge: jobs in the last response.
pub const JOBS_RECEIVED: &str = "shard_client_jobs_received";
/// Gauge: suite keyvals in the last response.
pub const SUITE_KEYVALS_RECEIVED: &str = "shard_client_suite_keyvals_received";
/// Gauge: known job ids in the last packet.
pub const KNOWN_JOB_IDS: &str = "shard_client_known_job_ids";
/// Gauge: known host ids in the last packet.
pub const KNOWN_HOST_IDS: &str = "shard_client_known_host_ids";
/// Gauge: jobs uploaded by the last successful heartbeat.
pub const JOBS_UPLOADED: &str = "shard_client_jobs_uploaded";
/// Counter: failed heartbeats, by `failure_type`.
pub const HEARTBEAT_FAILURES: &str = "shard_client_heartbeat_failures_total";
/// Counter: records refused while parsing or applying, by `kind`.
pub const DESERIALIZATION_FAILURES: &str = "shard_client_deserialization_failures_total";
/// Counter: successful heartbeats.
pub const HEARTBEATS: &str = "shard_client_heartbeats_total";
/// Histogram: duration of heartbeats, failed ones included.
pub const HEARTBEAT_DURATION: &str = "shard_client_heartbeat_duration_seconds";
/// Gauge: Unix time of the last successful heartbeat.
pub const LAST_SUCCESS: &str = "shard_client_last_success_timestamp_seconds";

/// Counter: known hosts forgotten because the master no longer has them.
pub const HOSTS_FORGOTTEN: &str = "shard_client_hosts_forgotten_total";

/// Counter: hosts in heartbeat responses, parsed or not.
pub const HOSTS_RECEIVED_TOTAL: &str = "shard_client_hosts_received_total";

/// Counter: jobs in heartbeat responses, parsed or not.
pub const JOBS_RECEIVED_TOTAL: &str = "shard_client_jobs_received_total";

/// Counter: finished jobs uploaded to the master.
pub const JOBS_UPLOADED_TOTAL: &str = "shard_client_jobs_uploaded_total";

/// Histogram: the duration of each step of a successful heartbeat, by
/// `phase` (`build`, `call`, `write`).
pub const PHASE_DURATION: &str = "shard_client_heartbeat_phase_duration_seconds";

/// Gauge: database statements the last successful heartbeat executed.
pub const STATEMENTS: &str = "shard_client_heartbeat_statements";

/// Gauge, always 1: the version and git revision of the running binary, as
/// labels (`version`, `revision`).
pub const BUILD_INFO: &str = "shard_client_build_info";

/// Counter: attempts of `run` to reach the shard database at start that
/// failed (it waits for the database rather than exiting).
pub const DATABASE_CONNECT_FAILURES: &str = "shard_client_database_connect_failures_total";

/// Every `failure_type` label value.
pub const FAILURE_TYPES: [&str; 6] = [
    "connection",
    "timeout",
    "http_status",
    "json_rpc",
    "invalid_response",
    "database",
];

/// Describes every metric, so the exporter prints `# HELP` lines. Call
/// once, after installing the recorder.
pub fn describe() {
    describe_gauge!(
        REQUEST_SIZE_BYTES,
        Unit::Bytes,
        "Size of the last heartbeat request body."
    );
    describe_gauge!(
        RESPONSE_SIZE_BYTES,
        Unit::Bytes,
        "Size of the last heartbeat response body, decoded."
    );
    describe_gauge!(HOSTS_RECEIVED, "Hosts in the last heartbeat response.");
    describe_gauge!(JOBS_RECEIVED, "Jobs in the last heartbeat response.");
    describe_gauge!(
        SUITE_KEYVALS_RECEIVED,
        "Suite keyvals in the last heartbeat response."
    );
    describe_gauge!(
        KNOWN_JOB_IDS,
        "Jobs with an incomplete entry, reported in the last packet."
    );
    describe_gauge!(KNOWN_HOST_IDS, "Valid hosts reported in the last packet.");
    describe_gauge!(
        JOBS_UPLOADED,
        "Finished jobs uploaded by the last successful heartbeat."
    );
    describe_counter!(HEARTBEAT_FAILURES, "Failed heartbeats, by failure_type.");
    describe_counter!(
        DESERIALIZATION_FAILURES,
        "Records of a response that could not be parsed or applied, by kind."
    );
    describe_counter!(HEARTBEATS, "Successful heartbeats.");
    describe_counter!(
        HOSTS_FORGOTTEN,
        "Known hosts forgotten (made invalid) because the master no longer has them."
    );
    describe_counter!(
        DATABASE_CONNECT_FAILURES,
        "Failed attempts to reach the shard database while starting."
    );
    describe_counter!(HOSTS_RECEIVED_TOTAL, "Hosts received from the master.");
    describe_counter!(JOBS_RECEIVED_TOTAL, "Jobs received from the master.");
    describe_counter!(JOBS_UPLOADED_TOTAL, "Finished jobs uploaded to the master.");
    describe_counter!(
        shard_rpc::ATTEMPTS,
        "Attempts of calls to the master, by method, retries included."
    );
    describe_counter!(
        shard_rpc::RETRIES,
        "Attempts of calls to the master that failed and were retried, by method."
    );
    describe_histogram!(
        PHASE_DURATION,
        Unit::Seconds,
        "Duration of each step of a successful heartbeat: build, call, write."
    );
    describe_gauge!(
        STATEMENTS,
        "Database statements the last successful heartbeat executed."
    );
    describe_histogram!(
        HEARTBEAT_DURATION,
        Unit::Seconds,
        "Duration of a heartbeat, failed ones included."
    );
    describe_gauge!(
        LAST_SUCCESS,
        Unit::Seconds,
        "Unix time of the last successful heartbeat."
    );
    // Every failure type shows from the start, at zero, so a dashboard can
    // tell "no failures" from "no data".
    for failure_type in FAILURE_TYPES {
        counter!(HEARTBEAT_FAILURES, "failure_type" => failure_type).increment(0);
    }
    for kind in [RecordKind::Host, RecordKind::Job, RecordKind::SuiteKeyval] {
        counter!(DESERIALIZATION_FAILURES, "kind" => kind.as_str()).increment(0);
    }
    counter!(HEARTBEATS).increment(0);
    counter!(HOSTS_FORGOTTEN).increment(0);
    counter!(DATABASE_CONNECT_FAILURES).increment(0);
    for counter in [
        HOSTS_RECEIVED_TOTAL,
        JOBS_RECEIVED_TOTAL,
        JOBS_UPLOADED_TOTAL,
    ] {
        counter!(counter).increment(0);
    }
    for counter in [shard_rpc::ATTEMPTS, shard_rpc::RETRIES] {
        counter!(counter, "method" => "shard_heartbeat").increment(0);
    }
    // No success yet: 0, so that "time since the last success" alerts from
    // the start instead of seeing no data.
    gauge!(LAST_SUCCESS).set(0.0);
}

/// Records [`BUILD_INFO`] for the binary's `version` and `revision`.
pub fn build_info(version: &'static str, revision: &'static str) {
    describe_gauge!(
        BUILD_INFO,
        "The running binary: its version and git revision as labels; always 1."
    );
    gauge!(BUILD_INFO, "version" => version, "revision" => revision).set(1.0);
}

/// What the packet reported, recorded before the call is made.
pub(crate) fn packet(known_jobs: usize, known_hosts: usize) {
    gauge!(KNOWN_JOB_IDS).set(known_jobs as f64);
    gauge!(KNOWN_HOST_IDS).set(known_hosts as f64);
}

/// A successful heartbeat.
pub(crate) fn success(report: &Report, took: Duration) {
    gauge!(REQUEST_SIZE_BYTES).set(report.request_bytes as f64);
    gauge!(RESPONSE_SIZE_BYTES).set(report.response_bytes as f64);
    gauge!(HOSTS_RECEIVED).set(report.received.hosts as f64);
    gauge!(JOBS_RECEIVED).set(report.received.jobs as f64);
    gauge!(SUITE_KEYVALS_RECEIVED).set(report.received.suite_keyvals as f64);
    gauge!(JOBS_UPLOADED).set(report.jobs_uploaded.len() as f64);
    counter!(HOSTS_RECEIVED_TOTAL).increment(report.received.hosts as u64);
    counter!(JOBS_RECEIVED_TOTAL).increment(report.received.jobs as u64);
    counter!(JOBS_UPLOADED_TOTAL).increment(report.jobs_uploaded.len() as u64);
    gauge!(STATEMENTS).set(report.statements as f64);
    for (phase, took) in [
        ("build", report.phases.build),
        ("call", report.phases.call),
        ("write", report.phases.write),
    ] {
        histogram!(PHASE_DURATION, "phase" => phase).record(took.as_secs_f64());
    }
    for rejected in &report.rejected {
        counter!(DESERIALIZATION_FAILURES, "kind" => rejected.kind.as_str()).increment(1);
    }
    if !report.suite_keyvals_without_job.is_empty() {
        let kind = RecordKind::SuiteKeyval.as_str();
        counter!(DESERIALIZATION_FAILURES, "kind" => kind)
            .increment(report.suite_keyvals_without_job.len() as u64);
    }
    counter!(HEARTBEATS).increment(1);
    histogram!(HEARTBEAT_DURATION, "outcome" => "success").record(took.as_secs_f64());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    gauge!(LAST_SUCCESS).set(now.as_secs_f64());
}

/// A failed heartbeat.
pub(crate) fn failure(failure_type: &'static str, took: Duration) {
    counter!(HEARTBEAT_FAILURES, "failure_type" => failure_type).increment(1);
    histogram!(HEARTBEAT_DURATION, "outcome" => "failure").record(took.as_secs_f64());
}

/// Known hosts forgotten because the master no longer has them.
pub(crate) fn hosts_forgotten(count: usize) {
    counter!(HOSTS_FORGOTTEN).increment(count as u64);
}
