//! Where the time of apply, re-apply and floor goes, seen from outside the
//! store: one extra, untimed-for-targets pass per backend over a clone of
//! the store's connection whose metric callback records each statement's
//! kind (`INSERT afe_jobs`, `SELECT afe_labels`, ...) and driver time.
//!
//! The rest of a phase's wall time is spent outside statements: building
//! the snapshot's maps, planning, building SQL and bind values, and the
//! transaction control the callback does not see (BEGIN, SAVEPOINT,
//! COMMIT).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use sea_orm::DatabaseConnection;
use shard_store::testing::Backend;

use super::floor::{self, Rows};
use super::lab::Response;
use crate::db;

/// Statements of one kind: how many, and their summed driver time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kind {
    /// Statements executed.
    pub count: u64,
    /// Their summed time, as the driver measured it.
    pub time: Duration,
}

/// One phase's wall time and its statements by kind.
#[derive(Debug, Clone, Default)]
pub struct Breakdown {
    /// Wall time of the whole phase.
    pub total: Duration,
    /// Statements by `"<VERB> <table>"`.
    pub kinds: BTreeMap<String, Kind>,
}

impl Breakdown {
    /// Statements and time of one verb (`SELECT`, `INSERT`, ...), all
    /// tables together.
    pub fn verb(&self, verb: &str) -> Kind {
        self.kinds
            .iter()
            .filter(|(k, _)| k.split(' ').next() == Some(verb))
            .fold(Kind::default(), |a, (_, k)| Kind {
                count: a.count + k.count,
                time: a.time + k.time,
            })
    }

    /// Wall time not spent inside a statement.
    pub fn outside(&self) -> Duration {
        let inside: Duration = self.kinds.values().map(|k| k.time).sum();
        self.total.saturating_sub(inside)
    }

    /// The `n` kinds of statement that took the most time.
    pub fn top(&self, n: usize) -> Vec<(&str, Kind)> {
        let mut kinds: Vec<(&str, Kind)> =
            self.kinds.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        kinds.sort_by_key(|(_, k)| std::cmp::Reverse(k.time));
        kinds.truncate(n);
        kinds
    }
}

/// The breakdowns of the three write phases on the main lab.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// (b) apply into an empty database.
    pub apply: Breakdown,
    /// (c) re-apply into the filled database.
    pub reapply: Breakdown,
    /// (e) the floor.
    pub floor: Breakdown,
}

type Log = Arc<Mutex<Vec<(String, Duration)>>>;

/// Runs apply, re-apply and floor once more on fresh databases, recording
/// every statement.
pub async fn profile(backend: Backend, lab: &Response) -> Result<Profile> {
    let response = lab.parse()?;
    let log: Log = Arc::default();

    let target = db::fresh(backend).await?;
    let conn = recording(target.store.connection(), &log);
    let phases = async {
        let apply = breakdown(&log, async {
            shard_store::apply(&conn, &target.store.layout(), &response)
                .await
                .context("applying the lab")
        })
        .await?;
        let reapply = breakdown(&log, async {
            shard_store::apply(&conn, &target.store.layout(), &response)
                .await
                .context("re-applying the lab")
        })
        .await?;
        ensure!(
            apply.1.rejected.is_empty() && reapply.1.rejected.is_empty(),
            "the store rejected records of the generated lab"
        );
        Ok((apply.0, reapply.0))
    }
    .await;
    let layout = target.store.layout();
    db::discard(target).await?;
    let (apply, reapply) = phases?;

    let rows = Rows::from_response(&response, &layout);
    drop(response);
    let target = db::fresh(backend).await?;
    let conn = recording(target.store.connection(), &log);
    let floor = breakdown(&log, floor::write(&conn, &rows)).await;
    db::discard(target).await?;
    Ok(Profile {
        apply,
        reapply,
        floor: floor?.0,
    })
}

/// A clone of `db` whose statements are recorded in `log` (instead of
/// being counted by the store).
fn recording(db: &DatabaseConnection, log: &Log) -> DatabaseConnection {
    let mut conn = db.clone();
    let log = Arc::clone(log);
    conn.set_metric_callback(move |info| {
        let kind = statement_kind(&info.statement.sql);
        if let Ok(mut log) = log.lock() {
            log.push((kind, info.elapsed));
        }
    });
    conn
}

/// Times `phase` and collects the statements it logged.
async fn breakdown<T>(log: &Log, phase: impl Future<Output = Result<T>>) -> Result<(Breakdown, T)> {
    if let Ok(mut log) = log.lock() {
        log.clear();
    }
    let start = Instant::now();
    let value = phase.await?;
    let total = start.elapsed();
    let mut kinds: BTreeMap<String, Kind> = BTreeMap::new();
    if let Ok(mut log) = log.lock() {
        for (kind, time) in log.drain(..) {
            let k = kinds.entry(kind).or_default();
            k.count += 1;
            k.time += time;
        }
    }
    Ok((Breakdown { total, kinds }, value))
}

/// `"<VERB> <first afe_ table>"` of a statement, e.g. `INSERT afe_jobs`.
fn statement_kind(sql: &str) -> String {
    let verb: String = sql
        .trim_start()
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_uppercase();
    let table = sql.find("afe_").map(|at| {
        sql[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect::<String>()
    });
    match table {
        Some(table) => format!("{verb} {table}"),
        None => verb,
    }
}
