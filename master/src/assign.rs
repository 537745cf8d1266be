//! §8 steps 4 and 5: which hosts and jobs go to a shard.
//!
//! Each assignment is three set-based steps, public so that tests can
//! interleave a concurrent change between them, as the original's test hook
//! did: select the candidates, update them *conditionally* (the update
//! re-checks the label, the lease and the owner), then read back what was
//! really assigned. A label removed from the shard between the first two
//! steps, or a job taken by another shard meanwhile, is therefore never
//! handed out.

use std::collections::HashSet;

use sea_orm::sea_query::{Condition, Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{ConnectionTrait, StatementBuilder};
use shard_store::chunk;
use shard_store::entity::{
    afe_host_queue_entries as hqes, afe_hosts as hosts, afe_hosts_labels as host_labels,
    afe_jobs as jobs, afe_jobs_dependency_labels as job_labels, afe_shards_labels as shard_labels,
};

use crate::Fault;

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

/// The job condition of §8 step 5, on `afe_jobs`: not another shard's;
/// has an entry; no entry complete or active; and either a dependency
/// label or an entry's meta host among the shard's labels, or an entry
/// bound to a host (no meta host) that carries one of them.
fn job_qualifies(shard_id: i32) -> Condition {
    let job_id = Expr::col((jobs::Entity, jobs::Column::Id));
    let entries = |extra: Condition| {
        Query::select()
            .column(hqes::Column::JobId)
            .from(hqes::Entity)
            .cond_where(extra)
            .to_owned()
    };
    let by_dependency = Query::select()
        .column(job_labels::Column::JobId)
        .from(job_labels::Entity)
        .and_where(Expr::col(job_labels::Column::LabelId).in_subquery(shard_label_ids(shard_id)))
        .to_owned();
    let by_meta_host = entries(
        Condition::all()
            .add(Expr::col(hqes::Column::MetaHost).in_subquery(shard_label_ids(shard_id))),
    );
    let by_host = entries(
        Condition::all()
            .add(Expr::col(hqes::Column::MetaHost).is_null())
            .add(Expr::col(hqes::Column::HostId).in_subquery(hosts_with_shard_label(shard_id))),
    );
    let started = entries(
        Condition::any()
            .add(Expr::col(hqes::Column::Complete).eq(true))
            .add(Expr::col(hqes::Column::Active).eq(true)),
    );
    Condition::all()
        .add(
            Condition::any()
                .add(Expr::col((jobs::Entity, jobs::Column::ShardId)).is_null())
                .add(Expr::col((jobs::Entity, jobs::Column::ShardId)).eq(shard_id)),
        )
        .add(job_id.clone().in_subquery(entries(Condition::all())))
        .add(job_id.clone().not_in_subquery(started))
        .add(
            Condition::any()
                .add(job_id.clone().in_subquery(by_dependency))
                .add(job_id.clone().in_subquery(by_meta_host))
                .add(job_id.in_subquery(by_host)),
        )
}

/// Step 5, select: qualifying jobs, minus the known ones, except known jobs
/// with an aborted entry (resent so the shard learns of the abort). A
/// hostless job (no host, no meta host, no dependency on a shard label)
/// matches nothing and stays on the master.
///
/// The spec's "one of their entries is aborted" is kept, although the
/// original's SQL resends a known job only when *every* entry is aborted:
/// a partial abort must reach the shard too.
pub async fn job_candidates(
    db: &impl ConnectionTrait,
    shard_id: i32,
    known_job_ids: &[i32],
) -> Result<Vec<i32>, Fault> {
    let stmt = Query::select()
        .column((jobs::Entity, jobs::Column::Id))
        .from(jobs::Entity)
        .cond_where(job_qualifies(shard_id))
        .order_by((jobs::Entity, jobs::Column::Id), sea_orm::Order::Asc)
        .to_owned();
    let candidates = ids(db, &stmt).await?;
    let known: HashSet<i32> = known_job_ids.iter().copied().collect();
    let known_candidates: Vec<i32> = candidates
        .iter()
        .copied()
        .filter(|id| known.contains(id))
        .collect();
    let mut aborted = HashSet::new();
    for chunk in chunk::by_params(db.get_database_backend(), 1, &known_candidates) {
        let stmt = Query::select()
            .distinct()
            .column(hqes::Column::JobId)
            .from(hqes::Entity)
            .and_where(Expr::col(hqes::Column::JobId).is_in(chunk.iter().copied()))
            .and_where(Expr::col(hqes::Column::Aborted).eq(true))
            .to_owned();
        aborted.extend(ids(db, &stmt).await?);
    }
    Ok(candidates
        .into_iter()
        .filter(|id| !known.contains(id) || aborted.contains(id))
        .collect())
}

/// Step 5, update and read back: assigns the candidates that still qualify
/// (in particular, that no other shard took meanwhile) and returns those now
/// assigned to the shard.
pub async fn assign_jobs(
    db: &impl ConnectionTrait,
    shard_id: i32,
    candidates: &[i32],
) -> Result<Vec<i32>, Fault> {
    let b = db.get_database_backend();
    for chunk in chunk::by_params(b, 1, candidates) {
        let stmt = Query::update()
            .table(jobs::Entity)
            .value(jobs::Column::ShardId, shard_id)
            .and_where(Expr::col((jobs::Entity, jobs::Column::Id)).is_in(chunk.iter().copied()))
            .cond_where(job_qualifies(shard_id))
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
