//! The scheduler simulator on every backend: what it takes, where it runs
//! it, how entries end (the statements of §1, in their order), and when a
//! job is handed back for upload (once per finishing entry).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common;
use chrono::NaiveDateTime;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder,
};
use shard_model::status::{HQE_ACTIVE_STATUSES, HQE_COMPLETE_STATUSES};
use shard_model::testing::records::{self, at, label, response};
use shard_model::{Host, Hqe, Job, ToOne};
use shard_store::StoreError;
use shard_store::schema::entity::prelude::*;
use shard_store::schema::entity::{hosts, hqes};
use shard_store::testing::{Backend, TestDb};
use shard_tests::scheduler::{
    EntryEnd, Scheduler, SchedulerConfig, TickReport, all_done, finish_entry, set_host_status,
    set_job_shard,
};

shard_store::backend_tests!(
    a_meta_host_entry_runs_on_a_ready_host_with_its_label,
    a_meta_host_entry_never_takes_an_unsuitable_host,
    a_bound_entry_waits_until_its_host_is_ready,
    a_hostless_entry_runs_without_a_host,
    a_running_entry_completes_after_its_ticks_when_nothing_fails,
    a_running_entry_fails_when_everything_fails,
    active_and_complete_always_match_the_status_lists,
    a_host_is_running_while_busy_and_ready_after,
    a_host_takes_one_entry_at_a_time_oldest_job_first,
    an_aborted_queued_entry_ends_aborted_without_running,
    an_aborted_running_entry_ends_aborted_and_frees_its_host,
    a_job_is_released_each_time_one_of_its_entries_ends,
    two_entries_of_a_job_ending_in_one_round_release_it_once,
    an_ending_entry_of_a_job_already_released_leaves_it_null_and_completes,
    an_ending_entry_writes_its_host_then_the_five_statements_of_section_1_in_order,
    a_round_ends_an_entry_with_the_same_statements_as_finish_entry,
    an_entry_that_never_started_ends_without_finished_on_or_freeing_a_host,
    finishing_an_entry_that_does_not_exist_is_an_error,
    a_half_written_entry_is_finished_by_the_next_tick,
    a_released_job_marked_uploaded_is_not_released_again,
    a_new_scheduler_finishes_entries_it_did_not_start,
    all_done_is_true_exactly_when_nothing_is_incomplete,
);

// ---------------------------------------------------------------------------
// Records: minimal, every relation present; a test sets what it is about.

/// A Ready, unlocked, valid host `host{id}` of shard 1 with `labels`.
fn host(id: i32, labels: &[i32]) -> Host {
    Host {
        labels: Some(labels.iter().copied().map(label).collect()),
        ..records::host(id)
    }
}

/// A queued entry on host `host_id` or on any host of label `meta_host`.
fn entry(id: i32, host_id: Option<i32>, meta_host: Option<i32>) -> Hqe {
    Hqe {
        meta_host: match meta_host {
            Some(l) => ToOne::Set(label(l)),
            None => ToOne::Null,
        },
        ..records::hqe(id, host_id)
    }
}

/// A queued entry on any host of label `meta_host`.
fn meta_entry(id: i32, meta_host: i32) -> Hqe {
    entry(id, None, Some(meta_host))
}

/// When fixture entries started.
fn started_at() -> NaiveDateTime {
    at("2014-09-23T15:56:10")
}

/// The `now` the tests give `finish_entry`.
fn ended_at() -> NaiveDateTime {
    at("2014-09-23T16:00:00")
}

/// An entry running on host `host_id` since [`started_at`].
fn running_entry(id: i32, host_id: i32) -> Hqe {
    Hqe {
        status: Some("Running".to_owned()),
        active: Some(true),
        execution_subdir: format!("host{host_id}"),
        started_on: Some(started_at()),
        ..entry(id, Some(host_id), None)
    }
}

/// Host `id`, with label 1, busy with an entry.
fn busy_host(id: i32) -> Host {
    Host {
        status: Some("Running".to_owned()),
        ..host(id, &[1])
    }
}

/// Job `id` of shard 1, depending on `deps`, with `entries`.
fn job(id: i32, deps: &[i32], entries: Vec<Hqe>) -> Job {
    Job {
        control_file: Some(String::new()),
        created_on: None,
        dependency_labels: Some(deps.iter().copied().map(label).collect()),
        hostqueueentry_set: Some(entries),
        jobkeyval_set: Some(vec![]),
        ..records::job(id)
    }
}

