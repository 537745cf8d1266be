//! Random shard databases for the packet oracle, as rows over small id
//! spaces: up to 8 hosts, 10 jobs and 30 entries, so jobs share hosts and
//! have several entries, none or many.
//!
//! Hosts with `invalid` 0, 1 or NULL and every status of §5 (and NULL, and
//! strings that are not statuses); jobs with `shard_id` NULL or set; entries
//! with `complete` 0, 1 or NULL under consistent, half-written (§7 step 1)
//! and unknown statuses, with and without a host or a meta host, now and
//! then without a job. Values reach the edges of their columns: extreme
//! integers, 250-character strings, quotes and non-ASCII text, datetimes
//! with and without a fraction, NULL wherever the column allows it.
//!
//! [`fit`] then bends a database to a schema found in deployments (§9) that
//! refuses some of it: a NOT NULL column, latin1 text, `UNIQUE(job_id,
//! host_id)`, a foreign key on a job's parent.

use std::collections::BTreeSet;

use chrono::{NaiveDate, NaiveDateTime};
use proptest::collection::btree_map;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::BoxedStrategy;
use shard_store::Layout;
use shard_store::schema::entity::{hosts, hqes, jobs};

use super::spec::{COMPLETE_STATUSES, HOST_STATUSES, HQE_STATUSES};

/// The labels every database has (`meta_host` refers to them).
pub const LABEL_IDS: [i32; 3] = [1, 2, 3];
/// The shards every database has (`shard_id` refers to them).
pub const SHARD_IDS: [i32; 2] = [1, 2];
/// Suite jobs: a job's parent, which lives on the master only.
const SUITE_IDS: [i32; 3] = [900, 901, 902];

/// One random shard database.
#[derive(Debug, Clone)]
pub struct Lab {
    /// `afe_hosts`, in insertion order.
    pub hosts: Vec<hosts::Model>,
    /// `afe_jobs`, in insertion order.
    pub jobs: Vec<jobs::Model>,
    /// `afe_host_queue_entries`, in insertion order.
    pub entries: Vec<hqes::Model>,
}

/// A random database.
pub fn lab() -> impl Strategy<Value = Lab> {
    let hosts = btree_map(1..=8i32, host(), 0..=8)
        .prop_map(with_ids)
        .prop_shuffle();
    let jobs = btree_map(1..=10i32, job(), 0..=10)
        .prop_map(with_ids)
        .prop_shuffle();
    (hosts, jobs).prop_flat_map(move |(hosts, jobs)| {
        let host_ids: Vec<i32> = hosts.iter().map(|h| h.id).collect();
        let job_ids: Vec<i32> = jobs.iter().map(|j| j.id).collect();
        btree_map(1..=30i32, entry(&job_ids, &host_ids), 0..=30)
            .prop_map(with_ids)
            .prop_shuffle()
            .prop_map(move |entries| Lab {
                hosts: hosts.clone(),
                jobs: jobs.clone(),
                entries,
            })
    })
}

/// The rows of `m`, each with its key as id.
fn with_ids<M: HasId>(m: std::collections::BTreeMap<i32, M>) -> Vec<M> {
    m.into_iter()
        .map(|(id, mut row)| {
            row.set_id(id);
            row
        })
        .collect()
}

/// A row whose id the generator chooses.
trait HasId {
    fn set_id(&mut self, id: i32);
}

impl HasId for hosts::Model {
    /// The hostname too, unique as Django's schema wants it.
    fn set_id(&mut self, id: i32) {
        self.id = id;
        if self.hostname.is_some() {
            self.hostname = Some(format!("host{id}"));
        }
    }
}

impl HasId for jobs::Model {
    fn set_id(&mut self, id: i32) {
        self.id = id;
    }
}

impl HasId for hqes::Model {
    fn set_id(&mut self, id: i32) {
        self.id = id;
    }
}

// ---------------------------------------------------------------------------
// Values.

