//! What the demo reads from the lab: progress per shard, the master's own
//! scheduling of hostless suite jobs, and the final summary.
//!
//! The demo runs on SQLite only, so plain SQL in SQLite's dialect is used
//! here; the product's code never does this.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use shard_store::Store;

/// A job counts as finished when it has entries and none is incomplete.
const FINISHED_JOB: &str = "EXISTS (SELECT 1 FROM afe_host_queue_entries q WHERE q.job_id = j.id) \
     AND NOT EXISTS (SELECT 1 FROM afe_host_queue_entries q WHERE q.job_id = j.id \
                     AND (q.complete = 0 OR q.complete IS NULL))";

/// Progress of one shard.
#[derive(Debug, Clone, Default)]
pub struct ShardProgress {
    /// Child jobs of this shard's boards, on the master.
    pub expected: u64,
    /// Jobs the master has assigned to this shard.
    pub assigned: u64,
    /// Entries running on the shard now.
    pub running: u64,
    /// Jobs finished in the shard database.
    pub done_on_shard: u64,
    /// This shard's jobs finished on the master (uploaded).
    pub synced: u64,
}

/// Progress of the lab.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Per shard, `shard1` first.
    pub shards: Vec<ShardProgress>,
    /// Entries not complete on the master.
    pub incomplete_on_master: u64,
}

async fn counts(db: &Store, sql: &str) -> Result<HashMap<i64, u64>> {
    let rows = db
        .connection()
        .query_all_raw(Statement::from_string(DbBackend::Sqlite, sql.to_owned()))
        .await?;
    let mut out = HashMap::new();
    for row in rows {
        let key: i64 = row.try_get_by_index(0)?;
        let count: i64 = row.try_get_by_index(1)?;
        out.insert(key, u64::try_from(count).unwrap_or(0));
    }
    Ok(out)
}

async fn count(db: &Store, sql: &str) -> Result<u64> {
    Ok(counts(db, &format!("SELECT 0, ({sql})"))
        .await?
        .get(&0)
        .copied()
        .unwrap_or(0))
}

/// Shard id by its position (`shard1` → index 0), from the hostnames.
async fn shard_ids(master: &Store, shards: usize) -> Result<Vec<Option<i64>>> {
    let rows = master
        .connection()
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT id, hostname FROM afe_shards".to_owned(),
        ))
        .await?;
    let mut by_name = HashMap::new();
    for row in rows {
        let id: i64 = row.try_get_by_index(0)?;
        let name: String = row.try_get_by_index(1)?;
        by_name.insert(name, id);
    }
    Ok((1..=shards)
        .map(|n| by_name.get(&format!("shard{n}")).copied())
        .collect())
}

/// Reads the progress of every shard.
pub async fn progress(master: &Store, shards: &[Store]) -> Result<Progress> {
    let ids = shard_ids(master, shards.len()).await?;
    let expected = counts(
        master,
        "SELECT s.shard_id, COUNT(DISTINCT d.job_id) FROM afe_jobs_dependency_labels d \
         JOIN afe_shards_labels s ON s.label_id = d.label_id GROUP BY s.shard_id",
    )
    .await?;
    let assigned = counts(
        master,
        "SELECT shard_id, COUNT(*) FROM afe_jobs WHERE shard_id IS NOT NULL GROUP BY shard_id",
    )
    .await?;
    let synced = counts(
        master,
        &format!("SELECT j.shard_id, COUNT(*) FROM afe_jobs j WHERE j.shard_id IS NOT NULL AND {FINISHED_JOB} GROUP BY j.shard_id"),
    )
    .await?;
    let mut out = Progress {
        incomplete_on_master: count(
            master,
            "SELECT COUNT(*) FROM afe_host_queue_entries WHERE complete = 0 OR complete IS NULL",
        )
        .await?,
        shards: Vec::with_capacity(shards.len()),
    };
    for (shard, id) in shards.iter().zip(ids) {
        let of = |map: &HashMap<i64, u64>| id.and_then(|id| map.get(&id)).copied().unwrap_or(0);
        out.shards.push(ShardProgress {
            expected: of(&expected),
            assigned: of(&assigned),
            synced: of(&synced),
            running: count(
                shard,
                "SELECT COUNT(*) FROM afe_host_queue_entries WHERE active = 1",
            )
            .await?,
            done_on_shard: count(
                shard,
                &format!("SELECT COUNT(*) FROM afe_jobs j WHERE {FINISHED_JOB}"),
            )
            .await?,
        });
    }
    Ok(out)
}

/// The lab at the end, for the summary.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// All jobs on the master.
    pub jobs: u64,
    /// Jobs with a parent (run by shards).
    pub child_jobs: u64,
    /// Finished jobs on the master.
    pub finished_jobs: u64,
    /// All hosts on the master.
    pub hosts: u64,
    /// Leased hosts (never sent to a shard).
    pub leased: u64,
    /// Hosts and jobs assigned, per shard.
    pub per_shard: Vec<(u64, u64)>,
}