/// Writes `hosts` and `jobs` as the shard client would receive them.
async fn fill(db: &TestDb, hosts: Vec<Host>, jobs: Vec<Job>) {
    common::fill(db, &response(hosts, jobs, vec![])).await;
}

/// Host 1 with label 1, and job 1 whose entry 10 waits for any host of
/// label 1.
async fn fill_one_queued_entry(db: &TestDb) {
    fill(
        db,
        vec![host(1, &[1])],
        vec![job(1, &[], vec![meta_entry(10, 1)])],
    )
    .await;
}

/// Host 1, busy with entry 10 of job 1.
async fn fill_one_running_entry(db: &TestDb) {
    fill(
        db,
        vec![busy_host(1)],
        vec![job(1, &[], vec![running_entry(10, 1)])],
    )
    .await;
}

fn config(failure_ratio: f64, run_ticks: std::ops::RangeInclusive<u32>) -> SchedulerConfig {
    SchedulerConfig {
        failure_ratio,
        run_ticks,
        seed: 7,
    }
}

fn scheduler(db: &TestDb, config: SchedulerConfig) -> Scheduler {
    Scheduler::new(db.store.connection().clone(), config)
}

/// One round, which must succeed.
async fn tick(scheduler: &mut Scheduler) -> TickReport {
    scheduler.tick().await.unwrap()
}

fn report(started: usize, finished: usize, failed: usize, aborted: usize) -> TickReport {
    TickReport {
        started,
        finished,
        failed,
        aborted,
        healed: 0,
        released_jobs: 0,
    }
}

fn released(report: TickReport, released_jobs: usize) -> TickReport {
    TickReport {
        released_jobs,
        ..report
    }
}

// ---------------------------------------------------------------------------
// Rows.

async fn entry_row(db: &impl ConnectionTrait, id: i32) -> hqes::Model {
    HostQueueEntries::find_by_id(id)
        .one(db)
        .await
        .unwrap()
        .expect("entry row")
}

/// (status, active, complete, host_id) of an entry.
async fn entry_state(
    db: &impl ConnectionTrait,
    id: i32,
) -> (Option<String>, Option<bool>, Option<bool>, Option<i32>) {
    let e = entry_row(db, id).await;
    (e.status, e.active, e.complete, e.host_id)
}

fn state(
    status: &str,
    active: bool,
    complete: bool,
    host_id: Option<i32>,
) -> (Option<String>, Option<bool>, Option<bool>, Option<i32>) {
    (
        Some(status.to_owned()),
        Some(active),
        Some(complete),
        host_id,
    )
}

async fn host_status(db: &impl ConnectionTrait, id: i32) -> Option<String> {
    Hosts::find_by_id(id)
        .one(db)
        .await
        .unwrap()
        .expect("host row")
        .status
}

/// Every host's status, by id.
async fn host_statuses(db: &impl ConnectionTrait) -> Vec<(i32, Option<String>)> {
    Hosts::find()
        .order_by_asc(hosts::Column::Id)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|h| (h.id, h.status))
        .collect()
}

fn statuses(rows: &[(i32, &str)]) -> Vec<(i32, Option<String>)> {
    rows.iter()
        .map(|(id, s)| (*id, Some((*s).to_owned())))
        .collect()
}

async fn job_shard(db: &impl ConnectionTrait, id: i32) -> Option<i32> {
    Jobs::find_by_id(id)
        .one(db)
        .await
        .unwrap()
        .expect("job row")
        .shard_id
}

