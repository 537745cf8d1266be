//! Conversions between wire records and table rows.
//!
//! Reading is plain (a row is what it is): a record built from a row has no
//! relations (`None`/`Absent`); the caller attaches them. Writing applies
//! §9's backend notes: MySQL's `datetime` has no fraction, so datetimes are
//! truncated to the second there rather than letting MySQL round them.

use chrono::{NaiveDateTime, Timelike};
use sea_orm::DbBackend;
use shard_model::{AclGroup, Host, HostAttribute, Hqe, Job, JobKeyval, Label, Shard, ToOne, User};

use crate::schema::entity::{
    attributes, groups, hosts, hqes, jobs, keyvals, labels, shards, users,
};

/// A job row in the upload shape (local fields only).
pub fn job_from_row(row: jobs::Model) -> Job {
    Job {
        id: row.id,
        owner: row.owner,
        name: row.name,
        priority: row.priority,
        control_file: row.control_file,
        control_type: row.control_type,
        created_on: row.created_on,
        synch_count: row.synch_count,
        timeout: row.timeout,
        timeout_mins: row.timeout_mins,
        max_runtime_hrs: row.max_runtime_hrs,
        max_runtime_mins: row.max_runtime_mins,
        test_retry: row.test_retry,
        run_verify: row.run_verify,
        run_reset: row.run_reset,
        parse_failed_repair: row.parse_failed_repair,
        email_list: row.email_list,
        reboot_before: row.reboot_before,
        reboot_after: row.reboot_after,
        require_ssp: row.require_ssp,
        parent_job_id: row.parent_job_id,
        dependency_labels: None,
        hostqueueentry_set: None,
        jobkeyval_set: None,
        shard: ToOne::Absent,
    }
}

/// An entry row in the upload shape (local fields and `host_id`).
pub fn hqe_from_row(row: hqes::Model) -> Hqe {
    Hqe {
        id: row.id,
        status: row.status,
        active: row.active,
        complete: row.complete,
        deleted: row.deleted,
        aborted: Some(row.aborted),
        execution_subdir: row.execution_subdir,
        started_on: row.started_on,
        finished_on: row.finished_on,
        host_id: row.host_id,
        meta_host: ToOne::Absent,
    }
}

/// A label row as a record.
pub fn label_from_row(row: labels::Model) -> Label {
    Label {
        id: row.id,
        name: row.name,
        kernel_config: row.kernel_config,
        platform: row.platform,
        invalid: row.invalid,
        only_if_needed: row.only_if_needed,
    }
}

/// A shard row as a record.
pub fn shard_from_row(row: shards::Model) -> Shard {
    Shard {
        id: row.id,
        hostname: row.hostname,
    }
}

/// A user row as a record.
pub fn user_from_row(row: users::Model) -> User {
    User {
        id: row.id,
        login: row.login,
        access_level: row.access_level,
        reboot_before: row.reboot_before,
        reboot_after: row.reboot_after,
        show_experimental: row.show_experimental,
    }
}

/// An ACL group row as a record, without its users.
pub fn group_from_row(row: groups::Model) -> AclGroup {
    AclGroup {
        id: row.id,
        name: row.name,
        description: row.description,
        users: None,
    }
}

/// A host row as a record, without its relations.
pub fn host_from_row(row: hosts::Model) -> Host {
    Host {
        id: row.id,
        hostname: row.hostname,
        locked: row.locked,
        leased: row.leased,
        synch_id: row.synch_id,
        status: row.status,
        invalid: Some(row.invalid),
        protection: row.protection,
        lock_time: row.lock_time,
        dirty: row.dirty,
        lock_reason: row.lock_reason,
        aclgroup_set: None,
        hostattribute_set: None,
        labels: None,
        shard: ToOne::Absent,
    }
}

/// A host attribute row as a record.
pub fn attribute_from_row(row: attributes::Model) -> HostAttribute {
    HostAttribute {
        id: Some(row.id),
        attribute: row.attribute,
        value: Some(row.value),
        host_id: Some(row.host_id),
    }
}

/// A job keyval row as a record.
pub fn keyval_from_row(row: keyvals::Model) -> JobKeyval {
    JobKeyval {
        id: Some(row.id),
        job_id: row.job_id,
        key: row.key,
        value: Some(row.value),
    }
}

/// A datetime as the backend can store it without rounding.
pub fn storable(backend: DbBackend, t: Option<NaiveDateTime>) -> Option<NaiveDateTime> {
    match backend {
        DbBackend::MySql => t.and_then(|t| t.with_nanosecond(0)),
        _ => t,
    }
}
