//! Executing a plan: one multi-row statement per table and chunk, in
//! foreign-key order (parents inserted before children, user deletions
//! before the inserts that may reuse their ids and logins).

use sea_orm::{ConnectionTrait, DbErr, Value};

use super::plan::Writes;
use crate::layout::Layout;
use crate::schema::entity::{
    attributes, group_hosts, group_users, groups, host_labels, hosts, hqes, job_labels, jobs,
    keyvals, labels, shards, users,
};
use crate::schema::rows;
use crate::schema::write::{delete_in, insert, insert_links, update_by_id, update_to};

/// Writes everything a plan holds. On error the caller rolls back to the
/// savepoint it took before.
pub(crate) async fn execute(
    db: &impl ConnectionTrait,
    layout: &Layout,
    w: &Writes<'_>,
) -> Result<(), DbErr> {
    let b = layout;
    use hosts::Column as H;
    use hqes::Column as Q;
    use jobs::Column as J;

    insert(db, shards::Entity, &rows::SHARDS, &w.shards, |s| {
        rows::shard(s)
    })
    .await?;
    insert(db, labels::Entity, &rows::LABELS, &w.labels, |l| {
        rows::label(l)
    })
    .await?;

    // Deleting a user takes its memberships and host locks with it, as
    // Django's cascade does in the original.
    delete_in(
        db,
        group_users::Entity,
        group_users::Column::UserId,
        &w.users_deleted,
    )
    .await?;
    update_to(
        db,
        hosts::Entity,
        H::LockedById,
        Value::Int(None),
        H::LockedById,
        &w.users_deleted,
    )
    .await?;
    delete_in(db, users::Entity, users::Column::Id, &w.users_deleted).await?;
    insert(db, users::Entity, &rows::USERS, &w.users, |u| rows::user(u)).await?;
    insert(db, groups::Entity, &rows::GROUPS, &w.groups, |g| {
        rows::group(g)
    })
    .await?;
    insert_links(db, group_users::Entity, rows::GROUP_USERS, &w.group_users).await?;

    insert(db, hosts::Entity, &rows::HOSTS, &w.hosts, |n| {
        rows::host(b, n.host, n.invalid, n.shard_id)
    })
    .await?;
    update_by_id(db, hosts::Entity, H::Invalid, H::Id, &w.host_invalid).await?;
    update_by_id(db, hosts::Entity, H::ShardId, H::Id, &w.host_shard).await?;
    insert_links(db, group_hosts::Entity, rows::GROUP_HOSTS, &w.host_groups).await?;
    insert_links(db, host_labels::Entity, rows::HOST_LABELS, &w.host_labels).await?;
    delete_in(
        db,
        attributes::Entity,
        attributes::Column::HostId,
        &w.attributes_cleared,
    )
    .await?;
    insert(
        db,
        attributes::Entity,
        &rows::ATTRIBUTES,
        &w.attributes,
        |(host, name, value)| rows::pair(*host, name, value),
    )
    .await?;

    insert(db, jobs::Entity, &rows::JOBS, &w.jobs, |n| {
        rows::job(b, n.job, n.shard_id)
    })
    .await?;
    update_by_id(db, jobs::Entity, J::ShardId, J::Id, &w.job_shard).await?;
    insert_links(db, job_labels::Entity, rows::JOB_LABELS, &w.job_labels).await?;
    insert(db, hqes::Entity, &rows::HQES, &w.hqes, |n| {
        rows::hqe(b, n.hqe, n.job_id, n.aborted, n.meta_host)
    })
    .await?;
    update_by_id(db, hqes::Entity, Q::JobId, Q::Id, &w.hqe_job).await?;
    update_by_id(db, hqes::Entity, Q::Aborted, Q::Id, &w.hqe_aborted).await?;
    update_by_id(db, hqes::Entity, Q::MetaHost, Q::Id, &w.hqe_meta_host).await?;
    delete_in(
        db,
        keyvals::Entity,
        keyvals::Column::JobId,
        &w.keyvals_cleared,
    )
    .await?;
    insert(
        db,
        keyvals::Entity,
        &rows::KEYVALS,
        &w.keyvals,
        |(job, key, value)| rows::pair(*job, key, value),
    )
    .await?;
    Ok(())
}
