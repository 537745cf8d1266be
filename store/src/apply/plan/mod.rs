//! Planning: the rules of §6 applied record by record to an in-memory copy
//! of the rows involved, then turned into the set of writes that takes the
//! database from its snapshot to that state.
//!
//! Each record runs against the state left by the records before it, in
//! the original's order (hosts, jobs, suite keyvals), so duplicates, shared
//! labels and user conflicts between records behave exactly as if every
//! record had been applied alone, one after the other. A record that breaks
//! a rule the database would enforce (a width, a missing host, a label name
//! taken by another id) is rolled back in memory and rejected here, before
//! anything reaches the database.
//!
//! - `state`: the rows as plain maps, with one undo log over all of them;
//! - `rules`: the rules of §6, one function per record type;
//! - `diff`: the final state against the snapshot, as [`Writes`].

mod diff;
mod rules;
mod state;

use std::borrow::Cow;

use shard_model::{AclGroup, Host, Hqe, Job, Label, Shard, User};

use super::snapshot::Snapshot;
use super::{Item, Record};
use crate::layout::Layout;
use rules::Planning;

/// Why a record cannot be applied.
type Reason = String;

/// A host to insert, with the columns its relations set.
#[derive(Debug)]
pub(crate) struct NewHost<'a> {
    pub host: &'a Host,
    pub invalid: Option<bool>,
    pub shard_id: Option<i32>,
}

/// A job to insert, with its shard.
#[derive(Debug)]
pub(crate) struct NewJob<'a> {
    pub job: &'a Job,
    pub shard_id: Option<i32>,
}

/// An entry to insert, with its job and meta host.
#[derive(Debug)]
pub(crate) struct NewHqe<'a> {
    pub hqe: &'a Hqe,
    pub job_id: Option<i32>,
    pub aborted: bool,
    pub meta_host: Option<i32>,
}

/// Everything one batch writes, per table, in foreign-key order. Lists are
/// sorted so the statements are the same from one run to the next.
#[derive(Debug, Default)]
pub(crate) struct Writes<'a> {
    pub shards: Vec<&'a Shard>,
    pub labels: Vec<&'a Label>,
    pub users_deleted: Vec<i32>,
    pub users: Vec<&'a User>,
    pub groups: Vec<&'a AclGroup>,
    /// (group, user)
    pub group_users: Vec<(i32, i32)>,
    pub hosts: Vec<NewHost<'a>>,
    pub host_invalid: Vec<(i32, Option<bool>)>,
    pub host_shard: Vec<(i32, Option<i32>)>,
    /// (group, host)
    pub host_groups: Vec<(i32, i32)>,
    /// (host, label)
    pub host_labels: Vec<(i32, i32)>,
    /// Hosts whose attribute rows are deleted before the new set goes in.
    pub attributes_cleared: Vec<i32>,
    /// (host, attribute, value)
    pub attributes: Vec<(i32, Cow<'a, str>, Cow<'a, str>)>,
    pub jobs: Vec<NewJob<'a>>,
    pub job_shard: Vec<(i32, Option<i32>)>,
    /// (job, label)
    pub job_labels: Vec<(i32, i32)>,
    pub hqes: Vec<NewHqe<'a>>,
    pub hqe_job: Vec<(i32, Option<i32>)>,
    pub hqe_aborted: Vec<(i32, bool)>,
    pub hqe_meta_host: Vec<(i32, Option<i32>)>,
    /// Jobs whose keyval rows are deleted before the new set goes in.
    pub keyvals_cleared: Vec<i32>,
    /// (job, key, value)
    pub keyvals: Vec<(i32, Cow<'a, str>, Cow<'a, str>)>,
}

impl Writes<'_> {
    /// Whether there is nothing to write: an unchanged resend then takes
    /// no savepoint and sends no statement.
    pub(crate) fn is_empty(&self) -> bool {
        let Writes {
            shards,
            labels,
            users_deleted,
            users,
            groups,
            group_users,
            hosts,
            host_invalid,
            host_shard,
            host_groups,
            host_labels,
            attributes_cleared,
            attributes,
            jobs,
            job_shard,
            job_labels,
            hqes,
            hqe_job,
            hqe_aborted,
            hqe_meta_host,
            keyvals_cleared,
            keyvals,
        } = self;
        shards.is_empty()
            && labels.is_empty()
            && users_deleted.is_empty()
            && users.is_empty()
            && groups.is_empty()
            && group_users.is_empty()
            && hosts.is_empty()
            && host_invalid.is_empty()
            && host_shard.is_empty()
            && host_groups.is_empty()
            && host_labels.is_empty()
            && attributes_cleared.is_empty()
            && attributes.is_empty()
            && jobs.is_empty()
            && job_shard.is_empty()
            && job_labels.is_empty()
            && hqes.is_empty()
            && hqe_job.is_empty()
            && hqe_aborted.is_empty()
            && hqe_meta_host.is_empty()
            && keyvals_cleared.is_empty()
            && keyvals.is_empty()
    }
}

/// The outcome of planning one batch.
pub(crate) struct Plan<'a> {
    /// Indices (into the batch) of the records that passed planning.
    pub accepted: Vec<usize>,
    /// Indices of the records refused by planning, with why.
    pub rejected: Vec<(usize, Reason)>,
    /// Indices of the suite keyvals refused because their job is not on
    /// the shard (kept apart: the master sends them every heartbeat).
    pub without_job: Vec<usize>,
    /// What the accepted records write.
    pub writes: Writes<'a>,
}

/// Applies `items` in order to the snapshot in memory and derives the
/// writes.
pub(crate) fn plan<'a>(items: &[Item<'a>], snapshot: &Snapshot, layout: &Layout) -> Plan<'a> {
    let mut planning = Planning::new(snapshot, layout);
    let mut accepted = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    let mut without_job = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if let Record::SuiteKeyval(kv) = item.record
            && planning.keyval_without_job(kv)
        {
            without_job.push(i);
            continue;
        }
        match planning.record(item) {
            Ok(()) => accepted.push(i),
            Err(reason) => rejected.push((i, reason)),
        }
    }
    Plan {
        accepted,
        rejected,
        without_job,
        writes: diff::diff(planning.state(), snapshot),
    }
}