/// 0, 1 or NULL.
fn flag() -> impl Strategy<Value = Option<bool>> {
    prop_oneof![Just(Some(false)), Just(Some(true)), Just(None)]
}

/// A string that fits every varchar it goes into (250 characters at most).
fn text() -> BoxedStrategy<String> {
    const TEXTS: [&str; 9] = [
        "",
        "a",
        "dut-1",
        "é ü ß",
        "🐙 octopus",
        "it's \"quoted\" \\",
        "trailing  ",
        "line\nbreak",
        "Completed",
    ];
    prop_oneof![
        6 => select(&TEXTS[..]).prop_map(str::to_owned),
        1 => Just("x".repeat(250)),
    ]
    .boxed()
}

/// An `int` column's value.
fn int() -> impl Strategy<Value = i32> {
    prop_oneof![
        4 => -2..=5i32,
        1 => Just(i32::MAX),
        1 => Just(i32::MIN),
        1 => any::<i32>(),
    ]
}

/// A value that also fits the `smallint` of a Django schema.
fn small() -> impl Strategy<Value = i16> {
    prop_oneof![4 => -2..=5i16, 1 => Just(i16::MAX), 1 => Just(i16::MIN)]
}

/// A datetime, with a fraction half of the time.
fn datetime() -> impl Strategy<Value = NaiveDateTime> {
    (
        1999..=2031i32,
        1..=12u32,
        1..=28u32,
        0..24u32,
        0..60u32,
        0..60u32,
        prop_oneof![Just(0u32), 1..1_000_000u32],
    )
        .prop_map(|(y, mo, d, h, mi, s, micro)| {
            NaiveDate::from_ymd_opt(y, mo, d)
                .and_then(|date| date.and_hms_micro_opt(h, mi, s, micro))
                .expect("a valid date")
        })
}

fn shard() -> impl Strategy<Value = Option<i32>> {
    prop_oneof![2 => Just(None), 1 => select(&SHARD_IDS[..]).prop_map(Some)]
}

// ---------------------------------------------------------------------------
// Rows, with id 0 until [`lab`] gives them theirs.

fn host() -> impl Strategy<Value = hosts::Model> {
    let status = prop_oneof![
        8 => select(&HOST_STATUSES[..]).prop_map(|s| Some(s.to_owned())),
        1 => Just(None),
        1 => select(&["", "ready", "Repair  Failed"][..]).prop_map(|s| Some(s.to_owned())),
    ];
    let invalid = prop_oneof![3 => Just(Some(false)), 1 => Just(Some(true)), 1 => Just(None)];
    (
        (any::<bool>(), flag(), option::of(int()), status, invalid),
        (
            small(),
            option::of(datetime()),
            any::<bool>(),
            any::<bool>(),
            shard(),
            option::of(text()),
        ),
    )
        .prop_map(
            |(
                (named, locked, synch_id, status, invalid),
                (protection, lock_time, dirty, leased, shard_id, lock_reason),
            )| {
                hosts::Model {
                    id: 0,
                    hostname: named.then(String::new),
                    locked,
                    synch_id,
                    status: status.clone(),
                    invalid,
                    protection: i32::from(protection),
                    locked_by_id: None,
                    lock_time,
                    dirty,
                    leased,
                    shard_id,
                    lock_reason: lock_reason.clone(),
                }
            },
        )
}

