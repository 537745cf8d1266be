//! `shard_heartbeat` as a whole (§8 steps 1, 3 and 6, and the response
//! shape of §4/§5), on every backend, and where the two modes differ on
//! the call as a whole (transaction, fields).

use crate::common::*;
use serde_json::{Value, json};
use shard_master::Mode;
use shard_model::{HeartbeatRequest, HeartbeatResponse, Host, Hqe, Job, ToOne};
use shard_store::testing::TestDb;

shard_store::backend_tests!(
    unknown_shard_is_refused_as_does_not_exist,
    changed_host_statuses_are_written,
    a_null_status_is_written_as_null,
    unknown_known_host_id_fails_the_call_as_does_not_exist,
    strict_failing_call_changes_nothing,
    upstream_failing_call_keeps_what_it_saved_before_the_failure,
    strict_jobs_carry_their_parent_job_id,
    upstream_jobs_carry_no_parent_job_id_but_suite_keyvals_still_arrive,
    host_ids_and_statuses_of_different_lengths_are_refused,
    suite_keyvals_are_those_of_the_returned_jobs_parents,
    response_serializes_with_every_relation_and_parses_back,
);

async fn unknown_shard_is_refused_as_does_not_exist(db: TestDb) {
    add_shard(&db, 1, &[1]).await;
    seed(&db, vec![host(1, &[1])], vec![], vec![]).await;
    let request = HeartbeatRequest {
        shard_hostname: "shard-nobody-knows".to_owned(),
        ..request(1)
    };

    let fault = refused(&db, &request).await;

    assert_eq!(fault.name, "DoesNotExist");
    assert_eq!(fault.message, "Shard matching query does not exist.");
    assert_eq!(host_shard(&db, 1).await, None, "nothing was assigned");
}

/// Shard 1 with hosts 1 and 2 (label 1), and its heartbeat reporting
/// `statuses` of them.
async fn reporting(db: &TestDb, statuses: Vec<Option<String>>) -> HeartbeatRequest {
    add_shard(db, 1, &[1]).await;
    let mine = |id| assigned_host(id, 1, 1);
    seed(db, vec![mine(1), mine(2)], vec![], vec![]).await;
    HeartbeatRequest {
        known_host_ids: vec![1, 2],
        known_host_statuses: statuses,
        ..request(1)
    }
}

async fn changed_host_statuses_are_written(db: TestDb) {
    let request = reporting(
        &db,
        vec![Some("Running".to_owned()), Some("Ready".to_owned())],
    )
    .await;

    heartbeat(&db, &request).await;

    assert_eq!(host_row(&db, 1).await.status.as_deref(), Some("Running"));
    assert_eq!(host_row(&db, 2).await.status.as_deref(), Some("Ready"));
}

async fn a_null_status_is_written_as_null(db: TestDb) {
    let request = reporting(&db, vec![None, Some("Repair Failed".to_owned())]).await;

    heartbeat(&db, &request).await;

    assert_eq!(host_row(&db, 1).await.status, None);
    assert_eq!(
        host_row(&db, 2).await.status.as_deref(),
        Some("Repair Failed")
    );
}

async fn unknown_known_host_id_fails_the_call_as_does_not_exist(db: TestDb) {
    add_shard(&db, 1, &[1]).await;
    seed(&db, vec![assigned_host(1, 1, 1)], vec![], vec![]).await;
    let request = HeartbeatRequest {
        known_host_ids: vec![1, 77],
        known_host_statuses: vec![Some("Ready".to_owned()), Some("Running".to_owned())],
        ..request(1)
    };

    for mode in MODES {
        let fault = heartbeat_in(&db, &request, mode).await.unwrap_err();

        assert_eq!(
            (fault.name.as_str(), fault.message.as_str()),
            ("DoesNotExist", "Host matching query does not exist."),
            "{mode:?}"
        );
        assert_eq!(
            all_host_ids(&db).await,
            vec![1],
            "{mode:?}: no host 77 was created"
        );
    }
}

