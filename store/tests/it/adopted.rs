//! The client on the schemas real deployments have (§9, "Schemas found in
//! deployments"): Autotest's MySQL migrations, Django's models on MySQL and
//! on PostgreSQL. Each test checks something a lab would notice: a time
//! that moved, a heartbeat that failed whole, a record refused without
//! saying why, a table the client altered.

use crate::common::*;
use sea_orm::{ConnectionTrait, TransactionTrait};
use shard_model::{HeartbeatResponse, RecordKind};
use shard_store::layout::ColumnType;
use shard_store::schema::AFE_TABLES;
use shard_store::testing::{Adopted, Backend, TestDb};
use shard_store::{Store, StoreOptions, apply, begin_write};

// ---------------------------------------------------------------------------
// Helpers.

/// Job `id` whose one entry ran from `started` to `finished` and is
/// complete, created at `created`.
fn finished_job(id: i32, created: &str, started: &str, finished: &str) -> shard_model::Job {
    let mut entry = hqe(id * 10, None);
    entry.status = Some("Completed".to_owned());
    entry.active = Some(false);
    entry.complete = Some(true);
    entry.started_on = Some(at(started));
    entry.finished_on = Some(at(finished));
    shard_model::Job {
        created_on: Some(at(created)),
        hostqueueentry_set: Some(vec![entry]),
        ..job(id)
    }
}

// ---------------------------------------------------------------------------
// 1. Datetime precision.

/// On Django's `datetime(6)` the microseconds of a job's and an entry's
/// times are stored, read back, and uploaded as the master sent them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datetime_fractions_round_trip_on_datetime6() {
    let Some(db) = TestDb::adopted(Adopted::MySqlDjango).await else {
        return;
    };
    let conn = db.store.connection();
    let created = "2014-09-23T15:56:10.123456";
    let started = "2014-09-23T15:57:11.234567";
    let finished = "2014-09-23T16:01:02.000001";
    let report = apply_on(
        &db.store,
        &response(
            vec![],
            vec![finished_job(7, created, started, finished)],
            vec![],
        ),
    )
    .await;
    assert_eq!(report.rejected, vec![]);

    assert_eq!(job_row(conn, 7).await.created_on, Some(at(created)));
    let entry = hqe_row(conn, 70).await;
    assert_eq!(entry.started_on, Some(at(started)));
    assert_eq!(entry.finished_on, Some(at(finished)));

    // The upload writes these values back over the master's: they must be
    // the master's, to the microsecond.
    unassign(conn, &[7]).await;
    let upload = to_upload(&db, 100).await;
    let ids: Vec<i32> = upload.jobs.iter().map(|j| j.id).collect();
    assert_eq!(ids, [7]);
    assert_eq!(upload.jobs[0].created_on, Some(at(created)));
    assert_eq!(upload.hqes.len(), 1, "{:?}", upload.hqes);
    assert_eq!(upload.hqes[0].started_on, Some(at(started)));
    assert_eq!(upload.hqes[0].finished_on, Some(at(finished)));
}

/// On Autotest's plain `datetime` a fraction is cut, never rounded: .987654
/// stays in its second (rounding would move it, and 23:59:59.6 to the next
/// day).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datetime_fractions_are_cut_not_rounded_on_plain_datetime() {
    let Some(db) = TestDb::adopted(Adopted::MySqlAutotest).await else {
        return;
    };
    let conn = db.store.connection();
    let report = apply_on(
        &db.store,
        &response(
            vec![],
            vec![finished_job(
                7,
                "2014-09-23T15:56:10.987654",
                "2014-09-23T23:59:59.600000",
                "2014-09-24T00:00:01.999999",
            )],
            vec![],
        ),
    )
    .await;
    assert_eq!(report.rejected, vec![]);

    assert_eq!(
        job_row(conn, 7).await.created_on,
        Some(at("2014-09-23T15:56:10"))
    );
    let entry = hqe_row(conn, 70).await;
    assert_eq!(entry.started_on, Some(at("2014-09-23T23:59:59")));
    assert_eq!(entry.finished_on, Some(at("2014-09-24T00:00:01")));

    unassign(conn, &[7]).await;
    let upload = to_upload(&db, 100).await;
    assert_eq!(upload.jobs.len(), 1);
    assert_eq!(upload.jobs[0].created_on, Some(at("2014-09-23T15:56:10")));
}

// ---------------------------------------------------------------------------
// 2. Deferred constraints.