fn job() -> impl Strategy<Value = jobs::Model> {
    let control_file = prop_oneof![4 => text(), 1 => Just("def step():\n    pass\n".repeat(300))];
    (
        (
            option::of(text()),
            option::of(text()),
            option::of(small()),
            option::of(control_file),
            option::of(small()),
            option::of(datetime()),
            int(),
            int(),
        ),
        (
            flag(),
            text(),
            small(),
            small(),
            any::<bool>(),
            int(),
            int(),
        ),
        (
            option::of(select(&SUITE_IDS[..])),
            int(),
            any::<bool>(),
            int(),
            shard(),
            flag(),
        ),
    )
        .prop_map(
            |(
                (
                    owner,
                    name,
                    priority,
                    control_file,
                    control_type,
                    created_on,
                    synch_count,
                    timeout,
                ),
                (
                    run_verify,
                    email_list,
                    reboot_before,
                    reboot_after,
                    parse_failed_repair,
                    max_runtime_hrs,
                    max_runtime_mins,
                ),
                (parent_job_id, test_retry, run_reset, timeout_mins, shard_id, require_ssp),
            )| {
                jobs::Model {
                    id: 0,
                    owner: owner.clone(),
                    name: name.clone(),
                    priority: priority.map(i32::from),
                    control_file: control_file.clone(),
                    control_type: control_type.map(i32::from),
                    created_on,
                    synch_count,
                    timeout,
                    run_verify,
                    email_list: email_list.clone(),
                    reboot_before,
                    reboot_after,
                    parse_failed_repair,
                    max_runtime_hrs,
                    drone_set_id: None,
                    parameterized_job_id: None,
                    max_runtime_mins,
                    parent_job_id,
                    test_retry,
                    run_reset,
                    timeout_mins,
                    shard_id,
                    require_ssp,
                }
            },
        )
}

/// An entry's `status` and `complete`: mostly consistent, often caught
/// half-written (either way), now and then a status §5 does not know.
fn state() -> BoxedStrategy<(Option<String>, Option<bool>)> {
    let complete: Vec<&str> = COMPLETE_STATUSES.to_vec();
    let incomplete: Vec<&str> = HQE_STATUSES
        .iter()
        .copied()
        .filter(|s| !COMPLETE_STATUSES.contains(s))
        .collect();
    let status = |pool: &Vec<&'static str>| select(pool.clone()).prop_map(|s| Some(s.to_owned()));
    let unknown = prop_oneof![
        Just(None),
        select(&["Archiving", "completed", "Completed ", ""][..]).prop_map(|s| Some(s.to_owned())),
    ];
    let mut states = vec![
        // Finished.
        (4, (status(&complete), Just(Some(true))).boxed()),
        // Not finished.
        (4, (status(&incomplete), Just(Some(false))).boxed()),
        // Between the scheduler's status and its `complete = 1`.
        (1, (status(&complete), Just(Some(false))).boxed()),
        // Re-queued, `complete = 0` not yet written.
        (1, (status(&incomplete), Just(Some(true))).boxed()),
        (1, (status(&incomplete), Just(None)).boxed()),
        (1, (unknown, flag()).boxed()),
    ];
    // A complete status with a NULL flag (Autotest's SQL schema allows it).
    states.push((1, (status(&complete), Just(None)).boxed()));
    proptest::strategy::Union::new_weighted(states).boxed()
}

fn entry(job_ids: &[i32], host_ids: &[i32]) -> impl Strategy<Value = hqes::Model> + use<> {
    let job_id = one_of(job_ids, 12);
    let host_id = one_of(host_ids, 2);
    (
        (job_id, host_id, option::of(select(&LABEL_IDS[..]))),
        (state(), flag(), any::<bool>(), text(), any::<bool>()),
        (option::of(datetime()), option::of(datetime())),
    )
        .prop_map(
            |(
                (job_id, host_id, meta_host),
                ((status, complete), active, deleted, execution_subdir, aborted),
                (started_on, finished_on),
            )| {
                hqes::Model {
                    id: 0,
                    job_id,
                    host_id,
                    status: status.clone(),
                    meta_host,
                    active,
                    complete,
                    deleted,
                    execution_subdir: execution_subdir.clone(),
                    atomic_group_id: None,
                    aborted,
                    started_on,
                    finished_on,
                }
            },
        )
}

/// One of `ids` (`weight` to 1 against NULL), or NULL when there are none.
fn one_of(ids: &[i32], weight: u32) -> BoxedStrategy<Option<i32>> {
    if ids.is_empty() {
        return Just(None).boxed();
    }
    prop_oneof![weight => select(ids.to_vec()).prop_map(Some), 1 => Just(None)].boxed()
}

