//! The apply rules of §6, each on every backend.

use crate::common::*;
use sea_orm::sea_query::Expr;
use sea_orm::{
    AccessMode, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, TransactionTrait,
};
use shard_model::testing::fixture;
use shard_model::{HeartbeatResponse, RecordKind, ToOne};
use shard_store::schema::entity::afe_hosts;
use shard_store::testing::TestDb;
use shard_store::{ApplyReport, StoreError, apply};

// The tests under `everywhere:` also run on the schemas real deployments
// have (§9); those under `ours:` only on ours, because such a schema refuses
// their data by design: a NULL its NOT NULL columns forbid, a second shard
// of one hostname, two entries of one job on one host (UNIQUE(job_id,
// host_id)), strings latin1 cannot hold, our own column widths, suites whose
// parent job is not on the shard (a foreign key); or they count statements
// exactly (such a schema needs one more read per apply).
shard_store::every_schema_tests!(
    ours: [
        basic_fixture_inserts_every_record_with_its_relations,
        mysql_quirks_fixture_applies_like_the_basic_one,
        suite_keyvals_are_upserted,
        value_too_wide_for_its_column_rejects_its_record,
        record_refused_by_the_database_is_isolated,
        steady_state_reapply_writes_nothing,
        hostile_strings_round_trip,
    ],
    everywhere: [
        reapply_leaves_non_whitelisted_fields_alone,
        reapply_overwrites_whitelisted_fields,
        relations_are_applied_to_existing_records,
        shard_and_meta_host_links_follow_the_record,
        user_with_known_login_and_new_id_replaces_the_old_user,
        user_with_known_id_and_new_login_replaces_the_old_user,
        attributes_are_replaced_as_a_set,
        keyvals_are_replaced_as_a_set,
        job_on_an_unknown_host_is_rejected_whole_and_siblings_land,
        entry_on_a_host_of_the_same_response_is_accepted,
        label_name_taken_by_another_id_rejects_the_record,
        duplicate_records_in_one_response_apply_in_order,
        statements_do_not_grow_with_records,
        ids_that_are_not_positive_reject_their_record,
        garbage_in_a_response_never_reaches_the_database,
        a_database_failure_fails_the_apply_instead_of_rejecting_records,
        a_bad_field_left_unwritten_refuses_only_a_new_record,
        names_compare_as_the_collation_says,
        a_value_the_database_refuses_refuses_its_record_even_if_replaced,
    ],
);

async fn basic_fixture_inserts_every_record_with_its_relations(db: TestDb) {
    let conn = db.store.connection();
    let report = apply_on(&db.store, &fixture_response("response-basic.json")).await;
    assert_eq!(clean(&report), (1, 1, 1));

    let host = host_row(conn, 2).await;
    assert_eq!(host.hostname.as_deref(), Some("chromeos4-row1-rack1-host1"));
    assert_eq!(
        (host.leased, host.dirty, host.shard_id),
        (false, true, Some(1))
    );
    assert_eq!(host_labels(conn).await, [(2, 1), (2, 7)]);
    assert_eq!(group_hosts(conn).await, [(1, 2)]);
    assert_eq!(group_users(conn).await, [(1, 3)]);
    assert_eq!(users(conn).await, [(3, Some("chromeos-test".to_owned()))]);
    assert_eq!(
        attributes(conn).await,
        owned(&[(2, "serial_number", "5CD1234XYZ")])
    );

    let job = job_row(conn, 1001).await;
    assert_eq!(
        (job.parent_job_id, job.shard_id, job.run_reset),
        (Some(1000), Some(1), true)
    );
    assert_eq!(job.created_on, Some(at("2014-09-23T15:56:10")));
    assert_eq!(job_labels(conn).await, [(1001, 1)]);
    let entry = hqe_row(conn, 5001).await;
    assert_eq!(
        (entry.job_id, entry.meta_host, entry.host_id),
        (Some(1001), Some(1), None)
    );
    assert_eq!(
        sorted_keyvals(conn).await,
        owned(&[
            (1000, "build", "lumpy-release/R80-12739.0.0"),
            (1001, "suite", "bvt-inline")
        ])
    );
}

