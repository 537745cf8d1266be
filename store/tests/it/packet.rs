//! The queries behind one heartbeat packet (§3, §7 steps 1 and 3), on every backend.

use crate::common::*;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter,
};
use serde_json::json;
use shard_model::{Hqe, Job};
use shard_store::schema::entity::prelude::*;
use shard_store::schema::entity::{afe_host_queue_entries, afe_hosts, afe_shards};
use shard_store::testing::TestDb;
use shard_store::{
    KnownHosts, Marked, Running, Upload, known_hosts, known_job_ids, mark_uploaded, release_missed,
    running_in_marked_jobs, shard_id_by_hostname,
};

// The tests under `everywhere:` also run on the schemas real deployments
// have (§9); those under `ours:` only on ours, because such a schema refuses
// their data by design: a NULL its NOT NULL columns forbid, a second shard
// of one hostname, two entries of one job on one host (UNIQUE(job_id,
// host_id)), strings latin1 cannot hold, our own column widths, suites whose
// parent job is not on the shard (a foreign key); or they count statements
// exactly (such a schema needs one more read per apply).
shard_store::every_schema_tests!(
    ours: [
        known_job_ids_does_not_count_an_entry_whose_complete_is_null,
        known_hosts_leaves_out_a_host_whose_invalid_is_null,
        shard_id_by_hostname_takes_the_lowest_id_of_rows_sharing_a_hostname,
    ],
    everywhere: [
        known_job_ids_lists_jobs_with_an_incomplete_entry_ascending,
        known_job_ids_lists_a_job_with_two_incomplete_entries_once,
        known_job_ids_leaves_out_a_job_whose_entries_are_all_complete,
        known_job_ids_keeps_a_job_with_one_entry_still_incomplete,
        known_hosts_lists_ids_ascending_with_their_statuses,
        known_hosts_leaves_out_invalid_hosts,
        jobs_to_upload_takes_an_unassigned_job_with_a_complete_entry,
        jobs_to_upload_skips_a_complete_job_still_assigned_to_a_shard,
        jobs_to_upload_skips_an_unassigned_job_without_a_complete_entry,
        jobs_to_upload_takes_the_oldest_ids_up_to_the_limit,
        jobs_to_upload_takes_the_rest_once_the_first_ones_are_marked,
        jobs_to_upload_returns_every_entry_of_exactly_those_jobs,
        jobs_to_upload_writes_a_job_in_the_upload_shape,
        jobs_to_upload_writes_an_entry_in_the_upload_shape,
        jobs_to_upload_holds_back_a_job_whose_entry_has_a_complete_status_but_no_complete_flag,
        jobs_to_upload_holds_back_a_job_whose_entry_is_flagged_complete_with_a_running_status,
        a_held_back_job_does_not_take_the_place_of_one_that_can_go,
        jobs_to_upload_takes_a_held_back_job_once_its_entry_is_written,
        mark_uploaded_sets_the_shard_of_exactly_the_uploaded_jobs,
        mark_uploaded_without_a_shard_changes_nothing,
        mark_uploaded_leaves_a_job_whose_entry_finished_meanwhile,
        mark_uploaded_leaves_a_job_whose_entry_was_aborted_meanwhile,
        mark_uploaded_leaves_a_job_that_gained_an_entry_meanwhile,
        mark_uploaded_statements_do_not_grow_with_jobs,
        a_job_marked_with_a_running_entry_is_released_when_the_scheduler_misses_its_end,
        a_job_the_scheduler_released_itself_is_no_longer_followed,
        a_followed_entry_still_running_keeps_its_job_marked,
        a_restarted_client_follows_the_running_entries_of_partly_finished_assigned_jobs,
        shard_id_by_hostname_finds_the_row_by_hostname,
        shard_id_by_hostname_is_none_for_an_unknown_hostname,
        packet_statements_do_not_grow_with_known_jobs,
        packet_statements_do_not_grow_with_jobs_to_upload,
    ],
);

// ---------------------------------------------------------------------------
// Setting up the states the master and the scheduler create.

