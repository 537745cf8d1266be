//! Record builders and row readers shared by the store's tests.
//!
//! Builders return minimal valid records with every relation present and
//! empty; a test sets exactly the fields its behaviour depends on.

#![allow(dead_code)]

use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};
use shard_store::entity::prelude::*;
use shard_store::entity::{
    afe_acl_groups_hosts, afe_acl_groups_users, afe_host_attributes, afe_host_queue_entries,
    afe_hosts, afe_hosts_labels, afe_job_keyvals, afe_jobs, afe_jobs_dependency_labels, afe_labels,
    afe_users,
};

// Not every test binary uses every builder.
#[allow(unused_imports)]
pub use shard_model::testing::records::*;

pub async fn hosts(db: &impl ConnectionTrait) -> Vec<afe_hosts::Model> {
    Hosts::find()
        .order_by_asc(afe_hosts::Column::Id)
        .all(db)
        .await
        .unwrap()
}

pub async fn host_row(db: &impl ConnectionTrait, id: i32) -> afe_hosts::Model {
    Hosts::find_by_id(id)
        .one(db)
        .await
        .unwrap()
        .expect("host row")
}

pub async fn job_row(db: &impl ConnectionTrait, id: i32) -> afe_jobs::Model {
    Jobs::find_by_id(id)
        .one(db)
        .await
        .unwrap()
        .expect("job row")
}

pub async fn job_ids(db: &impl ConnectionTrait) -> Vec<i32> {
    Jobs::find()
        .order_by_asc(afe_jobs::Column::Id)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect()
}

pub async fn hqe_row(db: &impl ConnectionTrait, id: i32) -> afe_host_queue_entries::Model {
    HostQueueEntries::find_by_id(id)
        .one(db)
        .await
        .unwrap()
        .expect("entry row")
}

pub async fn hqes(db: &impl ConnectionTrait) -> Vec<afe_host_queue_entries::Model> {
    HostQueueEntries::find()
        .order_by_asc(afe_host_queue_entries::Column::Id)
        .all(db)
        .await
        .unwrap()
}

pub async fn labels(db: &impl ConnectionTrait) -> Vec<afe_labels::Model> {
    Labels::find()
        .order_by_asc(afe_labels::Column::Id)
        .all(db)
        .await
        .unwrap()
}

pub async fn users(db: &impl ConnectionTrait) -> Vec<(i32, Option<String>)> {
    Users::find()
        .order_by_asc(afe_users::Column::Id)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.id, u.login))
        .collect()
}

/// (group, user) pairs.
pub async fn group_users(db: &impl ConnectionTrait) -> Vec<(i32, i32)> {
    let mut v: Vec<_> = AclGroupsUsers::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|l: afe_acl_groups_users::Model| (l.aclgroup_id.unwrap(), l.user_id.unwrap()))
        .collect();
    v.sort_unstable();
    v
}

/// (group, host) pairs.
pub async fn group_hosts(db: &impl ConnectionTrait) -> Vec<(i32, i32)> {
    let mut v: Vec<_> = AclGroupsHosts::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|l: afe_acl_groups_hosts::Model| (l.aclgroup_id.unwrap(), l.host_id.unwrap()))
        .collect();
    v.sort_unstable();
    v
}

/// (host, label) pairs.
pub async fn host_labels(db: &impl ConnectionTrait) -> Vec<(i32, i32)> {
    let mut v: Vec<_> = HostsLabels::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|l: afe_hosts_labels::Model| (l.host_id.unwrap(), l.label_id.unwrap()))
        .collect();
    v.sort_unstable();
    v
}

/// (job, label) pairs.
pub async fn job_labels(db: &impl ConnectionTrait) -> Vec<(i32, i32)> {
    let mut v: Vec<_> = JobsDependencyLabels::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|l: afe_jobs_dependency_labels::Model| (l.job_id, l.label_id))
        .collect();
    v.sort_unstable();
    v
}

/// (host, attribute, value) in row order.
pub async fn attributes(db: &impl ConnectionTrait) -> Vec<(i32, String, String)> {
    HostAttributes::find()
        .order_by_asc(afe_host_attributes::Column::Id)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.host_id, a.attribute, a.value))
        .collect()
}

/// (job, key, value) in row order.
pub async fn keyvals(db: &impl ConnectionTrait) -> Vec<(i32, String, String)> {
    JobKeyvals::find()
        .order_by_asc(afe_job_keyvals::Column::Id)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.job_id, k.key, k.value))
        .collect()
}

pub fn owned(rows: &[(i32, &str, &str)]) -> Vec<(i32, String, String)> {
    rows.iter()
        .map(|(i, a, b)| (*i, a.to_string(), b.to_string()))
        .collect()
}
