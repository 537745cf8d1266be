//! `shard_heartbeat` on the master (§8), step by step, in one transaction.

use std::collections::{BTreeSet, HashMap};

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use shard_model::{HeartbeatRequest, HeartbeatResponse};
use shard_store::chunk;
use shard_store::entity::{afe_hosts as hosts, afe_shards as shards};

use crate::{Fault, assign, load, uploads};

/// Answers one heartbeat: finds the shard, persists its uploads, syncs its
/// host statuses, assigns hosts and jobs, and returns them with their
/// dependencies and the suite keyvals of their parents.
pub async fn shard_heartbeat(
    db: &DatabaseConnection,
    request: &HeartbeatRequest,
) -> Result<HeartbeatResponse, Fault> {
    let txn = shard_store::begin_write(db).await?;
    let shard_id = find_shard(&txn, &request.shard_hostname).await?;
    uploads::persist(&txn, shard_id, &request.jobs, &request.hqes).await?;
    sync_host_statuses(&txn, &request.known_host_ids, &request.known_host_statuses).await?;

    let candidates = assign::host_candidates(&txn, shard_id, &request.known_host_ids).await?;
    let host_ids = assign::assign_hosts(&txn, shard_id, &candidates).await?;
    let incorrect_host_ids =
        assign::incorrect_host_ids(&txn, shard_id, &request.known_host_ids).await?;
    let candidates = assign::job_candidates(&txn, shard_id, &request.known_job_ids).await?;
    let job_ids = assign::assign_jobs(&txn, shard_id, &candidates).await?;

    let hosts = load::hosts_with_dependencies(&txn, &host_ids).await?;
    let jobs = load::jobs_with_dependencies(&txn, &job_ids).await?;
    let parents: BTreeSet<i32> = jobs.iter().filter_map(|j| j.parent_job_id).collect();
    let suite_keyvals = load::keyvals_of(&txn, &parents.into_iter().collect::<Vec<_>>()).await?;
    txn.commit().await?;
    tracing::info!(
        shard = %request.shard_hostname,
        uploaded_jobs = request.jobs.len(),
        hosts = hosts.len(),
        jobs = jobs.len(),
        incorrect_hosts = incorrect_host_ids.len(),
        "heartbeat answered"
    );
    Ok(HeartbeatResponse {
        hosts,
        jobs,
        suite_keyvals,
        incorrect_host_ids,
        rejected: Vec::new(),
    })
}

/// §8 step 1: the shard by hostname (the lowest id if several share it).
async fn find_shard(db: &impl ConnectionTrait, hostname: &str) -> Result<i32, Fault> {
    shards::Entity::find()
        .select_only()
        .column(shards::Column::Id)
        .filter(shards::Column::Hostname.eq(hostname))
        .order_by_asc(shards::Column::Id)
        .into_tuple::<i32>()
        .one(db)
        .await?
        .ok_or_else(|| Fault::new("DoesNotExist", "Shard matching query does not exist."))
}

/// §8 step 3: the master takes the shard's word for its hosts' statuses.
/// Ids the master does not have are skipped; lists of different lengths
/// are refused.
async fn sync_host_statuses(
    db: &impl ConnectionTrait,
    ids: &[i32],
    statuses: &[Option<String>],
) -> Result<(), Fault> {
    if ids.len() != statuses.len() {
        return Err(Fault::new(
            "AssertionError",
            format!(
                "known_host_ids has {} entries but known_host_statuses has {}",
                ids.len(),
                statuses.len()
            ),
        ));
    }
    let reported: HashMap<i32, &Option<String>> = ids.iter().copied().zip(statuses).collect();
    let mut changed: Vec<(i32, Option<String>)> = Vec::new();
    for chunk in chunk::by_params(db.get_database_backend(), 1, ids) {
        let current: Vec<(i32, Option<String>)> = hosts::Entity::find()
            .select_only()
            .columns([hosts::Column::Id, hosts::Column::Status])
            .filter(hosts::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        for (id, status) in current {
            if let Some(&new) = reported.get(&id)
                && *new != status
            {
                changed.push((id, new.clone()));
            }
        }
    }
    for chunk in chunk::by_params(db.get_database_backend(), 3, &changed) {
        let Some((first_id, first)) = chunk.first() else {
            continue;
        };
        let mut case = Expr::case(Expr::col(hosts::Column::Id).eq(*first_id), first.clone());
        for (id, status) in &chunk[1..] {
            case = case.case(Expr::col(hosts::Column::Id).eq(*id), status.clone());
        }
        let stmt = Query::update()
            .table(hosts::Entity)
            .value(hosts::Column::Status, case)
            .and_where(Expr::col(hosts::Column::Id).is_in(chunk.iter().map(|(id, _)| *id)))
            .to_owned();
        db.execute(&stmt).await?;
    }
    Ok(())
}
