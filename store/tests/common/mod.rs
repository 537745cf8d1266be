//! Record builders and row readers shared by the store's tests.
//!
//! Builders return minimal valid records with every relation present and
//! empty; a test sets exactly the fields its behaviour depends on.

#![allow(dead_code)]

use chrono::NaiveDateTime;
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};
use shard_model::{
    AclGroup, HeartbeatResponse, Host, HostAttribute, Hqe, Job, JobKeyval, Label, Shard, ToOne,
    User,
};
use shard_store::entity::prelude::*;
use shard_store::entity::{
    afe_acl_groups_hosts, afe_acl_groups_users, afe_host_attributes, afe_host_queue_entries,
    afe_hosts, afe_hosts_labels, afe_job_keyvals, afe_jobs, afe_jobs_dependency_labels, afe_labels,
    afe_users,
};

pub fn shard(id: i32) -> Shard {
    Shard {
        id,
        hostname: format!("shard{id}"),
    }
}

pub fn label(id: i32) -> Label {
    Label {
        id,
        name: Some(format!("board:b{id}")),
        kernel_config: Some(String::new()),
        platform: Some(false),
        invalid: false,
        only_if_needed: false,
    }
}

pub fn user(id: i32, login: &str) -> User {
    User {
        id,
        login: Some(login.to_owned()),
        access_level: Some(0),
        reboot_before: 1,
        reboot_after: 2,
        show_experimental: false,
    }
}

pub fn group(id: i32, users: Vec<User>) -> AclGroup {
    AclGroup {
        id,
        name: Some(format!("group{id}")),
        description: Some(String::new()),
        users: Some(users),
    }
}

pub fn attribute(name: &str, value: &str) -> HostAttribute {
    HostAttribute {
        id: Some(99),
        attribute: name.to_owned(),
        value: value.to_owned(),
        host_id: None,
    }
}

pub fn host(id: i32) -> Host {
    Host {
        id,
        hostname: Some(format!("host{id}")),
        locked: Some(false),
        leased: false,
        synch_id: None,
        status: Some("Ready".to_owned()),
        invalid: Some(false),
        protection: 0,
        lock_time: None,
        dirty: false,
        lock_reason: Some(String::new()),
        aclgroup_set: Some(vec![]),
        hostattribute_set: Some(vec![]),
        labels: Some(vec![label(1)]),
        shard: ToOne::Set(shard(1)),
    }
}

pub fn hqe(id: i32, host_id: Option<i32>) -> Hqe {
    Hqe {
        id,
        status: Some("Queued".to_owned()),
        active: Some(false),
        complete: Some(false),
        deleted: false,
        aborted: false,
        execution_subdir: String::new(),
        started_on: None,
        finished_on: None,
        host_id,
        meta_host: ToOne::Set(label(1)),
    }
}

pub fn keyval(job_id: i32, key: &str, value: &str) -> JobKeyval {
    JobKeyval {
        id: Some(500),
        job_id,
        key: key.to_owned(),
        value: value.to_owned(),
    }
}

pub fn at(s: &str) -> NaiveDateTime {
    shard_model::parse_datetime(s).expect("test datetime")
}

/// A job with one queued entry (id `id * 10`) on any host of label 1.
pub fn job(id: i32) -> Job {
    Job {
        id,
        owner: Some("chromeos-test".to_owned()),
        name: Some(format!("job{id}")),
        priority: Some(40),
        control_file: Some("job.run_test('dummy_Pass')".to_owned()),
        control_type: Some(2),
        created_on: Some(at("2014-09-23T15:56:10")),
        synch_count: 1,
        timeout: 24,
        timeout_mins: 1440,
        max_runtime_hrs: 72,
        max_runtime_mins: 1440,
        test_retry: 0,
        run_verify: Some(false),
        run_reset: true,
        parse_failed_repair: true,
        email_list: String::new(),
        reboot_before: 1,
        reboot_after: 0,
        require_ssp: None,
        parent_job_id: Some(1000),
        dependency_labels: Some(vec![label(1)]),
        hostqueueentry_set: Some(vec![hqe(id * 10, None)]),
        jobkeyval_set: Some(vec![keyval(id, "suite", "bvt")]),
        shard: ToOne::Set(shard(1)),
    }
}

pub fn response(
    hosts: Vec<Host>,
    jobs: Vec<Job>,
    suite_keyvals: Vec<JobKeyval>,
) -> HeartbeatResponse {
    HeartbeatResponse {
        hosts,
        jobs,
        suite_keyvals,
        incorrect_host_ids: vec![],
        rejected: vec![],
    }
}

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
