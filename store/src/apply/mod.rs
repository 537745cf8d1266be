//! Applying a heartbeat response to the shard database (§6), fast and
//! record by record.
//!
//! 1. *Snapshot*: the existing rows every record touches are read in bulk.
//! 2. *Plan*: the rules of §6 run record by record on an in-memory copy of
//!    those rows; a record that breaks a rule the database would enforce is
//!    rejected there, with its changes undone.
//! 3. *Execute*: the resulting writes go out as multi-row statements, one
//!    per table and chunk, under a savepoint.
//! 4. *Isolate*: if a statement still fails because of the data (a
//!    constraint the plan could not foresee, a collation, a latin1 column),
//!    the savepoint is rolled back and the batch is split in halves, each
//!    re-planned and applied under its own savepoint, until the record at
//!    fault stands alone and is rejected. Everything else lands.
//!
//! Each top-level record (a host with its labels, groups, users and
//! attributes; a job with its entries, labels and keyvals; a suite keyval)
//! is thus applied all or nothing, and the number of statements grows with
//! chunks, not records, except while isolating a failure.

mod collation;
mod execute;
mod plan;
mod snapshot;
mod validate;

use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};
use shard_model::{Defect, HeartbeatResponse, Host, Job, JobKeyval, RecordKind, Rejected};

use crate::error::{StoreError, is_record_error};
use crate::layout::Layout;
use crate::store::begin_write;

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Hosts applied.
    pub hosts: usize,
    /// Jobs applied.
    pub jobs: usize,
    /// Suite keyvals applied.
    pub suite_keyvals: usize,
    /// Records refused, with their ids and why, in response order.
    pub rejected: Vec<Rejected>,
    /// The jobs of suite keyvals refused because the job is not on this
    /// shard and the adopted schema has a foreign key on
    /// `afe_job_keyvals.job_id` (§9, Django's schemas), one entry per
    /// keyval in response order. Kept apart from `rejected`: the master
    /// sends them again every heartbeat, and they are summed up, not listed.
    pub suite_keyvals_without_job: Vec<i32>,
}

impl ApplyReport {
    /// Records applied of one kind.
    pub fn applied(&self, kind: RecordKind) -> usize {
        match kind {
            RecordKind::Host => self.hosts,
            RecordKind::Job => self.jobs,
            RecordKind::SuiteKeyval => self.suite_keyvals,
            RecordKind::IncorrectHostId => 0,
        }
    }
}

/// Records refused so far, by position in the response.
#[derive(Default)]
struct Refused {
    rejected: Vec<(usize, String)>,
    without_job: Vec<usize>,
}

/// One top-level record of a response.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Record<'a> {
    Host(&'a Host),
    Job(&'a Job),
    SuiteKeyval(&'a JobKeyval),
}

/// A record with the defects parsing found in it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Item<'a> {
    pub record: Record<'a>,
    /// Bad fields that refuse the record if their row is inserted.
    pub defects: &'a [Defect],
}

impl Item<'_> {
    fn reject(self, reason: String) -> Rejected {
        let (kind, id) = match self.record {
            Record::Host(h) => (RecordKind::Host, Some(i64::from(h.id))),
            Record::Job(j) => (RecordKind::Job, Some(i64::from(j.id))),
            Record::SuiteKeyval(kv) => (RecordKind::SuiteKeyval, kv.id.map(i64::from)),
        };
        Rejected { kind, id, reason }
    }
}