async fn mysql_quirks_fixture_applies_like_the_basic_one(db: TestDb) {
    let conn = db.store.connection();
    let report = apply_on(&db.store, &fixture_response("response-mysql-quirks.json")).await;
    assert_eq!(clean(&report), (1, 1, 1));
    let host = host_row(conn, 2).await;
    assert_eq!(host.locked, Some(true));
    assert_eq!(host.lock_time, Some(at("2014-09-22 08:00:01")));
    assert_eq!(host.lock_reason.as_deref(), Some("flaky ethernet, b/12345"));
    let job = job_row(conn, 1001).await;
    let created = job.created_on.unwrap();
    // MySQL's datetime has no fraction: it is truncated, never rounded.
    let expected = match conn.get_database_backend() {
        sea_orm::DbBackend::MySql => at("2014-09-23 15:56:10"),
        _ => at("2014-09-23 15:56:10.25"),
    };
    assert_eq!(created, expected);
    assert_eq!(hqe_row(conn, 5001).await.meta_host, Some(1));
}

async fn reapply_leaves_non_whitelisted_fields_alone(db: TestDb) {
    let conn = db.store.connection();
    apply_on(&db.store, &response(vec![host(2)], vec![job(7)], vec![])).await;
    let (mut h, mut j) = (host(2), job(7));
    h.hostname = Some("renamed".into());
    h.status = Some("Repairing".into());
    h.locked = Some(true);
    j.name = Some("renamed".into());
    j.priority = Some(99);
    let q = &mut j.hostqueueentry_set.as_mut().unwrap()[0];
    q.status = Some("Completed".into());
    q.complete = Some(true);
    let l = &mut h.labels.as_mut().unwrap()[0];
    l.name = Some("board:renamed".into());
    let report = apply_on(&db.store, &response(vec![h], vec![j], vec![])).await;
    assert_eq!(clean(&report), (1, 1, 0));

    let host = host_row(conn, 2).await;
    assert_eq!(
        (
            host.hostname.as_deref(),
            host.status.as_deref(),
            host.locked
        ),
        (Some("host2"), Some("Ready"), Some(false))
    );
    let job = job_row(conn, 7).await;
    assert_eq!(
        (job.name.as_deref(), job.priority),
        (Some("job7"), Some(40))
    );
    let entry = hqe_row(conn, 70).await;
    assert_eq!(
        (entry.status.as_deref(), entry.complete),
        (Some("Queued"), Some(false))
    );
    assert_eq!(labels(conn).await[0].name.as_deref(), Some("board:b1"));
}

async fn reapply_overwrites_whitelisted_fields(db: TestDb) {
    let conn = db.store.connection();
    apply_on(&db.store, &response(vec![host(2)], vec![job(7)], vec![])).await;
    let (mut h, mut j) = (host(2), job(7));
    h.invalid = Some(Some(true));
    h.hostattribute_set = Some(vec![attribute("pool", "bvt")]);
    j.hostqueueentry_set.as_mut().unwrap()[0].aborted = Some(true);
    j.jobkeyval_set = Some(vec![keyval(7, "suite", "cq")]);
    apply_on(&db.store, &response(vec![h], vec![j], vec![])).await;

    assert_eq!(host_row(conn, 2).await.invalid, Some(true));
    assert!(hqe_row(conn, 70).await.aborted);
    assert_eq!(attributes(conn).await, owned(&[(2, "pool", "bvt")]));
    assert_eq!(keyvals(conn).await, owned(&[(7, "suite", "cq")]));
}

async fn relations_are_applied_to_existing_records(db: TestDb) {
    let conn = db.store.connection();
    apply_on(&db.store, &response(vec![host(2)], vec![job(7)], vec![])).await;
    let (mut h, mut j) = (host(2), job(7));
    h.labels.as_mut().unwrap().push(label(5));
    h.aclgroup_set = Some(vec![group(4, vec![user(3, "alice")])]);
    j.dependency_labels.as_mut().unwrap().push(label(6));
    j.hostqueueentry_set
        .as_mut()
        .unwrap()
        .push(hqe(71, Some(2)));
    // Links are added, never removed: label 1 stays although it is not resent.
    h.labels.as_mut().unwrap().remove(0);
    apply_on(&db.store, &response(vec![h], vec![j], vec![])).await;

    assert_eq!(host_labels(conn).await, [(2, 1), (2, 5)]);
    assert_eq!(group_hosts(conn).await, [(4, 2)]);
    assert_eq!(group_users(conn).await, [(4, 3)]);
    assert_eq!(job_labels(conn).await, [(7, 1), (7, 6)]);
    assert_eq!(hqe_row(conn, 71).await.host_id, Some(2));
}

