//! Removing incorrect hosts and re-syncing resent jobs (§7 steps 5 and 6), on every backend.

use crate::common::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use shard_model::Host;
use shard_store::schema::entity::prelude::*;
use shard_store::schema::entity::{afe_host_queue_entries, afe_hosts};
use shard_store::testing::TestDb;
use shard_store::{known_hosts, remove_incorrect_hosts, resync_completed_jobs};

// The tests under `everywhere:` also run on the schemas real deployments
// have (§9); those under `ours:` only on ours, because such a schema refuses
// their data by design: a NULL its NOT NULL columns forbid, a second shard
// of one hostname, two entries of one job on one host (UNIQUE(job_id,
// host_id)), strings latin1 cannot hold, our own column widths, suites whose
// parent job is not on the shard (a foreign key); or they count statements
// exactly (such a schema needs one more read per apply).
shard_store::every_schema_tests!(
    ours: [
        remove_incorrect_hosts_aborts_entries_whose_complete_is_null,
    ],
    everywhere: [
        remove_incorrect_hosts_returns_only_the_ids_that_exist,
        remove_incorrect_hosts_marks_the_hosts_invalid,
        remove_incorrect_hosts_drops_the_hosts_from_known_hosts,
        remove_incorrect_hosts_removes_their_label_links,
        remove_incorrect_hosts_removes_their_acl_group_links,
        remove_incorrect_hosts_removes_their_attributes,
        remove_incorrect_hosts_aborts_their_incomplete_entries,
        remove_incorrect_hosts_leaves_their_complete_entries_unaborted,
        remove_incorrect_hosts_leaves_other_hosts_untouched,
        remove_incorrect_hosts_keeps_the_host_rows,
        remove_incorrect_hosts_of_an_empty_list_changes_nothing,
        resync_completed_jobs_unassigns_a_job_with_a_complete_entry,
        resync_completed_jobs_puts_the_job_back_in_jobs_to_upload,
        resync_completed_jobs_keeps_the_shard_of_a_job_without_a_complete_entry,
        resync_completed_jobs_leaves_jobs_not_listed_untouched,
        resync_completed_jobs_returns_the_resynced_ids_ascending,
        resync_completed_jobs_of_an_empty_list_changes_nothing,
    ],
);

// ---------------------------------------------------------------------------
// Setting up the states the master and the scheduler create.

/// A host with two labels, two ACL groups and two attributes.
fn linked_host(id: i32) -> Host {
    Host {
        labels: Some(vec![label(1), label(2)]),
        aclgroup_set: Some(vec![group(10, vec![user(5, "alice")]), group(11, vec![])]),
        hostattribute_set: Some(vec![
            attribute("serial", &format!("s{id}")),
            attribute("pool", "bvt"),
        ]),
        ..host(id)
    }
}

/// Hosts 2, 3 and 4, each with labels 1 and 2, groups 10 and 11 and two
/// attributes. Job 7 has entries 70 (host 2, running) and 72 (host 3,
/// running); job 8 has entries 80 (host 4) and 71 (host 2, complete). No
/// job has two entries on one host, which Autotest's own schema forbids.
async fn fill_lab(conn: &DatabaseConnection) {
    let job7 = job_with(7, vec![hqe(70, Some(2)), hqe(72, Some(3))]);
    let job8 = job_with(8, vec![hqe(80, Some(4)), hqe(71, Some(2))]);
    let hosts = vec![linked_host(2), linked_host(3), linked_host(4)];
    fill(conn, &response(hosts, vec![job7, job8], vec![])).await;
    complete(conn, &[71]).await;
    HostQueueEntries::update_many()
        .col_expr(afe_host_queue_entries::Column::Active, Expr::value(true))
        .col_expr(
            afe_host_queue_entries::Column::Status,
            Expr::value("Running"),
        )
        .filter(afe_host_queue_entries::Column::Id.is_in([70, 72, 80]))
        .exec(conn)
        .await
        .unwrap();
    Hosts::update_many()
        .col_expr(afe_hosts::Column::Status, Expr::value("Running"))
        .exec(conn)
        .await
        .unwrap();
}

/// [`fill_lab`], then hosts 2 and 99 (which the shard never had) removed
/// as incorrect.
async fn remove_host_2_from_the_lab(conn: &DatabaseConnection) {
    fill_lab(conn).await;
    remove_incorrect_hosts(conn, &[2, 99]).await.unwrap();
}

/// Every row a host removal may touch, to compare before and after.
async fn lab_state(conn: &DatabaseConnection) -> LabState {
    LabState {
        hosts: hosts(conn).await,
        hqes: hqes(conn).await,
        host_labels: host_labels(conn).await,
        group_hosts: group_hosts(conn).await,
        attributes: attributes(conn).await,
        labels: labels(conn).await,
        users: users(conn).await,
        group_users: group_users(conn).await,
    }
}