/// Jobs `ids` (each with its one entry `id * 10`) finished and unassigned:
/// waiting for upload.
async fn fill_waiting(conn: &DatabaseConnection, ids: &[i32]) {
    fill(
        conn,
        &response(vec![], ids.iter().map(|&id| job(id)).collect(), vec![]),
    )
    .await;
    let entries: Vec<i32> = ids.iter().map(|id| id * 10).collect();
    complete(conn, &entries).await;
    unassign(conn, ids).await;
}

async fn insert_shard(conn: &impl ConnectionTrait, id: i32, hostname: &str) {
    afe_shards::ActiveModel {
        id: ActiveValue::Set(id),
        hostname: ActiveValue::Set(hostname.to_owned()),
    }
    .insert(conn)
    .await
    .unwrap();
}

/// `mark_uploaded` with the store's layout.
async fn mark(db: &TestDb, upload: &Upload, shard_id: Option<i32>) -> Marked {
    mark_uploaded(db.store.connection(), &db.store.layout(), upload, shard_id)
        .await
        .unwrap()
}

fn ids_of(jobs: &[Job]) -> Vec<i32> {
    jobs.iter().map(|j| j.id).collect()
}

// ---------------------------------------------------------------------------
// known_job_ids

async fn known_job_ids_lists_jobs_with_an_incomplete_entry_ascending(db: TestDb) {
    let conn = db.store.connection();
    fill(
        conn,
        &response(vec![], vec![job(9), job(3), job(5)], vec![]),
    )
    .await;

    assert_eq!(known_job_ids(conn).await.unwrap(), vec![3, 5, 9]);
}

async fn known_job_ids_lists_a_job_with_two_incomplete_entries_once(db: TestDb) {
    let conn = db.store.connection();
    let job4 = job_with(4, vec![hqe(40, None), hqe(41, None)]);
    fill(conn, &response(vec![], vec![job4, job(6)], vec![])).await;

    assert_eq!(known_job_ids(conn).await.unwrap(), vec![4, 6]);
}

async fn known_job_ids_leaves_out_a_job_whose_entries_are_all_complete(db: TestDb) {
    let conn = db.store.connection();
    let job4 = job_with(4, vec![hqe(40, None), hqe(41, None)]);
    fill(conn, &response(vec![], vec![job4, job(6)], vec![])).await;
    complete(conn, &[40]).await;
    complete(conn, &[41]).await;

    assert_eq!(known_job_ids(conn).await.unwrap(), vec![6]);
}

async fn known_job_ids_keeps_a_job_with_one_entry_still_incomplete(db: TestDb) {
    let conn = db.store.connection();
    let job4 = job_with(4, vec![hqe(40, None), hqe(41, None)]);
    fill(conn, &response(vec![], vec![job4], vec![])).await;
    complete(conn, &[40]).await;

    assert_eq!(known_job_ids(conn).await.unwrap(), vec![4]);
}

async fn known_job_ids_does_not_count_an_entry_whose_complete_is_null(db: TestDb) {
    let conn = db.store.connection();
    let unknown = Hqe {
        complete: None,
        ..hqe(40, None)
    };
    fill(
        conn,
        &response(vec![], vec![job_with(4, vec![unknown])], vec![]),
    )
    .await;
    assert_eq!(hqe_row(conn, 40).await.complete, None);

    assert_eq!(known_job_ids(conn).await.unwrap(), Vec::<i32>::new());
}

// ---------------------------------------------------------------------------
// known_hosts

async fn known_hosts_lists_ids_ascending_with_their_statuses(db: TestDb) {
    let conn = db.store.connection();
    fill(
        conn,
        &response(vec![host(3), host(1), host(2)], vec![], vec![]),
    )
    .await;
    set_column(conn, 1, afe_hosts::Column::Status, "Repairing").await;
    set_column(conn, 3, afe_hosts::Column::Status, "Running").await;

    assert_eq!(
        known_hosts(conn).await.unwrap(),
        KnownHosts {
            ids: vec![1, 2, 3],
            statuses: vec![
                Some("Repairing".to_owned()),
                Some("Ready".to_owned()),
                Some("Running".to_owned()),
            ],
        }
    );
}