async fn shard_and_meta_host_links_follow_the_record(db: TestDb) {
    let conn = db.store.connection();
    apply_on(&db.store, &response(vec![host(2)], vec![job(7)], vec![])).await;
    let (mut h, mut j) = (host(2), job(7));
    h.shard = ToOne::Set(shard(2));
    j.shard = ToOne::Null;
    j.hostqueueentry_set.as_mut().unwrap()[0].meta_host = ToOne::Set(label(8));
    apply_on(
        &db.store,
        &response(vec![h.clone()], vec![j.clone()], vec![]),
    )
    .await;
    assert_eq!(host_row(conn, 2).await.shard_id, Some(2));
    assert_eq!(job_row(conn, 7).await.shard_id, None);
    assert_eq!(hqe_row(conn, 70).await.meta_host, Some(8));

    // Absent keys leave the links alone; null clears them.
    h.shard = ToOne::Absent;
    j.shard = ToOne::Set(shard(1));
    j.hostqueueentry_set.as_mut().unwrap()[0].meta_host = ToOne::Null;
    apply_on(&db.store, &response(vec![h], vec![j], vec![])).await;
    assert_eq!(host_row(conn, 2).await.shard_id, Some(2));
    assert_eq!(job_row(conn, 7).await.shard_id, Some(1));
    assert_eq!(hqe_row(conn, 70).await.meta_host, None);
}

async fn user_with_known_login_and_new_id_replaces_the_old_user(db: TestDb) {
    let conn = db.store.connection();
    let mut h = host(2);
    h.aclgroup_set = Some(vec![group(
        1,
        vec![user(3, "chromeos-test"), user(4, "bob")],
    )]);
    apply_on(&db.store, &response(vec![h], vec![], vec![])).await;
    lock_host_by(conn, 2, 3).await;

    let mut h = host(2);
    h.aclgroup_set = Some(vec![group(9, vec![user(30, "chromeos-test")])]);
    apply_on(&db.store, &response(vec![h], vec![], vec![])).await;

    assert_eq!(
        users(conn).await,
        [(4, Some("bob".into())), (30, Some("chromeos-test".into()))]
    );
    assert_eq!(
        group_users(conn).await,
        [(1, 4), (9, 30)],
        "user 3's memberships went with it"
    );
    assert_eq!(
        host_row(conn, 2).await.locked_by_id,
        None,
        "the lock by user 3 is cleared"
    );
}

async fn user_with_known_id_and_new_login_replaces_the_old_user(db: TestDb) {
    let conn = db.store.connection();
    let mut h = host(2);
    h.aclgroup_set = Some(vec![group(1, vec![user(3, "debug-user")])]);
    apply_on(&db.store, &response(vec![h], vec![], vec![])).await;
    lock_host_by(conn, 2, 3).await;

    let mut h = host(2);
    h.aclgroup_set = Some(vec![group(9, vec![user(3, "chromeos-test")])]);
    apply_on(&db.store, &response(vec![h], vec![], vec![])).await;

    assert_eq!(users(conn).await, [(3, Some("chromeos-test".into()))]);
    assert_eq!(
        group_users(conn).await,
        [(9, 3)],
        "the old user's membership of group 1 is gone"
    );
    assert_eq!(host_row(conn, 2).await.locked_by_id, None);
}

async fn attributes_are_replaced_as_a_set(db: TestDb) {
    let conn = db.store.connection();
    let mut h = host(2);
    h.hostattribute_set = Some(vec![attribute("a", "1"), attribute("b", "2")]);
    let mut other = host(3);
    other.hostattribute_set = Some(vec![attribute("a", "x")]);
    apply_on(&db.store, &response(vec![h, other.clone()], vec![], vec![])).await;

    let mut h = host(2);
    h.hostattribute_set = Some(vec![
        attribute("b", "20"),
        attribute("c", "3"),
        attribute("c", "30"),
    ]);
    // A host without the key keeps its attributes.
    other.hostattribute_set = None;
    apply_on(&db.store, &response(vec![h, other], vec![], vec![])).await;

    let mut got = attributes(conn).await;
    got.sort();
    assert_eq!(got, owned(&[(2, "b", "20"), (2, "c", "30"), (3, "a", "x")]));
}

