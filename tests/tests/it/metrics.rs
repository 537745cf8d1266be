//! The metrics endpoint of `run` (§10): `/metrics` after a success and a
//! failure, and `/healthz` turning unhealthy when heartbeats keep failing.
//! On every backend.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::*;
use serde_json::json;
use shard_store::testing::TestDb;
use shard_tests::scheduler::complete_jobs;
use shard_tests::scrape::{self, sample};
use shard_tests::{Reply, Running, Script, ScriptedMaster, ShardClient};

empty_db_tests!(
    build_info_and_a_zero_last_success_show_before_any_success,
    readyz_follows_the_last_heartbeat_and_livez_the_loop,
    metrics_show_every_name_with_its_value_after_a_success_and_a_failure,
    healthz_turns_503_once_heartbeats_have_failed_for_too_long,
    hosts_forgotten_because_the_master_deleted_them_are_counted,
);

shard_store::adopted_schema_tests!(suite_keyvals_the_shard_cannot_store_are_counted_as_not_applied);

/// How long the client may take to start and send its first heartbeats.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one GET of the endpoint may take.
const GET_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the client may take to exit after SIGTERM, here only a guard.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts `run`; the client and the URLs of its `/metrics` and `/healthz`.
async fn run_with_endpoints(args: Vec<String>) -> (Running, String, String) {
    let (running, base) = run_with_endpoint(args, &ENV).await;
    (
        running,
        format!("{base}/metrics"),
        format!("{base}/healthz"),
    )
}

async fn metrics_show_every_name_with_its_value_after_a_success_and_a_failure(db: TestDb) {
    // A finished job to upload, so the first heartbeat uploads one.
    migrate(&db).await;
    fill(&db, &response(vec![], vec![job(20)], vec![])).await;
    let time = at("2014-09-23T16:09:45");
    complete_jobs(db.store.connection(), &[20], time, time)
        .await
        .unwrap();
    // First a success: two hosts (one malformed), a job and a suite keyval.
    let success = json!({
        "result": {
            "hosts": [
                serde_json::to_value(host(1).with_dependencies()).unwrap(),
                {"id": 2},
            ],
            "jobs": [serde_json::to_value(job_on(10, 1).with_dependencies()).unwrap()],
            "suite_keyvals": [keyval(1000, "suite", "bvt")],
            "incorrect_host_ids": [],
        },
        "id": "jsonrpc",
        "error": null,
    })
    .to_string()
    .into_bytes();
    let response_bytes = success.len();
    // Then a JSON-RPC error; the third heartbeat waits, so nothing changes
    // while the test reads.
    let master = ScriptedMaster::start(
        Script::new([
            Reply::Raw {
                status: 200,
                body: success,
            },
            Reply::error("DoesNotExist", "Shard matching query does not exist."),
        ])
        .then_wait_for_push(),
    )
    .await;
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let (running, metrics, _) = run_with_endpoints(args("run", &master, &db)).await;
    let requests = master.wait_for_requests(3, START_TIMEOUT).await.unwrap();

    let answer = scrape::get(&metrics, GET_TIMEOUT).await.unwrap();

    let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let text = &answer.body;
    assert_eq!(answer.status, 200, "{text}");
    let value =
        |series: &str| sample(text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
    let request_bytes = requests[0].raw_body.len();
    assert_eq!(
        value("shard_client_heartbeat_request_size_bytes"),
        request_bytes as f64
    );
    assert_eq!(
        value("shard_client_heartbeat_response_size_bytes"),
        response_bytes as f64
    );
    assert_eq!(value("shard_client_hosts_received"), 2.0);
    assert_eq!(value("shard_client_jobs_received"), 1.0);
    assert_eq!(value("shard_client_suite_keyvals_received"), 1.0);
    // The packet of the third heartbeat: job 10 runs on host 1.
    assert_eq!(value("shard_client_known_job_ids"), 1.0);
    assert_eq!(value("shard_client_known_host_ids"), 1.0);
    assert_eq!(value("shard_client_jobs_uploaded"), 1.0);
    for (failure_type, count) in [
        ("connection", 0.0),
        ("timeout", 0.0),
        ("http_status", 0.0),
        ("json_rpc", 1.0),
        ("invalid_response", 0.0),
        ("database", 0.0),
    ] {
        let series =
            format!("shard_client_heartbeat_failures_total{{failure_type=\"{failure_type}\"}}");
        assert_eq!(value(&series), count, "{series}");
    }
    for (kind, count) in [("host", 1.0), ("job", 0.0), ("suite_keyval", 0.0)] {
        let series = format!("shard_client_deserialization_failures_total{{kind=\"{kind}\"}}");
        assert_eq!(value(&series), count, "{series}");
    }
    assert_eq!(value("shard_client_heartbeats_total"), 1.0);
    assert_eq!(value("shard_client_hosts_forgotten_total"), 0.0);
    for outcome in ["success", "failure"] {
        let series =
            format!("shard_client_heartbeat_duration_seconds_count{{outcome=\"{outcome}\"}}");
        assert_eq!(value(&series), 1.0, "{series}");
    }
    // The counters beside the spec's gauges, and the per-phase durations
    // and statements of the one success.
    assert_eq!(value("shard_client_hosts_received_total"), 2.0);
    assert_eq!(value("shard_client_jobs_received_total"), 1.0);
    assert_eq!(value("shard_client_jobs_uploaded_total"), 1.0);
    for phase in ["build", "call", "write"] {
        let series =
            format!("shard_client_heartbeat_phase_duration_seconds_count{{phase=\"{phase}\"}}");
        assert_eq!(value(&series), 1.0, "{series}");
    }
    assert!(value("shard_client_heartbeat_statements") > 0.0);
    // Two calls answered at once, and the third one waiting.
    assert_eq!(
        value("shard_client_rpc_attempts_total{method=\"shard_heartbeat\"}"),
        3.0
    );
    assert_eq!(
        value("shard_client_rpc_retries_total{method=\"shard_heartbeat\"}"),
        0.0
    );
    #[cfg(target_os = "linux")]
    for series in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(value(series) > 0.0, "{series}");
    }
    let last_success = value("shard_client_last_success_timestamp_seconds");
    assert!(
        before.as_secs_f64() <= last_success && last_success <= after.as_secs_f64(),
        "{last_success} not in {before:?}..={after:?}"
    );

    running.terminate();
    let output = running.wait(EXIT_TIMEOUT).await;
    assert_eq!(output.code, Some(0), "{output}");
    master.assert_no_violations();
}

