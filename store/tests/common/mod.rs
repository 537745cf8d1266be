//! Record builders and row readers shared by the store's tests.
//!
//! Builders return minimal valid records with every relation present and
//! empty; a test sets exactly the fields its behaviour depends on.

#![allow(dead_code)]

use sea_orm::{ConnectionTrait, QueryOrder};
use shard_store::entity::prelude::*;
use shard_store::entity::{
    afe_host_attributes, afe_host_queue_entries, afe_hosts, afe_job_keyvals,
    afe_jobs_dependency_labels, afe_labels, afe_users,
};

// Not every test binary uses every builder.
#[allow(unused_imports)]
pub use shard_model::testing::records::*;

// Not every test binary uses every reader.
#[allow(unused_imports)]
pub use shard_store::testing::rows::*;

pub async fn hosts(db: &impl ConnectionTrait) -> Vec<afe_hosts::Model> {
    find(db, Hosts)
        .await
        .order_by_asc(afe_hosts::Column::Id)
        .all(db)
        .await
        .unwrap()
}

pub async fn hqes(db: &impl ConnectionTrait) -> Vec<afe_host_queue_entries::Model> {
    find(db, HostQueueEntries)
        .await
        .order_by_asc(afe_host_queue_entries::Column::Id)
        .all(db)
        .await
        .unwrap()
}

pub async fn labels(db: &impl ConnectionTrait) -> Vec<afe_labels::Model> {
    find(db, Labels)
        .await
        .order_by_asc(afe_labels::Column::Id)
        .all(db)
        .await
        .unwrap()
}

pub async fn users(db: &impl ConnectionTrait) -> Vec<(i32, Option<String>)> {
    find(db, Users)
        .await
        .order_by_asc(afe_users::Column::Id)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.id, u.login))
        .collect()
}

/// (job, label) pairs.
pub async fn job_labels(db: &impl ConnectionTrait) -> Vec<(i32, i32)> {
    let mut v: Vec<_> = find(db, JobsDependencyLabels)
        .await
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
    find(db, HostAttributes)
        .await
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
    find(db, JobKeyvals)
        .await
        .order_by_asc(afe_job_keyvals::Column::Id)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.job_id, k.key, k.value))
        .collect()
}