async fn keyvals_are_replaced_as_a_set(db: TestDb) {
    let conn = db.store.connection();
    let mut j = job(7);
    j.jobkeyval_set = Some(vec![keyval(7, "a", "1"), keyval(7, "b", "2")]);
    apply_on(&db.store, &response(vec![], vec![j], vec![])).await;

    let mut j = job(7);
    // Nested keyvals belong to their job, whatever job_id they carry.
    j.jobkeyval_set = Some(vec![keyval(999, "b", "20")]);
    apply_on(&db.store, &response(vec![], vec![j], vec![])).await;
    assert_eq!(keyvals(conn).await, owned(&[(7, "b", "20")]));
}

async fn suite_keyvals_are_upserted(db: TestDb) {
    let conn = db.store.connection();
    let first = vec![keyval(1000, "build", "R80"), keyval(1000, "suite", "bvt")];
    apply_on(&db.store, &response(vec![], vec![], first)).await;
    let second = vec![keyval(1000, "build", "R81"), keyval(1001, "build", "R81")];
    let report = apply_on(&db.store, &response(vec![], vec![], second)).await;
    assert_eq!(clean(&report), (0, 0, 2));

    assert_eq!(
        sorted_keyvals(conn).await,
        owned(&[
            (1000, "build", "R81"),
            (1000, "suite", "bvt"),
            (1001, "build", "R81")
        ]),
        "an existing key gets the new value; nothing is deleted"
    );
}

async fn job_on_an_unknown_host_is_rejected_whole_and_siblings_land(db: TestDb) {
    let conn = db.store.connection();
    let mut bad = job(8);
    bad.dependency_labels = Some(vec![label(42)]);
    bad.hostqueueentry_set = Some(vec![hqe(80, None), hqe(81, Some(77))]);
    let report = apply_on(
        &db.store,
        &response(vec![], vec![job(7), bad, job(9)], vec![]),
    )
    .await;

    assert_eq!((report.jobs, report.rejected.len()), (2, 1));
    let r = &report.rejected[0];
    assert_eq!((r.kind, r.id), (RecordKind::Job, Some(8)));
    assert!(r.reason.contains("host 77"), "{}", r.reason);
    assert_eq!(job_ids(conn).await, [7, 9]);
    let entries: Vec<i32> = hqes(conn).await.iter().map(|q| q.id).collect();
    assert_eq!(entries, [70, 90], "no entry of job 8 is left behind");
    assert!(
        labels(conn).await.iter().all(|l| l.id != 42),
        "nor its label"
    );
}

async fn entry_on_a_host_of_the_same_response_is_accepted(db: TestDb) {
    let conn = db.store.connection();
    let mut j = job(7);
    j.hostqueueentry_set = Some(vec![hqe(70, Some(2))]);
    let report = apply_on(&db.store, &response(vec![host(2)], vec![j], vec![])).await;
    assert_eq!(clean(&report), (1, 1, 0));
    assert_eq!(hqe_row(conn, 70).await.host_id, Some(2));
}

async fn value_too_wide_for_its_column_rejects_its_record(db: TestDb) {
    let conn = db.store.connection();
    let mut wide_host = host(3);
    wide_host.hostname = Some("h".repeat(256));
    let mut wide_attr = host(4);
    wide_attr.hostattribute_set = Some(vec![attribute("a", &"v".repeat(301))]);
    let mut wide_job = job(8);
    wide_job.control_file = Some("x".repeat(65_536));
    let wide_keyval = keyval(1000, &"k".repeat(91), "v");
    let report = apply_on(
        &db.store,
        &response(
            vec![host(2), wide_host, wide_attr],
            vec![job(7), wide_job],
            vec![wide_keyval, keyval(1000, "ok", "v")],
        ),
    )
    .await;

    let rejected = rejected_ids(&report);
    assert_eq!(
        rejected,
        [
            (RecordKind::Host, Some(3)),
            (RecordKind::Host, Some(4)),
            (RecordKind::Job, Some(8)),
            (RecordKind::SuiteKeyval, Some(500)),
        ]
    );
    let reason = &report.rejected[0].reason;
    assert!(reason.contains("afe_hosts.hostname"), "{reason}");
    assert_eq!(host_ids(conn).await, [2]);
    assert_eq!(job_ids(conn).await, [7]);
    assert_eq!(
        keyvals(conn).await,
        owned(&[(7, "suite", "bvt"), (1000, "ok", "v")])
    );
}