/// On Django's PostgreSQL schema (every foreign key checked at COMMIT) a
/// record the database refuses is still found at its own statement: it is
/// rejected alone and its siblings land, instead of the whole heartbeat
/// failing at COMMIT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_on_deferred_constraints_is_isolated_and_its_siblings_land() {
    let Some(db) = TestDb::adopted(Adopted::PostgresDjango).await else {
        return;
    };
    let conn = db.store.connection();
    // A deferred foreign key the apply's planning knows nothing about: a
    // job's owner must be a user of the shard.
    conn.execute_unprepared(
        "ALTER TABLE afe_jobs ADD CONSTRAINT jobs_owner_is_a_user FOREIGN KEY (owner) \
         REFERENCES afe_users (login) DEFERRABLE INITIALLY DEFERRED",
    )
    .await
    .unwrap();
    conn.execute_unprepared(
        "INSERT INTO afe_users (login, access_level, reboot_before, reboot_after, \
         show_experimental) VALUES ('chromeos-test', 0, 0, 0, false)",
    )
    .await
    .unwrap();
    let layout = db.store.refresh_layout().await.unwrap();
    assert!(layout.has_deferred_constraints());

    let nobodys = shard_model::Job {
        owner: Some("nobody".to_owned()),
        ..job(8)
    };
    let report = apply(
        conn,
        &layout,
        &response(vec![], vec![job(7), nobodys, job(9)], vec![]),
    )
    .await
    .expect("one refused record must not fail the whole apply");

    assert_eq!(
        rejected_ids(&report),
        [(RecordKind::Job, Some(8))],
        "{:?}",
        report.rejected
    );
    // Refused by the database at its own statement, not foreseen.
    let reason = &report.rejected[0].reason;
    assert!(reason.contains("jobs_owner_is_a_user"), "{reason}");
    assert_eq!(report.jobs, 2);
    assert_eq!(job_ids(conn).await, [7, 9]);
}

/// A write transaction checks foreign keys at each statement even where
/// the schema defers them; a plain transaction on the same schema would
/// accept the statement and fail only at COMMIT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_transaction_checks_deferred_foreign_keys_at_the_statement() {
    let Some(db) = TestDb::adopted(Adopted::PostgresDjango).await else {
        return;
    };
    let conn = db.store.connection();
    let orphan = "INSERT INTO afe_job_keyvals (job_id, \"key\", value) VALUES (404, 'k', 'v')";

    let txn = begin_write(conn).await.unwrap();
    assert!(
        txn.execute_unprepared(orphan).await.is_err(),
        "an orphan keyval passed its statement in a write transaction"
    );
    txn.rollback().await.unwrap();

    // The control: the schema really defers the check to COMMIT.
    let txn = conn.begin().await.unwrap();
    txn.execute_unprepared(orphan)
        .await
        .expect("a deferred foreign key is not checked at the statement");
    assert!(txn.commit().await.is_err(), "the orphan keyval committed");
    assert_eq!(keyvals(conn).await, vec![]);
}

// ---------------------------------------------------------------------------
// 3 and 4. PostgreSQL types and time zones.

/// `smallint` and `timestamp with time zone` columns are written and read
/// back as the values the master sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smallint_and_timestamptz_columns_read_back() {
    let Some(db) = TestDb::adopted(Adopted::PostgresDjango).await else {
        return;
    };
    let conn = db.store.connection();
    let locked = shard_model::Host {
        protection: 2,
        locked: Some(true),
        lock_time: Some(at("2014-09-23T15:56:10.5")),
        ..host(2)
    };
    let urgent = shard_model::Job {
        priority: Some(50),
        control_type: Some(1),
        ..job(7)
    };
    let report = apply_on(&db.store, &response(vec![locked], vec![urgent], vec![])).await;
    assert_eq!(report.rejected, vec![]);

    let h = host_row(conn, 2).await;
    assert_eq!(h.protection, 2);
    assert_eq!(h.lock_time, Some(at("2014-09-23T15:56:10.5")));
    let j = job_row(conn, 7).await;
    assert_eq!(j.priority, Some(50));
    assert_eq!(j.control_type, Some(1));
    assert_eq!(j.created_on, Some(at("2014-09-23T15:56:10")));

    let layout = db.store.layout();
    assert_eq!(
        layout.column("afe_jobs", "priority").unwrap().ty,
        ColumnType::Int { bits: 16 }
    );
    assert_eq!(
        layout.column("afe_jobs", "created_on").unwrap().ty,
        ColumnType::DateTime {
            precision: Some(6),
            time_zone: true
        }
    );
}

