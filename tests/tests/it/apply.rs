//! Applying what the master answers (§6, §7 step 5), with `once` on every
//! backend: incorrect hosts, a record the database refuses, and a result
//! that is not a heartbeat result at all.

use crate::common::*;
use serde_json::json;
use shard_model::{HeartbeatResponse, Host};
use shard_store::testing::TestDb;
use shard_tests::scheduler::complete_jobs;
use shard_tests::{Reply, ScriptedMaster};

empty_or_adopted_db_tests!(
    incorrect_hosts_are_invalidated_and_lose_their_labels_groups_and_attributes,
    incorrect_hosts_have_their_incomplete_entries_aborted,
    incorrect_hosts_are_no_longer_reported_as_known,
    a_job_whose_entry_names_an_unknown_host_is_skipped_and_not_known,
    a_skipped_job_resent_with_its_host_is_applied,
    a_result_whose_hosts_is_not_a_list_changes_nothing,
    a_garbage_body_changes_nothing,
    an_invalid_result_leaves_the_upload_unmarked,
);

// ---------------------------------------------------------------------------
// Incorrect host ids.

/// A host with two labels, an ACL group and two attributes.
fn linked_host(id: i32) -> Host {
    Host {
        labels: Some(vec![label(1), label(2)]),
        aclgroup_set: Some(vec![group(10, vec![user(5, "alice")])]),
        hostattribute_set: Some(vec![
            attribute("serial", &format!("s{id}")),
            attribute("pool", "bvt"),
        ]),
        ..host(id)
    }
}

/// Hosts 1 and 2; jobs 10 and 11 on host 1, job 12 on host 2. Then the
/// master says host 1 (and host 99, which the shard never had) is not ours.
async fn master_removing_host_1() -> ScriptedMaster {
    let download = response(
        vec![linked_host(1), linked_host(2)],
        vec![job_on(10, 1), job_on(11, 1), job_on(12, 2)],
        vec![],
    );
    let incorrect = HeartbeatResponse {
        incorrect_host_ids: vec![1, 99],
        ..HeartbeatResponse::default()
    };
    ScriptedMaster::start([Reply::Response(download), Reply::Response(incorrect)]).await
}

/// Downloads, lets the scheduler finish job 11, and takes the heartbeat
/// that names host 1 incorrect.
async fn remove_host_1(master: &ScriptedMaster, db: &TestDb) -> shard_tests::Output {
    once_ok(master, db).await;
    let started = at("2014-09-23T16:01:02");
    complete_jobs(db.store.connection(), &[11], started, started)
        .await
        .unwrap();
    once(master, db).await
}

async fn incorrect_hosts_are_invalidated_and_lose_their_labels_groups_and_attributes(db: TestDb) {
    let master = master_removing_host_1().await;

    let output = remove_host_1(&master, &db).await;

    assert_eq!(output.code, Some(0), "{output}");
    let conn = db.store.connection();
    assert_eq!(host_ids(conn).await, [1, 2], "kept, and 99 not created");
    assert_eq!(host_row(conn, 1).await.invalid, Some(true));
    assert_eq!(host_row(conn, 2).await.invalid, Some(false));
    assert_eq!(host_labels(conn).await, [(2, 1), (2, 2)]);
    assert_eq!(group_hosts(conn).await, [(10, 2)]);
    let mut got = attributes(conn).await;
    got.sort();
    assert_eq!(got, owned(&[(2, "pool", "bvt"), (2, "serial", "s2")]));
    master.assert_no_violations();
}

async fn incorrect_hosts_have_their_incomplete_entries_aborted(db: TestDb) {
    let master = master_removing_host_1().await;

    let output = remove_host_1(&master, &db).await;

    assert_eq!(output.code, Some(0), "{output}");
    let conn = db.store.connection();
    assert!(hqe_row(conn, 100).await.aborted, "incomplete, on host 1");
    assert!(!hqe_row(conn, 110).await.aborted, "complete, on host 1");
    assert!(!hqe_row(conn, 120).await.aborted, "incomplete, on host 2");
    master.assert_no_violations();
}

async fn incorrect_hosts_are_no_longer_reported_as_known(db: TestDb) {
    let master = master_removing_host_1().await;
    let removal = remove_host_1(&master, &db).await;
    assert_eq!(removal.code, Some(0), "{removal}");

    let output = once(&master, &db).await;

    assert_eq!(output.code, Some(0), "{output}");
    let heartbeats = master.heartbeats();
    assert_eq!(heartbeats.len(), 3);
    assert_eq!(heartbeats[1].known_host_ids, [1, 2], "before the removal");
    assert_eq!(heartbeats[2].known_host_ids, [2]);
    assert_eq!(
        heartbeats[2].known_host_statuses,
        [Some("Ready".to_owned())]
    );
    master.assert_no_violations();
}