async fn label_name_taken_by_another_id_rejects_the_record(db: TestDb) {
    let conn = db.store.connection();
    apply_on(&db.store, &response(vec![host(2)], vec![], vec![])).await;
    let mut clash = host(3);
    let mut l = label(9);
    l.name = Some("board:b1".into());
    clash.labels = Some(vec![l]);
    let report = apply_on(&db.store, &response(vec![clash, host(4)], vec![], vec![])).await;
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].id, Some(3));
    let reason = &report.rejected[0].reason;
    assert!(reason.contains("label 1"), "{reason}");
    assert_eq!(host_ids(conn).await, [2, 4]);
}

async fn record_refused_by_the_database_is_isolated(db: TestDb) {
    let conn = db.store.connection();
    // A rule the planner cannot know: the database refuses jobs named
    // "poison", as a collation or an adopted schema's constraint might.
    let ddl = match conn.get_database_backend() {
        sea_orm::DbBackend::Sqlite => {
            "CREATE TRIGGER poison BEFORE INSERT ON afe_jobs WHEN NEW.name = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'poisoned job'); END"
        }
        _ => "ALTER TABLE afe_jobs ADD CONSTRAINT no_poison CHECK (name <> 'poison')",
    };
    conn.execute_unprepared(ddl).await.unwrap();
    let mut jobs: Vec<_> = (1..=9).map(job).collect();
    jobs[5].name = Some("poison".into());
    let report = apply_on(
        &db.store,
        &response(vec![host(2)], jobs, vec![keyval(1000, "k", "v")]),
    )
    .await;

    assert_eq!((report.hosts, report.jobs, report.suite_keyvals), (1, 8, 1));
    let r = &report.rejected[0];
    assert_eq!(
        (report.rejected.len(), r.kind, r.id),
        (1, RecordKind::Job, Some(6))
    );
    assert_eq!(job_ids(conn).await, [1, 2, 3, 4, 5, 7, 8, 9]);
    assert!(hqes(conn).await.iter().all(|q| q.job_id != Some(6)));
    assert!(keyvals(conn).await.iter().all(|k| k.0 != 6));
}

async fn duplicate_records_in_one_response_apply_in_order(db: TestDb) {
    let conn = db.store.connection();
    let mut second = host(2);
    second.hostname = Some("ignored".into());
    second.invalid = Some(Some(true));
    second.labels.as_mut().unwrap().push(label(5));
    let report = apply_on(&db.store, &response(vec![host(2), second], vec![], vec![])).await;
    assert_eq!(clean(&report), (2, 0, 0));
    let h = host_row(conn, 2).await;
    assert_eq!(
        (h.hostname.as_deref(), h.invalid),
        (Some("host2"), Some(true))
    );
    assert_eq!(host_labels(conn).await, [(2, 1), (2, 5)]);
}

async fn statements_do_not_grow_with_records(db: TestDb) {
    // Two lab slices of the same shape; the second 100 times bigger.
    let small = lab(0, 10);
    let large = lab(100_000, 1_000);
    let before = db.store.statements();
    apply_on(&db.store, &small).await;
    let small_count = db.store.statements() - before;
    let before = db.store.statements();
    apply_on(&db.store, &large).await;
    let large_count = db.store.statements() - before;
    assert_eq!(
        small_count, large_count,
        "10 jobs and 1,000 jobs fit the same number of chunks"
    );
    assert!(small_count < 40, "{small_count} statements for one apply");
}

