//! Arbitrary bytes as the `result` of a `shard_heartbeat` response, parsed
//! and applied to an in-memory SQLite shard database.
//!
//! The input is one response, or two separated by a NUL byte (which JSON
//! text cannot hold otherwise). The first is applied to an empty database,
//! then the second (or the first again) on top of it, which takes the
//! planner's paths for rows that already exist: users replaced by login or
//! id, label names taken, attribute and keyval sets replaced.
//!
//! Applying must never panic and never fail as a database error (a record
//! the database refuses is the record's fault and must end up rejected,
//! not fail the whole heartbeat, or one bad record would stall the shard
//! forever). After each apply every row of every table must read back and
//! every accepted record must be there; after the first, a host, job or
//! entry that occurs once in the response must read back exactly as sent.
//!
//! Then the oracle of issue 13: the same input goes through the bulk path
//! as the engine runs it (apply, remove incorrect hosts, re-sync) and
//! through the reference apply (`shard_store::testing::reference`, §6 one
//! record per transaction) on a second database; after each response both
//! must refuse the same records and hold the same rows in every table. So
//! fuzzing checks that the apply is right, not only that it survives.
//!
//! One database serves the whole run: each input is applied inside a
//! transaction that is rolled back at the end, so every input starts from
//! an empty schema at the cost of a `ROLLBACK`. The reference commits each
//! record, so its database is emptied before each input.

#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sea_orm::{DatabaseTransaction, EntityTrait, TransactionTrait};
use shard_model::{HeartbeatResponse, RecordKind, ToOne};
use shard_store::schema::convert::{host_from_row, hqe_from_row, job_from_row};
use shard_store::schema::entity::prelude::*;
use shard_store::testing::oracle;
use shard_store::testing::reference::Columns;
use shard_store::{ApplyReport, Store, apply};

struct Harness {
    runtime: tokio::runtime::Runtime,
    store: Store,
    /// The reference apply's database.
    reference: Store,
    columns: Columns,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let database = || async {
            let store = Store::connect("sqlite::memory:")
                .await
                .expect("an in-memory SQLite database");
            store.migrate().await.expect("the AFE schema");
            store
        };
        let (store, reference, columns) = runtime.block_on(async {
            let (store, reference) = (database().await, database().await);
            let columns = Columns::read(reference.connection())
                .await
                .expect("the reference's columns");
            (store, reference, columns)
        });
        Harness {
            runtime,
            store,
            reference,
            columns,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let (first, second) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], Some(&data[nul + 1..])),
        None => (data, None),
    };
    let Ok(first_parsed) = HeartbeatResponse::from_json(first) else {
        return;
    };
    let second_parsed = second.and_then(|s| HeartbeatResponse::from_json(s).ok());
    let h = harness();
    h.runtime.block_on(check(
        &h.store,
        &first_parsed,
        second_parsed.as_ref().unwrap_or(&first_parsed),
    ));
    let second = second.filter(|_| second_parsed.is_some()).unwrap_or(first);
    h.runtime.block_on(same_as_reference(h, &[first, second]));
});

/// The bulk path and the reference apply of `responses`, in turn, leave
/// the same outcome and the same rows.
async fn same_as_reference(h: &Harness, responses: &[&[u8]]) {
    let reference = h.reference.connection();
    oracle::empty(reference)
        .await
        .expect("emptying the reference");
    let txn = h.store.connection().begin().await.expect("BEGIN");
    for (i, bytes) in responses.iter().enumerate() {
        let bulk = oracle::bulk(&txn, &h.store.layout(), bytes).await;
        let expected = oracle::reference(reference, bytes).await;
        match (&bulk, &expected) {
            (Ok(b), Ok(r)) => assert!(
                b.agrees_with(r),
                "response {i}: the outcomes differ\n  bulk:      {b:?}\n  reference: {r:?}"
            ),
            // Both refuse the envelope.
            (Err(_), Err(_)) => return,
            _ => panic!("response {i}: bulk {bulk:?}, reference {expected:?}"),
        }
        let diff = oracle::diff(&txn, reference, &h.columns)
            .await
            .expect("reading both databases");
        assert!(diff.is_empty(), "response {i}: the tables differ\n{diff}");
    }
    txn.rollback().await.expect("ROLLBACK");
}

async fn check(store: &Store, first: &HeartbeatResponse, second: &HeartbeatResponse) {
    let txn = store.connection().begin().await.expect("BEGIN");
    let report = apply(&txn, &store.layout(), first)
        .await
        .unwrap_or_else(|e| panic!("the first apply failed as a database error: {e}"));
    check_counts(first, &report);
    read_everything(&txn).await;
    check_accepted(&txn, first, &report, true).await;

    let report = apply(&txn, &store.layout(), second)
        .await
        .unwrap_or_else(|e| panic!("the second apply failed as a database error: {e}"));
    check_counts(second, &report);
    read_everything(&txn).await;
    check_accepted(&txn, second, &report, false).await;
    txn.rollback().await.expect("ROLLBACK");
}

/// Every record is either applied or rejected, once.
fn check_counts(response: &HeartbeatResponse, report: &ApplyReport) {
    let rejected = |kind| report.rejected.iter().filter(|r| r.kind == kind).count();
    assert_eq!(
        report.hosts + rejected(RecordKind::Host),
        response.hosts.len()
    );
    assert_eq!(report.jobs + rejected(RecordKind::Job), response.jobs.len());
    assert_eq!(
        report.suite_keyvals + rejected(RecordKind::SuiteKeyval),
        response.suite_keyvals.len()
    );
    assert_eq!(rejected(RecordKind::IncorrectHostId), 0);
    for r in &report.rejected {
        assert!(!r.reason.is_empty(), "a rejection without a reason: {r:?}");
    }
}