async fn known_hosts_leaves_out_invalid_hosts(db: TestDb) {
    let conn = db.store.connection();
    fill(
        conn,
        &response(vec![host(1), host(2), host(3)], vec![], vec![]),
    )
    .await;
    set_column(conn, 3, afe_hosts::Column::Status, "Running").await;
    set_column(conn, 2, afe_hosts::Column::Invalid, Some(true)).await;

    assert_eq!(
        known_hosts(conn).await.unwrap(),
        KnownHosts {
            ids: vec![1, 3],
            statuses: vec![Some("Ready".to_owned()), Some("Running".to_owned())],
        }
    );
}

/// Documented on `known_hosts`: the original's `invalid = 0` filter does
/// not match NULL.
async fn known_hosts_leaves_out_a_host_whose_invalid_is_null(db: TestDb) {
    let conn = db.store.connection();
    fill(conn, &response(vec![host(1), host(2)], vec![], vec![])).await;
    set_column(conn, 2, afe_hosts::Column::Invalid, Option::<bool>::None).await;

    assert_eq!(
        known_hosts(conn).await.unwrap(),
        KnownHosts {
            ids: vec![1],
            statuses: vec![Some("Ready".to_owned())],
        }
    );
}

// ---------------------------------------------------------------------------
// jobs_to_upload

async fn jobs_to_upload_takes_an_unassigned_job_with_a_complete_entry(db: TestDb) {
    let conn = db.store.connection();
    fill_waiting(conn, &[7]).await;

    let upload = to_upload(&db, 1000).await;

    assert_eq!(ids_of(&upload.jobs), vec![7]);
}

async fn jobs_to_upload_skips_a_complete_job_still_assigned_to_a_shard(db: TestDb) {
    let conn = db.store.connection();
    fill(conn, &response(vec![], vec![job(7)], vec![])).await;
    complete(conn, &[70]).await;
    assert_eq!(job_row(conn, 7).await.shard_id, Some(1));

    let upload = to_upload(&db, 1000).await;

    assert_eq!(ids_of(&upload.jobs), Vec::<i32>::new());
    assert_eq!(upload.hqes, vec![]);
}

async fn jobs_to_upload_skips_an_unassigned_job_without_a_complete_entry(db: TestDb) {
    let conn = db.store.connection();
    fill(conn, &response(vec![], vec![job(7)], vec![])).await;
    unassign(conn, &[7]).await;

    let upload = to_upload(&db, 1000).await;

    assert_eq!(ids_of(&upload.jobs), Vec::<i32>::new());
    assert_eq!(upload.hqes, vec![]);
}

async fn jobs_to_upload_takes_the_oldest_ids_up_to_the_limit(db: TestDb) {
    let conn = db.store.connection();
    fill_waiting(conn, &[5, 1, 4, 2, 3]).await;

    let upload = to_upload(&db, 3).await;

    assert_eq!(ids_of(&upload.jobs), vec![1, 2, 3]);
    let hqe_ids: Vec<i32> = upload.hqes.iter().map(|q| q.id).collect();
    assert_eq!(hqe_ids, vec![10, 20, 30]);
}

async fn jobs_to_upload_takes_the_rest_once_the_first_ones_are_marked(db: TestDb) {
    let conn = db.store.connection();
    fill_waiting(conn, &[5, 1, 4, 2, 3]).await;
    let first = to_upload(&db, 3).await;
    mark(&db, &first, Some(1)).await;

    let second = to_upload(&db, 3).await;

    assert_eq!(ids_of(&second.jobs), vec![4, 5]);
    let hqe_ids: Vec<i32> = second.hqes.iter().map(|q| q.id).collect();
    assert_eq!(hqe_ids, vec![40, 50]);
}