// ---------------------------------------------------------------------------
// A record the database refuses.

/// Job 10 with its entry on host 5, first without host 5, then with it.
async fn master_sending_job_before_its_host() -> ScriptedMaster {
    ScriptedMaster::start([
        Reply::Response(response(vec![], vec![job_on(10, 5)], vec![])),
        Reply::Response(response(vec![host(5)], vec![job_on(10, 5)], vec![])),
    ])
    .await
}

async fn a_job_whose_entry_names_an_unknown_host_is_skipped_and_not_known(db: TestDb) {
    let master = master_sending_job_before_its_host().await;

    let skipped = once(&master, &db).await;
    let stored = job_ids(db.store.connection()).await;
    let next = once(&master, &db).await;

    assert_eq!(
        skipped.code,
        Some(0),
        "a skipped record is no failure:\n{skipped}"
    );
    assert_eq!(stored, Vec::<i32>::new());
    assert_eq!(next.code, Some(0), "{next}");
    let heartbeats = master.heartbeats();
    assert_eq!(heartbeats.len(), 2);
    assert_eq!(heartbeats[1].known_job_ids, Vec::<i32>::new());
    master.assert_no_violations();
}

async fn a_skipped_job_resent_with_its_host_is_applied(db: TestDb) {
    let master = master_sending_job_before_its_host().await;
    once_ok(&master, &db).await;

    let resent = once(&master, &db).await;
    let next = once(&master, &db).await;

    assert_eq!(resent.code, Some(0), "{resent}");
    assert_eq!(next.code, Some(0), "{next}");
    let conn = db.store.connection();
    assert_eq!(job_ids(conn).await, [10]);
    assert_eq!(hqe_row(conn, 100).await.host_id, Some(5));
    let heartbeats = master.heartbeats();
    assert_eq!(heartbeats.len(), 3);
    assert_eq!(heartbeats[2].known_job_ids, [10]);
    assert_eq!(heartbeats[2].known_host_ids, [5]);
    master.assert_no_violations();
}

// ---------------------------------------------------------------------------
// A result that is not a heartbeat result.

async fn a_result_whose_hosts_is_not_a_list_changes_nothing(db: TestDb) {
    // Records that would apply, under an envelope that does not parse.
    let result = json!({
        "hosts": {"1": serde_json::to_value(host(1).with_dependencies()).unwrap()},
        "jobs": [serde_json::to_value(job(10).with_dependencies()).unwrap()],
        "suite_keyvals": [],
        "incorrect_host_ids": [],
    });
    let master = ScriptedMaster::start([Reply::Result(result)]).await;

    assert_invalid_then_nothing_known(&master, &db).await;

    let conn = db.store.connection();
    assert_eq!(host_ids(conn).await, Vec::<i32>::new());
    assert_eq!(job_ids(conn).await, Vec::<i32>::new());
    master.assert_no_violations();
}

async fn a_garbage_body_changes_nothing(db: TestDb) {
    // A response cut off in the middle of a host.
    let whole =
        json!({"result": {"hosts": [serde_json::to_value(host(1).with_dependencies()).unwrap()]}});
    let text = whole.to_string();
    let cut = text.as_bytes()[..text.len() / 2].to_vec();
    let master = ScriptedMaster::start([Reply::Raw {
        status: 200,
        body: cut,
    }])
    .await;

    assert_invalid_then_nothing_known(&master, &db).await;

    assert_eq!(host_ids(db.store.connection()).await, Vec::<i32>::new());
    master.assert_no_violations();
}

async fn an_invalid_result_leaves_the_upload_unmarked(db: TestDb) {
    migrate(&db).await;
    fill(&db, &response(vec![], vec![job(10)], vec![])).await;
    let finished = at("2014-09-23T16:09:45");
    complete_jobs(db.store.connection(), &[10], finished, finished)
        .await
        .unwrap();
    let master = ScriptedMaster::start([Reply::Result(
        json!({"hosts": "none", "jobs": [], "suite_keyvals": []}),
    )])
    .await;

    let invalid = once(&master, &db).await;
    let next = once(&master, &db).await;

    assert_eq!(invalid.code, Some(1), "{invalid}");
    assert_eq!(next.code, Some(0), "{next}");
    let heartbeats = master.heartbeats();
    assert_eq!(heartbeats.len(), 2);
    let uploaded = |i: usize| heartbeats[i].jobs.iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(uploaded(0), [10]);
    assert_eq!(
        uploaded(1),
        [10],
        "uploaded again: the failed one did not count"
    );
    assert_eq!(job_row(db.store.connection(), 10).await.shard_id, Some(1));
    master.assert_no_violations();
}