/// Shard 1 runs job 5 (entry 50) on host 1 and has host 2; host 3 would be
/// assigned to it. Its heartbeat uploads job 5 renamed and reports hosts
/// 1, 77 (which the master does not have) and 2, each with a new status.
async fn failing_call_setup(db: &TestDb) -> HeartbeatRequest {
    add_shard(db, 1, &[1]).await;
    let mine = |id| assigned_host(id, 1, 1);
    let running = Job {
        shard: ToOne::Set(shard(1)),
        ..job(
            5,
            vec![Hqe {
                status: Some("Running".to_owned()),
                active: Some(true),
                ..hqe_on(50, 1)
            }],
        )
    };
    seed(
        db,
        vec![mine(1), mine(2), host(3, &[1])],
        vec![running],
        vec![],
    )
    .await;
    let renamed = Job {
        name: Some("renamed".to_owned()),
        dependency_labels: None,
        hostqueueentry_set: None,
        jobkeyval_set: None,
        shard: ToOne::Absent,
        ..job(5, vec![])
    };
    HeartbeatRequest {
        known_host_ids: vec![1, 77, 2],
        known_host_statuses: vec![
            Some("Running".to_owned()),
            Some("Running".to_owned()),
            Some("Repairing".to_owned()),
        ],
        jobs: vec![renamed],
        ..request(1)
    }
}

async fn strict_failing_call_changes_nothing(db: TestDb) {
    let request = failing_call_setup(&db).await;

    let fault = heartbeat_in(&db, &request, Mode::Strict).await.unwrap_err();

    assert_eq!(fault.name, "DoesNotExist");
    assert_eq!(job_row(&db, 5).await.name.as_deref(), Some("job5"));
    assert_eq!(host_row(&db, 1).await.status.as_deref(), Some("Ready"));
    assert_eq!(host_row(&db, 2).await.status.as_deref(), Some("Ready"));
    assert_eq!(host_shard(&db, 3).await, None);
}

async fn upstream_failing_call_keeps_what_it_saved_before_the_failure(db: TestDb) {
    let request = failing_call_setup(&db).await;

    let fault = heartbeat_in(&db, &request, Mode::Upstream)
        .await
        .unwrap_err();

    assert_eq!(fault.name, "DoesNotExist");
    assert_eq!(job_row(&db, 5).await.name.as_deref(), Some("renamed"));
    assert_eq!(host_row(&db, 1).await.status.as_deref(), Some("Running"));
    assert_eq!(host_row(&db, 2).await.status.as_deref(), Some("Ready"));
    assert_eq!(host_shard(&db, 3).await, None, "assignment comes later");
}

/// Job 5 of suite 1000 (keyval `suite=bvt`), for shard 1.
async fn child_of_a_suite(db: &TestDb) {
    add_shard(db, 1, &[1]).await;
    let child = Job {
        parent_job_id: Some(1000),
        ..job(5, vec![hqe_meta(50, 1)])
    };
    seed(db, vec![], vec![child], vec![keyval(1000, "suite", "bvt")]).await;
}

async fn strict_jobs_carry_their_parent_job_id(db: TestDb) {
    child_of_a_suite(&db).await;

    let result = rpc(
        &db,
        Mode::Strict,
        None,
        "shard_heartbeat",
        json!({"shard_hostname": "shard1"}),
    )
    .await
    .unwrap();

    assert_eq!(result["jobs"][0]["id"], 5);
    assert_eq!(result["jobs"][0]["parent_job_id"], 1000);
    assert_eq!(result["suite_keyvals"][0]["job_id"], 1000);
}

async fn upstream_jobs_carry_no_parent_job_id_but_suite_keyvals_still_arrive(db: TestDb) {
    child_of_a_suite(&db).await;

    let result = rpc(
        &db,
        Mode::Upstream,
        Some("chromeos-test"),
        "shard_heartbeat",
        json!({"shard_hostname": "shard1"}),
    )
    .await
    .unwrap();

    let job = result["jobs"][0].as_object().unwrap();
    assert_eq!(job["id"], 5);
    assert!(!job.contains_key("parent_job_id"), "{job:?}");
    let keyvals = result["suite_keyvals"].as_array().unwrap();
    assert_eq!(keyvals.len(), 1, "{keyvals:?}");
    assert_eq!(
        (
            &keyvals[0]["job_id"],
            &keyvals[0]["key"],
            &keyvals[0]["value"]
        ),
        (&json!(1000), &json!("suite"), &json!("bvt"))
    );
    let parsed = HeartbeatResponse::from_json(&serde_json::to_vec(&result).unwrap()).unwrap();
    assert_eq!(parsed.rejected, vec![]);
    assert_eq!(parsed.jobs[0].parent_job_id, None);
}

async fn host_ids_and_statuses_of_different_lengths_are_refused(db: TestDb) {
    let request = reporting(&db, vec![Some("Running".to_owned())]).await;

    let fault = refused(&db, &request).await;

    // The original asserts the lengths are equal.
    assert_eq!(fault.name, "AssertionError");
    assert_eq!(host_row(&db, 1).await.status.as_deref(), Some("Ready"));
}

