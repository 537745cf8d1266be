//! The full cycle of a job through the shard (§7), heartbeat by heartbeat
//! with `once`, on every backend: the master hands down a host and a job
//! with its suite keyvals, resends the host renamed, the scheduler runs the
//! job, the client uploads it once and marks it as the shard's.

use crate::common::*;
use serde_json::json;
use shard_model::{HeartbeatRequest, HeartbeatResponse, Host, Job};
use shard_store::testing::TestDb;
use shard_tests::scheduler::set_host_status;
use shard_tests::{Reply, ScriptedMaster};

empty_db_tests!(
    a_downloaded_host_and_job_are_stored_with_their_keyvals,
    a_downloaded_host_and_job_are_reported_as_known,
    a_known_host_resent_renamed_keeps_its_local_fields,
    a_completed_job_is_uploaded_with_its_entry_and_the_host_status,
    an_uploaded_job_is_marked_with_the_shards_id,
    after_the_upload_the_next_heartbeat_uploads_nothing,
);

/// What the master hands down first: host 1, job 10 with its entry 100 on
/// host 1 and its keyval, and a keyval of its suite 1000.
fn download() -> HeartbeatResponse {
    response(
        vec![host(1)],
        vec![Job {
            parent_job_id: Some(1000),
            ..job_on(10, 1)
        }],
        vec![keyval(1000, "suite", "bvt-inline")],
    )
}

/// The master resending host 1 under another name and status.
fn resend_renamed() -> HeartbeatResponse {
    let renamed = Host {
        hostname: Some("renamed1".to_owned()),
        status: Some("Repairing".to_owned()),
        ..host(1)
    };
    response(vec![renamed], vec![], vec![])
}

/// A master that downloads, resends the host renamed, then has nothing.
async fn master() -> ScriptedMaster {
    ScriptedMaster::start([
        Reply::Response(download()),
        Reply::Response(resend_renamed()),
    ])
    .await
}

/// The scheduler runs job 10 on host 1 and leaves the host Running.
async fn scheduler_runs_job_10(db: &TestDb) {
    complete_jobs_in_nine_minutes(db, &[10]).await;
    set_host_status(db.store.connection(), 1, "Running")
        .await
        .unwrap();
}

/// Heartbeats 1 and 2, the scheduler, and heartbeat 3, which uploads.
async fn cycle_until_upload(master: &ScriptedMaster, db: &TestDb) {
    once_ok(master, db).await;
    once_ok(master, db).await;
    scheduler_runs_job_10(db).await;
    once_ok(master, db).await;
}

async fn a_downloaded_host_and_job_are_stored_with_their_keyvals(db: TestDb) {
    let master = master().await;

    let output = once(&master, &db).await;

    assert_eq!(output.code, Some(0), "{output}");
    let conn = db.store.connection();
    let host = host_row(conn, 1).await;
    assert_eq!(host.hostname.as_deref(), Some("host1"));
    assert_eq!(host.status.as_deref(), Some("Ready"));
    assert_eq!(host.shard_id, Some(1));
    let job = job_row(conn, 10).await;
    assert_eq!(job.name.as_deref(), Some("job10"));
    assert_eq!(job.parent_job_id, Some(1000));
    assert_eq!(job.shard_id, Some(1));
    let entry = hqe_row(conn, 100).await;
    assert_eq!(
        (entry.job_id, entry.host_id, entry.status.as_deref()),
        (Some(10), Some(1), Some("Queued"))
    );
    let mut got = keyvals(conn).await;
    got.sort();
    assert_eq!(
        got,
        owned(&[(10, "build", "R80"), (1000, "suite", "bvt-inline")])
    );
    master.assert_no_violations();
}

async fn a_downloaded_host_and_job_are_reported_as_known(db: TestDb) {
    let master = master().await;

    once_ok(&master, &db).await;
    let output = once(&master, &db).await;

    assert_eq!(output.code, Some(0), "{output}");
    let heartbeats = master.heartbeats();
    assert_eq!(heartbeats.len(), 2);
    assert_eq!(
        heartbeats[0],
        HeartbeatRequest {
            shard_hostname: SHARD.to_owned(),
            known_job_ids: vec![],
            known_host_ids: vec![],
            known_host_statuses: vec![],
            jobs: vec![],
            hqes: vec![],
        }
    );
    assert_eq!(
        heartbeats[1],
        HeartbeatRequest {
            shard_hostname: SHARD.to_owned(),
            known_job_ids: vec![10],
            known_host_ids: vec![1],
            known_host_statuses: vec![Some("Ready".to_owned())],
            jobs: vec![],
            hqes: vec![],
        }
    );
    master.assert_no_violations();
}

async fn a_known_host_resent_renamed_keeps_its_local_fields(db: TestDb) {
    let master = master().await;
    once_ok(&master, &db).await;

    let output = once(&master, &db).await;

    assert_eq!(output.code, Some(0), "{output}");
    let host = host_row(db.store.connection(), 1).await;
    assert_eq!(host.hostname.as_deref(), Some("host1"));
    assert_eq!(host.status.as_deref(), Some("Ready"));
    master.assert_no_violations();
}

async fn a_completed_job_is_uploaded_with_its_entry_and_the_host_status(db: TestDb) {
    let master = master().await;

    cycle_until_upload(&master, &db).await;

    let heartbeats = master.heartbeats();
    assert_eq!(heartbeats.len(), 3);
    let upload = &heartbeats[2];
    assert_eq!(upload.known_job_ids, Vec::<i32>::new());
    assert_eq!(upload.known_host_ids, [1]);
    assert_eq!(upload.known_host_statuses, [Some("Running".to_owned())]);
    // The exact upload shape (§3): local fields only, as the wire has them.
    let params = &master.requests()[2].body["params"][0];
    assert_eq!(params["jobs"], json!([uploaded_job(10)]));
    assert_eq!(params["hqes"], json!([uploaded_hqe(100, 1)]));
    master.assert_no_violations();
}

async fn an_uploaded_job_is_marked_with_the_shards_id(db: TestDb) {
    let master = master().await;

    cycle_until_upload(&master, &db).await;

    assert_eq!(job_row(db.store.connection(), 10).await.shard_id, Some(1));
    master.assert_no_violations();
}

async fn after_the_upload_the_next_heartbeat_uploads_nothing(db: TestDb) {
    let master = master().await;
    cycle_until_upload(&master, &db).await;

    let output = once(&master, &db).await;

    assert_eq!(output.code, Some(0), "{output}");
    let heartbeats = master.heartbeats();
    assert_eq!(heartbeats.len(), 4);
    assert_eq!(
        heartbeats[3],
        HeartbeatRequest {
            shard_hostname: SHARD.to_owned(),
            known_job_ids: vec![],
            known_host_ids: vec![1],
            known_host_statuses: vec![Some("Running".to_owned())],
            jobs: vec![],
            hqes: vec![],
        }
    );
    master.assert_no_violations();
}