async fn jobs_to_upload_returns_every_entry_of_exactly_those_jobs(db: TestDb) {
    let conn = db.store.connection();
    let uploaded = job_with(7, vec![hqe(70, Some(2)), hqe(71, Some(3)), hqe(72, None)]);
    let still_assigned = job_with(8, vec![hqe(80, Some(2))]);
    let still_running = job_with(9, vec![hqe(90, Some(3))]);
    fill(
        conn,
        &response(
            vec![host(2), host(3)],
            vec![uploaded, still_assigned, still_running],
            vec![],
        ),
    )
    .await;
    complete(conn, &[70]).await;
    unassign(conn, &[7]).await;
    complete(conn, &[80]).await;
    unassign(conn, &[9]).await;

    let upload = to_upload(&db, 1000).await;

    let entries: Vec<(i32, Option<i32>, Option<bool>)> = upload
        .hqes
        .iter()
        .map(|q| (q.id, q.host_id, q.complete))
        .collect();
    assert_eq!(
        entries,
        vec![
            (70, Some(2), Some(true)),
            (71, Some(3), Some(false)),
            (72, None, Some(false)),
        ]
    );
}

async fn jobs_to_upload_writes_a_job_in_the_upload_shape(db: TestDb) {
    let conn = db.store.connection();
    fill_waiting(conn, &[7]).await;

    let upload = to_upload(&db, 1000).await;

    assert_eq!(
        serde_json::to_value(&upload.jobs).unwrap(),
        json!([shard_model::testing::records::uploaded_job(7)])
    );
}

async fn jobs_to_upload_writes_an_entry_in_the_upload_shape(db: TestDb) {
    let conn = db.store.connection();
    let entry = Hqe {
        status: Some("Running".to_owned()),
        active: Some(true),
        execution_subdir: "host2".to_owned(),
        started_on: Some(at("2014-09-23T16:00:00")),
        ..hqe(70, Some(2))
    };
    fill(
        conn,
        &response(vec![host(2)], vec![job_with(7, vec![entry])], vec![]),
    )
    .await;
    HostQueueEntries::update_many()
        .col_expr(
            afe_host_queue_entries::Column::Status,
            Expr::value("Failed"),
        )
        .col_expr(afe_host_queue_entries::Column::Active, Expr::value(false))
        .col_expr(afe_host_queue_entries::Column::Complete, Expr::value(true))
        .col_expr(
            afe_host_queue_entries::Column::FinishedOn,
            Expr::value(at("2014-09-23T17:30:05")),
        )
        .filter(afe_host_queue_entries::Column::Id.eq(70))
        .exec(conn)
        .await
        .unwrap();
    unassign(conn, &[7]).await;

    let upload = to_upload(&db, 1000).await;

    assert_eq!(
        serde_json::to_value(&upload.hqes).unwrap(),
        json!([{
            "id": 70,
            "status": "Failed",
            "active": false,
            "complete": true,
            "deleted": false,
            "aborted": false,
            "execution_subdir": "host2",
            "started_on": "2014-09-23T16:00:00",
            "finished_on": "2014-09-23T17:30:05",
            "host_id": 2
        }])
    );
}

// ---------------------------------------------------------------------------
// mark_uploaded and shard_id_by_hostname

async fn mark_uploaded_sets_the_shard_of_exactly_the_uploaded_jobs(db: TestDb) {
    let conn = db.store.connection();
    fill_waiting(conn, &[7, 8, 9]).await;
    insert_shard(conn, 2, "shard2").await;
    let upload = to_upload(&db, 2).await;

    let marked = mark(&db, &upload, Some(2)).await;

    assert_eq!(marked.jobs, vec![7, 8]);
    assert_eq!(marked.changed, Vec::<i32>::new());
    assert_eq!(
        shard_ids(conn).await,
        vec![(7, Some(2)), (8, Some(2)), (9, None)]
    );
}

async fn mark_uploaded_without_a_shard_changes_nothing(db: TestDb) {
    let conn = db.store.connection();
    fill_waiting(conn, &[7, 8]).await;
    let upload = to_upload(&db, 1000).await;

    mark(&db, &upload, None).await;

    assert_eq!(shard_ids(conn).await, vec![(7, None), (8, None)]);
    assert_eq!(ids_of(&to_upload(&db, 1000).await.jobs), vec![7, 8]);
}

