//! Executing a plan: one multi-row statement per table and chunk, in
//! foreign-key order (parents inserted before children, user deletions
//! before the inserts that may reuse their ids and logins).

use sea_orm::sea_query::{Expr, ExprTrait, IntoIden, Query};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Value};

use super::plan::Writes;
use crate::chunk::{self, MAX_STATEMENT_BYTES};
use crate::entity::{
    afe_acl_groups as groups, afe_acl_groups_hosts as group_hosts,
    afe_acl_groups_users as group_users, afe_host_attributes as attributes,
    afe_host_queue_entries as hqes, afe_hosts as hosts, afe_hosts_labels as host_labels,
    afe_job_keyvals as keyvals, afe_jobs as jobs, afe_jobs_dependency_labels as job_labels,
    afe_labels as labels, afe_shards as shards, afe_users as users,
};
use crate::layout::Layout;
use crate::rows;

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

/// Roughly how many bytes a value adds to a statement.
fn value_bytes(v: &Value) -> usize {
    match v {
        Value::String(Some(s)) => s.len() + 2,
        _ => 8,
    }
}

/// `INSERT INTO table (columns) VALUES (…), (…), …`, chunked by bind
/// parameters and by bytes.
async fn insert<E, C, R>(
    db: &impl ConnectionTrait,
    table: E,
    columns: &[C],
    rows: &[R],
    values: impl Fn(&R) -> Vec<Value>,
) -> Result<(), DbErr>
where
    E: EntityTrait,
    C: IntoIden + Copy,
{
    let per_statement = (chunk::max_params(db.get_database_backend()) / columns.len()).max(1);
    let mut pending = Vec::new();
    let mut bytes = 0;
    for row in rows {
        let row = values(row);
        let size: usize = row.iter().map(value_bytes).sum();
        if pending.len() == per_statement
            || (!pending.is_empty() && bytes + size > MAX_STATEMENT_BYTES)
        {
            insert_statement(db, table, columns, std::mem::take(&mut pending)).await?;
            bytes = 0;
        }
        bytes += size;
        pending.push(row);
    }
    if !pending.is_empty() {
        insert_statement(db, table, columns, pending).await?;
    }
    Ok(())
}

async fn insert_statement<E, C>(
    db: &impl ConnectionTrait,
    table: E,
    columns: &[C],
    rows: Vec<Vec<Value>>,
) -> Result<(), DbErr>
where
    E: EntityTrait,
    C: IntoIden + Copy,
{
    let mut stmt = Query::insert();
    stmt.into_table(table).columns(columns.iter().copied());
    for row in rows {
        stmt.values(row.into_iter().map(Expr::from))
            .map_err(|e| DbErr::Custom(format!("building an insert: {e}")))?;
    }
    db.execute(&stmt).await.map(|_| ())
}

async fn insert_links<E, C>(
    db: &impl ConnectionTrait,
    table: E,
    columns: [C; 2],
    pairs: &[(i32, i32)],
) -> Result<(), DbErr>
where
    E: EntityTrait,
    C: IntoIden + Copy,
{
    insert(db, table, &columns, pairs, |&(a, b)| {
        vec![a.into(), b.into()]
    })
    .await
}

/// `DELETE FROM table WHERE column IN (…)`, chunked.
async fn delete_in<E: EntityTrait>(
    db: &impl ConnectionTrait,
    table: E,
    column: E::Column,
    keys: &[i32],
) -> Result<(), DbErr> {
    for chunk in chunk::by_params(db.get_database_backend(), 1, keys) {
        let stmt = Query::delete()
            .from_table(table)
            .and_where(Expr::col(column).is_in(chunk.iter().copied()))
            .to_owned();
        db.execute(&stmt).await?;
    }
    Ok(())
}

/// `UPDATE table SET column = value WHERE key IN (…)`, chunked.
async fn update_to<E: EntityTrait>(
    db: &impl ConnectionTrait,
    table: E,
    column: E::Column,
    value: Value,
    key: E::Column,
    keys: &[i32],
) -> Result<(), DbErr> {
    for chunk in chunk::by_params(db.get_database_backend(), 1, keys) {
        let stmt = Query::update()
            .table(table)
            .value(column, value.clone())
            .and_where(Expr::col(key).is_in(chunk.iter().copied()))
            .to_owned();
        db.execute(&stmt).await?;
    }
    Ok(())
}

/// Sets `column` per row: `SET column = value WHERE id IN (…)` when a chunk
/// shares one value (the usual case: one shard id, one flag), else one
/// `SET column = CASE WHEN id = ? THEN ? … END WHERE id IN (…)`.
async fn update_by_id<E, V>(
    db: &impl ConnectionTrait,
    table: E,
    column: E::Column,
    id: E::Column,
    changes: &[(i32, V)],
) -> Result<(), DbErr>
where
    E: EntityTrait,
    V: Into<Value> + Clone + PartialEq,
{
    for chunk in chunk::by_params(db.get_database_backend(), 3, changes) {
        let Some((_, first)) = chunk.first() else {
            continue;
        };
        let ids = chunk.iter().map(|(i, _)| *i);
        let value: Expr = if chunk.iter().all(|(_, v)| v == first) {
            Expr::val(first.clone().into())
        } else {
            let mut case = Expr::case(Expr::col(id).eq(chunk[0].0), chunk[0].1.clone().into());
            for (i, v) in &chunk[1..] {
                case = case.case(Expr::col(id).eq(*i), v.clone().into());
            }
            case.into()
        };
        let stmt = Query::update()
            .table(table)
            .value(column, value)
            .and_where(Expr::col(id).is_in(ids))
            .to_owned();
        db.execute(&stmt).await?;
    }
    Ok(())
}
