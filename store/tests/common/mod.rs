//! Record builders and row readers shared by the store's tests.
//!
//! Builders return minimal valid records with every relation present and
//! empty; a test sets exactly the fields its behaviour depends on.

#![allow(dead_code)]

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use shard_store::schema::AFE_TABLES;

// Not every test binary uses every builder.
#[allow(unused_imports)]
pub use shard_model::testing::records::*;

// Not every test binary uses every reader.
#[allow(unused_imports)]
pub use shard_store::testing::rows::*;

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