/// Counts the lab on the master.
pub async fn final_counts(master: &Store, shards: u32) -> Result<Report> {
    let ids = shard_ids(master, shards as usize).await?;
    let hosts = counts(
        master,
        "SELECT shard_id, COUNT(*) FROM afe_hosts WHERE shard_id IS NOT NULL GROUP BY shard_id",
    )
    .await?;
    let jobs = counts(
        master,
        "SELECT shard_id, COUNT(*) FROM afe_jobs WHERE shard_id IS NOT NULL GROUP BY shard_id",
    )
    .await?;
    Ok(Report {
        jobs: count(master, "SELECT COUNT(*) FROM afe_jobs").await?,
        child_jobs: count(
            master,
            "SELECT COUNT(*) FROM afe_jobs WHERE parent_job_id IS NOT NULL",
        )
        .await?,
        finished_jobs: count(
            master,
            &format!("SELECT COUNT(*) FROM afe_jobs j WHERE {FINISHED_JOB}"),
        )
        .await?,
        hosts: count(master, "SELECT COUNT(*) FROM afe_hosts").await?,
        leased: count(master, "SELECT COUNT(*) FROM afe_hosts WHERE leased = 1").await?,
        per_shard: ids
            .iter()
            .map(|id| {
                let of =
                    |map: &HashMap<i64, u64>| id.and_then(|id| map.get(&id)).copied().unwrap_or(0);
                (of(&hosts), of(&jobs))
            })
            .collect(),
    })
}

/// Every shard's `/metrics` text, `None` where it could not be read.
pub async fn scrape_all(urls: &[String]) -> Vec<Option<String>> {
    let mut out = Vec::with_capacity(urls.len());
    for url in urls {
        out.push(
            shard_tests::scrape::get(url, Duration::from_secs(2))
                .await
                .ok()
                .map(|answer| answer.body),
        );
    }
    out
}

/// Each shard's heartbeat durations in milliseconds, from its JSON log.
pub fn heartbeat_times(dir: &Path, shards: u32) -> Vec<Vec<f64>> {
    (1..=shards)
        .map(|n| {
            let log =
                std::fs::read_to_string(dir.join(format!("shard-{n}.log"))).unwrap_or_default();
            log.lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .filter(|event| event["message"] == "heartbeat done")
                .map(|event| {
                    ["build_ms", "call_ms", "write_ms"]
                        .iter()
                        .filter_map(|k| event[*k].as_f64())
                        .sum()
                })
                .collect()
        })
        .collect()
}

fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

/// The table printed at the end.
pub fn summary(
    converged: bool,
    report: &Report,
    scraped: &[Option<String>],
    times: &[Vec<f64>],
    took: Duration,
) -> String {
    let mut out = String::new();
    let verdict = if converged {
        "lab converged in"
    } else {
        "lab stopped, NOT converged, after"
    };
    let _ = writeln!(out, "\n{verdict} {:.1} s", took.as_secs_f64());
    let _ = writeln!(
        out,
        "  jobs   {} ({} child jobs run by shards, {} hostless suite jobs on the master), {} finished on the master",
        report.jobs,
        report.child_jobs,
        report.jobs - report.child_jobs,
        report.finished_jobs
    );
    let _ = writeln!(
        out,
        "  hosts  {} ({} leased, never sent to a shard)",
        report.hosts, report.leased
    );
    let _ = writeln!(
        out,
        "\n  {:<8} {:>5} {:>5} {:>10} {:>13} {:>9}",
        "shard", "hosts", "jobs", "heartbeats", "median ms", "failures"
    );
    let mut by_type: HashMap<&str, f64> = HashMap::new();
    for (n, (hosts, jobs)) in report.per_shard.iter().enumerate() {
        let metrics = scraped
            .get(n)
            .and_then(Option::as_deref)
            .unwrap_or_default();
        let heartbeats =
            shard_tests::scrape::sample(metrics, "shard_client_heartbeats_total").unwrap_or(0.0);
        let mut failures = 0.0;
        for kind in shard_engine::metrics::FAILURE_TYPES {
            let series =
                format!("shard_client_heartbeat_failures_total{{failure_type=\"{kind}\"}}");
            let value = shard_tests::scrape::sample(metrics, &series).unwrap_or(0.0);
            failures += value;
            *by_type.entry(kind).or_default() += value;
        }
        let median = times
            .get(n)
            .and_then(|t| median(t))
            .map_or_else(|| "-".to_owned(), |m| format!("{m:.1}"));
        let _ = writeln!(
            out,
            "  shard{:<3} {hosts:>5} {jobs:>5} {heartbeats:>10} {median:>13} {failures:>9}",
            n + 1
        );
    }
    let mut types: Vec<_> = by_type.into_iter().collect();
    types.sort_by(|a, b| a.0.cmp(b.0));
    let list: Vec<String> = types.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(out, "\n  failures by type: {}", list.join(", "));
    out
}