/// Job 7 with entry 70 finished and 71 running, waiting for upload (the
/// scheduler released it when 70 finished), and job 8 finished.
async fn fill_partly_finished(conn: &DatabaseConnection) {
    let running = Hqe {
        status: Some("Running".to_owned()),
        active: Some(true),
        ..hqe(71, Some(3))
    };
    fill(
        conn,
        &response(
            vec![host(2), host(3)],
            vec![job_with(7, vec![hqe(70, Some(2)), running]), job(8)],
            vec![],
        ),
    )
    .await;
    complete(conn, &[70, 80]).await;
    unassign(conn, &[7, 8]).await;
}

async fn jobs_to_upload_holds_back_a_job_whose_entry_has_a_complete_status_but_no_complete_flag(
    db: TestDb,
) {
    let conn = db.store.connection();
    fill_partly_finished(conn).await;
    // The scheduler has written 71's status, not yet its `complete`.
    set_column(conn, 71, afe_host_queue_entries::Column::Status, "Failed").await;
    set_column(conn, 71, afe_host_queue_entries::Column::Active, false).await;

    let upload = to_upload(&db, 1000).await;

    assert_eq!(ids_of(&upload.jobs), vec![8]);
    assert_eq!(upload.deferred, vec![7]);
    let hqe_ids: Vec<i32> = upload.hqes.iter().map(|q| q.id).collect();
    assert_eq!(hqe_ids, vec![80]);
}

async fn jobs_to_upload_holds_back_a_job_whose_entry_is_flagged_complete_with_a_running_status(
    db: TestDb,
) {
    let conn = db.store.connection();
    fill_partly_finished(conn).await;
    set_column(conn, 71, afe_host_queue_entries::Column::Complete, true).await;

    let upload = to_upload(&db, 1000).await;

    assert_eq!(ids_of(&upload.jobs), vec![8]);
    assert_eq!(upload.deferred, vec![7]);
}

/// Found by the packet oracle: with the held-back job counted against the
/// cap, `max_upload_jobs` jobs stuck half-written stopped every upload.
async fn a_held_back_job_does_not_take_the_place_of_one_that_can_go(db: TestDb) {
    let conn = db.store.connection();
    fill_partly_finished(conn).await;
    set_column(conn, 71, afe_host_queue_entries::Column::Complete, true).await;

    let upload = to_upload(&db, 1).await;

    assert_eq!(ids_of(&upload.jobs), vec![8]);
    assert_eq!(upload.deferred, vec![7]);
    let hqe_ids: Vec<i32> = upload.hqes.iter().map(|q| q.id).collect();
    assert_eq!(hqe_ids, vec![80]);
}

async fn jobs_to_upload_takes_a_held_back_job_once_its_entry_is_written(db: TestDb) {
    let conn = db.store.connection();
    fill_partly_finished(conn).await;
    set_column(conn, 71, afe_host_queue_entries::Column::Status, "Failed").await;
    assert_eq!(to_upload(&db, 1000).await.deferred, vec![7]);
    set_column(conn, 71, afe_host_queue_entries::Column::Active, false).await;
    set_column(conn, 71, afe_host_queue_entries::Column::Complete, true).await;

    let upload = to_upload(&db, 1000).await;

    assert_eq!(ids_of(&upload.jobs), vec![7, 8]);
    assert_eq!(upload.deferred, Vec::<i32>::new());
    let entries: Vec<(i32, Option<String>, Option<bool>)> = upload
        .hqes
        .iter()
        .map(|q| (q.id, q.status.clone(), q.complete))
        .collect();
    assert_eq!(
        entries,
        vec![
            (70, Some("Completed".to_owned()), Some(true)),
            (71, Some("Failed".to_owned()), Some(true)),
            (80, Some("Completed".to_owned()), Some(true)),
        ]
    );
}

