//! Which finished jobs go up, how many at a time, going up again when the
//! master resends one (§7 steps 1, 3 and 6), and no completion lost to the
//! scheduler writing while a heartbeat is in flight (§1), with `once` on
//! every backend.

use crate::common::*;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use shard_model::{HeartbeatRequest, Hqe, Job};
use shard_store::schema::entity::{hqes, jobs};
use shard_store::testing::TestDb;
use shard_tests::scheduler::{EntryEnd, complete_jobs, finish_entry, set_job_shard};
use shard_tests::{Reply, Script, ScriptedMaster, ShardClient};

empty_or_adopted_db_tests!(
    only_jobs_that_are_complete_and_unassigned_are_uploaded,
    an_upload_is_capped_at_1000_jobs_oldest_first,
    the_jobs_over_the_cap_go_up_with_the_next_heartbeat,
    a_completed_job_the_master_resends_is_unassigned,
    a_completed_job_the_master_resends_is_uploaded_again,
    an_entry_that_finishes_while_its_job_is_uploaded_still_reaches_the_master,
    a_job_caught_half_written_goes_up_only_once_its_entry_is_whole,
    an_entry_the_scheduler_ends_without_releasing_its_marked_job_still_reaches_the_master,
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

// ---------------------------------------------------------------------------
// The scheduler writing while a heartbeat is in flight (§1, §7 steps 1 and 3)

/// Job 10 with two entries, 100 and 101, both queued.
fn two_entry_job() -> Job {
    Job {
        hostqueueentry_set: Some(vec![hqe(100, None), hqe(101, None)]),
        ..job(10)
    }
}

/// One of the scheduler's statements: `column = value` on entry `id`.
async fn write_entry(
    conn: &impl ConnectionTrait,
    id: i32,
    column: hqes::Column,
    value: impl Into<sea_orm::Value>,
) {
    let stmt = Query::update()
        .table(hqes::Entity)
        .value(column, Expr::val(value.into()))
        .and_where(Expr::col(hqes::Column::Id).eq(id))
        .to_owned();
    conn.execute(&stmt).await.unwrap();
}

/// The scheduler's "upload me": the job's `shard_id` to NULL, only if it
/// is not NULL already.
async fn release(conn: &impl ConnectionTrait, job_id: i32) {
    let stmt = Query::update()
        .table(jobs::Entity)
        .value(jobs::Column::ShardId, Expr::val(Option::<i32>::None))
        .and_where(Expr::col(jobs::Column::Id).eq(job_id))
        .and_where(Expr::col(jobs::Column::ShardId).is_not_null())
        .to_owned();
    conn.execute(&stmt).await.unwrap();
}

/// The first statements of entry `id` of job 10 finishing `Completed`
/// (§1): status, active, the job's release; `complete = 1`, the last, is
/// the caller's. (The entry never started, so no `finished_on`.)
async fn finish_all_but_complete(conn: &impl ConnectionTrait, id: i32) {
    write_entry(conn, id, hqes::Column::Status, "Completed").await;
    write_entry(conn, id, hqes::Column::Active, false).await;
    release(conn, 10).await;
}

/// Entry `id` finishing `Completed`, as the scheduler simulator ends an
/// entry: statement by statement, in the order of §1.
async fn end_entry(conn: &impl ConnectionTrait, id: i32) {
    finish_entry(conn, id, EntryEnd::Completed, at("2014-09-23T16:09:45"))
        .await
        .unwrap();
}

/// (entry, status, complete) of an upload's entries.
fn entries(heartbeat: &HeartbeatRequest) -> Vec<(i32, Option<String>, Option<bool>)> {
    heartbeat
        .hqes
        .iter()
        .map(|q: &Hqe| (q.id, q.status.clone(), q.complete))
        .collect()
}

fn completed(id: i32) -> (i32, Option<String>, Option<bool>) {
    (id, Some("Completed".to_owned()), Some(true))
}

/// The original marks every uploaded job, so an entry that finishes while
/// its job's upload is in flight is lost: the scheduler finds the job
/// already released and leaves it, the mark then assigns it, and the
/// master never resends a job with a complete entry.
async fn an_entry_that_finishes_while_its_job_is_uploaded_still_reaches_the_master(db: TestDb) {
    migrate(&db).await;
    fill(&db, &response(vec![], vec![two_entry_job()], vec![])).await;
    let conn = db.store.connection();
    end_entry(conn, 100).await;
    let master = ScriptedMaster::start(Script::default().then_wait_for_push()).await;
    let heartbeat = tokio::spawn(run_to_end(args("once", &master, &db)));
    let held = master.wait_for_requests(1, RUN_TIMEOUT).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(
        entries(&master.heartbeats()[0]),
        vec![
            completed(100),
            (101, Some("Queued".to_owned()), Some(false))
        ]
    );

    // While the master holds its answer, entry 101 finishes.
    end_entry(conn, 101).await;
    master.push(Reply::empty());
    let output = heartbeat.await.unwrap();

    assert_eq!(output.code, Some(0), "{output}");
    assert_eq!(job_row(conn, 10).await.shard_id, None, "not marked");
    master.push(Reply::empty());
    once_ok(&master, &db).await;
    let heartbeats = master.heartbeats();
    assert_eq!(heartbeats.len(), 2);
    assert_eq!(uploaded(&heartbeats[1]).0, vec![10]);
    assert_eq!(
        entries(&heartbeats[1]),
        vec![completed(100), completed(101)]
    );
    assert_eq!(job_row(conn, 10).await.shard_id, Some(1), "marked now");
    master.assert_no_violations();
}

/// A packet read between the scheduler's release of a job and its
/// `complete = 1` would carry the entry half-written, and the mark would
/// then hide the finished entry from the master for good.
async fn a_job_caught_half_written_goes_up_only_once_its_entry_is_whole(db: TestDb) {
    migrate(&db).await;
    fill(&db, &response(vec![], vec![two_entry_job()], vec![])).await;
    let conn = db.store.connection();
    end_entry(conn, 100).await;
    finish_all_but_complete(conn, 101).await;
    let master = ScriptedMaster::start(Script::default()).await;

    let output = once(&master, &db).await;

    assert_eq!(output.code, Some(0), "{output}");
    assert_eq!(uploaded(&master.heartbeats()[0]), (vec![], vec![]));
    assert_eq!(job_row(conn, 10).await.shard_id, None);
    write_entry(conn, 101, hqes::Column::Complete, true).await;
    once_ok(&master, &db).await;
    let heartbeats = master.heartbeats();
    assert_eq!(uploaded(&heartbeats[1]).0, vec![10]);
    assert_eq!(
        entries(&heartbeats[1]),
        vec![completed(100), completed(101)]
    );
    assert_eq!(job_row(conn, 10).await.shard_id, Some(1));
    master.assert_no_violations();
}

/// Waits until `done` holds, checking every 50 ms for at most `RUN_TIMEOUT`.
async fn eventually<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = std::time::Instant::now() + RUN_TIMEOUT;
    while !done().await {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The real scheduler decides "only if not NULL already" on the job row it
/// read at the start of its round. When the client marks the job after
/// that read, the scheduler ends the entry without releasing the job; the
/// daemon, which followed the entry since it marked the job, releases it
/// itself and the entry goes up.
async fn an_entry_the_scheduler_ends_without_releasing_its_marked_job_still_reaches_the_master(
    db: TestDb,
) {
    migrate(&db).await;
    fill(&db, &response(vec![], vec![two_entry_job()], vec![])).await;
    let conn = db.store.connection();
    end_entry(conn, 100).await;
    let master = ScriptedMaster::start(Script::default()).await;
    let daemon = ShardClient::spawn(args("run", &master, &db), &ENV);
    eventually("job 10 uploaded and marked", || async {
        job_row(conn, 10).await.shard_id == Some(1)
    })
    .await;

    // The scheduler's round read job 10 while it was still released, so
    // ending 101 it writes no release.
    write_entry(conn, 101, hqes::Column::Status, "Completed").await;
    write_entry(conn, 101, hqes::Column::Active, false).await;
    write_entry(conn, 101, hqes::Column::Complete, true).await;

    eventually("entry 101 uploaded complete", || async {
        master
            .heartbeats()
            .iter()
            .any(|h| entries(h).contains(&completed(101)))
    })
    .await;
    daemon.terminate();
    let output = daemon.wait(RUN_TIMEOUT).await;
    assert_eq!(output.code, Some(0), "{output}");
    assert!(
        output
            .stderr
            .contains("without asking for an upload; uploading them again"),
        "{output}"
    );
    let last = master
        .heartbeats()
        .into_iter()
        .find(|h| entries(h).contains(&completed(101)))
        .unwrap();
    assert_eq!(entries(&last), vec![completed(100), completed(101)]);
    master.assert_no_violations();
}
