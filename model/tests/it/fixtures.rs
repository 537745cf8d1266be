//! Every example payload of the spec parses, and round-trips.
//!
//! The fixtures are read from `../shared/spec/fixtures/` (beside the
//! repository), never copied into it.

use serde_json::Value;
use shard_model::testing::{fixture, fixtures_dir};
use shard_model::{HeartbeatRequest, HeartbeatResponse, ToOne};

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("fixture is JSON")
}

fn response(name: &str) -> HeartbeatResponse {
    let envelope = json(&fixture(name));
    let result = serde_json::to_vec(&envelope["result"]).expect("re-encode");
    HeartbeatResponse::from_json(&result).expect("envelope parses")
}

#[test]
fn every_fixture_is_covered() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // A new fixture must get a test here.
    assert_eq!(
        names,
        [
            "error-unknown-shard.json",
            "request-upload.json",
            "response-basic.json",
            "response-mysql-quirks.json"
        ]
    );
}

#[test]
fn basic_response_parses_every_record() {
    let r = response("response-basic.json");
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.hosts.len(), 1);
    assert_eq!(r.jobs.len(), 1);
    assert_eq!(r.suite_keyvals.len(), 1);
    assert!(r.incorrect_host_ids.is_empty());

    let host = &r.hosts[0];
    assert_eq!(host.id, 2);
    assert_eq!(host.hostname.as_deref(), Some("chromeos4-row1-rack1-host1"));
    assert!(!host.leased && host.dirty && host.locked == Some(false));
    let labels: Vec<_> = host.labels.as_ref().unwrap().iter().map(|l| l.id).collect();
    assert_eq!(labels, [1, 7]);
    let group = &host.aclgroup_set.as_ref().unwrap()[0];
    assert_eq!(
        group.users.as_ref().unwrap()[0].login.as_deref(),
        Some("chromeos-test")
    );
    assert_eq!(
        host.hostattribute_set.as_ref().unwrap()[0].value.as_deref(),
        Some("5CD1234XYZ")
    );
    assert_eq!(host.shard.as_set().map(|s| s.id), Some(1));

    let job = &r.jobs[0];
    assert_eq!(job.parent_job_id, Some(1000));
    let hqe = &job.hostqueueentry_set.as_ref().unwrap()[0];
    assert_eq!(hqe.id, 5001);
    assert_eq!(hqe.host_id, None);
    assert_eq!(
        hqe.meta_host.as_set().and_then(|l| l.name.as_deref()),
        Some("board:lumpy")
    );
    assert_eq!(job.jobkeyval_set.as_ref().unwrap()[0].key, "suite");
    assert_eq!(r.suite_keyvals[0].job_id, 1000);
}

#[test]
fn basic_response_round_trips_to_the_same_json() {
    let envelope = json(&fixture("response-basic.json"));
    let r = response("response-basic.json");
    let written = serde_json::to_value(&r).expect("serializes");
    assert_eq!(written, envelope["result"]);
}

#[test]
fn mysql_quirks_parse_to_the_same_records_as_the_basic_response() {
    let quirks = response("response-mysql-quirks.json");
    assert!(quirks.rejected.is_empty(), "{:?}", quirks.rejected);
    let host = &quirks.hosts[0];
    assert_eq!(host.locked, Some(true), "locked: 1 is true");
    assert!(!host.leased, "leased: 0 is false");
    assert_eq!(
        host.lock_time.map(|t| t.to_string()).as_deref(),
        Some("2014-09-22 08:00:01")
    );
    let job = &quirks.jobs[0];
    assert_eq!(
        job.created_on
            .map(|t| shard_model::format_datetime(t).to_string())
            .as_deref(),
        Some("2014-09-23T15:56:10.250000")
    );
    assert_eq!(
        job.hostqueueentry_set.as_ref().unwrap()[0].id,
        5001,
        "\"5001\" is 5001"
    );
    assert!(job.run_reset && job.run_verify == Some(false));
    assert!(quirks.incorrect_host_ids.is_empty(), "absent means empty");
}

#[test]
fn mysql_quirks_round_trip_through_the_canonical_shape() {
    let quirks = response("response-mysql-quirks.json");
    let written = serde_json::to_vec(&quirks).expect("serializes");
    let again = HeartbeatResponse::from_json(&written).expect("parses again");
    assert_eq!(again, quirks);
}

#[test]
fn upload_request_round_trips_to_the_same_json() {
    let envelope = json(&fixture("request-upload.json"));
    let params = &envelope["params"][0];
    let request: HeartbeatRequest = serde_json::from_value(params.clone()).expect("parses");
    assert_eq!(request.known_job_ids, [1002, 1003]);
    assert_eq!(request.known_host_statuses[0].as_deref(), Some("Running"));
    assert_eq!(request.jobs[0].shard, ToOne::Absent);
    assert_eq!(serde_json::to_value(&request).expect("serializes"), *params);
}

#[test]
fn error_fixture_is_not_a_response() {
    let envelope = json(&fixture("error-unknown-shard.json"));
    assert_eq!(envelope["error"]["name"], "DoesNotExist");
    let result = serde_json::to_vec(&envelope["result"]).expect("re-encode");
    assert!(
        HeartbeatResponse::from_json(&result).is_err(),
        "a null result is a broken envelope"
    );
}