/// Sets `aborted = 1`, as the shard client does when the master aborts.
async fn abort(db: &impl ConnectionTrait, id: i32) {
    HostQueueEntries::update_many()
        .col_expr(hqes::Column::Aborted, Expr::value(true))
        .filter(hqes::Column::Id.eq(id))
        .exec(db)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------
// Tests.

async fn a_meta_host_entry_runs_on_a_ready_host_with_its_label(db: TestDb) {
    fill_one_queued_entry(&db).await;
    let mut scheduler = scheduler(&db, config(0.0, 1..=1));

    assert_eq!(tick(&mut scheduler).await, report(1, 0, 0, 0));

    let conn = db.store.connection();
    let e = entry_row(conn, 10).await;
    assert_eq!(
        (e.status.as_deref(), e.active, e.complete, e.host_id),
        (Some("Running"), Some(true), Some(false), Some(1))
    );
    assert_eq!(e.execution_subdir, "host1");
    assert!(e.started_on.is_some(), "started_on is set");
    assert_eq!(e.finished_on, None);
    assert_eq!(host_status(conn, 1).await.as_deref(), Some("Running"));
}

async fn a_meta_host_entry_never_takes_an_unsuitable_host(db: TestDb) {
    // The entry wants label 1, its job depends on label 2.
    let locked = Host {
        locked: Some(true),
        ..host(1, &[1, 2])
    };
    let invalid = Host {
        invalid: Some(Some(true)),
        ..host(2, &[1, 2])
    };
    let busy = Host {
        status: Some("Running".to_owned()),
        ..host(3, &[1, 2])
    };
    let wrong_label = host(4, &[2, 3]);
    let missing_dependency = host(5, &[1]);
    fill(
        &db,
        vec![locked, invalid, busy, wrong_label, missing_dependency],
        vec![job(1, &[2], vec![meta_entry(10, 1)])],
    )
    .await;
    let mut scheduler = scheduler(&db, config(0.0, 1..=1));

    assert_eq!(tick(&mut scheduler).await, report(0, 0, 0, 0));

    let conn = db.store.connection();
    assert_eq!(
        entry_state(conn, 10).await,
        state("Queued", false, false, None)
    );
    assert_eq!(
        host_statuses(conn).await,
        statuses(&[
            (1, "Ready"),
            (2, "Ready"),
            (3, "Running"),
            (4, "Ready"),
            (5, "Ready")
        ])
    );
    // A host with both labels arrives: that one is taken.
    fill(&db, vec![host(6, &[1, 2, 3])], vec![]).await;
    assert_eq!(tick(&mut scheduler).await, report(1, 0, 0, 0));
    assert_eq!(
        entry_state(conn, 10).await,
        state("Running", true, false, Some(6))
    );
}

async fn a_bound_entry_waits_until_its_host_is_ready(db: TestDb) {
    let busy = Host {
        status: Some("Running".to_owned()),
        ..host(1, &[1])
    };
    fill(
        &db,
        vec![busy, host(2, &[1])],
        vec![job(1, &[], vec![entry(10, Some(1), None)])],
    )
    .await;
    let mut scheduler = scheduler(&db, config(0.0, 1..=1));
    let conn = db.store.connection();

    assert_eq!(tick(&mut scheduler).await, report(0, 0, 0, 0));
    assert_eq!(
        entry_state(conn, 10).await,
        state("Queued", false, false, Some(1))
    );
    assert_eq!(host_status(conn, 2).await.as_deref(), Some("Ready"));

    set_host_status(conn, 1, "Ready").await.unwrap();
    assert_eq!(tick(&mut scheduler).await, report(1, 0, 0, 0));
    assert_eq!(
        entry_state(conn, 10).await,
        state("Running", true, false, Some(1))
    );
    assert_eq!(entry_row(conn, 10).await.execution_subdir, "host1");
    assert_eq!(
        host_statuses(conn).await,
        statuses(&[(1, "Running"), (2, "Ready")])
    );
}

async fn a_hostless_entry_runs_without_a_host(db: TestDb) {
    // A suite job: no host, no meta host; the real scheduler runs it on the
    // drone.
    fill(
        &db,
        vec![host(1, &[1])],
        vec![job(1, &[], vec![entry(10, None, None)])],
    )
    .await;
    let mut scheduler = scheduler(&db, config(0.0, 1..=1));
    let conn = db.store.connection();

    assert_eq!(tick(&mut scheduler).await, report(1, 0, 0, 0));
    assert_eq!(
        entry_state(conn, 10).await,
        state("Running", true, false, None)
    );
    assert_eq!(entry_row(conn, 10).await.execution_subdir, "");
    assert_eq!(host_status(conn, 1).await.as_deref(), Some("Ready"));

    assert_eq!(tick(&mut scheduler).await, released(report(0, 1, 0, 0), 1));
    assert_eq!(
        entry_state(conn, 10).await,
        state("Completed", false, true, None)
    );
}

async fn a_running_entry_completes_after_its_ticks_when_nothing_fails(db: TestDb) {
    fill_one_queued_entry(&db).await;
    let mut scheduler = scheduler(&db, config(0.0, 2..=2));
    let conn = db.store.connection();

    assert_eq!(tick(&mut scheduler).await, report(1, 0, 0, 0));
    assert_eq!(tick(&mut scheduler).await, report(0, 0, 0, 0));
    assert_eq!(
        entry_state(conn, 10).await,
        state("Running", true, false, Some(1))
    );
    assert_eq!(tick(&mut scheduler).await, released(report(0, 1, 0, 0), 1));

    let e = entry_row(conn, 10).await;
    assert_eq!(
        (e.status.as_deref(), e.active, e.complete, e.host_id),
        (Some("Completed"), Some(false), Some(true), Some(1))
    );
    assert!(e.finished_on.is_some(), "finished_on is set");
    assert!(e.started_on <= e.finished_on);
}

async fn a_running_entry_fails_when_everything_fails(db: TestDb) {
    fill_one_queued_entry(&db).await;
    let mut scheduler = scheduler(&db, config(1.0, 1..=1));

    assert_eq!(tick(&mut scheduler).await, report(1, 0, 0, 0));
    assert_eq!(tick(&mut scheduler).await, released(report(0, 1, 1, 0), 1));

    let conn = db.store.connection();
    assert_eq!(
        entry_state(conn, 10).await,
        state("Failed", false, true, Some(1))
    );
    assert!(entry_row(conn, 10).await.finished_on.is_some());
}

async fn active_and_complete_always_match_the_status_lists(db: TestDb) {
    // Ten jobs of two entries each on three hosts, one entry aborted on
    // the way, half of them failing.
    let jobs = (1..=10)
        .map(|j| {
            job(
                j,
                &[],
                vec![meta_entry(j * 10, 1), meta_entry(j * 10 + 1, 1)],
            )
        })
        .collect();
    fill(&db, vec![host(1, &[1]), host(2, &[1]), host(3, &[1])], jobs).await;
    let mut scheduler = scheduler(&db, config(0.5, 1..=3));
    let conn = db.store.connection();

    let mut ticks = 0;
    while !all_done(conn).await.unwrap() {
        assert!(ticks < 100, "all done within 100 ticks");
        tick(&mut scheduler).await;
        ticks += 1;
        if ticks == 1 {
            abort(conn, 50).await;
        }
        let entries = HostQueueEntries::find()
            .order_by_asc(hqes::Column::Id)
            .all(conn)
            .await
            .unwrap();
        for e in entries {
            let status = e.status.as_deref().unwrap();
            assert_eq!(
                (e.active, e.complete),
                (
                    Some(HQE_ACTIVE_STATUSES.contains(&status)),
                    Some(HQE_COMPLETE_STATUSES.contains(&status))
                ),
                "entry {} in {status} after tick {ticks}",
                e.id
            );
        }
    }

    let aborted = HostQueueEntries::find()
        .filter(hqes::Column::Status.eq("Aborted"))
        .all(conn)
        .await
        .unwrap();
    assert_eq!(aborted.iter().map(|e| e.id).collect::<Vec<_>>(), [50]);
    assert_eq!(
        host_statuses(conn).await,
        statuses(&[(1, "Ready"), (2, "Ready"), (3, "Ready")])
    );
}

async fn a_host_is_running_while_busy_and_ready_after(db: TestDb) {
    fill_one_queued_entry(&db).await;
    let mut scheduler = scheduler(&db, config(0.0, 2..=2));
    let conn = db.store.connection();

    tick(&mut scheduler).await;
    assert_eq!(host_status(conn, 1).await.as_deref(), Some("Running"));
    tick(&mut scheduler).await;
    assert_eq!(host_status(conn, 1).await.as_deref(), Some("Running"));
    tick(&mut scheduler).await;
    assert_eq!(host_status(conn, 1).await.as_deref(), Some("Ready"));
}

async fn a_host_takes_one_entry_at_a_time_oldest_job_first(db: TestDb) {
    // Job 2's entry has the lower id; job 1 is the older job.
    fill(
        &db,
        vec![host(1, &[1])],
        vec![
            job(2, &[], vec![meta_entry(15, 1)]),
            job(1, &[], vec![meta_entry(20, 1)]),
        ],
    )
    .await;
    let mut scheduler = scheduler(&db, config(0.0, 1..=1));
    let conn = db.store.connection();

    assert_eq!(tick(&mut scheduler).await, report(1, 0, 0, 0));
    assert_eq!(
        entry_state(conn, 20).await,
        state("Running", true, false, Some(1))
    );
    assert_eq!(
        entry_state(conn, 15).await,
        state("Queued", false, false, None)
    );

    // The host that freed up is taken again in the same round.
    assert_eq!(tick(&mut scheduler).await, released(report(1, 1, 0, 0), 1));
    assert_eq!(
        entry_state(conn, 20).await,
        state("Completed", false, true, Some(1))
    );
    assert_eq!(
        entry_state(conn, 15).await,
        state("Running", true, false, Some(1))
    );
    assert_eq!(host_status(conn, 1).await.as_deref(), Some("Running"));
}

async fn an_aborted_queued_entry_ends_aborted_without_running(db: TestDb) {
    fill_one_queued_entry(&db).await;
    let conn = db.store.connection();
    abort(conn, 10).await;
    let mut scheduler = scheduler(&db, config(0.0, 1..=1));

    assert_eq!(tick(&mut scheduler).await, released(report(0, 0, 0, 1), 1));

    let e = entry_row(conn, 10).await;
    assert_eq!(
        (e.status.as_deref(), e.active, e.complete, e.host_id),
        (Some("Aborted"), Some(false), Some(true), None)
    );
    // §1 writes finished_on only for an entry that started.
    assert_eq!((e.started_on, e.finished_on), (None, None));
    assert_eq!(host_status(conn, 1).await.as_deref(), Some("Ready"));
}

async fn an_aborted_running_entry_ends_aborted_and_frees_its_host(db: TestDb) {
    fill_one_queued_entry(&db).await;
    let mut scheduler = scheduler(&db, config(0.0, 5..=5));
    let conn = db.store.connection();
    assert_eq!(tick(&mut scheduler).await, report(1, 0, 0, 0));

    abort(conn, 10).await;
    assert_eq!(tick(&mut scheduler).await, released(report(0, 0, 0, 1), 1));

    assert_eq!(
        entry_state(conn, 10).await,
        state("Aborted", false, true, Some(1))
    );
    assert!(entry_row(conn, 10).await.finished_on.is_some());
    assert_eq!(host_status(conn, 1).await.as_deref(), Some("Ready"));
}

async fn a_job_is_released_each_time_one_of_its_entries_ends(db: TestDb) {
    // One host, so the two entries run one after the other.
    fill(
        &db,
        vec![host(1, &[1])],
        vec![job(1, &[], vec![meta_entry(10, 1), meta_entry(11, 1)])],
    )
    .await;
    let mut scheduler = scheduler(&db, config(0.0, 1..=1));
    let conn = db.store.connection();

    assert_eq!(tick(&mut scheduler).await, report(1, 0, 0, 0));
    assert_eq!(job_shard(conn, 1).await, Some(1));
    assert_eq!(tick(&mut scheduler).await, released(report(1, 1, 0, 0), 1));
    assert_eq!(job_shard(conn, 1).await, None, "released after entry 10");
    assert_eq!(
        entry_state(conn, 11).await,
        state("Running", true, false, Some(1)),
        "while entry 11 still runs"
    );

    // The shard client uploads the partial job and marks it; entry 11's
    // end releases it again.
    set_job_shard(conn, &[1], Some(1)).await.unwrap();
    assert_eq!(tick(&mut scheduler).await, released(report(0, 1, 0, 0), 1));
    assert_eq!(job_shard(conn, 1).await, None);
}

async fn two_entries_of_a_job_ending_in_one_round_release_it_once(db: TestDb) {
    fill(
        &db,
        vec![host(1, &[1]), host(2, &[1])],
        vec![job(1, &[], vec![meta_entry(10, 1), meta_entry(11, 1)])],
    )
    .await;
    let mut scheduler = scheduler(&db, config(0.0, 1..=1));
    let conn = db.store.connection();
    assert_eq!(tick(&mut scheduler).await, report(2, 0, 0, 0));

    // The first ending sets the job NULL; the second finds it NULL.
    assert_eq!(tick(&mut scheduler).await, released(report(0, 2, 0, 0), 1));

    assert_eq!(job_shard(conn, 1).await, None);
    assert_eq!(
        entry_state(conn, 11).await,
        state("Completed", false, true, Some(2))
    );
}

async fn an_ending_entry_of_a_job_already_released_leaves_it_null_and_completes(db: TestDb) {
    fill(
        &db,
        vec![busy_host(1), busy_host(2)],
        vec![job(
            1,
            &[],
            vec![running_entry(10, 1), running_entry(11, 2)],
        )],
    )
    .await;
    let conn = db.store.connection();
    assert!(
        finish_entry(conn, 10, EntryEnd::Completed, ended_at())
            .await
            .unwrap(),
        "entry 10 releases the job"
    );
    assert_eq!(job_shard(conn, 1).await, None);

    let released = finish_entry(conn, 11, EntryEnd::Failed, ended_at())
        .await
        .unwrap();

    assert!(!released, "the job was NULL already");
    assert_eq!(job_shard(conn, 1).await, None);
    let e = entry_row(conn, 11).await;
    assert_eq!(
        (e.status.as_deref(), e.active, e.complete, e.finished_on),
        (Some("Failed"), Some(false), Some(true), Some(ended_at()))
    );
    assert_eq!(
        host_statuses(conn).await,
        statuses(&[(1, "Ready"), (2, "Ready")])
    );
}

async fn an_ending_entry_writes_its_host_then_the_five_statements_of_section_1_in_order(
    db: TestDb,
) {
    fill_one_running_entry(&db).await;
    let (conn, log) = recording(&db).await;

    finish_entry(&conn, 10, EntryEnd::Completed, ended_at())
        .await
        .unwrap();

    assert_eq!(updates(&log), ending_statements());
    let e = entry_row(&conn, 10).await;
    assert_eq!(
        (e.status.as_deref(), e.active, e.complete, e.finished_on),
        (Some("Completed"), Some(false), Some(true), Some(ended_at()))
    );
    assert_eq!(job_shard(&conn, 1).await, None);
    assert_eq!(host_status(&conn, 1).await.as_deref(), Some("Ready"));
}

async fn a_round_ends_an_entry_with_the_same_statements_as_finish_entry(db: TestDb) {
    fill_one_running_entry(&db).await;
    let (conn, log) = recording(&db).await;
    // Run time 1: the entry it did not start ends in its second round.
    let mut scheduler = Scheduler::new(conn.clone(), config(0.0, 1..=1));
    assert_eq!(tick(&mut scheduler).await, report(0, 0, 0, 0));
    assert_eq!(updates(&log), Vec::<String>::new(), "nothing to write");

    assert_eq!(tick(&mut scheduler).await, released(report(0, 1, 0, 0), 1));

    assert_eq!(updates(&log), ending_statements());
}

async fn an_entry_that_never_started_ends_without_finished_on_or_freeing_a_host(db: TestDb) {
    // Bound to host 1, which is busy with another job's entry.
    fill(
        &db,
        vec![busy_host(1)],
        vec![
            job(1, &[], vec![running_entry(10, 1)]),
            job(2, &[], vec![entry(20, Some(1), None)]),
        ],
    )
    .await;
    let (conn, log) = recording(&db).await;

    finish_entry(&conn, 20, EntryEnd::Aborted, ended_at())
        .await
        .unwrap();

    assert_eq!(
        updates(&log),
        [
            "update afe_host_queue_entries set status",
            "update afe_host_queue_entries set active",
            "update afe_jobs set shard_id",
            "update afe_host_queue_entries set complete",
        ]
    );
    let e = entry_row(&conn, 20).await;
    assert_eq!(
        (e.status.as_deref(), e.complete, e.finished_on),
        (Some("Aborted"), Some(true), None)
    );
    assert_eq!(host_status(&conn, 1).await.as_deref(), Some("Running"));
}

async fn finishing_an_entry_that_does_not_exist_is_an_error(db: TestDb) {
    let err = finish_entry(db.store.connection(), 99, EntryEnd::Completed, ended_at())
        .await
        .unwrap_err();

    assert!(
        matches!(
            err,
            StoreError::Database {
                operation: "reading the entry to finish",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("host queue entry 99"), "{err}");
}

async fn a_half_written_entry_is_finished_by_the_next_tick(db: TestDb) {
    // Entry 10's ending was cut after its status and finished_on (its
    // host freed, its job not released yet); entry 11's right after its
    // status.
    let cut_late = Hqe {
        status: Some("Failed".to_owned()),
        active: Some(false),
        finished_on: Some(ended_at()),
        ..running_entry(10, 1)
    };
    let cut_early = Hqe {
        status: Some("Completed".to_owned()),
        ..running_entry(20, 2)
    };
    fill(
        &db,
        vec![host(1, &[1]), host(2, &[1])],
        vec![job(1, &[], vec![cut_late]), job(2, &[], vec![cut_early])],
    )
    .await;
    let mut scheduler = scheduler(&db, config(0.0, 1..=1));
    let conn = db.store.connection();

    let healed = tick(&mut scheduler).await;

    assert_eq!(
        healed,
        TickReport {
            healed: 2,
            released_jobs: 2,
            ..TickReport::default()
        },
        "healed, not counted as finishing, nothing started on their hosts"
    );
    let e = entry_row(conn, 10).await;
    assert_eq!(
        (e.status.as_deref(), e.active, e.complete, e.finished_on),
        (Some("Failed"), Some(false), Some(true), Some(ended_at())),
        "entry 10 keeps its status and finished_on"
    );
    let e = entry_row(conn, 20).await;
    assert_eq!(
        (e.status.as_deref(), e.active, e.complete),
        (Some("Completed"), Some(false), Some(true))
    );
    assert!(e.finished_on.is_some(), "finished_on is written");
    assert_eq!(
        (job_shard(conn, 1).await, job_shard(conn, 2).await),
        (None, None)
    );
    assert!(all_done(conn).await.unwrap());
    assert_eq!(tick(&mut scheduler).await, report(0, 0, 0, 0));
}

async fn a_released_job_marked_uploaded_is_not_released_again(db: TestDb) {
    fill_one_queued_entry(&db).await;
    let mut scheduler = scheduler(&db, config(0.0, 1..=1));
    let conn = db.store.connection();
    tick(&mut scheduler).await;
    assert_eq!(tick(&mut scheduler).await, released(report(0, 1, 0, 0), 1));
    assert_eq!(job_shard(conn, 1).await, None);

    // The shard client uploads it and marks it as the shard's again.
    set_job_shard(conn, &[1], Some(1)).await.unwrap();
    assert_eq!(tick(&mut scheduler).await, report(0, 0, 0, 0));

    assert_eq!(job_shard(conn, 1).await, Some(1));
}

async fn a_new_scheduler_finishes_entries_it_did_not_start(db: TestDb) {
    fill_one_queued_entry(&db).await;
    let conn = db.store.connection();
    let mut first = scheduler(&db, config(0.0, 9..=9));
    assert_eq!(tick(&mut first).await, report(1, 0, 0, 0));
    drop(first);

    // A restarted scheduler gives the running entry a run time of its own.
    let mut second = scheduler(&db, config(0.0, 1..=1));
    assert_eq!(tick(&mut second).await, report(0, 0, 0, 0));
    assert_eq!(tick(&mut second).await, released(report(0, 1, 0, 0), 1));

    assert_eq!(
        entry_state(conn, 10).await,
        state("Completed", false, true, Some(1))
    );
    assert_eq!(host_status(conn, 1).await.as_deref(), Some("Ready"));
}

async fn all_done_is_true_exactly_when_nothing_is_incomplete(db: TestDb) {
    let conn = db.store.connection();
    assert!(all_done(conn).await.unwrap(), "no entries at all");

    fill_one_queued_entry(&db).await;
    assert!(!all_done(conn).await.unwrap(), "queued");

    let mut scheduler = scheduler(&db, config(0.0, 1..=1));
    tick(&mut scheduler).await;
    assert!(!all_done(conn).await.unwrap(), "running");

    tick(&mut scheduler).await;
    assert!(all_done(conn).await.unwrap(), "completed");
}

/// SQLite only: the one backend where a writer locks the whole database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_on_a_locked_sqlite_database_fails_and_the_next_one_runs() {
    let db = TestDb::migrated(Backend::Sqlite).await.unwrap();
    fill_one_queued_entry(&db).await;
    // The store waits 10 s for a lock; the simulator's own connection here
    // gives up after 200 ms, to keep the test short.
    let mut options = ConnectOptions::new(db.url());
    options
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| o.busy_timeout(Duration::from_millis(200)));
    let conn = Database::connect(options).await.unwrap();
    let mut scheduler = Scheduler::new(conn, config(0.0, 1..=1));
    // A heartbeat holds the write lock.
    let heartbeat = shard_store::begin_write(db.store.connection())
        .await
        .unwrap();

    let blocked = tokio::time::timeout(Duration::from_secs(30), scheduler.tick())
        .await
        .expect("the tick gives up instead of waiting forever");

    // No round transaction: the reads go through (WAL), the first write
    // waits for the lock and gives up; nothing was written.
    assert!(
        matches!(
            blocked,
            Err(StoreError::Database {
                operation: "starting an entry",
                ..
            })
        ),
        "{blocked:?}"
    );
    heartbeat.rollback().await.unwrap();
    assert_eq!(
        entry_state(db.store.connection(), 10).await,
        state("Queued", false, false, None)
    );
    assert_eq!(tick(&mut scheduler).await, report(1, 0, 0, 0));
    assert_eq!(
        entry_state(db.store.connection(), 10).await,
        state("Running", true, false, Some(1))
    );
}

/// SQLite only (a trigger is the simplest way to make one statement fail):
/// a round cut by a failed statement keeps what it wrote before it, and
/// the next round finishes the entry it left half-written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_that_fails_half_way_keeps_its_writes_and_the_next_tick_heals() {
    let db = TestDb::migrated(Backend::Sqlite).await.unwrap();
    fill_one_queued_entry(&db).await;
    let conn = db.store.connection();
    let mut scheduler = scheduler(&db, config(0.0, 1..=1));
    assert_eq!(tick(&mut scheduler).await, report(1, 0, 0, 0));
    conn.execute_unprepared(
        "CREATE TRIGGER cut BEFORE UPDATE OF complete ON afe_host_queue_entries \
         BEGIN SELECT RAISE(ABORT, 'cut'); END",
    )
    .await
    .unwrap();

    let cut = scheduler.tick().await;

    assert!(
        matches!(
            cut,
            Err(StoreError::Database {
                operation: "writing the complete flag of an ending entry",
                ..
            })
        ),
        "{cut:?}"
    );
    assert_eq!(
        entry_state(conn, 10).await,
        state("Completed", false, false, Some(1)),
        "half-written"
    );
    assert_eq!(job_shard(conn, 1).await, None, "released before the cut");
    assert_eq!(host_status(conn, 1).await.as_deref(), Some("Ready"));

    conn.execute_unprepared("DROP TRIGGER cut").await.unwrap();
    assert_eq!(
        tick(&mut scheduler).await,
        TickReport {
            healed: 1,
            ..TickReport::default()
        },
        "healed; the job is NULL already"
    );
    assert_eq!(
        entry_state(conn, 10).await,
        state("Completed", false, true, Some(1))
    );
}