async fn mark_uploaded_leaves_a_job_whose_entry_finished_meanwhile(db: TestDb) {
    let conn = db.store.connection();
    fill_partly_finished(conn).await;
    let upload = to_upload(&db, 1000).await;
    assert_eq!(ids_of(&upload.jobs), vec![7, 8]);
    // While the heartbeat is in flight 71 finishes; the scheduler finds
    // job 7 already unassigned and leaves it so.
    complete(conn, &[71]).await;

    let marked = mark(&db, &upload, Some(1)).await;

    assert_eq!(marked.jobs, vec![8]);
    assert_eq!(marked.changed, vec![7]);
    assert_eq!(shard_ids(conn).await, vec![(7, None), (8, Some(1))]);
    let next = to_upload(&db, 1000).await;
    assert_eq!(ids_of(&next.jobs), vec![7]);
    let entries: Vec<(i32, Option<bool>)> = next.hqes.iter().map(|q| (q.id, q.complete)).collect();
    assert_eq!(entries, vec![(70, Some(true)), (71, Some(true))]);
}

async fn mark_uploaded_leaves_a_job_whose_entry_was_aborted_meanwhile(db: TestDb) {
    let conn = db.store.connection();
    fill_partly_finished(conn).await;
    let upload = to_upload(&db, 1000).await;
    set_column(conn, 71, afe_host_queue_entries::Column::Aborted, true).await;

    let marked = mark(&db, &upload, Some(1)).await;

    assert_eq!(marked.changed, vec![7]);
    assert_eq!(shard_ids(conn).await, vec![(7, None), (8, Some(1))]);
}

async fn mark_uploaded_leaves_a_job_that_gained_an_entry_meanwhile(db: TestDb) {
    let conn = db.store.connection();
    fill_partly_finished(conn).await;
    let upload = to_upload(&db, 1000).await;
    fill(
        conn,
        &response(
            vec![],
            vec![job_with(8, vec![hqe(80, Some(2)), hqe(81, Some(3))])],
            vec![],
        ),
    )
    .await;

    let marked = mark(&db, &upload, Some(1)).await;

    assert_eq!(marked.jobs, vec![7]);
    assert_eq!(marked.changed, vec![8]);
}

/// Job 7 (entry 70 finished, 71 running) and job 8 uploaded and marked;
/// the entries followed afterwards.
async fn mark_partly_finished(db: &TestDb) -> Running {
    fill_partly_finished(db.store.connection()).await;
    let upload = to_upload(db, 1000).await;
    let marked = mark(db, &upload, Some(1)).await;
    assert_eq!(marked.jobs, vec![7, 8]);
    let mut running = Running::default();
    running.follow(&upload, &marked.jobs);
    assert_eq!(running.jobs(), vec![7], "only 7 had a running entry");
    running
}

async fn a_job_marked_with_a_running_entry_is_released_when_the_scheduler_misses_its_end(
    db: TestDb,
) {
    let conn = db.store.connection();
    let running = mark_partly_finished(&db).await;
    // The scheduler ends 71 but, deciding on a job row read before the
    // mark, does not release job 7.
    complete(conn, &[71]).await;

    let missed = release_missed(conn, running).await.unwrap();

    assert_eq!(missed.released, vec![7]);
    assert_eq!(missed.running, Running::default());
    assert_eq!(shard_ids(conn).await, vec![(7, None), (8, Some(1))]);
    let next = to_upload(&db, 1000).await;
    assert_eq!(ids_of(&next.jobs), vec![7]);
}

async fn a_job_the_scheduler_released_itself_is_no_longer_followed(db: TestDb) {
    let conn = db.store.connection();
    let running = mark_partly_finished(&db).await;
    complete(conn, &[71]).await;
    unassign(conn, &[7]).await;

    let missed = release_missed(conn, running).await.unwrap();

    assert_eq!(missed.released, Vec::<i32>::new());
    assert_eq!(missed.running, Running::default());
    assert_eq!(shard_ids(conn).await, vec![(7, None), (8, Some(1))]);
}

async fn a_followed_entry_still_running_keeps_its_job_marked(db: TestDb) {
    let conn = db.store.connection();
    let running = mark_partly_finished(&db).await;
    // Half-written: status written, `complete` not yet.
    set_column(conn, 71, afe_host_queue_entries::Column::Status, "Failed").await;

    let missed = release_missed(conn, running.clone()).await.unwrap();

    assert_eq!(missed.released, Vec::<i32>::new());
    assert_eq!(missed.running, running);
    assert_eq!(shard_ids(conn).await, vec![(7, Some(1)), (8, Some(1))]);
}

