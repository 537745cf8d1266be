//! Creating the schema, and adopting one that Autotest created.

use crate::common::*;
use sea_orm::ConnectionTrait;
use shard_store::schema::AFE_TABLES;
use shard_store::testing::{Adopted, Backend, TestDb};
use shard_store::{Store, StoreError, apply};

shard_store::backend_tests!(migrate_is_idempotent, migrated_schema_enforces_foreign_keys);

async fn migrate_is_idempotent(db: TestDb) {
    // `migrated` already ran it once and created everything.
    let report = db.store.migrate().await.unwrap();
    assert!(report.created.is_empty(), "{report:?}");
    assert_eq!(report.adopted, AFE_TABLES);
}

async fn migrated_schema_enforces_foreign_keys(db: TestDb) {
    let conn = db.store.connection();
    let orphan = "INSERT INTO afe_hosts_labels (host_id, label_id) VALUES (404, 404)";
    assert!(
        conn.execute_unprepared(orphan).await.is_err(),
        "dangling link accepted"
    );
}

#[tokio::test]
async fn migrate_creates_every_table_on_an_empty_database() {
    let Some(db) = TestDb::empty(Backend::Sqlite).await else {
        return;
    };
    let report = db.store.migrate().await.unwrap();
    assert_eq!(report.created, AFE_TABLES);
    assert!(report.adopted.is_empty());
}

#[tokio::test]
async fn a_partly_created_schema_gets_only_its_missing_tables() {
    let Some(db) = TestDb::empty(Backend::Sqlite).await else {
        return;
    };
    let conn = db.store.connection();
    conn.execute_unprepared("CREATE TABLE afe_shards (id integer PRIMARY KEY, hostname varchar(255) NOT NULL, extra text)")
        .await
        .unwrap();
    let report = db.store.migrate().await.unwrap();
    assert_eq!(report.adopted, ["afe_shards"]);
    assert_eq!(report.created.len(), AFE_TABLES.len() - 1);
    // The existing table was not touched: its extra column is still there.
    conn.execute_unprepared("INSERT INTO afe_shards (id, hostname, extra) VALUES (1, 's', 'kept')")
        .await
        .unwrap();
}

/// A MariaDB database laid out by Autotest itself (latin1, its own index
/// names, stricter constraints) is adopted as it is and then works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autotest_mysql_schema_is_adopted_untouched() {
    let Some(db) = TestDb::empty(Backend::MySql).await else {
        return;
    };
    let conn = db.store.connection();
    for statement in Adopted::MySqlAutotest.ddl() {
        conn.execute_unprepared(&statement).await.unwrap();
    }
    let before = catalog(conn).await;

    let report = db.store.migrate().await.unwrap();
    assert!(report.created.is_empty(), "{report:?}");
    assert_eq!(report.adopted, AFE_TABLES);
    assert_eq!(catalog(conn).await, before, "no table was altered");

    let report = apply(
        conn,
        &db.store.layout(),
        &response(vec![host(2)], vec![job(7)], vec![keyval(1000, "k", "v")]),
    )
    .await
    .unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert!(
        job_row(conn, 7).await.run_reset,
        "smallint run_reset reads as a bool"
    );

    // The adopted schema is stricter than ours: two entries of one job on
    // one host violate its UNIQUE(job_id, host_id), and latin1 cannot hold
    // every string. Those jobs fail alone; their siblings land.
    let mut twice = job(8);
    twice.hostqueueentry_set = Some(vec![hqe(80, Some(2)), hqe(81, Some(2))]);
    let mut emoji = job(9);
    emoji.name = Some("rocket 🚀".into());
    let report = apply(
        conn,
        &db.store.layout(),
        &response(vec![], vec![twice, emoji, job(10)], vec![]),
    )
    .await
    .unwrap();
    let rejected: Vec<_> = report.rejected.iter().map(|r| r.id).collect();
    assert_eq!(rejected, [Some(8), Some(9)], "{:?}", report.rejected);
    assert_eq!(job_ids(conn).await, [7, 10]);
}

#[tokio::test]
async fn an_unknown_url_scheme_is_refused_by_name() {
    let err = Store::connect("oracle://scott:tiger@db/orcl")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }));
    let message = err.to_string();
    assert!(message.contains("oracle://scott:***@db/orcl"), "{message}");
    assert!(!message.contains("tiger"), "{message}");
}

#[tokio::test]
async fn an_unreachable_database_is_a_connect_error_without_the_password() {
    let err = Store::connect("postgres://u:hunter2@127.0.0.1:1/db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

/// Creating the tables is all or nothing where DDL is transactional: an
/// index whose name is taken (SQLite and PostgreSQL share one namespace
/// for tables and indexes) fails `migrate` after `afe_jobs` was created,
/// and no table is left behind, so the next start creates each table with
/// its indexes rather than adopting one that lacks them.
async fn a_failed_migrate_leaves_no_table_behind(backend: Backend) {
    let Some(db) = TestDb::empty(backend).await else {
        return;
    };
    db.store
        .connection()
        .execute_unprepared("CREATE TABLE afe_jobs_shard_id_idx (x INTEGER)")
        .await
        .unwrap();
    let err = db.store.migrate().await.unwrap_err();
    assert!(matches!(err, StoreError::Migrate(_)), "{err:?}");
    let layout = db.store.refresh_layout().await.unwrap();
    let left: Vec<&str> = layout.tables.iter().map(|t| t.name.as_str()).collect();
    assert!(left.is_empty(), "tables left behind: {left:?}");
}

#[tokio::test]
async fn a_failed_migrate_leaves_no_table_behind_on_sqlite() {
    a_failed_migrate_leaves_no_table_behind(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_failed_migrate_leaves_no_table_behind_on_postgres() {
    a_failed_migrate_leaves_no_table_behind(Backend::Postgres).await;
}