async fn healthz_turns_503_once_heartbeats_have_failed_for_too_long(db: TestDb) {
    // One success, then failures. The client tolerates three pauses plus
    // its retry budget without a success: 3 × 0.1 s + 3 s.
    let master = ScriptedMaster::start(Script::new([Reply::empty()]).then_always(Reply::error(
        "DoesNotExist",
        "Shard matching query does not exist.",
    )))
    .await;
    let args = set(args("run", &master, &db), "--rpc-timeout-min", "0.05");
    let (running, _, healthz) = run_with_endpoints(args).await;
    master.wait_for_requests(2, START_TIMEOUT).await.unwrap();

    let healthy = scrape::get(&healthz, GET_TIMEOUT).await.unwrap();
    let polling = Instant::now();
    let unhealthy = loop {
        let answer = scrape::get(&healthz, GET_TIMEOUT).await.unwrap();
        if answer.status != 200 || polling.elapsed() > START_TIMEOUT {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    assert_eq!(healthy.status, 200, "{}", healthy.body);
    assert!(
        healthy.body.contains(r#""status":"ok""#),
        "{}",
        healthy.body
    );
    assert_eq!(unhealthy.status, 503, "{}", unhealthy.body);
    assert!(
        unhealthy.body.contains(r#""status":"unhealthy""#),
        "{}",
        unhealthy.body
    );
    running.terminate();
    let output = running.wait(EXIT_TIMEOUT).await;
    assert_eq!(output.code, Some(0), "{output}");
    master.assert_no_violations();
}

async fn hosts_forgotten_because_the_master_deleted_them_are_counted(db: TestDb) {
    migrate(&db).await;
    fill(
        &db,
        &response(vec![host(2), host(3), host(4)], vec![], vec![]),
    )
    .await;
    // The master refuses the heartbeat for a host it deleted, lists only
    // host 3 when asked, and holds the next heartbeat while the test reads.
    let master = ScriptedMaster::start(
        Script::new([
            Reply::error("DoesNotExist", "Host matching query does not exist."),
            Reply::Result(json!([{"id": 3, "hostname": "host3"}])),
        ])
        .then_wait_for_push(),
    )
    .await;
    let (running, metrics, _) = run_with_endpoints(args("run", &master, &db)).await;
    master.wait_for_requests(3, START_TIMEOUT).await.unwrap();

    let answer = scrape::get(&metrics, GET_TIMEOUT).await.unwrap();

    let text = &answer.body;
    assert_eq!(
        sample(text, "shard_client_hosts_forgotten_total"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(master.heartbeats()[1].known_host_ids, vec![3]);
    running.terminate();
    let output = running.wait(EXIT_TIMEOUT).await;
    assert_eq!(output.code, Some(0), "{output}");
    master.assert_no_violations();
}

async fn suite_keyvals_the_shard_cannot_store_are_counted_as_not_applied(db: TestDb) {
    // Three keyvals of suite 2000, which lives on the master; the second
    // heartbeat waits, so nothing changes while the test reads.
    let result = json!({
        "hosts": [],
        "jobs": [],
        "suite_keyvals": keyvals_of_suite_2000(),
        "incorrect_host_ids": [],
    });
    let master =
        ScriptedMaster::start(Script::new([Reply::Result(result)]).then_wait_for_push()).await;
    let refused = if db
        .store
        .layout()
        .has_foreign_key(shard_store::schema::entity::afe_job_keyvals::Column::JobId)
    {
        3.0
    } else {
        0.0
    };

    let (running, metrics, _) = run_with_endpoints(args("run", &master, &db)).await;
    master.wait_for_requests(2, START_TIMEOUT).await.unwrap();
    let answer = scrape::get(&metrics, GET_TIMEOUT).await.unwrap();

    let text = &answer.body;
    let value =
        |series: &str| sample(text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
    assert_eq!(value("shard_client_suite_keyvals_received"), 3.0);
    assert_eq!(
        value("shard_client_deserialization_failures_total{kind=\"suite_keyval\"}"),
        refused
    );
    assert_eq!(value("shard_client_heartbeats_total"), 1.0);
    running.terminate();
    let output = running.wait(EXIT_TIMEOUT).await;
    assert_eq!(output.code, Some(0), "{output}");
    master.assert_no_violations();
}

async fn build_info_and_a_zero_last_success_show_before_any_success(db: TestDb) {
    // Every heartbeat fails: no success ever comes.
    let master = ScriptedMaster::start(Script::new([]).then_always(Reply::error(
        "DoesNotExist",
        "Shard matching query does not exist.",
    )))
    .await;
    let version = ShardClient::run_to_end(["--version"], &ENV, EXIT_TIMEOUT).await;
    assert_eq!(version.code, Some(0), "{version}");
    // `shard-client 0.1.0 (0123456789ab)`: the version and the git revision.
    let line = version.stdout.trim();
    let (name_version, revision) = line
        .strip_suffix(')')
        .and_then(|rest| rest.split_once(" ("))
        .unwrap_or_else(|| panic!("no revision in {line:?}"));
    assert!(name_version.starts_with("shard-client "), "{line}");
    assert!(
        revision == "unknown"
            || (revision.len() == 12 && revision.chars().all(|c| c.is_ascii_hexdigit())),
        "{line}"
    );

    let (running, metrics, _) = run_with_endpoints(args("run", &master, &db)).await;
    master.wait_for_requests(1, START_TIMEOUT).await.unwrap();
    let answer = scrape::get(&metrics, GET_TIMEOUT).await.unwrap();

    let text = &answer.body;
    let value =
        |series: &str| sample(text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
    let version = name_version.trim_start_matches("shard-client ");
    assert_eq!(
        value(&format!(
            "shard_client_build_info{{version=\"{version}\",revision=\"{revision}\"}}"
        )),
        1.0
    );
    assert_eq!(value("shard_client_last_success_timestamp_seconds"), 0.0);
    assert_eq!(value("shard_client_database_connect_failures_total"), 0.0);
    running.terminate();
    let output = running.wait(EXIT_TIMEOUT).await;
    assert_eq!(output.code, Some(0), "{output}");
}

async fn readyz_follows_the_last_heartbeat_and_livez_the_loop(db: TestDb) {
    // The master holds every request until the test pushes an answer.
    let master = ScriptedMaster::start(Script::new([]).then_wait_for_push()).await;
    let (running, _, healthz) = run_with_endpoints(args("run", &master, &db)).await;
    let probe = |path: &str| healthz.replace("/healthz", path);
    let status = |url: String| async move { scrape::get(&url, GET_TIMEOUT).await.unwrap() };

    master.wait_for_requests(1, START_TIMEOUT).await.unwrap();
    let before = status(probe("/readyz")).await;
    assert_eq!(before.status, 503, "{}", before.body);
    assert!(
        before.body.contains("no successful heartbeat yet"),
        "{}",
        before.body
    );
    assert_eq!(status(probe("/livez")).await.status, 200);

    master.push(Reply::empty());
    master.wait_for_requests(2, START_TIMEOUT).await.unwrap();
    let ready = status(probe("/readyz")).await;
    assert_eq!(ready.status, 200, "{}", ready.body);

    master.push(Reply::error(
        "DoesNotExist",
        "Shard matching query does not exist.",
    ));
    master.wait_for_requests(3, START_TIMEOUT).await.unwrap();
    let failed = status(probe("/readyz")).await;
    assert_eq!(failed.status, 503, "{}", failed.body);
    assert!(
        failed.body.contains("the last heartbeat failed"),
        "{}",
        failed.body
    );
    let live = status(probe("/livez")).await;
    assert_eq!(
        live.status, 200,
        "a failing master does not make the client dead: {}",
        live.body
    );

    running.terminate();
    let output = running.wait(EXIT_TIMEOUT).await;
    assert_eq!(output.code, Some(0), "{output}");
}