async fn a_restarted_client_follows_the_running_entries_of_partly_finished_assigned_jobs(
    db: TestDb,
) {
    let conn = db.store.connection();
    let followed = mark_partly_finished(&db).await;
    // Job 9: assigned, nothing finished; not followed.
    fill(conn, &response(vec![], vec![job(9)], vec![])).await;

    let read = running_in_marked_jobs(conn).await.unwrap();

    assert_eq!(read, followed);
}

/// Statements run by marking an upload of `jobs` finished jobs.
async fn mark_statements(db: &TestDb, jobs: i32) -> u64 {
    let conn = db.store.connection();
    let first = (jobs * 10) + 1;
    let ids: Vec<i32> = (first..first + jobs).collect();
    fill_waiting(conn, &ids).await;
    let upload = to_upload(db, 1000).await;
    assert_eq!(upload.jobs.len(), ids.len());
    let before = db.store.statements();
    let marked = mark(db, &upload, Some(1)).await;
    assert_eq!(marked.jobs, ids);
    db.store.statements() - before
}

async fn mark_uploaded_statements_do_not_grow_with_jobs(db: TestDb) {
    let with_10 = mark_statements(&db, 10).await;
    let with_300 = mark_statements(&db, 300).await;

    // The entries, read and locked; the conditional update.
    assert_eq!((with_10, with_300), (2, 2));
}

async fn shard_id_by_hostname_finds_the_row_by_hostname(db: TestDb) {
    let conn = db.store.connection();
    insert_shard(conn, 1, "shard1").await;
    insert_shard(conn, 2, "shard2").await;

    assert_eq!(shard_id_by_hostname(conn, "shard2").await.unwrap(), Some(2));
}

async fn shard_id_by_hostname_is_none_for_an_unknown_hostname(db: TestDb) {
    let conn = db.store.connection();
    insert_shard(conn, 1, "shard1").await;

    assert_eq!(shard_id_by_hostname(conn, "shard2").await.unwrap(), None);
}

async fn shard_id_by_hostname_takes_the_lowest_id_of_rows_sharing_a_hostname(db: TestDb) {
    let conn = db.store.connection();
    insert_shard(conn, 5, "shard1").await;
    insert_shard(conn, 3, "shard1").await;
    insert_shard(conn, 4, "shard1").await;

    assert_eq!(shard_id_by_hostname(conn, "shard1").await.unwrap(), Some(3));
}

// ---------------------------------------------------------------------------
// Statements per packet

/// Statements run by the packet's queries (§7 step 1).
async fn packet_statements(db: &TestDb) -> u64 {
    let conn = db.store.connection();
    let before = db.store.statements();
    known_job_ids(conn).await.unwrap();
    known_hosts(conn).await.unwrap();
    to_upload(db, 1000).await;
    db.store.statements() - before
}

async fn packet_statements_do_not_grow_with_known_jobs(db: TestDb) {
    let conn = db.store.connection();
    fill(
        conn,
        &response(vec![host(1)], (1..=10).map(job).collect(), vec![]),
    )
    .await;
    let with_10 = packet_statements(&db).await;
    fill(
        conn,
        &response(vec![], (11..=300).map(job).collect(), vec![]),
    )
    .await;
    assert_eq!(known_job_ids(conn).await.unwrap().len(), 300);

    let with_300 = packet_statements(&db).await;

    // known jobs, known hosts, jobs to upload (none, so no entries query).
    assert_eq!((with_10, with_300), (3, 3));
}

async fn packet_statements_do_not_grow_with_jobs_to_upload(db: TestDb) {
    let conn = db.store.connection();
    fill_waiting(conn, &(1..=10).collect::<Vec<_>>()).await;
    let with_10 = packet_statements(&db).await;
    fill_waiting(conn, &(11..=300).collect::<Vec<_>>()).await;
    assert_eq!(to_upload(&db, 1000).await.jobs.len(), 300);

    let with_300 = packet_statements(&db).await;

    // known jobs, known hosts, jobs to upload, their entries.
    assert_eq!((with_10, with_300), (4, 4));
}
