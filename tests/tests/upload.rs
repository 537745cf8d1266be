//! Which finished jobs go up, how many at a time, and going up again when
//! the master resends one (§7 steps 1, 3 and 6), with `once` on every
//! backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use shard_model::HeartbeatRequest;
use shard_store::testing::TestDb;
use shard_tests::scheduler::{complete_jobs, set_job_shard};
use shard_tests::{Reply, Script, ScriptedMaster};

backend_tests!(
    only_jobs_that_are_complete_and_unassigned_are_uploaded,
    an_upload_is_capped_at_1000_jobs_oldest_first,
    the_jobs_over_the_cap_go_up_with_the_next_heartbeat,
    a_completed_job_the_master_resends_is_unassigned,
    a_completed_job_the_master_resends_is_uploaded_again,
);

/// Job and entry ids of an upload.
fn uploaded(heartbeat: &HeartbeatRequest) -> (Vec<i32>, Vec<i32>) {
    (
        heartbeat.jobs.iter().map(|j| j.id).collect(),
        heartbeat.hqes.iter().map(|h| h.id).collect(),
    )
}

/// The scheduler finishing `job_ids` at some fixed time.
async fn finish(db: &TestDb, job_ids: &[i32]) {
    let time = at("2014-09-23T16:09:45");
    complete_jobs(db.store.connection(), job_ids, time, time)
        .await
        .unwrap();
}

async fn only_jobs_that_are_complete_and_unassigned_are_uploaded(db: TestDb) {
    migrate(&db).await;
    fill(&db, &response(vec![], (10..=13).map(job).collect(), vec![])).await;
    // 10: complete, unassigned. 11: complete, already uploaded.
    // 12: running, unassigned. 13: running, assigned.
    finish(&db, &[10, 11]).await;
    let conn = db.store.connection();
    set_job_shard(conn, &[11], Some(1)).await.unwrap();
    set_job_shard(conn, &[12], None).await.unwrap();
    let master = ScriptedMaster::start(Script::default()).await;

    let output = once(&master, &db).await;

    assert_eq!(output.code, Some(0), "{output}");
    let heartbeats = master.heartbeats();
    assert_eq!(heartbeats.len(), 1);
    assert_eq!(uploaded(&heartbeats[0]), (vec![10], vec![100]));
    master.assert_no_violations();
}

/// 1,200 finished jobs, ids 1 to 1200, written newest first so that the
/// order of the rows is not the order of the ids.
async fn fill_1200_finished_jobs(db: &TestDb) {
    migrate(db).await;
    fill(
        db,
        &response(vec![], (1..=1200).rev().map(job).collect(), vec![]),
    )
    .await;
    let ids: Vec<i32> = (1..=1200).collect();
    finish(db, &ids).await;
}

async fn an_upload_is_capped_at_1000_jobs_oldest_first(db: TestDb) {
    fill_1200_finished_jobs(&db).await;
    let master = ScriptedMaster::start(Script::default()).await;

    let output = once(&master, &db).await;

    assert_eq!(output.code, Some(0), "{output}");
    let heartbeats = master.heartbeats();
    assert_eq!(heartbeats.len(), 1);
    let (jobs, hqes) = uploaded(&heartbeats[0]);
    assert_eq!(jobs, (1..=1000).collect::<Vec<i32>>());
    assert_eq!(hqes, (1..=1000).map(|id| id * 10).collect::<Vec<i32>>());
    master.assert_no_violations();
}

async fn the_jobs_over_the_cap_go_up_with_the_next_heartbeat(db: TestDb) {
    fill_1200_finished_jobs(&db).await;
    let master = ScriptedMaster::start(Script::default()).await;
    once_ok(&master, &db).await;

    let second = once(&master, &db).await;
    let third = once(&master, &db).await;

    assert_eq!(second.code, Some(0), "{second}");
    assert_eq!(third.code, Some(0), "{third}");
    let heartbeats = master.heartbeats();
    assert_eq!(heartbeats.len(), 3);
    let (jobs, hqes) = uploaded(&heartbeats[1]);
    assert_eq!(jobs, (1001..=1200).collect::<Vec<i32>>());
    assert_eq!(hqes, (1001..=1200).map(|id| id * 10).collect::<Vec<i32>>());
    assert_eq!(uploaded(&heartbeats[2]), (vec![], vec![]));
    master.assert_no_violations();
}

/// A master that hands down job 10, takes its upload, then resends it as
/// if it had missed the upload.
async fn master_resending_job_10() -> ScriptedMaster {
    ScriptedMaster::start([
        Reply::Response(response(vec![], vec![job(10)], vec![])),
        Reply::empty(),
        Reply::Response(response(vec![], vec![job(10)], vec![])),
    ])
    .await
}

/// Downloads job 10, finishes it, uploads it, and takes the resend.
async fn upload_then_resend(master: &ScriptedMaster, db: &TestDb) -> shard_tests::Output {
    once_ok(master, db).await;
    finish(db, &[10]).await;
    once_ok(master, db).await;
    once(master, db).await
}

async fn a_completed_job_the_master_resends_is_unassigned(db: TestDb) {
    let master = master_resending_job_10().await;

    let resend = upload_then_resend(&master, &db).await;

    assert_eq!(resend.code, Some(0), "{resend}");
    let heartbeats = master.heartbeats();
    assert_eq!(uploaded(&heartbeats[1]), (vec![10], vec![100]));
    assert_eq!(uploaded(&heartbeats[2]), (vec![], vec![]), "marked");
    let job = job_row(db.store.connection(), 10).await;
    assert_eq!(job.shard_id, None);
    master.assert_no_violations();
}

async fn a_completed_job_the_master_resends_is_uploaded_again(db: TestDb) {
    let master = master_resending_job_10().await;
    let resend = upload_then_resend(&master, &db).await;
    assert_eq!(resend.code, Some(0), "{resend}");

    let output = once(&master, &db).await;

    assert_eq!(output.code, Some(0), "{output}");
    let heartbeats = master.heartbeats();
    assert_eq!(heartbeats.len(), 4);
    assert_eq!(uploaded(&heartbeats[3]), (vec![10], vec![100]));
    assert_eq!(job_row(db.store.connection(), 10).await.shard_id, Some(1));
    master.assert_no_violations();
}