/// A store in the lab's zone writes a naive time as that zone's instant
/// (as Django would) and reads it back as the same naive time; a store in
/// UTC sees that instant in UTC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timestamptz_written_in_los_angeles_reads_back_as_the_same_naive_time() {
    let Some(db) = TestDb::adopted(Adopted::PostgresDjango).await else {
        return;
    };
    let lab = Store::connect_with(
        db.url(),
        &StoreOptions {
            time_zone: "America/Los_Angeles".into(),
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap();
    let report = lab.migrate().await.unwrap();
    assert!(report.created.is_empty(), "{report:?}");

    let made = shard_model::Job {
        created_on: Some(at("2014-09-23T15:56:10")),
        ..job(7)
    };
    let report = apply_on(&lab, &response(vec![], vec![made], vec![])).await;
    assert_eq!(report.rejected, vec![]);

    assert_eq!(
        job_row(lab.connection(), 7).await.created_on,
        Some(at("2014-09-23T15:56:10"))
    );
    // The instant stored: 15:56:10 PDT is 22:56:10 UTC.
    assert_eq!(
        texts(
            lab.connection(),
            "SELECT to_char(created_on AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') \
             FROM afe_jobs WHERE id = 7"
        )
        .await,
        ["2014-09-23 22:56:10"]
    );
    assert_eq!(
        job_row(db.store.connection(), 7).await.created_on,
        Some(at("2014-09-23T22:56:10"))
    );
    lab.close().await.unwrap();
}

/// A time zone PostgreSQL does not know fails the connection with a message
/// naming it, not later with a wrong time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_time_zone_fails_the_connection_naming_it() {
    let Some(db) = TestDb::empty(Backend::Postgres).await else {
        return;
    };
    let err = Store::connect_with(
        db.url(),
        &StoreOptions {
            time_zone: "Mars/Olympus_Mons".into(),
            ..StoreOptions::default()
        },
    )
    .await
    .expect_err("a store opened in an unknown time zone");
    let message = err.to_string();
    assert!(message.contains("Mars/Olympus_Mons"), "{message}");
}

// ---------------------------------------------------------------------------
// 6. Suite keyvals whose job is not on the shard.

/// The suite keyvals of a job off the shard, and of one on it.
fn suite_keyvals_response() -> HeartbeatResponse {
    response(
        vec![],
        vec![job(7)],
        vec![
            keyval(2000, "suite", "bvt"),
            keyval(2000, "build", "R1"),
            keyval(7, "extra", "x"),
        ],
    )
}

/// Where a foreign key ties keyvals to jobs (Django's schemas), the suite
/// keyvals of a job not on the shard are counted apart, not rejected one by
/// one, and the rest land.
async fn a_suite_keyval_whose_job_is_not_on_the_shard_is_counted_not_rejected(db: TestDb) {
    let conn = db.store.connection();
    let report = apply_on(&db.store, &suite_keyvals_response()).await;

    assert_eq!(report.suite_keyvals_without_job, [2000, 2000]);
    assert_eq!(report.rejected, vec![]);
    assert_eq!(report.suite_keyvals, 1);
    assert_eq!(report.jobs, 1);
    assert_eq!(
        sorted_keyvals(conn).await,
        owned(&[(7, "extra", "x"), (7, "suite", "bvt")])
    );
}

/// On MySQL as Django made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suite_keyval_whose_job_is_not_on_the_shard_is_counted_not_rejected_on_mysql_django() {
    if let Some(db) = TestDb::adopted(Adopted::MySqlDjango).await {
        a_suite_keyval_whose_job_is_not_on_the_shard_is_counted_not_rejected(db).await;
    }
}

/// On PostgreSQL as Django made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suite_keyval_whose_job_is_not_on_the_shard_is_counted_not_rejected_on_postgres_django() {
    if let Some(db) = TestDb::adopted(Adopted::PostgresDjango).await {
        a_suite_keyval_whose_job_is_not_on_the_shard_is_counted_not_rejected(db).await;
    }
}

/// Autotest's schema has no foreign key on a keyval's job: the suite
/// keyvals of a job off the shard are stored like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suite_keyval_whose_job_is_not_on_the_shard_is_stored_on_mysql_autotest() {
    let Some(db) = TestDb::adopted(Adopted::MySqlAutotest).await else {
        return;
    };
    let conn = db.store.connection();
    let report = apply_on(&db.store, &suite_keyvals_response()).await;

    assert_eq!(report.suite_keyvals_without_job, Vec::<i32>::new());
    assert_eq!(report.rejected, vec![]);
    assert_eq!(report.suite_keyvals, 3);
    assert_eq!(
        sorted_keyvals(conn).await,
        owned(&[
            (7, "extra", "x"),
            (7, "suite", "bvt"),
            (2000, "build", "R1"),
            (2000, "suite", "bvt"),
        ])
    );
}

