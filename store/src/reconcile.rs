//! The last two steps of a heartbeat (§7 steps 5 and 6): removing hosts the
//! master says are not ours, and re-syncing completed jobs it resent.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionSession, TransactionTrait,
};

use crate::error::{Context, StoreError};
use crate::schema::chunk;
use crate::schema::entity::{attributes, group_hosts, host_labels, hosts, hqes, jobs};

/// Removes the hosts of `incorrect_host_ids` that exist (absent ids are
/// ignored): each is marked `invalid = 1`, loses its label links, ACL group
/// links and attributes, and its incomplete entries are aborted. A host is
/// never deleted: the scheduler and the job history still refer to it.
/// Returns the ids that existed. All or nothing.
pub async fn remove_incorrect_hosts<C>(
    db: &C,
    incorrect_host_ids: &[i32],
) -> Result<Vec<i32>, StoreError>
where
    C: ConnectionTrait + TransactionTrait,
{
    if incorrect_host_ids.is_empty() {
        return Ok(Vec::new());
    }
    let txn = db
        .begin()
        .await
        .context("starting to remove incorrect hosts")?;
    let backend = txn.get_database_backend();
    let mut existing = Vec::new();
    for chunk in chunk::by_params(backend, 1, incorrect_host_ids) {
        existing.extend(
            hosts::Entity::find()
                .select_only()
                .column(hosts::Column::Id)
                .filter(hosts::Column::Id.is_in(chunk.iter().copied()))
                .order_by_asc(hosts::Column::Id)
                .into_tuple::<i32>()
                .all(&txn)
                .await
                .context("finding incorrect hosts")?,
        );
    }
    for chunk in chunk::by_params(backend, 1, &existing) {
        let ids = || chunk.iter().copied();
        hosts::Entity::update_many()
            .col_expr(hosts::Column::Invalid, Expr::value(true))
            .filter(hosts::Column::Id.is_in(ids()))
            .exec(&txn)
            .await
            .context("invalidating incorrect hosts")?;
        host_labels::Entity::delete_many()
            .filter(host_labels::Column::HostId.is_in(ids()))
            .exec(&txn)
            .await
            .context("removing labels of incorrect hosts")?;
        group_hosts::Entity::delete_many()
            .filter(group_hosts::Column::HostId.is_in(ids()))
            .exec(&txn)
            .await
            .context("removing ACL groups of incorrect hosts")?;
        attributes::Entity::delete_many()
            .filter(attributes::Column::HostId.is_in(ids()))
            .exec(&txn)
            .await
            .context("removing attributes of incorrect hosts")?;
        // An entry whose `complete` is NULL is not complete either.
        let incomplete = Condition::any()
            .add(hqes::Column::Complete.eq(false))
            .add(hqes::Column::Complete.is_null());
        hqes::Entity::update_many()
            .col_expr(hqes::Column::Aborted, Expr::value(true))
            .filter(hqes::Column::HostId.is_in(ids()))
            .filter(incomplete)
            .exec(&txn)
            .await
            .context("aborting entries of incorrect hosts")?;
    }
    txn.commit()
        .await
        .context("committing the removal of incorrect hosts")?;
    Ok(existing)
}

/// Re-sync (§7 step 6): of the jobs the master just sent, those with a
/// complete entry here get `shard_id = NULL`, so the next heartbeat uploads
/// them again (the master resent them because it missed an upload).
/// Returns the ids re-synced.
pub async fn resync_completed_jobs(
    db: &impl ConnectionTrait,
    job_ids: &[i32],
) -> Result<Vec<i32>, StoreError> {
    let backend = db.get_database_backend();
    let mut completed = Vec::new();
    for chunk in chunk::by_params(backend, 1, job_ids) {
        completed.extend(
            hqes::Entity::find()
                .select_only()
                .column(hqes::Column::JobId)
                .distinct()
                .filter(hqes::Column::JobId.is_in(chunk.iter().copied()))
                .filter(hqes::Column::Complete.eq(true))
                .order_by_asc(hqes::Column::JobId)
                .into_tuple::<i32>()
                .all(db)
                .await
                .context("finding completed jobs the master resent")?,
        );
    }
    for chunk in chunk::by_params(backend, 1, &completed) {
        jobs::Entity::update_many()
            .col_expr(jobs::Column::ShardId, Expr::value(Option::<i32>::None))
            .filter(jobs::Column::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await
            .context("re-syncing completed jobs")?;
    }
    Ok(completed)
}