/// Every row of every table decodes into its entity.
async fn read_everything(txn: &DatabaseTransaction) {
    macro_rules! read_all {
        ($($entity:ty),* $(,)?) => {
            $(
                if let Err(e) = <$entity>::find().all(txn).await {
                    panic!("{} holds a row that does not read back: {e}", stringify!($entity));
                }
            )*
        };
    }
    read_all!(
        Shards,
        Labels,
        ShardsLabels,
        Users,
        AclGroups,
        AclGroupsUsers,
        Hosts,
        AclGroupsHosts,
        HostsLabels,
        HostAttributes,
        Jobs,
        JobsDependencyLabels,
        HostQueueEntries,
        JobKeyvals,
    );
}

/// How many records of one kind and id arrived, and how many were refused.
fn tally(
    kind: RecordKind,
    ids: impl Iterator<Item = Option<i64>>,
    report: &ApplyReport,
) -> HashMap<Option<i64>, (usize, usize)> {
    let mut t: HashMap<Option<i64>, (usize, usize)> = HashMap::new();
    for id in ids {
        t.entry(id).or_default().0 += 1;
    }
    for r in report.rejected.iter().filter(|r| r.kind == kind) {
        t.entry(r.id).or_default().1 += 1;
    }
    t
}

/// Accepted records are in the database. When `exact`, the database was
/// empty before, so a record whose id occurs once reads back as sent.
async fn check_accepted(
    txn: &DatabaseTransaction,
    response: &HeartbeatResponse,
    report: &ApplyReport,
    exact: bool,
) {
    let hosts = tally(
        RecordKind::Host,
        response.hosts.iter().map(|h| Some(i64::from(h.id))),
        report,
    );
    for h in &response.hosts {
        let (arrived, refused) = hosts[&Some(i64::from(h.id))];
        assert!(
            refused <= arrived,
            "host {} refused more often than sent",
            h.id
        );
        if refused == arrived {
            continue;
        }
        let row = Hosts::find_by_id(h.id)
            .one(txn)
            .await
            .expect("reading a host")
            .unwrap_or_else(|| panic!("accepted host {} is not in the database", h.id));
        if exact && arrived == 1 {
            let mut sent = h.clone();
            sent.aclgroup_set = None;
            sent.hostattribute_set = None;
            sent.labels = None;
            sent.shard = ToOne::Absent;
            assert_eq!(host_from_row(row), sent, "host {} reads back changed", h.id);
            for l in h.labels.iter().flatten() {
                let found = Labels::find_by_id(l.id).one(txn).await.expect("a label");
                assert!(
                    found.is_some(),
                    "label {} of host {} is missing",
                    l.id,
                    h.id
                );
            }
        }
    }

    let jobs = tally(
        RecordKind::Job,
        response.jobs.iter().map(|j| Some(i64::from(j.id))),
        report,
    );
    let mut hqe_count: HashMap<i32, usize> = HashMap::new();
    for q in response
        .jobs
        .iter()
        .flat_map(|j| j.hostqueueentry_set.iter().flatten())
    {
        *hqe_count.entry(q.id).or_default() += 1;
    }
    for j in &response.jobs {
        let (arrived, refused) = jobs[&Some(i64::from(j.id))];
        assert!(
            refused <= arrived,
            "job {} refused more often than sent",
            j.id
        );
        if refused == arrived {
            continue;
        }
        let row = Jobs::find_by_id(j.id)
            .one(txn)
            .await
            .expect("reading a job")
            .unwrap_or_else(|| panic!("accepted job {} is not in the database", j.id));
        if !(exact && arrived == 1) {
            continue;
        }
        let mut sent = j.clone();
        sent.dependency_labels = None;
        sent.hostqueueentry_set = None;
        sent.jobkeyval_set = None;
        sent.shard = ToOne::Absent;
        assert_eq!(job_from_row(row), sent, "job {} reads back changed", j.id);
        for q in j.hostqueueentry_set.iter().flatten() {
            let row = HostQueueEntries::find_by_id(q.id)
                .one(txn)
                .await
                .expect("reading an entry")
                .unwrap_or_else(|| panic!("entry {} of job {} is missing", q.id, j.id));
            if hqe_count[&q.id] == 1 {
                assert_eq!(
                    row.job_id,
                    Some(j.id),
                    "entry {} is not job {}'s",
                    q.id,
                    j.id
                );
                let mut sent = q.clone();
                sent.meta_host = ToOne::Absent;
                assert_eq!(hqe_from_row(row), sent, "entry {} reads back changed", q.id);
            }
        }
    }

    let keyvals = tally(
        RecordKind::SuiteKeyval,
        response.suite_keyvals.iter().map(|kv| kv.id.map(i64::from)),
        report,
    );
    let stored: Vec<(i32, String)> = JobKeyvals::find()
        .all(txn)
        .await
        .expect("reading keyvals")
        .into_iter()
        .map(|k| (k.job_id, k.key))
        .collect();
    for kv in &response.suite_keyvals {
        let (arrived, refused) = keyvals[&kv.id.map(i64::from)];
        if arrived == 1 && refused == 0 {
            assert!(
                stored
                    .iter()
                    .any(|(job, key)| *job == kv.job_id && *key == kv.key),
                "accepted suite keyval {:?} of job {} is not in the database",
                kv.key,
                kv.job_id
            );
        }
    }
}
