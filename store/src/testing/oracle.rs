//! The two sides of the apply oracle (issue 13) and how their databases are
//! compared, shared by the property test (`store/tests/it/oracle.rs`) and the
//! `apply_response` fuzz target: the bulk path as the engine runs it, the
//! reference apply of [`super::reference`], and a table-by-table diff.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, TransactionTrait};
use shard_model::{HeartbeatResponse, RecordKind};

use super::reference::{self, Columns, Json};
use crate::schema::AFE_TABLES;
use crate::{Layout, apply, begin_write, remove_incorrect_hosts, resync_completed_jobs};

/// Tables whose rows are inserted without an id (§9): the database numbers
/// them, in whatever order each side happened to insert, so their `id` is
/// left out of the comparison.
pub const NUMBERED_BY_THE_DATABASE: [&str; 7] = [
    "afe_shards_labels",
    "afe_acl_groups_users",
    "afe_acl_groups_hosts",
    "afe_hosts_labels",
    "afe_host_attributes",
    "afe_jobs_dependency_labels",
    "afe_job_keyvals",
];

/// What one side did with a response: the records it refused as (kind,
/// id), sorted, with their reasons; the incorrect hosts it removed and the
/// jobs it re-synced, sorted and without repeats.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Refused records, as (kind, id).
    pub rejected: Vec<(RecordKind, Option<i64>)>,
    /// Why, in the same order (not compared: each side words it its way).
    pub reasons: Vec<String>,
    /// Incorrect hosts removed (§7 step 5).
    pub removed: Vec<i32>,
    /// Jobs re-synced (§7 step 6).
    pub resynced: Vec<i32>,
}

impl Outcome {
    /// Whether two outcomes agree on everything but the wording of reasons.
    pub fn agrees_with(&self, other: &Outcome) -> bool {
        (&self.rejected, &self.removed, &self.resynced)
            == (&other.rejected, &other.removed, &other.resynced)
    }
}

/// The bulk path as the engine runs it (§7 steps 4–6, one write
/// transaction, a savepoint when `db` is a transaction): parse, apply,
/// remove incorrect hosts, re-sync. `Err` is a failure of the call (the
/// envelope, the database), never a record's.
pub async fn bulk<C>(db: &C, layout: &Layout, bytes: &[u8]) -> Result<Outcome, String>
where
    C: ConnectionTrait + TransactionTrait<Transaction = DatabaseTransaction>,
{
    let response = HeartbeatResponse::from_json(bytes).map_err(|e| format!("parse: {e}"))?;
    let txn = begin_write(db).await.map_err(|e| e.to_string())?;
    let applied = apply(&txn, layout, &response)
        .await
        .map_err(|e| format!("bulk apply failed: {e}"))?;
    let removed = remove_incorrect_hosts(&txn, &response.incorrect_host_ids)
        .await
        .map_err(|e| e.to_string())?;
    let resynced = resync_completed_jobs(&txn, &response.sent_job_ids())
        .await
        .map_err(|e| e.to_string())?;
    txn.commit().await.map_err(|e| e.to_string())?;
    if !applied.suite_keyvals_without_job.is_empty() {
        return Err(format!(
            "suite keyvals without job on our schema: {:?}",
            applied.suite_keyvals_without_job
        ));
    }
    let all = response.rejected.iter().chain(&applied.rejected);
    Ok(outcome(
        all.map(|r| (r.kind, r.id, r.to_string())),
        removed,
        resynced,
    ))
}

/// The reference apply of the same response text.
pub async fn reference<C>(db: &C, bytes: &[u8]) -> Result<Outcome, String>
where
    C: ConnectionTrait + TransactionTrait<Transaction = DatabaseTransaction>,
{
    let json: Json = serde_json::from_slice(bytes).map_err(|e| format!("parse: {e}"))?;
    let report = reference::apply(db, &json)
        .await
        .map_err(|e| format!("reference apply failed: {e}"))?;
    Ok(outcome(
        report
            .rejected
            .iter()
            .map(|r| (r.kind, r.id, r.to_string())),
        report.incorrect_hosts_removed,
        report.jobs_resynced,
    ))
}

