//! Running one sequence on two databases, the bulk apply on one and the
//! reference on the other, and saying how they differ.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::Deserialize;
use shard_model::{HeartbeatResponse, RecordKind};
use shard_store::schema::AFE_TABLES;
use shard_store::testing::TestDb;
use shard_store::testing::reference::{self, Columns, Json};
use shard_store::{apply, begin_write, remove_incorrect_hosts, resync_completed_jobs};

use super::generate::Step;

/// Tables whose rows are inserted without an id (§9): the database numbers
/// them, in whatever order each side happened to insert, so their `id` is
/// left out of the comparison.
const NUMBERED_BY_THE_DATABASE: [&str; 7] = [
    "afe_shards_labels",
    "afe_acl_groups_users",
    "afe_acl_groups_hosts",
    "afe_hosts_labels",
    "afe_host_attributes",
    "afe_jobs_dependency_labels",
    "afe_job_keyvals",
];

/// The two databases of one backend, reset before each sequence.
pub struct Pair {
    pub bulk: TestDb,
    pub reference: TestDb,
    columns: Columns,
}

/// What one side did with a response: the records it refused as (kind,
/// id), the incorrect hosts it removed, the jobs it re-synced.
#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    rejected: Vec<(RecordKind, Option<i64>)>,
    reasons: Vec<String>,
    removed: Vec<i32>,
    resynced: Vec<i32>,
}

impl Pair {
    pub async fn new(bulk: TestDb, reference: TestDb) -> Result<Pair, String> {
        let columns = Columns::read(reference.store.connection())
            .await
            .map_err(|e| e.to_string())?;
        Ok(Pair {
            bulk,
            reference,
            columns,
        })
    }

    /// Runs `steps` on both databases from empty tables; `Err` says where
    /// and how they first differ.
    pub async fn check(&self, steps: &[Step]) -> Result<(), String> {
        for db in [&self.bulk, &self.reference] {
            let conn = db.store.connection();
            for table in AFE_TABLES.iter().rev() {
                conn.execute_unprepared(&format!("DELETE FROM {table}"))
                    .await
                    .map_err(|e| format!("emptying {table}: {e}"))?;
            }
        }
        for (i, step) in steps.iter().enumerate() {
            let at = |what: String| format!("step {} of {}: {what}", i + 1, steps.len());
            match step {
                Step::Response(json) => {
                    let bulk = self.bulk_apply(json).await.map_err(at)?;
                    let reference = self.reference_apply(json).await.map_err(at)?;
                    if (&bulk.rejected, &bulk.removed, &bulk.resynced)
                        != (&reference.rejected, &reference.removed, &reference.resynced)
                    {
                        return Err(at(format!(
                            "the outcomes differ\n  bulk:      rejected {:?}, removed {:?}, \
                             resynced {:?}\n    reasons: {:#?}\n  reference: rejected {:?}, \
                             removed {:?}, resynced {:?}\n    reasons: {:#?}",
                            bulk.rejected,
                            bulk.removed,
                            bulk.resynced,
                            bulk.reasons,
                            reference.rejected,
                            reference.removed,
                            reference.resynced,
                            reference.reasons
                        )));
                    }
                }
                Step::Shard(sql) => {
                    let a = self.bulk.store.connection().execute_unprepared(sql).await;
                    let b = self
                        .reference
                        .store
                        .connection()
                        .execute_unprepared(sql)
                        .await;
                    if a.is_ok() != b.is_ok() {
                        return Err(at(format!("`{sql}`: bulk {a:?}, reference {b:?}")));
                    }
                }
            }
            let diff = self.diff().await.map_err(at)?;
            if !diff.is_empty() {
                return Err(at(format!("the tables differ\n{diff}")));
            }
        }
        Ok(())
    }

    /// The bulk path as the engine runs it (§7 steps 4–6, one write
    /// transaction): parse, apply, remove incorrect hosts, re-sync.
    async fn bulk_apply(&self, json: &serde_json::Value) -> Result<Outcome, String> {
        let bytes = serde_json::to_vec(json).map_err(|e| e.to_string())?;
        let response = HeartbeatResponse::from_json(&bytes).map_err(|e| format!("parse: {e}"))?;
        let conn = self.bulk.store.connection();
        let txn = begin_write(conn).await.map_err(|e| e.to_string())?;
        let applied = apply(&txn, &self.bulk.store.layout(), &response)
            .await
            .map_err(|e| format!("bulk apply failed: {e}"))?;
        let removed = remove_incorrect_hosts(&txn, &response.incorrect_host_ids)
            .await
            .map_err(|e| e.to_string())?;
        // As the engine's `resent_job_ids`: parsed jobs and refused ones.
        let resent: Vec<i32> = response
            .jobs
            .iter()
            .map(|j| j.id)
            .chain(
                response
                    .rejected
                    .iter()
                    .filter(|r| r.kind == RecordKind::Job)
                    .filter_map(|r| r.id.and_then(|id| i32::try_from(id).ok())),
            )
            .collect();
        let resynced = resync_completed_jobs(&txn, &resent)
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

    async fn reference_apply(&self, json: &serde_json::Value) -> Result<Outcome, String> {
        let json = Json::deserialize(json).map_err(|e| e.to_string())?;
        let report = reference::apply(self.reference.store.connection(), &json)
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

    /// Every `afe_` table of both sides, as sorted rows; empty when equal.
    async fn diff(&self) -> Result<String, String> {
        let mut out = String::new();
        for table in AFE_TABLES {
            let mut columns = self.columns.names(table);
            if NUMBERED_BY_THE_DATABASE.contains(&table) {
                columns.retain(|c| *c != "id");
            }
            let bulk = rows(self.bulk.store.connection(), table, &columns).await?;
            let reference = rows(self.reference.store.connection(), table, &columns).await?;
            if bulk == reference {
                continue;
            }
            let only = |a: &[Row], b: &[Row]| -> Vec<Row> {
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
            };
            out.push_str(&format!("  {table} ({}):\n", columns.join(", ")));
            for r in only(&bulk, &reference) {
                out.push_str(&format!("    bulk only:      {}\n", show(&r)));
            }
            for r in only(&reference, &bulk) {
                out.push_str(&format!("    reference only: {}\n", show(&r)));
            }
        }
        Ok(out)
    }
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

type Row = Vec<Option<String>>;

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