// ---------------------------------------------------------------------------
// Statements.

/// A connection of its own to `db` that records the SQL of every statement
/// it runs, in order.
async fn recording(db: &TestDb) -> (DatabaseConnection, Arc<Mutex<Vec<String>>>) {
    let mut options = ConnectOptions::new(db.url());
    options.sqlx_logging(false);
    let mut conn = Database::connect(options).await.unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    conn.set_metric_callback(move |info| {
        sink.lock().unwrap().push(info.statement.sql.clone());
    });
    (conn, log)
}

/// The UPDATEs recorded so far (the log is emptied), each as
/// `update <table> set <first column>`, the same in every dialect.
fn updates(log: &Mutex<Vec<String>>) -> Vec<String> {
    let sql = std::mem::take(&mut *log.lock().unwrap());
    sql.iter()
        .map(|s| s.replace(['"', '`'], "").to_lowercase())
        .filter(|s| s.starts_with("update "))
        .map(|s| s.split(" = ").next().unwrap().to_owned())
        .collect()
}

/// What ending an entry that ran on a host writes: the host, then §1.
fn ending_statements() -> Vec<String> {
    [
        "update afe_hosts set status",
        "update afe_host_queue_entries set status",
        "update afe_host_queue_entries set active",
        "update afe_host_queue_entries set finished_on",
        "update afe_jobs set shard_id",
        "update afe_host_queue_entries set complete",
    ]
    .map(str::to_owned)
    .to_vec()
}