// ---------------------------------------------------------------------------
// 7 and 8. Values the adopted columns cannot hold.

/// A priority beyond a `smallint` is refused with its record, naming the
/// column and its limit; the sibling job lands.
async fn a_value_beyond_a_smallint_column_rejects_its_record_by_name(db: TestDb) {
    let conn = db.store.connection();
    let loud = shard_model::Job {
        priority: Some(40_000),
        ..job(7)
    };
    let report = apply_on(&db.store, &response(vec![], vec![loud, job(8)], vec![])).await;

    assert_eq!(rejected_ids(&report), [(RecordKind::Job, Some(7))]);
    let reason = &report.rejected[0].reason;
    assert!(reason.contains("afe_jobs.priority"), "{reason}");
    assert!(reason.contains("32767"), "{reason}");
    assert_eq!(job_ids(conn).await, [8]);
}

/// On MySQL as Django made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_beyond_a_smallint_column_rejects_its_record_by_name_on_mysql_django() {
    if let Some(db) = TestDb::adopted(Adopted::MySqlDjango).await {
        a_value_beyond_a_smallint_column_rejects_its_record_by_name(db).await;
    }
}

/// On PostgreSQL as Django made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_beyond_a_smallint_column_rejects_its_record_by_name_on_postgres_django() {
    if let Some(db) = TestDb::adopted(Adopted::PostgresDjango).await {
        a_value_beyond_a_smallint_column_rejects_its_record_by_name(db).await;
    }
}

/// A column the client never writes, NOT NULL without a default, refuses
/// the records that would insert into its table, naming the column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_not_null_column_without_default_the_client_never_writes_refuses_inserts_by_name() {
    let Some(db) = TestDb::adopted(Adopted::MySqlDjango).await else {
        return;
    };
    let conn = db.store.connection();
    conn.execute_unprepared("ALTER TABLE afe_labels ADD COLUMN extra int NOT NULL")
        .await
        .unwrap();
    db.store.refresh_layout().await.unwrap();

    let report = apply_on(&db.store, &response(vec![host(2)], vec![], vec![])).await;

    assert_eq!(rejected_ids(&report), [(RecordKind::Host, Some(2))]);
    let reason = &report.rejected[0].reason;
    assert!(reason.contains("afe_labels.extra"), "{reason}");
    assert!(reason.contains("NOT NULL without a default"), "{reason}");
    assert_eq!(hosts(conn).await, vec![]);
    assert_eq!(labels(conn).await, vec![]);
}

/// On Autotest's latin1 tables, a label name or a login latin1 cannot hold
/// fails its own record only: MySQL refuses even to compare such a string
/// with the column ("Illegal mix of collations"), which used to fail the
/// whole apply, every heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_latin1_cannot_hold_fails_its_record_alone() {
    let Some(db) = TestDb::adopted(Adopted::MySqlAutotest).await else {
        return;
    };
    let conn = db.store.connection();
    let rocket_label = shard_model::Label {
        name: Some("board:🚀".to_owned()),
        ..label(5)
    };
    let mut rocket_host = host(3);
    rocket_host.labels = Some(vec![rocket_label]);
    let mut rocket_user = host(4);
    rocket_user.aclgroup_set = Some(vec![group(10, vec![user(6, "🚀-user")])]);
    let hosts_sent = vec![host(2), rocket_host, rocket_user, host(7)];

    let report = apply_on(&db.store, &response(hosts_sent, vec![], vec![])).await;

    assert_eq!(
        rejected_ids(&report),
        [(RecordKind::Host, Some(3)), (RecordKind::Host, Some(4))]
    );
    assert_eq!(host_ids(conn).await, [2, 7]);
}

// ---------------------------------------------------------------------------
// 9. Migrate adopts without altering.

/// Loads `schema` into an empty database and checks that `migrate` (twice)
/// adopts every table and leaves the catalog exactly as it was.
async fn migrate_alters_nothing_on(schema: Adopted) {
    let Some(db) = TestDb::empty(schema.backend()).await else {
        return;
    };
    let conn = db.store.connection();
    for statement in schema.ddl() {
        conn.execute_unprepared(&statement)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{statement}"));
    }
    let before = catalog(conn).await;
    assert!(!before.is_empty());

    for _ in 0..2 {
        let report = db.store.migrate().await.unwrap();
        assert!(report.created.is_empty(), "{report:?}");
        assert_eq!(report.adopted, AFE_TABLES);
        let after = catalog(conn).await;
        let changed: Vec<_> = before.iter().zip(&after).filter(|(b, a)| b != a).collect();
        assert_eq!(after.len(), before.len(), "{changed:#?}");
        assert!(changed.is_empty(), "{changed:#?}");
    }
}