#[derive(Debug, PartialEq)]
struct LabState {
    hosts: Vec<afe_hosts::Model>,
    hqes: Vec<afe_host_queue_entries::Model>,
    host_labels: Vec<(i32, i32)>,
    group_hosts: Vec<(i32, i32)>,
    attributes: Vec<(i32, String, String)>,
    labels: Vec<shard_store::schema::entity::afe_labels::Model>,
    users: Vec<(i32, Option<String>)>,
    group_users: Vec<(i32, i32)>,
}

// ---------------------------------------------------------------------------
// remove_incorrect_hosts

async fn remove_incorrect_hosts_returns_only_the_ids_that_exist(db: TestDb) {
    let conn = db.store.connection();
    fill_lab(conn).await;

    let removed = remove_incorrect_hosts(conn, &[4, 99, 2]).await.unwrap();

    assert_eq!(removed, vec![2, 4]);
}

async fn remove_incorrect_hosts_marks_the_hosts_invalid(db: TestDb) {
    let conn = db.store.connection();
    remove_host_2_from_the_lab(conn).await;

    let invalid: Vec<(i32, Option<bool>)> = hosts(conn)
        .await
        .into_iter()
        .map(|h| (h.id, h.invalid))
        .collect();
    assert_eq!(
        invalid,
        vec![(2, Some(true)), (3, Some(false)), (4, Some(false))]
    );
}

async fn remove_incorrect_hosts_drops_the_hosts_from_known_hosts(db: TestDb) {
    let conn = db.store.connection();
    remove_host_2_from_the_lab(conn).await;

    assert_eq!(known_hosts(conn).await.unwrap().ids, vec![3, 4]);
}

async fn remove_incorrect_hosts_removes_their_label_links(db: TestDb) {
    let conn = db.store.connection();
    remove_host_2_from_the_lab(conn).await;

    assert_eq!(
        host_labels(conn).await,
        vec![(3, 1), (3, 2), (4, 1), (4, 2)]
    );
}

async fn remove_incorrect_hosts_removes_their_acl_group_links(db: TestDb) {
    let conn = db.store.connection();
    remove_host_2_from_the_lab(conn).await;

    assert_eq!(
        group_hosts(conn).await,
        vec![(10, 3), (10, 4), (11, 3), (11, 4)]
    );
}

async fn remove_incorrect_hosts_removes_their_attributes(db: TestDb) {
    let conn = db.store.connection();
    remove_host_2_from_the_lab(conn).await;

    assert_eq!(
        attributes(conn).await,
        owned(&[
            (3, "serial", "s3"),
            (3, "pool", "bvt"),
            (4, "serial", "s4"),
            (4, "pool", "bvt"),
        ])
    );
}

async fn remove_incorrect_hosts_aborts_their_incomplete_entries(db: TestDb) {
    let conn = db.store.connection();
    remove_host_2_from_the_lab(conn).await;

    let entry = hqe_row(conn, 70).await;
    assert_eq!((entry.complete, entry.aborted), (Some(false), true));
}

async fn remove_incorrect_hosts_leaves_their_complete_entries_unaborted(db: TestDb) {
    let conn = db.store.connection();
    remove_host_2_from_the_lab(conn).await;

    let entry = hqe_row(conn, 71).await;
    assert_eq!((entry.complete, entry.aborted), (Some(true), false));
}

async fn remove_incorrect_hosts_aborts_entries_whose_complete_is_null(db: TestDb) {
    let conn = db.store.connection();
    fill_lab(conn).await;
    set_column(
        conn,
        70,
        afe_host_queue_entries::Column::Complete,
        Option::<bool>::None,
    )
    .await;

    remove_incorrect_hosts(conn, &[2]).await.unwrap();

    let entry = hqe_row(conn, 70).await;
    assert_eq!((entry.complete, entry.aborted), (None, true));
}

async fn remove_incorrect_hosts_leaves_other_hosts_untouched(db: TestDb) {
    let conn = db.store.connection();
    fill_lab(conn).await;
    let before = lab_state(conn).await;

    remove_incorrect_hosts(conn, &[2, 99]).await.unwrap();

    let after = lab_state(conn).await;
    let host_rows = |s: &LabState| -> Vec<afe_hosts::Model> {
        s.hosts.iter().filter(|h| h.id != 2).cloned().collect()
    };
    let entry_rows = |s: &LabState| -> Vec<afe_host_queue_entries::Model> {
        s.hqes
            .iter()
            .filter(|q| q.host_id != Some(2))
            .cloned()
            .collect()
    };
    assert_eq!(host_rows(&after), host_rows(&before));
    assert_eq!(entry_rows(&after), entry_rows(&before));
    assert_eq!(
        entry_rows(&after)
            .iter()
            .map(|q| (q.id, q.aborted))
            .collect::<Vec<_>>(),
        vec![(72, false), (80, false)]
    );
    assert_eq!((after.labels, after.users), (before.labels, before.users));
    assert_eq!(after.group_users, before.group_users);
}

