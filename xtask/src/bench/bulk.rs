//! The bulk floor (e′): the same [`Rows`] as the multi-row floor, through
//! the fastest loading path each backend's driver offers, so the report can
//! say how far the multi-row floor is from the physical limit.
//!
//! - PostgreSQL: `COPY … FROM STDIN` in text format, one per table, over
//!   sqlx's `copy_in_raw` on the pool under sea-orm's connection.
//! - MariaDB/MySQL: sqlx does not implement `LOAD DATA LOCAL INFILE` (it
//!   leaves the server's file request unanswered), so the rows go to one
//!   tab-separated file per table in a directory the server reads (its
//!   `secure_file_priv`, or the temporary directory when that is unset), and
//!   `LOAD DATA INFILE` loads it, with `unique_checks` and
//!   `foreign_key_checks` off. Writing the files is timed: it stands for
//!   sending the data. This needs the server on this machine.
//! - SQLite: there is no bulk path beside SQL. One prepared single-row
//!   `INSERT` re-executed per row in one transaction took 7× the multi-row
//!   floor's time on the quick lab (366 ms against 51 ms for 10,286
//!   records: every statement is a round trip to sqlx's worker thread), so
//!   the bulk floor is multi-row `INSERT`s at SQLite's whole bind-parameter
//!   limit (32,766, the floor's 32,000): on SQLite both floors are the same
//!   path.
//!
//! Each load is one transaction and checks that every row arrived.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail, ensure};
use sea_orm::sqlx::PgPool;
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, TransactionTrait, Value};
use shard_store::testing::Backend;

use super::floor::{self, Rows, Table};

/// What the bulk floor is on `backend`, for the report.
pub fn method(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "COPY FROM STDIN",
        Backend::MySql => "LOAD DATA INFILE",
        Backend::Sqlite => "multi-row INSERTs, 32,766 params",
    }
}

/// Loads `rows` by the backend's bulk path in one transaction; returns the
/// statements it sent (one per table with rows, or per chunk on SQLite).
pub async fn write(db: &DatabaseConnection, rows: &Rows) -> Result<u64> {
    match db.get_database_backend() {
        DbBackend::Postgres => copy(db.get_postgres_connection_pool(), rows).await,
        DbBackend::MySql => load_data(db, rows).await,
        _ => sqlite(db, rows).await,
    }
}

/// Bytes of COPY data sent per message: the next rows are encoded while the
/// server parses these.
const COPY_CHUNK: usize = 1 << 20;

async fn copy(pool: &PgPool, rows: &Rows) -> Result<u64> {
    let mut txn = pool
        .begin()
        .await
        .context("starting the bulk floor's transaction")?;
    let mut statements = 0;
    for table in rows.tables.iter().filter(|t| !t.rows.is_empty()) {
        copy_table(&mut txn, table)
            .await
            .with_context(|| format!("copying into {}", table.name))?;
        statements += 1;
    }
    txn.commit().await.context("committing the bulk floor")?;
    Ok(statements)
}

async fn copy_table(conn: &mut PgConnection, table: &Table) -> Result<()> {
    let columns: Vec<String> = table.column_names().map(|c| format!("\"{c}\"")).collect();
    let sql = format!(
        "COPY \"{}\" ({}) FROM STDIN",
        table.name,
        columns.join(", ")
    );
    let mut copy = conn.copy_in_raw(&sql).await?;
    let mut chunk = Vec::with_capacity(COPY_CHUNK + 4096);
    for row in &table.rows {
        if let Err(e) = line(&mut chunk, row) {
            copy.abort("the bench could not encode a row").await.ok();
            return Err(e);
        }
        if chunk.len() >= COPY_CHUNK {
            copy.send(std::mem::take(&mut chunk)).await?;
            chunk.reserve(COPY_CHUNK + 4096);
        }
    }
    copy.send(chunk).await?;
    let loaded = copy.finish().await?;
    ensure!(
        loaded == table.rows.len() as u64,
        "COPY loaded {loaded} of {} rows",
        table.rows.len()
    );
    Ok(())
}

async fn load_data(db: &DatabaseConnection, rows: &Rows) -> Result<u64> {
    let dir = LoadDir::create(db).await?;
    let txn = db
        .begin()
        .await
        .context("starting the bulk floor's transaction")?;
    txn.execute_unprepared("SET unique_checks = 0, foreign_key_checks = 0")
        .await
        .context("turning the checks off")?;
    let mut statements = 0;
    for table in rows.tables.iter().filter(|t| !t.rows.is_empty()) {
        let file = dir.path.join(format!("{}.tsv", table.name));
        let mut text = Vec::new();
        for row in &table.rows {
            line(&mut text, row).with_context(|| format!("encoding a row of {}", table.name))?;
        }
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
        let columns: Vec<String> = table.column_names().map(|c| format!("`{c}`")).collect();
        let sql = format!(
            "LOAD DATA INFILE '{}' INTO TABLE `{}` CHARACTER SET utf8mb4 ({})",
            sql_string(&file),
            table.name,
            columns.join(", ")
        );
        let loaded = txn
            .execute_unprepared(&sql)
            .await
            .with_context(|| {
                format!(
                    "loading {} into {} (LOAD DATA INFILE needs the server on this machine, \
                     allowed to read that file by secure_file_priv)",
                    file.display(),
                    table.name
                )
            })?
            .rows_affected();
        ensure!(
            loaded == table.rows.len() as u64,
            "LOAD DATA loaded {loaded} of {} rows into {}",
            table.rows.len(),
            table.name
        );
        std::fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
        statements += 1;
    }
    txn.execute_unprepared("SET unique_checks = 1, foreign_key_checks = 1")
        .await
        .context("turning the checks back on")?;
    txn.commit().await.context("committing the bulk floor")?;
    Ok(statements)
}

