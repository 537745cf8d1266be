//! The row each record becomes: per table, the columns an insert writes and
//! one record's values for them, in that order. Apply and the bench's floor
//! share these, so the floor writes exactly the rows apply writes.

use sea_orm::Value;
use shard_model::{AclGroup, Host, Hqe, Job, Label, Shard, User};

use crate::Layout;
use crate::schema::entity::{
    attributes, group_hosts, group_users, groups, host_labels, hosts, hqes, job_labels, jobs,
    keyvals, labels, shards, users,
};

/// `afe_shards`, for [`shard`].
pub const SHARDS: [shards::Column; 2] = [shards::Column::Id, shards::Column::Hostname];

/// A shard's row.
pub fn shard(s: &Shard) -> Vec<Value> {
    vec![s.id.into(), s.hostname.clone().into()]
}

/// `afe_labels`, for [`label`].
pub const LABELS: [labels::Column; 6] = [
    labels::Column::Id,
    labels::Column::Name,
    labels::Column::KernelConfig,
    labels::Column::Platform,
    labels::Column::Invalid,
    labels::Column::OnlyIfNeeded,
];

/// A label's row.
pub fn label(l: &Label) -> Vec<Value> {
    vec![
        l.id.into(),
        l.name.clone().into(),
        l.kernel_config.clone().into(),
        l.platform.into(),
        l.invalid.into(),
        l.only_if_needed.into(),
    ]
}

/// `afe_users`, for [`user`].
pub const USERS: [users::Column; 6] = [
    users::Column::Id,
    users::Column::Login,
    users::Column::AccessLevel,
    users::Column::RebootBefore,
    users::Column::RebootAfter,
    users::Column::ShowExperimental,
];

/// A user's row.
pub fn user(u: &User) -> Vec<Value> {
    vec![
        u.id.into(),
        u.login.clone().into(),
        u.access_level.into(),
        u.reboot_before.into(),
        u.reboot_after.into(),
        u.show_experimental.into(),
    ]
}

/// `afe_acl_groups`, for [`group`].
pub const GROUPS: [groups::Column; 3] = [
    groups::Column::Id,
    groups::Column::Name,
    groups::Column::Description,
];

/// An ACL group's row.
pub fn group(g: &AclGroup) -> Vec<Value> {
    vec![
        g.id.into(),
        g.name.clone().into(),
        g.description.clone().into(),
    ]
}

/// `afe_acl_groups_users`: (group, user).
pub const GROUP_USERS: [group_users::Column; 2] =
    [group_users::Column::AclgroupId, group_users::Column::UserId];

/// `afe_hosts`, for [`host`].
pub const HOSTS: [hosts::Column; 12] = [
    hosts::Column::Id,
    hosts::Column::Hostname,
    hosts::Column::Locked,
    hosts::Column::SynchId,
    hosts::Column::Status,
    hosts::Column::Invalid,
    hosts::Column::Protection,
    hosts::Column::LockTime,
    hosts::Column::Dirty,
    hosts::Column::Leased,
    hosts::Column::ShardId,
    hosts::Column::LockReason,
];

/// A host's row, with the columns its relations decide; `lock_time` as the
/// adopted column stores it.
pub fn host(layout: &Layout, h: &Host, invalid: Option<bool>, shard_id: Option<i32>) -> Vec<Value> {
    vec![
        h.id.into(),
        h.hostname.clone().into(),
        h.locked.into(),
        h.synch_id.into(),
        h.status.clone().into(),
        invalid.into(),
        h.protection.into(),
        layout.datetime(hosts::Column::LockTime, h.lock_time),
        h.dirty.into(),
        h.leased.into(),
        shard_id.into(),
        h.lock_reason.clone().into(),
    ]
}

/// `afe_acl_groups_hosts`: (group, host).
pub const GROUP_HOSTS: [group_hosts::Column; 2] =
    [group_hosts::Column::AclgroupId, group_hosts::Column::HostId];

