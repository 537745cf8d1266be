//! The queries behind one heartbeat packet (§3, §7 steps 1 and 3): what the
//! shard knows, what it uploads, and marking the upload done.
//!
//! Building a packet is a constant number of statements whatever the size
//! of the lab: known jobs, known hosts, jobs to upload, their entries.

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use shard_model::{Hqe, Job};

use crate::chunk;
use crate::convert::{hqe_from_row, job_from_row};
use crate::entity::afe_shards as shards;
use crate::entity::{afe_host_queue_entries as hqes, afe_hosts as hosts, afe_jobs as jobs};
use crate::error::{Context, StoreError};

/// The hosts a packet reports: ids and statuses, in the same order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHosts {
    /// Ids of all hosts with `invalid = 0`, ascending.
    pub ids: Vec<i32>,
    /// The status of each, at the same index.
    pub statuses: Vec<Option<String>>,
}

/// Finished jobs waiting for upload, with every entry of those jobs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upload {
    /// The jobs, oldest id first, in the upload shape.
    pub jobs: Vec<Job>,
    /// Every entry of those jobs, by id.
    pub hqes: Vec<Hqe>,
}

/// Ids of the jobs that have at least one incomplete entry, ascending and
/// without duplicates (the original's join listed a job once per entry).
pub async fn known_job_ids(db: &impl ConnectionTrait) -> Result<Vec<i32>, StoreError> {
    hqes::Entity::find()
        .select_only()
        .column(hqes::Column::JobId)
        .distinct()
        .filter(hqes::Column::Complete.eq(false))
        .filter(hqes::Column::JobId.is_not_null())
        .order_by_asc(hqes::Column::JobId)
        .into_tuple::<i32>()
        .all(db)
        .await
        .context("reading known job ids")
}

/// All hosts with `invalid = 0` and their statuses (§3). A host whose
/// `invalid` is NULL counts as invalid, as in the original's filter.
pub async fn known_hosts(db: &impl ConnectionTrait) -> Result<KnownHosts, StoreError> {
    let rows: Vec<(i32, Option<String>)> = hosts::Entity::find()
        .select_only()
        .columns([hosts::Column::Id, hosts::Column::Status])
        .filter(hosts::Column::Invalid.eq(false))
        .order_by_asc(hosts::Column::Id)
        .into_tuple()
        .all(db)
        .await
        .context("reading known hosts")?;
    let (ids, statuses) = rows.into_iter().unzip();
    Ok(KnownHosts { ids, statuses })
}

/// Up to `limit` jobs to upload (§7 step 1): `shard_id IS NULL` and at least
/// one complete entry, oldest ids first, with all their entries.
pub async fn jobs_to_upload(db: &impl ConnectionTrait, limit: u64) -> Result<Upload, StoreError> {
    let finished = Query::select()
        .column(hqes::Column::JobId)
        .from(hqes::Entity)
        .and_where(Expr::col(hqes::Column::Complete).eq(true))
        .and_where(Expr::col(hqes::Column::JobId).is_not_null())
        .to_owned();
    let jobs: Vec<Job> = jobs::Entity::find()
        .filter(jobs::Column::ShardId.is_null())
        .filter(jobs::Column::Id.in_subquery(finished))
        .order_by_asc(jobs::Column::Id)
        .limit(limit)
        .all(db)
        .await
        .context("reading jobs to upload")?
        .into_iter()
        .map(job_from_row)
        .collect();
    let ids: Vec<i32> = jobs.iter().map(|j| j.id).collect();
    let mut hqes = Vec::new();
    for chunk in chunk::by_params(db.get_database_backend(), 1, &ids) {
        let rows = hqes::Entity::find()
            .filter(hqes::Column::JobId.is_in(chunk.iter().copied()))
            .order_by_asc(hqes::Column::Id)
            .all(db)
            .await
            .context("reading the entries of jobs to upload")?;
        hqes.extend(rows.into_iter().map(hqe_from_row));
    }
    Ok(Upload { jobs, hqes })
}

/// The id of this shard's `afe_shards` row, if the master has sent it yet.
/// Hostnames are not unique in the schema; the lowest id wins.
pub async fn shard_id_by_hostname(
    db: &impl ConnectionTrait,
    hostname: &str,
) -> Result<Option<i32>, StoreError> {
    shards::Entity::find()
        .select_only()
        .column(shards::Column::Id)
        .filter(shards::Column::Hostname.eq(hostname))
        .order_by_asc(shards::Column::Id)
        .into_tuple::<i32>()
        .one(db)
        .await
        .context("looking up this shard's id")
}

/// Marks uploaded jobs as this shard's again (§7 step 3), so they are not
/// uploaded a second time. Without a shard row yet there is nothing to set:
/// the jobs stay unassigned and go up again next time, which the master
/// takes idempotently.
pub async fn mark_uploaded(
    db: &impl ConnectionTrait,
    job_ids: &[i32],
    shard_id: Option<i32>,
) -> Result<(), StoreError> {
    let Some(shard_id) = shard_id else {
        return Ok(());
    };
    for chunk in chunk::by_params(db.get_database_backend(), 1, job_ids) {
        jobs::Entity::update_many()
            .col_expr(jobs::Column::ShardId, Expr::value(shard_id))
            .filter(jobs::Column::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await
            .context("marking uploaded jobs")?;
    }
    Ok(())
}