/// A directory of files for `LOAD DATA INFILE`, removed when dropped.
struct LoadDir {
    path: PathBuf,
}

impl LoadDir {
    /// A fresh directory under the server's `secure_file_priv` or, when
    /// that is unset or empty (no restriction), the temporary directory.
    async fn create(db: &DatabaseConnection) -> Result<LoadDir> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                DbBackend::MySql,
                "SELECT @@secure_file_priv AS dir",
            ))
            .await
            .context("reading secure_file_priv")?
            .context("reading secure_file_priv returned nothing")?;
        let allowed: Option<String> = row.try_get("", "dir").context("reading secure_file_priv")?;
        let base = match allowed.filter(|d| !d.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => std::env::temp_dir(),
        };
        let path = base.join(format!(
            "shard-bench-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(LoadDir { path })
    }
}

impl Drop for LoadDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.path).ok();
    }
}

/// A path as the body of a single-quoted SQL string.
fn sql_string(path: &Path) -> String {
    path.to_string_lossy()
        .replace('\\', "\\\\")
        .replace('\'', "\\'")
}

/// SQLite's whole bind-parameter limit (`SQLITE_MAX_VARIABLE_NUMBER`).
const SQLITE_MAX_PARAMS: usize = 32_766;

/// The SQLite bulk floor: see the module's documentation.
async fn sqlite(db: &DatabaseConnection, rows: &Rows) -> Result<u64> {
    floor::write_chunks(db, rows, SQLITE_MAX_PARAMS).await
}

/// Appends `row` as one line of the text format that PostgreSQL's `COPY`
/// and MySQL's `LOAD DATA` share by default: tab-separated, `\N` for NULL,
/// backslash escapes, booleans as 1/0.
fn line(out: &mut Vec<u8>, row: &[Value]) -> Result<()> {
    use std::io::Write;
    for (i, value) in row.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        let written = match value {
            Value::Bool(Some(b)) => write!(out, "{}", u8::from(*b)),
            Value::TinyInt(Some(n)) => write!(out, "{n}"),
            Value::SmallInt(Some(n)) => write!(out, "{n}"),
            Value::Int(Some(n)) => write!(out, "{n}"),
            Value::BigInt(Some(n)) => write!(out, "{n}"),
            Value::TinyUnsigned(Some(n)) => write!(out, "{n}"),
            Value::SmallUnsigned(Some(n)) => write!(out, "{n}"),
            Value::Unsigned(Some(n)) => write!(out, "{n}"),
            Value::BigUnsigned(Some(n)) => write!(out, "{n}"),
            Value::ChronoDateTime(Some(t)) => write!(out, "{t}"),
            Value::String(Some(s)) => {
                escape(out, s);
                Ok(())
            }
            Value::Bool(None)
            | Value::TinyInt(None)
            | Value::SmallInt(None)
            | Value::Int(None)
            | Value::BigInt(None)
            | Value::TinyUnsigned(None)
            | Value::SmallUnsigned(None)
            | Value::Unsigned(None)
            | Value::BigUnsigned(None)
            | Value::ChronoDateTime(None)
            | Value::String(None) => {
                out.extend_from_slice(b"\\N");
                Ok(())
            }
            other => bail!("the bulk floor cannot encode {other:?}"),
        };
        written.context("encoding a value")?;
    }
    out.push(b'\n');
    Ok(())
}

/// `s` with the text format's special characters escaped.
fn escape(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_one_escaped_tab_separated_line() {
        let t = sea_orm::prelude::ChronoDate::from_ymd_opt(2024, 5, 6)
            .and_then(|d| d.and_hms_micro_opt(7, 8, 9, 120_000))
            .expect("a valid datetime");
        let row = [
            Value::Int(Some(7)),
            Value::String(Some("a\tb\\c\nd".to_owned())),
            Value::Bool(Some(true)),
            Value::String(None),
            Value::ChronoDateTime(Some(t)),
            Value::SmallInt(Some(-3)),
        ];
        let mut out = Vec::new();
        line(&mut out, &row).expect("encodes");
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            "7\ta\\tb\\\\c\\nd\t1\t\\N\t2024-05-06 07:08:09.120\t-3\n"
        );
    }

    #[test]
    fn a_value_of_another_type_is_an_error() {
        let mut out = Vec::new();
        let error = line(&mut out, &[Value::Double(Some(1.5))]).expect_err("not encoded");
        assert!(
            error.to_string().contains("cannot encode Double"),
            "{error}"
        );
    }
}