async fn remove_incorrect_hosts_keeps_the_host_rows(db: TestDb) {
    let conn = db.store.connection();
    remove_host_2_from_the_lab(conn).await;

    let rows: Vec<(i32, Option<String>, Option<String>)> = hosts(conn)
        .await
        .into_iter()
        .map(|h| (h.id, h.hostname, h.status))
        .collect();
    assert_eq!(
        rows,
        vec![
            (2, Some("host2".to_owned()), Some("Running".to_owned())),
            (3, Some("host3".to_owned()), Some("Running".to_owned())),
            (4, Some("host4".to_owned()), Some("Running".to_owned())),
        ]
    );
}

async fn remove_incorrect_hosts_of_an_empty_list_changes_nothing(db: TestDb) {
    let conn = db.store.connection();
    fill_lab(conn).await;
    let before = lab_state(conn).await;
    let statements = db.store.statements();

    let removed = remove_incorrect_hosts(conn, &[]).await.unwrap();

    assert_eq!(removed, Vec::<i32>::new());
    assert_eq!(db.store.statements() - statements, 0);
    assert_eq!(lab_state(conn).await, before);
}

// ---------------------------------------------------------------------------
// resync_completed_jobs

/// Jobs 4, 5, 6, 7 and 9, all assigned to shard 1. Job 4 has one complete
/// entry; job 5 one running entry; job 6 two complete entries; job 7 one
/// complete entry; job 9 one complete and one running entry.
async fn fill_jobs(conn: &DatabaseConnection) {
    let jobs = vec![
        job_with(4, vec![hqe(40, None)]),
        job_with(5, vec![hqe(50, None)]),
        job_with(6, vec![hqe(60, None), hqe(61, None)]),
        job_with(7, vec![hqe(70, None)]),
        job_with(9, vec![hqe(90, None), hqe(91, None)]),
    ];
    fill(conn, &response(vec![], jobs, vec![])).await;
    complete(conn, &[40, 60, 61, 70, 90]).await;
}

async fn resync_completed_jobs_unassigns_a_job_with_a_complete_entry(db: TestDb) {
    let conn = db.store.connection();
    fill_jobs(conn).await;

    resync_completed_jobs(conn, &[7]).await.unwrap();

    assert_eq!(job_row(conn, 7).await.shard_id, None);
}

async fn resync_completed_jobs_puts_the_job_back_in_jobs_to_upload(db: TestDb) {
    let conn = db.store.connection();
    fill_jobs(conn).await;
    assert_eq!(to_upload(&db, 1000).await.jobs, vec![]);

    resync_completed_jobs(conn, &[7]).await.unwrap();

    let upload = to_upload(&db, 1000).await;
    let ids: Vec<i32> = upload.jobs.iter().map(|j| j.id).collect();
    assert_eq!(ids, vec![7]);
}

async fn resync_completed_jobs_keeps_the_shard_of_a_job_without_a_complete_entry(db: TestDb) {
    let conn = db.store.connection();
    fill_jobs(conn).await;

    let resynced = resync_completed_jobs(conn, &[5]).await.unwrap();

    assert_eq!(resynced, Vec::<i32>::new());
    assert_eq!(job_row(conn, 5).await.shard_id, Some(1));
}

async fn resync_completed_jobs_leaves_jobs_not_listed_untouched(db: TestDb) {
    let conn = db.store.connection();
    fill_jobs(conn).await;

    resync_completed_jobs(conn, &[7]).await.unwrap();

    assert_eq!(
        shard_ids(conn).await,
        vec![
            (4, Some(1)),
            (5, Some(1)),
            (6, Some(1)),
            (7, None),
            (9, Some(1)),
        ]
    );
}

async fn resync_completed_jobs_returns_the_resynced_ids_ascending(db: TestDb) {
    let conn = db.store.connection();
    fill_jobs(conn).await;

    let resynced = resync_completed_jobs(conn, &[9, 5, 6, 99, 4])
        .await
        .unwrap();

    assert_eq!(resynced, vec![4, 6, 9]);
    assert_eq!(
        shard_ids(conn).await,
        vec![(4, None), (5, Some(1)), (6, None), (7, Some(1)), (9, None)]
    );
}

async fn resync_completed_jobs_of_an_empty_list_changes_nothing(db: TestDb) {
    let conn = db.store.connection();
    fill_jobs(conn).await;

    let resynced = resync_completed_jobs(conn, &[]).await.unwrap();

    assert_eq!(resynced, Vec::<i32>::new());
    assert_eq!(
        shard_ids(conn).await,
        vec![
            (4, Some(1)),
            (5, Some(1)),
            (6, Some(1)),
            (7, Some(1)),
            (9, Some(1)),
        ]
    );
}
