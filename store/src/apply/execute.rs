//! Executing a plan: one multi-row statement per table and chunk, in
//! foreign-key order (parents inserted before children, user deletions
//! before the inserts that may reuse their ids and logins).

use chrono::NaiveDateTime;
use sea_orm::sea_query::{Expr, ExprTrait, IntoIden, Query};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, Value};

use super::plan::Writes;
use crate::chunk::{self, MAX_STATEMENT_BYTES};
use crate::convert::storable;
use crate::entity::{
    afe_acl_groups as groups, afe_acl_groups_hosts as group_hosts,
    afe_acl_groups_users as group_users, afe_host_attributes as attributes,
    afe_host_queue_entries as hqes, afe_hosts as hosts, afe_hosts_labels as host_labels,
    afe_job_keyvals as keyvals, afe_jobs as jobs, afe_jobs_dependency_labels as job_labels,
    afe_labels as labels, afe_shards as shards, afe_users as users,
};

/// Writes everything a plan holds. On error the caller rolls back to the
/// savepoint it took before.
pub(crate) async fn execute(db: &impl ConnectionTrait, w: &Writes<'_>) -> Result<(), DbErr> {
    let b = db.get_database_backend();
    use hosts::Column as H;
    use hqes::Column as Q;
    use jobs::Column as J;

    insert(
        db,
        shards::Entity,
        &[shards::Column::Id, shards::Column::Hostname],
        &w.shards,
        |s| vec![s.id.into(), s.hostname.clone().into()],
    )
    .await?;
    insert(
        db,
        labels::Entity,
        &[
            labels::Column::Id,
            labels::Column::Name,
            labels::Column::KernelConfig,
            labels::Column::Platform,
            labels::Column::Invalid,
            labels::Column::OnlyIfNeeded,
        ],
        &w.labels,
        |l| {
            vec![
                l.id.into(),
                l.name.clone().into(),
                l.kernel_config.clone().into(),
                l.platform.into(),
                l.invalid.into(),
                l.only_if_needed.into(),
            ]
        },
    )
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
    insert(
        db,
        users::Entity,
        &[
            users::Column::Id,
            users::Column::Login,
            users::Column::AccessLevel,
            users::Column::RebootBefore,
            users::Column::RebootAfter,
            users::Column::ShowExperimental,
        ],
        &w.users,
        |u| {
            vec![
                u.id.into(),
                u.login.clone().into(),
                u.access_level.into(),
                u.reboot_before.into(),
                u.reboot_after.into(),
                u.show_experimental.into(),
            ]
        },
    )
    .await?;
    insert(
        db,
        groups::Entity,
        &[
            groups::Column::Id,
            groups::Column::Name,
            groups::Column::Description,
        ],
        &w.groups,
        |g| {
            vec![
                g.id.into(),
                g.name.clone().into(),
                g.description.clone().into(),
            ]
        },
    )
    .await?;
    insert_links(
        db,
        group_users::Entity,
        [group_users::Column::AclgroupId, group_users::Column::UserId],
        &w.group_users,
    )
    .await?;

    insert(
        db,
        hosts::Entity,
        &[
            H::Id,
            H::Hostname,
            H::Locked,
            H::SynchId,
            H::Status,
            H::Invalid,
            H::Protection,
            H::LockTime,
            H::Dirty,
            H::Leased,
            H::ShardId,
            H::LockReason,
        ],
        &w.hosts,
        |n| {
            let h = n.host;
            vec![
                h.id.into(),
                h.hostname.clone().into(),
                h.locked.into(),
                h.synch_id.into(),
                h.status.clone().into(),
                n.invalid.into(),
                h.protection.into(),
                datetime(b, h.lock_time),
                h.dirty.into(),
                h.leased.into(),
                n.shard_id.into(),
                h.lock_reason.clone().into(),
            ]
        },
    )
    .await?;
    update_by_id(db, hosts::Entity, H::Invalid, H::Id, &w.host_invalid).await?;
    update_by_id(db, hosts::Entity, H::ShardId, H::Id, &w.host_shard).await?;
    insert_links(
        db,
        group_hosts::Entity,
        [group_hosts::Column::AclgroupId, group_hosts::Column::HostId],
        &w.host_groups,
    )
    .await?;
    insert_links(
        db,
        host_labels::Entity,
        [host_labels::Column::HostId, host_labels::Column::LabelId],
        &w.host_labels,
    )
    .await?;
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
        &[
            attributes::Column::HostId,
            attributes::Column::Attribute,
            attributes::Column::Value,
        ],
        &w.attributes,
        |(host, name, value)| {
            vec![
                (*host).into(),
                name.to_string().into(),
                value.to_string().into(),
            ]
        },
    )
    .await?;

    insert(
        db,
        jobs::Entity,
        &[
            J::Id,
            J::Owner,
            J::Name,
            J::Priority,
            J::ControlFile,
            J::ControlType,
            J::CreatedOn,
            J::SynchCount,
            J::Timeout,
            J::RunVerify,
            J::EmailList,
            J::RebootBefore,
            J::RebootAfter,
            J::ParseFailedRepair,
            J::MaxRuntimeHrs,
            J::MaxRuntimeMins,
            J::ParentJobId,
            J::TestRetry,
            J::RunReset,
            J::TimeoutMins,
            J::ShardId,
            J::RequireSsp,
        ],
        &w.jobs,
        |n| {
            let j = n.job;
            vec![
                j.id.into(),
                j.owner.clone().into(),
                j.name.clone().into(),
                j.priority.into(),
                j.control_file.clone().into(),
                j.control_type.into(),
                datetime(b, j.created_on),
                j.synch_count.into(),
                j.timeout.into(),
                j.run_verify.into(),
                j.email_list.clone().into(),
                j.reboot_before.into(),
                j.reboot_after.into(),
                j.parse_failed_repair.into(),
                j.max_runtime_hrs.into(),
                j.max_runtime_mins.into(),
                j.parent_job_id.into(),
                j.test_retry.into(),
                j.run_reset.into(),
                j.timeout_mins.into(),
                n.shard_id.into(),
                j.require_ssp.into(),
            ]
        },
    )
    .await?;
    update_by_id(db, jobs::Entity, J::ShardId, J::Id, &w.job_shard).await?;
    insert_links(
        db,
        job_labels::Entity,
        [job_labels::Column::JobId, job_labels::Column::LabelId],
        &w.job_labels,
    )
    .await?;
    insert(
        db,
        hqes::Entity,
        &[
            Q::Id,
            Q::JobId,
            Q::HostId,
            Q::Status,
            Q::MetaHost,
            Q::Active,
            Q::Complete,
            Q::Deleted,
            Q::ExecutionSubdir,
            Q::Aborted,
            Q::StartedOn,
            Q::FinishedOn,
        ],
        &w.hqes,
        |n| {
            let q = n.hqe;
            vec![
                q.id.into(),
                n.job_id.into(),
                q.host_id.into(),
                q.status.clone().into(),
                n.meta_host.into(),
                q.active.into(),
                q.complete.into(),
                q.deleted.into(),
                q.execution_subdir.clone().into(),
                n.aborted.into(),
                datetime(b, q.started_on),
                datetime(b, q.finished_on),
            ]
        },
    )
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
        &[
            keyvals::Column::JobId,
            keyvals::Column::Key,
            keyvals::Column::Value,
        ],
        &w.keyvals,
        |(job, key, value)| {
            vec![
                (*job).into(),
                key.to_string().into(),
                value.to_string().into(),
            ]
        },
    )
    .await?;
    Ok(())
}

fn datetime(backend: DbBackend, t: Option<NaiveDateTime>) -> Value {
    Value::ChronoDateTime(storable(backend, t))
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