/// Autotest's MySQL schema is adopted as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_alters_nothing_on_an_adopted_mysql_autotest_schema() {
    migrate_alters_nothing_on(Adopted::MySqlAutotest).await;
}

/// Django's MySQL schema is adopted as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_alters_nothing_on_an_adopted_mysql_django_schema() {
    migrate_alters_nothing_on(Adopted::MySqlDjango).await;
}

/// Django's PostgreSQL schema is adopted as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_alters_nothing_on_an_adopted_postgres_django_schema() {
    migrate_alters_nothing_on(Adopted::PostgresDjango).await;
}

// ---------------------------------------------------------------------------
// 10. The layout.

/// The layout of Django's MySQL schema: fractions kept, narrower label
/// names, keyvals tied to their jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layout_describes_what_the_catalog_says_on_mysql_django() {
    let Some(db) = TestDb::adopted(Adopted::MySqlDjango).await else {
        return;
    };
    let layout = db.store.layout();
    assert_eq!(layout.backend, "mysql");
    assert_eq!(layout.tables.len(), AFE_TABLES.len());
    assert_eq!(
        layout.column("afe_jobs", "created_on").unwrap().ty,
        ColumnType::DateTime {
            precision: Some(6),
            time_zone: false
        }
    );
    assert_eq!(
        layout.column("afe_labels", "name").unwrap().ty,
        ColumnType::Varchar { chars: 255 }
    );
    assert_eq!(
        layout.column("afe_jobs", "priority").unwrap().ty,
        ColumnType::Int { bits: 16 }
    );
    assert!(layout.has_foreign_key(shard_store::schema::entity::afe_job_keyvals::Column::JobId));
    assert!(!layout.has_deferred_constraints());
    let owner = layout.column("afe_jobs", "owner").unwrap();
    assert!(!owner.nullable && !owner.has_default, "{owner:?}");
}

/// The layout of Autotest's MySQL schema: whole seconds, 750-char latin1
/// label names, keyvals free of their jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layout_describes_what_the_catalog_says_on_mysql_autotest() {
    let Some(db) = TestDb::adopted(Adopted::MySqlAutotest).await else {
        return;
    };
    let layout = db.store.layout();
    assert_eq!(layout.tables.len(), AFE_TABLES.len());
    assert_eq!(
        layout.column("afe_jobs", "created_on").unwrap().ty,
        ColumnType::DateTime {
            precision: Some(0),
            time_zone: false
        }
    );
    assert_eq!(
        layout.column("afe_labels", "name").unwrap().ty,
        ColumnType::Varchar { chars: 750 }
    );
    assert!(!layout.has_foreign_key(shard_store::schema::entity::afe_job_keyvals::Column::JobId));
    assert!(!layout.has_foreign_key(shard_store::schema::entity::afe_jobs::Column::ParentJobId));
    assert!(
        layout.has_foreign_key(
            shard_store::schema::entity::afe_jobs_dependency_labels::Column::JobId
        )
    );
    assert_eq!(
        layout
            .column("afe_jobs", "name")
            .unwrap()
            .charset
            .as_deref(),
        Some("latin1")
    );
    assert_eq!(
        layout.column("afe_jobs", "priority").unwrap().ty,
        ColumnType::Int { bits: 32 }
    );
}

/// The layout of Django's PostgreSQL schema: instants, smallints, and
/// foreign keys checked at COMMIT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layout_describes_what_the_catalog_says_on_postgres_django() {
    let Some(db) = TestDb::adopted(Adopted::PostgresDjango).await else {
        return;
    };
    let layout = db.store.layout();
    assert_eq!(layout.backend, "postgres");
    assert_eq!(layout.tables.len(), AFE_TABLES.len());
    assert!(layout.has_deferred_constraints());
    let keyval_job = layout.column("afe_job_keyvals", "job_id").unwrap();
    assert_eq!(keyval_job.references.as_deref(), Some("afe_jobs"));
    assert!(keyval_job.deferred);
    assert_eq!(
        layout.column("afe_hosts", "lock_time").unwrap().ty,
        ColumnType::DateTime {
            precision: Some(6),
            time_zone: true
        }
    );
    assert_eq!(
        layout.column("afe_hosts", "protection").unwrap().ty,
        ColumnType::Int { bits: 16 }
    );
    assert_eq!(
        layout.column("afe_jobs", "run_reset").unwrap().ty,
        ColumnType::Bool
    );
}
