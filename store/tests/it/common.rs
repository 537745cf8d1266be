//! Record builders, row readers and the writes of a master and a scheduler,
//! shared by the store's tests.
//!
//! Builders return minimal valid records with every relation present and
//! empty; a test sets exactly the fields its behaviour depends on.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    Statement,
};
use shard_model::{HeartbeatResponse, Hqe, Job, RecordKind};
use shard_store::schema::AFE_TABLES;
use shard_store::schema::entity::prelude::*;
use shard_store::schema::entity::{afe_host_queue_entries, afe_jobs};
use shard_store::testing::TestDb;
use shard_store::{ApplyReport, Layout, Store, Upload, apply, jobs_to_upload};

pub use shard_model::testing::records::*;
pub use shard_store::testing::rows::*;

// ---------------------------------------------------------------------------
// What the master sends.

/// Applies `response` through `store` with its current layout.
pub async fn apply_on(store: &Store, response: &HeartbeatResponse) -> ApplyReport {
    apply(store.connection(), &store.layout(), response)
        .await
        .unwrap()
}

/// Applies `response` with the layout the catalog describes now, and checks
/// that every record landed.
pub async fn fill(conn: &DatabaseConnection, response: &HeartbeatResponse) {
    let layout = Layout::read(conn).await.unwrap();
    let report = apply(conn, &layout, response).await.unwrap();
    assert_eq!(report.rejected, vec![]);
}

/// The kinds and ids of the rejected records, in response order.
pub fn rejected_ids(report: &ApplyReport) -> Vec<(RecordKind, Option<i64>)> {
    report.rejected.iter().map(|r| (r.kind, r.id)).collect()
}

/// A job whose entries are `entries`.
pub fn job_with(id: i32, entries: Vec<Hqe>) -> Job {
    Job {
        hostqueueentry_set: Some(entries),
        ..job(id)
    }
}

// ---------------------------------------------------------------------------
// What the shard's scheduler writes.

/// The scheduler finishing entries.
pub async fn complete(conn: &impl ConnectionTrait, hqe_ids: &[i32]) {
    HostQueueEntries::update_many()
        .col_expr(afe_host_queue_entries::Column::Complete, Expr::value(true))
        .col_expr(afe_host_queue_entries::Column::Active, Expr::value(false))
        .col_expr(
            afe_host_queue_entries::Column::Status,
            Expr::value("Completed"),
        )
        .filter(afe_host_queue_entries::Column::Id.is_in(hqe_ids.iter().copied()))
        .exec(conn)
        .await
        .unwrap();
}

/// Jobs' `shard_id` set to NULL, as the scheduler leaves a finished job
/// waiting for upload.
pub async fn unassign(conn: &impl ConnectionTrait, job_ids: &[i32]) {
    Jobs::update_many()
        .col_expr(afe_jobs::Column::ShardId, Expr::value(Option::<i32>::None))
        .filter(afe_jobs::Column::Id.is_in(job_ids.iter().copied()))
        .exec(conn)
        .await
        .unwrap();
}

/// The scheduler writing `value` into `column` of row `id` of the
/// column's table.
pub async fn set_column<C>(
    conn: &impl ConnectionTrait,
    id: i32,
    column: C,
    value: impl Into<sea_orm::Value>,
) where
    C: ColumnTrait,
    C::EntityName: EntityTrait,
{
    let Ok(id_column) = C::from_str("id") else {
        panic!("the table of {column:?} has no id column");
    };
    <C::EntityName as EntityTrait>::update_many()
        .col_expr(column, Expr::value(value))
        .filter(id_column.eq(id))
        .exec(conn)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------
// Reading back.

/// (job, key, value) of every keyval, sorted: a test checks which keyvals
/// there are, not the order their rows were inserted in.
pub async fn sorted_keyvals(conn: &impl ConnectionTrait) -> Vec<(i32, String, String)> {
    let mut rows = keyvals(conn).await;
    rows.sort();
    rows
}

/// The jobs to upload (§7 step 1), at most `limit`, read with the store's
/// layout.
pub async fn to_upload(db: &TestDb, limit: u64) -> Upload {
    jobs_to_upload(db.store.connection(), &db.store.layout(), limit)
        .await
        .unwrap()
}

/// Every job's id and `shard_id`, by id.
pub async fn shard_ids(conn: &impl ConnectionTrait) -> Vec<(i32, Option<i32>)> {
    let mut ids = Vec::new();
    for id in job_ids(conn).await {
        ids.push((id, job_row(conn, id).await.shard_id));
    }
    ids
}

/// The first column of every row `sql` returns, as text.
pub async fn texts(conn: &impl ConnectionTrait, sql: &str) -> Vec<String> {
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect()
}

/// Everything the catalog says about the `afe_` tables: columns, keys,
/// constraints, indexes.
pub async fn catalog(conn: &impl ConnectionTrait) -> Vec<String> {
    match conn.get_database_backend() {
        DbBackend::MySql => {
            let mut out = Vec::new();
            for table in AFE_TABLES {
                let row = conn
                    .query_one_raw(Statement::from_string(
                        DbBackend::MySql,
                        format!("SHOW CREATE TABLE {table}"),
                    ))
                    .await
                    .unwrap()
                    .unwrap();
                let ddl: String = row.try_get_by_index(1).unwrap();
                // The auto-increment counter moves with inserts; it is not
                // schema.
                out.push(
                    ddl.split(" AUTO_INCREMENT=")
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
            out
        }
        _ => {
            let columns = texts(
                conn,
                "SELECT concat_ws(' | ', table_name::text, column_name::text, data_type::text, \
                 is_nullable::text, coalesce(column_default::text, '-'), \
                 coalesce(character_maximum_length::text, '-')) \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name::text LIKE 'afe\\_%' \
                 ORDER BY 1",
            )
            .await;
            let constraints = texts(
                conn,
                "SELECT concat_ws(' | ', c.conrelid::regclass::text, c.conname::text, \
                 pg_get_constraintdef(c.oid)) \
                 FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
                 WHERE c.connamespace = current_schema()::regnamespace \
                 AND t.relname::text LIKE 'afe\\_%' ORDER BY 1",
            )
            .await;
            let indexes = texts(
                conn,
                "SELECT indexdef::text FROM pg_indexes \
                 WHERE schemaname = current_schema() AND tablename::text LIKE 'afe\\_%' \
                 ORDER BY 1",
            )
            .await;
            assert!(!columns.is_empty() && !constraints.is_empty() && !indexes.is_empty());
            columns
                .into_iter()
                .chain(constraints)
                .chain(indexes)
                .collect()
        }
    }
}
