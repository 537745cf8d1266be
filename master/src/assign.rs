//! §8 steps 4 and 5: which hosts and jobs go to a shard.
//!
//! Each assignment is three set-based steps, public so that tests can
//! interleave a concurrent change between them, as the original's test hook
//! did: select the candidates, update them *conditionally* (the update
//! re-checks the label, the lease and the owner), then read back what was
//! really assigned. A label removed from the shard between the first two
//! steps, or (in strict mode) a job taken by another shard meanwhile, is
//! therefore never handed out.
//!
//! A host's current shard is never checked, in either mode, as in the
//! original: when its board moves to another shard the host follows, and
//! the old shard gets it in `incorrect_host_ids`. A job's current shard is
//! checked only in strict mode (see [`job_candidates`]).

use std::collections::{BTreeSet, HashSet};

use sea_orm::sea_query::{Condition, Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{ConnectionTrait, StatementBuilder};
use shard_store::schema::chunk;
use shard_store::schema::entity::{host_labels, hosts, hqes, job_labels, jobs, shard_labels};

use crate::{Fault, Mode};

/// Labels of the shard: `SELECT label_id FROM afe_shards_labels WHERE shard_id = ?`.
fn shard_label_ids(shard_id: i32) -> SelectStatement {
    Query::select()
        .column(shard_labels::Column::LabelId)
        .from(shard_labels::Entity)
        .and_where(Expr::col(shard_labels::Column::ShardId).eq(shard_id))
        .to_owned()
}

/// Hosts carrying one of the shard's labels.
fn hosts_with_shard_label(shard_id: i32) -> SelectStatement {
    Query::select()
        .column(host_labels::Column::HostId)
        .from(host_labels::Entity)
        .and_where(Expr::col(host_labels::Column::LabelId).in_subquery(shard_label_ids(shard_id)))
        .to_owned()
}

/// The host condition of §8 step 4: a label of the shard and not leased.
fn host_belongs(shard_id: i32) -> Condition {
    Condition::all()
        .add(
            Expr::col((hosts::Entity, hosts::Column::Id))
                .in_subquery(hosts_with_shard_label(shard_id)),
        )
        .add(Expr::col((hosts::Entity, hosts::Column::Leased)).eq(false))
}

/// Step 4, select: hosts of the shard's labels, not leased, not known.
pub async fn host_candidates(
    db: &impl ConnectionTrait,
    shard_id: i32,
    known_host_ids: &[i32],
) -> Result<Vec<i32>, Fault> {
    let stmt = Query::select()
        .column((hosts::Entity, hosts::Column::Id))
        .from(hosts::Entity)
        .cond_where(host_belongs(shard_id))
        .order_by((hosts::Entity, hosts::Column::Id), sea_orm::Order::Asc)
        .to_owned();
    let known: HashSet<i32> = known_host_ids.iter().copied().collect();
    Ok(ids(db, &stmt)
        .await?
        .into_iter()
        .filter(|id| !known.contains(id))
        .collect())
}

/// Step 4, update and read back: assigns the candidates that still qualify
/// and returns those now assigned to the shard.
pub async fn assign_hosts(
    db: &impl ConnectionTrait,
    shard_id: i32,
    candidates: &[i32],
) -> Result<Vec<i32>, Fault> {
    let b = db.get_database_backend();
    for chunk in chunk::by_params(b, 1, candidates) {
        let stmt = Query::update()
            .table(hosts::Entity)
            .value(hosts::Column::ShardId, shard_id)
            .and_where(Expr::col((hosts::Entity, hosts::Column::Id)).is_in(chunk.iter().copied()))
            .cond_where(host_belongs(shard_id))
            .to_owned();
        db.execute(&stmt).await?;
    }
    assigned(
        db,
        hosts::Entity,
        hosts::Column::Id,
        hosts::Column::ShardId,
        shard_id,
        candidates,
    )
    .await
}

/// Incorrect host ids: known ids of hosts that exist here and are not
/// assigned to this shard (unassigned ones included).
pub async fn incorrect_host_ids(
    db: &impl ConnectionTrait,
    shard_id: i32,
    known_host_ids: &[i32],
) -> Result<Vec<i32>, Fault> {
    let mut out = Vec::new();
    for chunk in chunk::by_params(db.get_database_backend(), 1, known_host_ids) {
        let stmt = Query::select()
            .column(hosts::Column::Id)
            .from(hosts::Entity)
            .and_where(Expr::col(hosts::Column::Id).is_in(chunk.iter().copied()))
            .cond_where(
                Condition::any()
                    .add(Expr::col(hosts::Column::ShardId).is_null())
                    .add(Expr::col(hosts::Column::ShardId).ne(shard_id)),
            )
            .order_by(hosts::Column::Id, sea_orm::Order::Asc)
            .to_owned();
        out.extend(ids(db, &stmt).await?);
    }
    Ok(out)
}

/// Entries of `afe_host_queue_entries` matching `extra`, by job.
fn entries(extra: Condition) -> SelectStatement {
    Query::select()
        .column(hqes::Column::JobId)
        .from(hqes::Entity)
        .cond_where(extra)
        .to_owned()
}

/// Jobs depending on one of the shard's labels.
fn jobs_by_dependency(shard_id: i32) -> SelectStatement {
    Query::select()
        .column(job_labels::Column::JobId)
        .from(job_labels::Entity)
        .and_where(Expr::col(job_labels::Column::LabelId).in_subquery(shard_label_ids(shard_id)))
        .to_owned()
}

/// An entry that ties its job to the shard: a meta host among the shard's
/// labels, or no meta host and a host carrying one of them.
fn entry_matches(shard_id: i32) -> Condition {
    Condition::any()
        .add(Expr::col(hqes::Column::MetaHost).in_subquery(shard_label_ids(shard_id)))
        .add(
            Condition::all()
                .add(Expr::col(hqes::Column::MetaHost).is_null())
                .add(Expr::col(hqes::Column::HostId).in_subquery(hosts_with_shard_label(shard_id))),
        )
}

/// The job condition of §8 step 5, on `afe_jobs`: has an entry; no entry
/// complete or active; and either a dependency label among the shard's
/// labels or an entry that matches the shard. The strict mode adds: not
/// another shard's; upstream, as the original, never looks at the owner
/// (a job whose board moved follows it to the new shard).
fn job_qualifies(shard_id: i32, mode: Mode) -> Condition {
    let job_id = Expr::col((jobs::Entity, jobs::Column::Id));
    let started = entries(
        Condition::any()
            .add(Expr::col(hqes::Column::Complete).eq(true))
            .add(Expr::col(hqes::Column::Active).eq(true)),
    );
    let mut condition = Condition::all()
        .add(job_id.clone().in_subquery(entries(Condition::all())))
        .add(job_id.clone().not_in_subquery(started))
        .add(
            Condition::any()
                .add(job_id.clone().in_subquery(jobs_by_dependency(shard_id)))
                .add(job_id.in_subquery(entries(entry_matches(shard_id)))),
        );
    if mode == Mode::Strict {
        condition = condition.add(
            Condition::any()
                .add(Expr::col((jobs::Entity, jobs::Column::ShardId)).is_null())
                .add(Expr::col((jobs::Entity, jobs::Column::ShardId)).eq(shard_id)),
        );
    }
    condition
}

/// Step 5, select: qualifying jobs the shard does not know, plus known jobs
/// resent because of an abort. A hostless job (no host, no meta host, no
/// dependency on a shard label) matches nothing and stays on the master.
///
/// Which known jobs are resent differs by mode:
/// - upstream, as the original's SQL (`SQL_SHARD_JOBS` with its
///   known-jobs clause, then `SQL_JOBS_TO_EXCLUDE`): a qualifying job with
///   an aborted entry that itself ties the job to the shard. Once an entry
///   is active or complete on the master the abort no longer reaches the
///   shard.
/// - strict: besides those, any known job of this shard with an aborted
///   entry, started or not, so that an abort always reaches a shard still
///   running the job.
pub async fn job_candidates(
    db: &impl ConnectionTrait,
    shard_id: i32,
    known_job_ids: &[i32],
    mode: Mode,
) -> Result<Vec<i32>, Fault> {
    let b = db.get_database_backend();
    let stmt = Query::select()
        .column((jobs::Entity, jobs::Column::Id))
        .from(jobs::Entity)
        .cond_where(job_qualifies(shard_id, mode))
        .order_by((jobs::Entity, jobs::Column::Id), sea_orm::Order::Asc)
        .to_owned();
    let candidates = ids(db, &stmt).await?;
    let known: HashSet<i32> = known_job_ids.iter().copied().collect();
    let mut resent: BTreeSet<i32> = BTreeSet::new();
    match mode {
        Mode::Upstream => {
            let known_candidates: Vec<i32> = candidates
                .iter()
                .copied()
                .filter(|id| known.contains(id))
                .collect();
            for chunk in chunk::by_params(b, 1, &known_candidates) {
                let stmt = aborted_entries_of(chunk)
                    .cond_where(
                        Condition::any()
                            .add(
                                Expr::col(hqes::Column::JobId)
                                    .in_subquery(jobs_by_dependency(shard_id)),
                            )
                            .add(entry_matches(shard_id)),
                    )
                    .to_owned();
                resent.extend(ids(db, &stmt).await?);
            }
        }
        Mode::Strict => {
            let mut known_ids: Vec<i32> = known.iter().copied().collect();
            known_ids.sort_unstable();
            let mut aborted = Vec::new();
            for chunk in chunk::by_params(b, 1, &known_ids) {
                aborted.extend(ids(db, &aborted_entries_of(chunk)).await?);
            }
            let qualifying: HashSet<i32> = candidates.iter().copied().collect();
            let mut owned = HashSet::new();
            for chunk in chunk::by_params(b, 1, &aborted) {
                let stmt = Query::select()
                    .column(jobs::Column::Id)
                    .from(jobs::Entity)
                    .and_where(Expr::col(jobs::Column::Id).is_in(chunk.iter().copied()))
                    .and_where(Expr::col(jobs::Column::ShardId).eq(shard_id))
                    .to_owned();
                owned.extend(ids(db, &stmt).await?);
            }
            resent.extend(
                aborted
                    .into_iter()
                    .filter(|id| qualifying.contains(id) || owned.contains(id)),
            );
        }
    }
    let mut out: BTreeSet<i32> = candidates
        .into_iter()
        .filter(|id| !known.contains(id))
        .collect();
    out.extend(resent);
    Ok(out.into_iter().collect())
}

/// `SELECT DISTINCT job_id FROM afe_host_queue_entries WHERE job_id IN
/// (jobs) AND aborted`, to be narrowed further by the caller.
fn aborted_entries_of(jobs: &[i32]) -> SelectStatement {
    Query::select()
        .distinct()
        .column(hqes::Column::JobId)
        .from(hqes::Entity)
        .and_where(Expr::col(hqes::Column::JobId).is_in(jobs.iter().copied()))
        .and_where(Expr::col(hqes::Column::Aborted).eq(true))
        .to_owned()
}

/// Step 5, update and read back: assigns the candidates that still qualify
/// (in strict mode: that no other shard took meanwhile) and returns those
/// now assigned to the shard. A known job resent for its abort is already
/// the shard's and is returned as it is.
pub async fn assign_jobs(
    db: &impl ConnectionTrait,
    shard_id: i32,
    candidates: &[i32],
    mode: Mode,
) -> Result<Vec<i32>, Fault> {
    let b = db.get_database_backend();
    for chunk in chunk::by_params(b, 1, candidates) {
        let stmt = Query::update()
            .table(jobs::Entity)
            .value(jobs::Column::ShardId, shard_id)
            .and_where(Expr::col((jobs::Entity, jobs::Column::Id)).is_in(chunk.iter().copied()))
            .cond_where(job_qualifies(shard_id, mode))
            .to_owned();
        db.execute(&stmt).await?;
    }
    assigned(
        db,
        jobs::Entity,
        jobs::Column::Id,
        jobs::Column::ShardId,
        shard_id,
        candidates,
    )
    .await
}

/// Of `candidates`, those whose owner column is now `shard_id`.
async fn assigned<E: sea_orm::EntityTrait>(
    db: &impl ConnectionTrait,
    table: E,
    id: E::Column,
    owner: E::Column,
    shard_id: i32,
    candidates: &[i32],
) -> Result<Vec<i32>, Fault> {
    let mut out = Vec::new();
    for chunk in chunk::by_params(db.get_database_backend(), 1, candidates) {
        let stmt = Query::select()
            .column(id)
            .from(table)
            .and_where(Expr::col(id).is_in(chunk.iter().copied()))
            .and_where(Expr::col(owner).eq(shard_id))
            .order_by(id, sea_orm::Order::Asc)
            .to_owned();
        out.extend(ids(db, &stmt).await?);
    }
    Ok(out)
}

/// Runs a one-column select of ids.
async fn ids(db: &impl ConnectionTrait, stmt: &impl StatementBuilder) -> Result<Vec<i32>, Fault> {
    let rows = db.query_all(stmt).await?;
    rows.iter()
        .map(|row| row.try_get_by_index::<i32>(0).map_err(Fault::from))
        .collect()
}