async fn steady_state_reapply_writes_nothing(db: TestDb) {
    let conn = db.store.connection();
    let slice = lab(0, 50);
    apply_on(&db.store, &slice).await;
    let rows_before = (
        hosts(conn).await,
        hqes(conn).await,
        attributes(conn).await,
        keyvals(conn).await,
    );
    let before = db.store.statements();
    let report = apply_on(&db.store, &slice).await;
    let reads = db.store.statements() - before;
    assert!(report.rejected.is_empty());
    let rows_after = (
        hosts(conn).await,
        hqes(conn).await,
        attributes(conn).await,
        keyvals(conn).await,
    );
    assert_eq!(rows_before, rows_after, "same rows, same ids");
    // Only the snapshot's reads: shards, labels (by id, by name), users (by
    // id, by login), groups, memberships, hosts, host labels, host groups,
    // attributes, jobs, job labels, entries, keyvals; on MySQL, one more
    // asks how its collation compares the names.
    let collation = u64::from(conn.get_database_backend() == DbBackend::MySql);
    assert_eq!(
        reads,
        15 + collation,
        "statements to re-apply an unchanged response"
    );
}

async fn hostile_strings_round_trip(db: TestDb) {
    let conn = db.store.connection();
    let hostile = [
        "O'Brien \"quoted\"",
        "x'); DROP TABLE afe_jobs; --",
        "back\\slash\\",
        "ünïcødé ✓ 测试 🚀",
        "%_ wildcards",
    ];
    let jobs: Vec<_> = hostile
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut j = job(i as i32 + 1);
            j.name = Some((*s).to_owned());
            j.control_file = Some(s.repeat(100));
            j.jobkeyval_set = Some(vec![keyval(0, s, s)]);
            j
        })
        .collect();
    let report = apply_on(&db.store, &response(vec![], jobs, vec![])).await;
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    for (i, s) in hostile.iter().enumerate() {
        let row = job_row(conn, i as i32 + 1).await;
        assert_eq!(row.name.as_deref(), Some(*s));
        assert_eq!(row.control_file, Some(s.repeat(100)));
    }
    let got: Vec<String> = keyvals(conn).await.into_iter().map(|k| k.1).collect();
    assert_eq!(got, hostile);
}

/// A slice of a lab: `n` hosts (4 labels, 2 groups of 2 users, 3
/// attributes) and `n` jobs (2 entries, 2 labels, 3 keyvals). Every id,
/// shared records' included, starts at `base`, so two slices share nothing.
fn lab(base: i32, n: i32) -> HeartbeatResponse {
    let user = |i: i32| user(base + i, &format!("u{}", base + i));
    let label = |i: i32| label(base + i);
    let hosts = (1..=n)
        .map(|i| {
            let mut h = host(base + i);
            h.labels = Some((1..=4).map(label).collect());
            h.shard = ToOne::Set(shard(base + 1));
            h.aclgroup_set = Some(vec![
                group(base + 1, vec![user(1), user(2)]),
                group(base + 2, vec![user(3), user(4)]),
            ]);
            h.hostattribute_set = Some(vec![
                attribute("a", &i.to_string()),
                attribute("b", "x"),
                attribute("c", "y"),
            ]);
            h
        })
        .collect();
    let jobs = (1..=n)
        .map(|i| {
            let id = base + i;
            let mut j = job(id);
            j.shard = ToOne::Set(shard(base + 1));
            j.dependency_labels = Some(vec![label(1), label(2)]);
            let mut any = hqe(id * 2 + 1_000_000, None);
            any.meta_host = ToOne::Set(label(1));
            j.hostqueueentry_set = Some(vec![hqe(id * 2 + 1_000_001, Some(id)), any]);
            j.jobkeyval_set = Some(vec![
                keyval(id, "a", "1"),
                keyval(id, "b", "2"),
                keyval(id, "c", "3"),
            ]);
            j
        })
        .collect();
    response(hosts, jobs, vec![keyval(base + 900_000, "build", "R1")])
}

fn fixture_response(name: &str) -> HeartbeatResponse {
    let envelope: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
    let result = serde_json::to_vec(&envelope["result"]).unwrap();
    HeartbeatResponse::from_json(&result).unwrap()
}

/// Applied counts, asserting nothing was rejected.
fn clean(report: &ApplyReport) -> (usize, usize, usize) {
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    (report.hosts, report.jobs, report.suite_keyvals)
}

