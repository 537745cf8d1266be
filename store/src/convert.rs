//! Conversions between wire records and table rows.
//!
//! Reading is plain (a row is what it is); writing applies §9's backend
//! notes: MySQL's `datetime` has no fraction, so datetimes are truncated to
//! the second there rather than letting MySQL round them.

use chrono::{NaiveDateTime, Timelike};
use sea_orm::DbBackend;
use shard_model::{Hqe, Job};

use crate::entity::{afe_host_queue_entries as hqes, afe_jobs as jobs};

/// A job row in the upload shape (local fields only).
pub(crate) fn job_from_row(row: jobs::Model) -> Job {
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
        shard: shard_model::ToOne::Absent,
    }
}

/// An entry row in the upload shape (local fields and `host_id`).
pub(crate) fn hqe_from_row(row: hqes::Model) -> Hqe {
    Hqe {
        id: row.id,
        status: row.status,
        active: row.active,
        complete: row.complete,
        deleted: row.deleted,
        aborted: row.aborted,
        execution_subdir: row.execution_subdir,
        started_on: row.started_on,
        finished_on: row.finished_on,
        host_id: row.host_id,
        meta_host: shard_model::ToOne::Absent,
    }
}

/// A datetime as the backend can store it without rounding.
pub(crate) fn storable(backend: DbBackend, t: Option<NaiveDateTime>) -> Option<NaiveDateTime> {
    match backend {
        DbBackend::MySql => t.and_then(|t| t.with_nanosecond(0)),
        _ => t,
    }
}
