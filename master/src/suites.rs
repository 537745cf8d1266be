//! The master's own scheduling of hostless suite jobs, for demos and tests.
//!
//! A suite job's entry has no host and no meta host: it never goes to a
//! shard (§8) and in a real lab the master's scheduler runs it on a drone
//! while its child jobs run on the shards. This reference master has no
//! scheduler, so [`complete_finished_suites`] stands in for it: a suite's
//! entry completes once every child of the suite has completed.

use std::collections::{HashMap, HashSet};

use chrono::{Local, Timelike};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Query};
use shard_store::schema::chunk;
use shard_store::schema::entity::{hqes, jobs};

use crate::Fault;

/// The status a finished suite entry gets.
const COMPLETED: &str = "Completed";

fn incomplete() -> Condition {
    Condition::any()
        .add(Expr::col(hqes::Column::Complete).eq(false))
        .add(Expr::col(hqes::Column::Complete).is_null())
}

/// Completes the hostless entries of suite jobs whose children are all
/// complete; returns the suite job ids it completed.
pub async fn complete_finished_suites(db: &impl ConnectionTrait) -> Result<Vec<i32>, Fault> {
    let b = db.get_database_backend();
    let pending = Query::select()
        .columns([hqes::Column::Id, hqes::Column::JobId])
        .from(hqes::Entity)
        .and_where(Expr::col(hqes::Column::HostId).is_null())
        .and_where(Expr::col(hqes::Column::MetaHost).is_null())
        .cond_where(incomplete())
        .to_owned();
    let mut suite_entries: Vec<(i32, i32)> = Vec::new();
    for row in db.query_all(&pending).await? {
        let id: i32 = row.try_get_by_index(0)?;
        if let Some(job) = row.try_get_by_index::<Option<i32>>(1)? {
            suite_entries.push((id, job));
        }
    }
    let suites: Vec<i32> = suite_entries.iter().map(|(_, job)| *job).collect();
    let mut child_of: HashMap<i32, i32> = HashMap::new();
    for chunk in chunk::by_params(b, 1, &suites) {
        let stmt = Query::select()
            .columns([jobs::Column::Id, jobs::Column::ParentJobId])
            .from(jobs::Entity)
            .and_where(Expr::col(jobs::Column::ParentJobId).is_in(chunk.iter().copied()))
            .to_owned();
        for row in db.query_all(&stmt).await? {
            let id: i32 = row.try_get_by_index(0)?;
            if let Some(parent) = row.try_get_by_index::<Option<i32>>(1)? {
                child_of.insert(id, parent);
            }
        }
    }
    let children: Vec<i32> = child_of.keys().copied().collect();
    let mut busy: HashSet<i32> = HashSet::new();
    for chunk in chunk::by_params(b, 1, &children) {
        let stmt = Query::select()
            .column(hqes::Column::JobId)
            .from(hqes::Entity)
            .and_where(Expr::col(hqes::Column::JobId).is_in(chunk.iter().copied()))
            .cond_where(incomplete())
            .to_owned();
        for row in db.query_all(&stmt).await? {
            if let Some(child) = row.try_get_by_index::<Option<i32>>(0)?
                && let Some(parent) = child_of.get(&child)
            {
                busy.insert(*parent);
            }
        }
    }
    let done: Vec<(i32, i32)> = suite_entries
        .into_iter()
        .filter(|(_, job)| !busy.contains(job))
        .collect();
    let now = Local::now().naive_local().with_nanosecond(0);
    let entry_ids: Vec<i32> = done.iter().map(|(id, _)| *id).collect();
    for chunk in chunk::by_params(b, 1, &entry_ids) {
        let stmt = Query::update()
            .table(hqes::Entity)
            .value(hqes::Column::Status, COMPLETED)
            .value(hqes::Column::Complete, true)
            .value(hqes::Column::Active, false)
            .value(hqes::Column::FinishedOn, now)
            .and_where(Expr::col(hqes::Column::Id).is_in(chunk.iter().copied()))
            .to_owned();
        db.execute(&stmt).await?;
    }
    Ok(done.into_iter().map(|(_, job)| job).collect())
}