async fn lock_host_by(conn: &impl ConnectionTrait, host: i32, user: i32) {
    let locked = afe_hosts::Entity::update_many()
        .col_expr(afe_hosts::Column::LockedById, Expr::value(user))
        .filter(afe_hosts::Column::Id.eq(host))
        .exec(conn)
        .await
        .unwrap();
    assert_eq!(locked.rows_affected, 1, "host {host} is there to lock");
}

async fn ids_that_are_not_positive_reject_their_record(db: TestDb) {
    let conn = db.store.connection();
    // MySQL would give a row inserted with id 0 a fresh id instead.
    let mut zero_label = host(3);
    zero_label.labels = Some(vec![label(0)]);
    let mut zero_entry = job(8);
    zero_entry.hostqueueentry_set = Some(vec![hqe(0, None)]);
    let report = apply_on(
        &db.store,
        &response(
            vec![host(0), zero_label, host(2)],
            vec![job(-7), zero_entry, job(9)],
            vec![],
        ),
    )
    .await;
    let rejected: Vec<_> = report.rejected.iter().map(|r| r.id).collect();
    assert_eq!(rejected, [Some(0), Some(3), Some(-7), Some(8)]);
    let reason = &report.rejected[0].reason;
    assert!(reason.contains("positive"), "{reason}");
    assert_eq!(host_ids(conn).await, [2]);
    assert_eq!(job_ids(conn).await, [9]);
}

async fn garbage_in_a_response_never_reaches_the_database(db: TestDb) {
    let conn = db.store.connection();
    let good = serde_json::to_value(host(2).with_dependencies()).unwrap();
    let mut wrong_type = good.clone();
    wrong_type["id"] = 3.into();
    wrong_type["protection"] = "high".into();
    let mut oversized = good.clone();
    oversized["id"] = 4.into();
    oversized["hostname"] = "h".repeat(10_000).into();
    let mut huge_id = good.clone();
    huge_id["id"] = serde_json::json!(1_u64 << 40);
    let job = serde_json::to_value(job(7).with_dependencies()).unwrap();
    let truncated_job = &job.to_string()[..200];
    let text = format!(
        r#"{{"hosts": [{good}, {wrong_type}, {oversized}, {huge_id}, [], null],
            "jobs": [{job}, {{"id": 8}}, "{{\"id\": 9"],
            "suite_keyvals": [{{"id": 1, "job_id": 1000, "key": "k", "value": {{}}}}]}}"#
    );
    assert!(HeartbeatResponse::from_json(truncated_job.as_bytes()).is_err());
    let parsed = HeartbeatResponse::from_json(text.as_bytes()).unwrap();
    // Host 3's `protection` and job 8's missing fields are written only
    // when the row is new (§6): they parse, with defects, and the apply
    // refuses them because their rows are new.
    assert_eq!(parsed.rejected.len(), 5, "{:?}", parsed.rejected);
    assert_eq!(parsed.defects.len(), 2, "{:?}", parsed.defects);
    let report = apply_on(&db.store, &parsed).await;
    let refused = rejected_ids(&report);
    assert_eq!(
        refused,
        [
            (RecordKind::Host, Some(3)),
            (RecordKind::Host, Some(4)),
            (RecordKind::Job, Some(8))
        ],
        "the new records with defects, and the oversized host: {:?}",
        report.rejected
    );
    let reason = &report.rejected[0].reason;
    assert!(reason.contains("protection"), "{reason}");
    assert_eq!(host_ids(conn).await, [2]);
    assert_eq!(job_ids(conn).await, [7]);
    assert_eq!(keyvals(conn).await, owned(&[(7, "suite", "bvt")]));
}

async fn a_database_failure_fails_the_apply_instead_of_rejecting_records(db: TestDb) {
    let conn = db.store.connection();
    // A read-only transaction makes every write fail for a reason that is
    // not any record's fault.
    let txn = conn
        .begin_with_config(None, Some(AccessMode::ReadOnly))
        .await
        .unwrap();
    if conn.get_database_backend() == DbBackend::Sqlite {
        txn.execute_unprepared("PRAGMA query_only = ON")
            .await
            .unwrap();
    }
    let result = apply(
        &txn,
        &db.store.layout(),
        &response(vec![host(2)], vec![job(7)], vec![]),
    )
    .await;
    drop(txn);
    match result {
        Err(StoreError::Database { .. }) => {}
        other => panic!("expected a database error, got {other:?}"),
    }
    assert!(hosts(conn).await.is_empty());
}