async fn suite_keyvals_are_those_of_the_returned_jobs_parents(db: TestDb) {
    add_shard(&db, 1, &[1]).await;
    let child = |id, parent| Job {
        parent_job_id: Some(parent),
        ..job(id, vec![hqe_meta(id * 10, 1)])
    };
    let own = Job {
        jobkeyval_set: Some(vec![keyval(5, "own", "not a suite keyval")]),
        ..child(5, 1000)
    };
    // Job 7 is not the shard's: its parent's keyvals stay home.
    let foreign = Job {
        parent_job_id: Some(1002),
        ..job(7, vec![hqe_meta(70, 2)])
    };
    let suite = vec![
        keyval(1000, "suite", "bvt"),
        keyval(1000, "build", "lumpy-release/R38-6000.0.0"),
        keyval(1001, "suite", "cq"),
        keyval(1002, "suite", "other"),
    ];
    seed(&db, vec![], vec![own, child(6, 1001), foreign], suite).await;

    let response = heartbeat(&db, &request(1)).await;

    assert_eq!(job_ids(&response), vec![5, 6]);
    let mut keyvals: Vec<(i32, String, Option<String>)> = response
        .suite_keyvals
        .iter()
        .map(|kv| (kv.job_id, kv.key.clone(), kv.value.clone()))
        .collect();
    keyvals.sort();
    assert_eq!(
        keyvals,
        vec![
            (
                1000,
                "build".to_owned(),
                Some("lumpy-release/R38-6000.0.0".to_owned())
            ),
            (1000, "suite".to_owned(), Some("bvt".to_owned())),
            (1001, "suite".to_owned(), Some("cq".to_owned())),
        ]
    );
}

/// The keys of a JSON object, sorted.
fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

async fn response_serializes_with_every_relation_and_parses_back(db: TestDb) {
    add_shard(&db, 1, &[1]).await;
    let h = Host {
        aclgroup_set: Some(vec![group(3, vec![user(4, "alice")])]),
        hostattribute_set: Some(vec![attribute("serial", "123")]),
        ..host(1, &[1])
    };
    let j = Job {
        parent_job_id: Some(1000),
        dependency_labels: Some(vec![label(1)]),
        jobkeyval_set: Some(vec![keyval(5, "suite", "bvt")]),
        ..job(5, vec![hqe_on(50, 1), hqe_meta(51, 1)])
    };
    seed(&db, vec![h], vec![j], vec![keyval(1000, "suite", "bvt")]).await;

    let response = heartbeat(&db, &request(1)).await;
    let json = serde_json::to_value(&response).unwrap();

    assert_eq!(
        keys(&json),
        vec!["hosts", "incorrect_host_ids", "jobs", "suite_keyvals"]
    );
    let host = &json["hosts"][0];
    assert_eq!(
        keys(host),
        vec![
            "aclgroup_set",
            "dirty",
            "hostattribute_set",
            "hostname",
            "id",
            "invalid",
            "labels",
            "leased",
            "lock_reason",
            "lock_time",
            "locked",
            "protection",
            "shard",
            "status",
            "synch_id",
        ]
    );
    assert_eq!(
        keys(&host["aclgroup_set"][0]),
        vec!["description", "id", "name", "users"]
    );
    assert_eq!(host["aclgroup_set"][0]["users"][0]["login"], "alice");
    assert_eq!(host["hostattribute_set"][0]["attribute"], "serial");
    assert_eq!(host["labels"][0]["name"], "board:b1");
    assert_eq!(
        host["shard"],
        serde_json::json!({"id": 1, "hostname": "shard1"})
    );
    let job = &json["jobs"][0];
    for key in [
        "dependency_labels",
        "hostqueueentry_set",
        "jobkeyval_set",
        "shard",
        "parent_job_id",
    ] {
        assert!(job.get(key).is_some(), "job lacks `{key}`: {job}");
    }
    assert_eq!(job["parent_job_id"], 1000);
    assert_eq!(job["dependency_labels"][0]["id"], 1);
    assert_eq!(job["jobkeyval_set"][0]["key"], "suite");
    assert_eq!(
        job["shard"],
        serde_json::json!({"id": 1, "hostname": "shard1"})
    );
    let entries = job["hostqueueentry_set"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["meta_host"], Value::Null);
    assert_eq!(entries[0]["host_id"], 1);
    assert_eq!(entries[1]["meta_host"]["name"], "board:b1");
    assert_eq!(json["suite_keyvals"][0]["job_id"], 1000);

    let bytes = serde_json::to_vec(&response).unwrap();
    let parsed = HeartbeatResponse::from_json(&bytes).unwrap();
    assert_eq!(parsed.rejected, vec![]);
    assert_eq!(parsed, response);
}