/// Applies the hosts, jobs and suite keyvals of a response (§6), in that
/// order, in one transaction (a savepoint when `db` is a transaction), to
/// the tables `layout` describes.
///
/// Records the response already rejected while parsing are not repeated in
/// the report. An `Err` means the database failed (not a record): nothing
/// of this call is kept.
pub async fn apply<C>(
    db: &C,
    layout: &Layout,
    response: &HeartbeatResponse,
) -> Result<ApplyReport, StoreError>
where
    C: ConnectionTrait + TransactionTrait<Transaction = DatabaseTransaction>,
{
    let item = |kind, i, record| Item {
        record,
        defects: response.defects(kind, i),
    };
    let items: Vec<Item<'_>> = (response.hosts.iter().enumerate())
        .map(|(i, h)| item(RecordKind::Host, i, Record::Host(h)))
        .chain(
            (response.jobs.iter().enumerate())
                .map(|(i, j)| item(RecordKind::Job, i, Record::Job(j))),
        )
        .chain(
            (response.suite_keyvals.iter().enumerate())
                .map(|(i, kv)| item(RecordKind::SuiteKeyval, i, Record::SuiteKeyval(kv))),
        )
        .collect();
    let txn = begin_write(db).await?;
    let mut refused = Refused::default();
    apply_batch(&txn, layout, &items, &mut refused).await?;
    txn.commit().await.map_err(|source| StoreError::Database {
        operation: "committing the applied records",
        source,
    })?;
    // Isolation may reject records out of order; report them as they came.
    let Refused {
        mut rejected,
        mut without_job,
    } = refused;
    rejected.sort_by_key(|(i, _)| *i);
    without_job.sort_unstable();
    let suite_keyvals_without_job: Vec<i32> = without_job
        .iter()
        .filter_map(|&i| match items[i].record {
            Record::SuiteKeyval(kv) => Some(kv.job_id),
            _ => None,
        })
        .collect();
    let mut report = ApplyReport {
        hosts: response.hosts.len(),
        jobs: response.jobs.len(),
        suite_keyvals: response.suite_keyvals.len() - suite_keyvals_without_job.len(),
        rejected: Vec::with_capacity(rejected.len()),
        suite_keyvals_without_job,
    };
    for (i, reason) in rejected {
        let r = items[i].reject(reason);
        match r.kind {
            RecordKind::Host => report.hosts -= 1,
            RecordKind::Job => report.jobs -= 1,
            RecordKind::SuiteKeyval => report.suite_keyvals -= 1,
            RecordKind::IncorrectHostId => {}
        }
        report.rejected.push(r);
    }
    Ok(report)
}

/// Plans and writes `items`; refused records are pushed to `rejected` with
/// their position in `items`.
async fn apply_batch(
    txn: &DatabaseTransaction,
    layout: &Layout,
    items: &[Item<'_>],
    refused: &mut Refused,
) -> Result<(), StoreError> {
    let indices: Vec<usize> = (0..items.len()).collect();
    apply_subset(txn, layout, items, &indices, refused).await
}

/// Applies the records at positions `subset` of `items`, isolating any
/// record whose writes the database refuses.
fn apply_subset<'a>(
    txn: &'a DatabaseTransaction,
    layout: &'a Layout,
    items: &'a [Item<'a>],
    subset: &'a [usize],
    refused: &'a mut Refused,
) -> std::pin::Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>> {
    Box::pin(async move {
        let batch: Vec<Item<'_>> = subset.iter().map(|&i| items[i]).collect();
        let snapshot = snapshot::Snapshot::read(txn, layout, &batch).await?;
        let plan = plan::plan(&batch, &snapshot, layout);
        refused
            .rejected
            .extend(plan.rejected.iter().map(|(i, r)| (subset[*i], r.clone())));
        refused
            .without_job
            .extend(plan.without_job.iter().map(|&i| subset[i]));
        if plan.writes.is_empty() {
            return Ok(());
        }
        let savepoint = txn.begin().await.map_err(|source| StoreError::Database {
            operation: "taking a savepoint",
            source,
        })?;
        let failure = match execute::execute(&savepoint, layout, &plan.writes).await {
            Ok(()) => {
                return savepoint
                    .commit()
                    .await
                    .map_err(|source| StoreError::Database {
                        operation: "releasing a savepoint",
                        source,
                    });
            }
            Err(e) => e,
        };
        savepoint
            .rollback()
            .await
            .map_err(|source| StoreError::Database {
                operation: "rolling back to a savepoint",
                source,
            })?;
        if !is_record_error(&failure) {
            return Err(StoreError::Database {
                operation: "applying records",
                source: failure,
            });
        }
        let accepted: Vec<usize> = plan.accepted.iter().map(|&i| subset[i]).collect();
        if let [only] = accepted[..] {
            refused.rejected.push((only, failure.to_string()));
            return Ok(());
        }
        drop(plan);
        let (first, second) = accepted.split_at(accepted.len() / 2);
        tracing::debug!(
            records = accepted.len(),
            error = %failure,
            "a batch failed in the database; isolating the record at fault"
        );
        apply_subset(txn, layout, items, first, refused).await?;
        apply_subset(txn, layout, items, second, refused).await
    })
}