/// `afe_hosts_labels`: (host, label).
pub const HOST_LABELS: [host_labels::Column; 2] =
    [host_labels::Column::HostId, host_labels::Column::LabelId];

/// `afe_host_attributes`: (host, attribute, value).
pub const ATTRIBUTES: [attributes::Column; 3] = [
    attributes::Column::HostId,
    attributes::Column::Attribute,
    attributes::Column::Value,
];

/// `afe_jobs`, for [`job`].
pub const JOBS: [jobs::Column; 22] = [
    jobs::Column::Id,
    jobs::Column::Owner,
    jobs::Column::Name,
    jobs::Column::Priority,
    jobs::Column::ControlFile,
    jobs::Column::ControlType,
    jobs::Column::CreatedOn,
    jobs::Column::SynchCount,
    jobs::Column::Timeout,
    jobs::Column::RunVerify,
    jobs::Column::EmailList,
    jobs::Column::RebootBefore,
    jobs::Column::RebootAfter,
    jobs::Column::ParseFailedRepair,
    jobs::Column::MaxRuntimeHrs,
    jobs::Column::MaxRuntimeMins,
    jobs::Column::ParentJobId,
    jobs::Column::TestRetry,
    jobs::Column::RunReset,
    jobs::Column::TimeoutMins,
    jobs::Column::ShardId,
    jobs::Column::RequireSsp,
];

/// A job's row, with its shard; `created_on` as the adopted column stores
/// it.
pub fn job(layout: &Layout, j: &Job, shard_id: Option<i32>) -> Vec<Value> {
    vec![
        j.id.into(),
        j.owner.clone().into(),
        j.name.clone().into(),
        j.priority.into(),
        j.control_file.clone().into(),
        j.control_type.into(),
        layout.datetime(jobs::Column::CreatedOn, j.created_on),
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
        shard_id.into(),
        j.require_ssp.into(),
    ]
}

/// `afe_jobs_dependency_labels`: (job, label).
pub const JOB_LABELS: [job_labels::Column; 2] =
    [job_labels::Column::JobId, job_labels::Column::LabelId];

/// `afe_host_queue_entries`, for [`hqe`].
pub const HQES: [hqes::Column; 12] = [
    hqes::Column::Id,
    hqes::Column::JobId,
    hqes::Column::HostId,
    hqes::Column::Status,
    hqes::Column::MetaHost,
    hqes::Column::Active,
    hqes::Column::Complete,
    hqes::Column::Deleted,
    hqes::Column::ExecutionSubdir,
    hqes::Column::Aborted,
    hqes::Column::StartedOn,
    hqes::Column::FinishedOn,
];

/// An entry's row, with the columns its job and relations decide; times
/// as the adopted columns store them.
pub fn hqe(
    layout: &Layout,
    q: &Hqe,
    job_id: Option<i32>,
    aborted: bool,
    meta_host: Option<i32>,
) -> Vec<Value> {
    vec![
        q.id.into(),
        job_id.into(),
        q.host_id.into(),
        q.status.clone().into(),
        meta_host.into(),
        q.active.into(),
        q.complete.into(),
        q.deleted.into(),
        q.execution_subdir.clone().into(),
        aborted.into(),
        layout.datetime(hqes::Column::StartedOn, q.started_on),
        layout.datetime(hqes::Column::FinishedOn, q.finished_on),
    ]
}

/// `afe_job_keyvals`: (job, key, value).
pub const KEYVALS: [keyvals::Column; 3] = [
    keyvals::Column::JobId,
    keyvals::Column::Key,
    keyvals::Column::Value,
];

/// An attribute's or keyval's row: (owner, name, value).
pub fn pair(owner: i32, name: &str, value: &str) -> Vec<Value> {
    vec![
        owner.into(),
        name.to_owned().into(),
        value.to_owned().into(),
    ]
}