/// §6 writes an existing row's whitelisted fields only, so a bad value in
/// another field refuses the record only when the row is new (issue 13).
async fn a_bad_field_left_unwritten_refuses_only_a_new_record(db: TestDb) {
    let conn = db.store.connection();
    let mut h = host(2);
    h.labels = Some(vec![label(1)]);
    let first = apply_on(&db.store, &response(vec![h], vec![], vec![])).await;
    assert!(first.rejected.is_empty(), "{:?}", first.rejected);

    let mut resent = serde_json::to_value(host(2).with_dependencies()).unwrap();
    resent["protection"] = "high".into();
    resent["invalid"] = true.into();
    resent["labels"] = serde_json::to_value([label(1), label(3)]).unwrap();
    // Label 1 exists: its bad field is never read. Host 5 is new...
    resent["labels"][0]["platform"] = "maybe".into();
    let mut new_host = serde_json::to_value(host(5).with_dependencies()).unwrap();
    new_host["protection"] = "high".into();
    let mut new_label = serde_json::to_value(host(6).with_dependencies()).unwrap();
    new_label["labels"] = serde_json::to_value([label(1), label(7)]).unwrap();
    new_label["labels"][1]["only_if_needed"] = serde_json::Value::Null;
    let text = serde_json::json!({
        "hosts": [resent, new_host, new_label], "jobs": [], "suite_keyvals": []
    });
    let parsed = HeartbeatResponse::from_json(text.to_string().as_bytes()).unwrap();
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    let report = apply_on(&db.store, &parsed).await;
    let refused: Vec<_> = report.rejected.iter().map(|r| r.id).collect();
    // ...and host 6 is refused: its label 7 is new and has a bad field.
    assert_eq!(refused, [Some(5), Some(6)], "{:?}", report.rejected);
    assert!(report.rejected[0].reason.contains("protection"));
    assert!(
        report.rejected[1]
            .reason
            .contains("labels[1].only_if_needed")
    );
    let row = host_row(conn, 2).await;
    assert_eq!(row.invalid, Some(true), "the whitelisted change lands");
    assert_eq!(
        row.protection,
        host(2).protection,
        "the bad field is unread"
    );
    assert_eq!(host_labels(conn).await, [(2, 1), (2, 3)]);
}

/// §9: "Names compare as the database's collation says": on MySQL's
/// case-insensitive collations `Serial` is `serial`, elsewhere another name.
async fn names_compare_as_the_collation_says(db: TestDb) {
    let conn = db.store.connection();
    let mut h = host(2);
    h.hostattribute_set = Some(vec![attribute("Serial", "1"), attribute("serial ", "2")]);
    let report = apply_on(&db.store, &response(vec![h], vec![], vec![])).await;
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let got = attributes(conn).await;
    if conn.get_database_backend() == DbBackend::MySql {
        assert_eq!(got, owned(&[(2, "Serial", "2")]));
    } else {
        assert_eq!(got, owned(&[(2, "Serial", "1"), (2, "serial ", "2")]));
    }
}

/// Each record applies alone (§6): a value only the database refuses (a
/// NUL byte, on PostgreSQL) refuses its record, even when a later record
/// of the same response replaces it before anything is written.
async fn a_value_the_database_refuses_refuses_its_record_even_if_replaced(db: TestDb) {
    let conn = db.store.connection();
    let mut first = host(2);
    first.aclgroup_set = Some(vec![group(1, vec![user(1, "a\u{0}b")])]);
    let mut second = host(3);
    second.aclgroup_set = Some(vec![group(1, vec![user(1, "bob")])]);
    let report = apply_on(&db.store, &response(vec![first, second], vec![], vec![])).await;
    let refused: Vec<_> = report.rejected.iter().map(|r| r.id).collect();
    if conn.get_database_backend() == DbBackend::Postgres {
        assert_eq!(refused, [Some(2)], "{:?}", report.rejected);
        assert!(report.rejected[0].reason.contains("NUL"));
    } else {
        assert!(refused.is_empty(), "{:?}", report.rejected);
    }
    assert_eq!(users(conn).await, [(1, Some("bob".to_owned()))]);
}
