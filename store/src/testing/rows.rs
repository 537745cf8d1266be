//! Readers of the rows a test wrote, shared by the store's and the
//! acceptance tests. Each panics on a database error or a missing row: in a
//! test that is the failure to report.

use std::fmt::Display;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Select};

use crate::Layout;
use crate::schema::entity::prelude::*;
use crate::schema::entity::{
    afe_host_attributes, afe_host_queue_entries, afe_hosts, afe_job_keyvals, afe_jobs, afe_labels,
    afe_users,
};

/// The value, or a panic naming what was being read.
fn or_fail<T, E: Display>(result: Result<T, E>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("reading {what}: {e}"))
}

/// `SELECT` of every column of `entity`, read as the entity's types
/// whatever the adopted columns are (the catalog is read each time: a test
/// may have changed the schema).
pub async fn find<E: EntityTrait>(db: &impl ConnectionTrait, entity: E) -> Select<E> {
    or_fail(Layout::read(db).await, "the schema").select(entity)
}

/// Host `id`'s row.
pub async fn host_row(db: &impl ConnectionTrait, id: i32) -> afe_hosts::Model {
    let select = find(db, Hosts).await.filter(afe_hosts::Column::Id.eq(id));
    or_fail(select.one(db).await, "a host row").unwrap_or_else(|| panic!("no host row {id}"))
}

/// Job `id`'s row.
pub async fn job_row(db: &impl ConnectionTrait, id: i32) -> afe_jobs::Model {
    let select = find(db, Jobs).await.filter(afe_jobs::Column::Id.eq(id));
    or_fail(select.one(db).await, "a job row").unwrap_or_else(|| panic!("no job row {id}"))
}

/// Entry `id`'s row.
pub async fn hqe_row(db: &impl ConnectionTrait, id: i32) -> afe_host_queue_entries::Model {
    let select = find(db, HostQueueEntries)
        .await
        .filter(afe_host_queue_entries::Column::Id.eq(id));
    or_fail(select.one(db).await, "an entry row").unwrap_or_else(|| panic!("no entry row {id}"))
}

/// Every job id, ascending.
pub async fn job_ids(db: &impl ConnectionTrait) -> Vec<i32> {
    let rows = find(db, Jobs)
        .await
        .order_by_asc(afe_jobs::Column::Id)
        .all(db)
        .await;
    or_fail(rows, "the jobs")
        .into_iter()
        .map(|j| j.id)
        .collect()
}

/// Every host row, by id.
pub async fn hosts(db: &impl ConnectionTrait) -> Vec<afe_hosts::Model> {
    let select = find(db, Hosts).await.order_by_asc(afe_hosts::Column::Id);
    or_fail(select.all(db).await, "the hosts")
}

/// Every host id, ascending.
pub async fn host_ids(db: &impl ConnectionTrait) -> Vec<i32> {
    hosts(db).await.into_iter().map(|h| h.id).collect()
}

/// Every entry row, by id.
pub async fn hqes(db: &impl ConnectionTrait) -> Vec<afe_host_queue_entries::Model> {
    let select =
        (find(db, HostQueueEntries).await).order_by_asc(afe_host_queue_entries::Column::Id);
    or_fail(select.all(db).await, "the entries")
}

/// Every label row, by id.
pub async fn labels(db: &impl ConnectionTrait) -> Vec<afe_labels::Model> {
    let select = find(db, Labels).await.order_by_asc(afe_labels::Column::Id);
    or_fail(select.all(db).await, "the labels")
}

/// (id, login) of every user, by id.
pub async fn users(db: &impl ConnectionTrait) -> Vec<(i32, Option<String>)> {
    let select = find(db, Users).await.order_by_asc(afe_users::Column::Id);
    let rows = or_fail(select.all(db).await, "the users");
    rows.into_iter().map(|u| (u.id, u.login)).collect()
}

/// (job, label) pairs, sorted.
pub async fn job_labels(db: &impl ConnectionTrait) -> Vec<(i32, i32)> {
    let rows = or_fail(
        find(db, JobsDependencyLabels).await.all(db).await,
        "the job labels",
    );
    let mut v: Vec<(i32, i32)> = rows.into_iter().map(|l| (l.job_id, l.label_id)).collect();
    v.sort_unstable();
    v
}

/// (host, attribute, value) in row order.
pub async fn attributes(db: &impl ConnectionTrait) -> Vec<(i32, String, String)> {
    let select = (find(db, HostAttributes).await).order_by_asc(afe_host_attributes::Column::Id);
    let rows = or_fail(select.all(db).await, "the host attributes");
    rows.into_iter()
        .map(|a| (a.host_id, a.attribute, a.value))
        .collect()
}

/// (job, key, value) in row order.
pub async fn keyvals(db: &impl ConnectionTrait) -> Vec<(i32, String, String)> {
    let select = (find(db, JobKeyvals).await).order_by_asc(afe_job_keyvals::Column::Id);
    let rows = or_fail(select.all(db).await, "the job keyvals");
    rows.into_iter()
        .map(|k| (k.job_id, k.key, k.value))
        .collect()
}

/// (host, label) pairs, sorted.
pub async fn host_labels(db: &impl ConnectionTrait) -> Vec<(i32, i32)> {
    let rows = or_fail(HostsLabels::find().all(db).await, "the host labels");
    sorted_links(rows.into_iter().map(|l| (l.host_id, l.label_id)))
}

/// (group, host) pairs, sorted.
pub async fn group_hosts(db: &impl ConnectionTrait) -> Vec<(i32, i32)> {
    let rows = or_fail(AclGroupsHosts::find().all(db).await, "the group hosts");
    sorted_links(rows.into_iter().map(|l| (l.aclgroup_id, l.host_id)))
}

/// (group, user) pairs, sorted.
pub async fn group_users(db: &impl ConnectionTrait) -> Vec<(i32, i32)> {
    let rows = or_fail(AclGroupsUsers::find().all(db).await, "the group users");
    sorted_links(rows.into_iter().map(|l| (l.aclgroup_id, l.user_id)))
}

/// Link rows as sorted pairs; a NULL key fails the test.
fn sorted_links(links: impl Iterator<Item = (Option<i32>, Option<i32>)>) -> Vec<(i32, i32)> {
    let mut v: Vec<(i32, i32)> = links
        .map(|pair| match pair {
            (Some(a), Some(b)) => (a, b),
            other => panic!("a link row with a NULL key: {other:?}"),
        })
        .collect();
    v.sort_unstable();
    v
}

/// `[(a, "b", "c")]` as owned rows, to compare with attribute and keyval
/// rows.
pub fn owned(rows: &[(i32, &str, &str)]) -> Vec<(i32, String, String)> {
    rows.iter()
        .map(|(i, a, b)| (*i, (*a).to_owned(), (*b).to_owned()))
        .collect()
}
