//! The scheduler simulator on every backend: what it takes, where it runs
//! it, how entries end, and when a job is handed back for upload.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, EntityTrait, QueryFilter, QueryOrder,
};
use shard_model::status::{HQE_ACTIVE_STATUSES, HQE_COMPLETE_STATUSES};
use shard_model::{HeartbeatResponse, Host, Hqe, Job, Label, Shard, ToOne};
use shard_store::StoreError;
use shard_store::entity::prelude::*;
use shard_store::entity::{afe_host_queue_entries as hqes, afe_hosts as hosts};
use shard_store::testing::{Backend, TestDb};
use shard_tests::scheduler::{
    Scheduler, SchedulerConfig, TickReport, all_done, set_host_status, set_job_shard,
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
    a_job_is_released_only_when_all_its_entries_are_complete,
    a_released_job_marked_uploaded_is_not_released_again,
    a_new_scheduler_finishes_entries_it_did_not_start,
    all_done_is_true_exactly_when_nothing_is_incomplete,
);

// ---------------------------------------------------------------------------
// Records: minimal, every relation present; a test sets what it is about.

fn label(id: i32) -> Label {
    Label {
        id,
        name: Some(format!("label{id}")),
        kernel_config: Some(String::new()),
        platform: Some(false),
        invalid: false,
        only_if_needed: false,
    }
}

fn shard() -> Shard {
    Shard {
        id: 1,
        hostname: "shard1".to_owned(),
    }
}

/// A Ready, unlocked, valid host `host{id}` with `labels`.
fn host(id: i32, labels: &[i32]) -> Host {
    Host {
        id,
        hostname: Some(format!("host{id}")),
        locked: Some(false),
        leased: false,
        synch_id: None,
        status: Some("Ready".to_owned()),
        invalid: Some(false),
        protection: 0,
        lock_time: None,
        dirty: false,
        lock_reason: Some(String::new()),
        aclgroup_set: Some(vec![]),
        hostattribute_set: Some(vec![]),
        labels: Some(labels.iter().copied().map(label).collect()),
        shard: ToOne::Set(shard()),
    }
}

/// A queued entry on host `host_id` or on any host of label `meta_host`.
fn entry(id: i32, host_id: Option<i32>, meta_host: Option<i32>) -> Hqe {
    Hqe {
        id,
        status: Some("Queued".to_owned()),
        active: Some(false),
        complete: Some(false),
        deleted: false,
        aborted: false,
        execution_subdir: String::new(),
        started_on: None,
        finished_on: None,
        host_id,
        meta_host: match meta_host {
            Some(l) => ToOne::Set(label(l)),
            None => ToOne::Null,
        },
    }
}

/// A queued entry on any host of label `meta_host`.
fn meta_entry(id: i32, meta_host: i32) -> Hqe {
    entry(id, None, Some(meta_host))
}

/// Job `id` of shard 1, depending on `deps`, with `entries`.
fn job(id: i32, deps: &[i32], entries: Vec<Hqe>) -> Job {
    Job {
        id,
        owner: Some("chromeos-test".to_owned()),
        name: Some(format!("job{id}")),
        priority: Some(40),
        control_file: Some(String::new()),
        control_type: Some(2),
        created_on: None,
        synch_count: 1,
        timeout: 24,
        timeout_mins: 1440,
        max_runtime_hrs: 72,
        max_runtime_mins: 1440,
        test_retry: 0,
        run_verify: Some(false),
        run_reset: true,
        parse_failed_repair: true,
        email_list: String::new(),
        reboot_before: 1,
        reboot_after: 0,
        require_ssp: None,
        parent_job_id: None,
        dependency_labels: Some(deps.iter().copied().map(label).collect()),
        hostqueueentry_set: Some(entries),
        jobkeyval_set: Some(vec![]),
        shard: ToOne::Set(shard()),
    }
}

/// Writes `hosts` and `jobs` as the shard client would receive them.
async fn fill(db: &TestDb, hosts: Vec<Host>, jobs: Vec<Job>) {
    let response = HeartbeatResponse {
        hosts,
        jobs,
        suite_keyvals: vec![],
        incorrect_host_ids: vec![],
        rejected: vec![],
    };
    let report = shard_store::apply(db.store.connection(), &response)
        .await
        .unwrap();
    assert_eq!(report.rejected, vec![], "the fixture applies");
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
    fill(
        &db,
        vec![host(1, &[1])],
        vec![job(1, &[], vec![meta_entry(10, 1)])],
    )
    .await;
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
        invalid: Some(true),
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
    fill(
        &db,
        vec![host(1, &[1])],
        vec![job(1, &[], vec![meta_entry(10, 1)])],
    )
    .await;
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
    fill(
        &db,
        vec![host(1, &[1])],
        vec![job(1, &[], vec![meta_entry(10, 1)])],
    )
    .await;
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
    fill(
        &db,
        vec![host(1, &[1])],
        vec![job(1, &[], vec![meta_entry(10, 1)])],
    )
    .await;
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
    fill(
        &db,
        vec![host(1, &[1])],
        vec![job(1, &[], vec![meta_entry(10, 1)])],
    )
    .await;
    let conn = db.store.connection();
    abort(conn, 10).await;
    let mut scheduler = scheduler(&db, config(0.0, 1..=1));

    assert_eq!(tick(&mut scheduler).await, released(report(0, 0, 0, 1), 1));

    let e = entry_row(conn, 10).await;
    assert_eq!(
        (e.status.as_deref(), e.active, e.complete, e.host_id),
        (Some("Aborted"), Some(false), Some(true), None)
    );
    assert_eq!(e.started_on, None);
    assert!(e.finished_on.is_some(), "finished_on is set");
    assert_eq!(host_status(conn, 1).await.as_deref(), Some("Ready"));
}

async fn an_aborted_running_entry_ends_aborted_and_frees_its_host(db: TestDb) {
    fill(
        &db,
        vec![host(1, &[1])],
        vec![job(1, &[], vec![meta_entry(10, 1)])],
    )
    .await;
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

async fn a_job_is_released_only_when_all_its_entries_are_complete(db: TestDb) {
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
    assert_eq!(tick(&mut scheduler).await, report(1, 1, 0, 0));
    assert_eq!(job_shard(conn, 1).await, Some(1), "entry 11 is running");
    assert_eq!(tick(&mut scheduler).await, released(report(0, 1, 0, 0), 1));
    assert_eq!(job_shard(conn, 1).await, None);
}

async fn a_released_job_marked_uploaded_is_not_released_again(db: TestDb) {
    fill(
        &db,
        vec![host(1, &[1])],
        vec![job(1, &[], vec![meta_entry(10, 1)])],
    )
    .await;
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
    fill(
        &db,
        vec![host(1, &[1])],
        vec![job(1, &[], vec![meta_entry(10, 1)])],
    )
    .await;
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

    fill(
        &db,
        vec![host(1, &[1])],
        vec![job(1, &[], vec![meta_entry(10, 1)])],
    )
    .await;
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
    fill(
        &db,
        vec![host(1, &[1])],
        vec![job(1, &[], vec![meta_entry(10, 1)])],
    )
    .await;
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

    assert!(
        matches!(
            blocked,
            Err(StoreError::Database {
                operation: "starting a write transaction",
                ..
            })
        ),
        "{blocked:?}"
    );
    heartbeat.rollback().await.unwrap();
    assert_eq!(tick(&mut scheduler).await, report(1, 0, 0, 0));
    assert_eq!(
        entry_state(db.store.connection(), 10).await,
        state("Running", true, false, Some(1))
    );
}