// ---------------------------------------------------------------------------
// Fitting a database to a schema.

/// `lab` as a database laid out as `layout` can hold it: NULL replaced
/// where a column is NOT NULL (an entry without a job dropped), text a
/// latin1 column cannot hold replaced, a job's parent dropped where it is
/// a foreign key (suite jobs are not on the shard), and with
/// `unique_job_host`, a second entry of one job on one host moved off it.
pub fn fit(lab: &Lab, layout: &Layout, unique_job_host: bool) -> Lab {
    let not_null =
        |table: &str, column: &str| layout.column(table, column).is_some_and(|c| !c.nullable);
    let hold = |table: &str, column: &str, s: &mut String| {
        if layout.column(table, column).is_some_and(|c| !c.can_hold(s)) {
            *s = "not latin1".to_owned();
        }
    };
    let hold_opt = |table: &str, column: &str, s: &mut Option<String>| {
        if let Some(s) = s {
            hold(table, column, s);
        }
    };
    let or = |table: &str, column: &str, v: &mut Option<bool>, default: bool| {
        if v.is_none() && not_null(table, column) {
            *v = Some(default);
        }
    };

    let mut hosts = lab.hosts.clone();
    for h in &mut hosts {
        const T: &str = "afe_hosts";
        if h.hostname.is_none() && not_null(T, "hostname") {
            h.hostname = Some(format!("host{}", h.id));
        }
        or(T, "locked", &mut h.locked, false);
        or(T, "invalid", &mut h.invalid, false);
        if h.status.is_none() && not_null(T, "status") {
            h.status = Some("Ready".to_owned());
        }
        hold_opt(T, "status", &mut h.status);
        hold_opt(T, "lock_reason", &mut h.lock_reason);
    }

    let mut jobs = lab.jobs.clone();
    for j in &mut jobs {
        const T: &str = "afe_jobs";
        for (column, v) in [("owner", &mut j.owner), ("name", &mut j.name)] {
            if v.is_none() && not_null(T, column) {
                *v = Some(String::new());
            }
            hold_opt(T, column, v);
        }
        hold_opt(T, "control_file", &mut j.control_file);
        hold(T, "email_list", &mut j.email_list);
        for (column, v) in [
            ("priority", &mut j.priority),
            ("control_type", &mut j.control_type),
        ] {
            if v.is_none() && not_null(T, column) {
                *v = Some(0);
            }
        }
        if j.created_on.is_none() && not_null(T, "created_on") {
            j.created_on =
                NaiveDate::from_ymd_opt(2014, 9, 23).and_then(|d| d.and_hms_opt(0, 0, 0));
        }
        or(T, "run_verify", &mut j.run_verify, true);
        or(T, "require_ssp", &mut j.require_ssp, false);
        if layout.has_foreign_key(shard_store::schema::entity::afe_jobs::Column::ParentJobId) {
            j.parent_job_id = None;
        }
    }

    let mut entries = Vec::new();
    let mut on_host: BTreeSet<(i32, i32)> = BTreeSet::new();
    for e in &lab.entries {
        const T: &str = "afe_host_queue_entries";
        let mut e = e.clone();
        if e.job_id.is_none() && not_null(T, "job_id") {
            continue;
        }
        if e.status.is_none() && not_null(T, "status") {
            e.status = Some("Queued".to_owned());
        }
        hold_opt(T, "status", &mut e.status);
        hold(T, "execution_subdir", &mut e.execution_subdir);
        or(T, "active", &mut e.active, false);
        or(T, "complete", &mut e.complete, false);
        if let (true, Some(job), Some(host)) = (unique_job_host, e.job_id, e.host_id)
            && !on_host.insert((job, host))
        {
            e.host_id = None;
        }
        entries.push(e);
    }
    Lab {
        hosts,
        jobs,
        entries,
    }
}