fn outcome(
    rejected: impl Iterator<Item = (RecordKind, Option<i64>, String)>,
    mut removed: Vec<i32>,
    mut resynced: Vec<i32>,
) -> Outcome {
    let mut all: Vec<_> = rejected.collect();
    all.sort_by_key(|a| (a.0, a.1));
    removed.sort_unstable();
    removed.dedup();
    resynced.sort_unstable();
    resynced.dedup();
    Outcome {
        rejected: all.iter().map(|(k, id, _)| (*k, *id)).collect(),
        reasons: all.into_iter().map(|(_, _, reason)| reason).collect(),
        removed,
        resynced,
    }
}

/// Deletes every row of every `afe_` table.
pub async fn empty(db: &impl ConnectionTrait) -> Result<(), String> {
    for table in AFE_TABLES.iter().rev() {
        db.execute_unprepared(&format!("DELETE FROM {table}"))
            .await
            .map_err(|e| format!("emptying {table}: {e}"))?;
    }
    Ok(())
}

/// Every `afe_` table of `bulk` and `reference` (of one backend, whose
/// tables `columns` describes), as sorted rows: the rows only one side
/// has, per table; empty when they hold the same.
pub async fn diff(
    bulk: &impl ConnectionTrait,
    reference: &impl ConnectionTrait,
    columns: &Columns,
) -> Result<String, String> {
    let mut out = String::new();
    for table in AFE_TABLES {
        let mut names = columns.names(table);
        if NUMBERED_BY_THE_DATABASE.contains(&table) {
            names.retain(|c| *c != "id");
        }
        let b = rows(bulk, table, &names).await?;
        let r = rows(reference, table, &names).await?;
        if b == r {
            continue;
        }
        out.push_str(&format!("  {table} ({}):\n", names.join(", ")));
        for row in only(&b, &r) {
            out.push_str(&format!("    bulk only:      {}\n", show(&row)));
        }
        for row in only(&r, &b) {
            out.push_str(&format!("    reference only: {}\n", show(&row)));
        }
    }
    Ok(out)
}

/// A row as text, column by column (`None` is NULL).
type Row = Vec<Option<String>>;

/// The rows of `a` that `b` does not have (as a multiset).
fn only(a: &[Row], b: &[Row]) -> Vec<Row> {
    let mut left: BTreeMap<&Row, usize> = BTreeMap::new();
    for r in b {
        *left.entry(r).or_default() += 1;
    }
    a.iter()
        .filter(|r| match left.get_mut(r) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .cloned()
        .collect()
}

fn show(row: &Row) -> String {
    let cells: Vec<String> = row
        .iter()
        .map(|c| match c {
            Some(s) if s.chars().count() > 40 => {
                format!(
                    "{:?}…({} chars)",
                    s.chars().take(20).collect::<String>(),
                    s.chars().count()
                )
            }
            Some(s) => format!("{s:?}"),
            None => "NULL".to_owned(),
        })
        .collect();
    format!("({})", cells.join(", "))
}

/// Every row of `table`, each column as text the same way on both sides
/// (SQLite prefixes its storage class, which it does not enforce).
async fn rows(
    conn: &impl ConnectionTrait,
    table: &str,
    columns: &[&str],
) -> Result<Vec<Row>, String> {
    let backend = conn.get_database_backend();
    let select: Vec<String> = columns
        .iter()
        .map(|c| match backend {
            DbBackend::Sqlite => format!(
                "CASE WHEN \"{c}\" IS NULL THEN NULL ELSE typeof(\"{c}\") || ':' || CAST(\"{c}\" AS TEXT) END"
            ),
            DbBackend::MySql => format!("CAST(`{c}` AS CHAR)"),
            _ => format!("\"{c}\"::text"),
        })
        .collect();
    let sql = format!("SELECT {} FROM {table}", select.join(", "));
    let found = conn
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .map_err(|e| format!("reading {table}: {e}"))?;
    let mut out = Vec::with_capacity(found.len());
    for row in found {
        let mut cells = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            cells.push(
                row.try_get_by_index::<Option<String>>(i)
                    .map_err(|e| format!("reading {table}: {e}"))?,
            );
        }
        out.push(cells);
    }
    out.sort();
    Ok(out)
}
