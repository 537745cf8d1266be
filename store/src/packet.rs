//! The queries behind one heartbeat packet (§3, §7 steps 1 and 3): what the
//! shard knows, what it uploads, and marking the upload done.
//!
//! Building a packet is a constant number of statements whatever the size
//! of the lab: known jobs, known hosts, jobs to upload, their entries (two
//! more per `limit` jobs held back, so that they do not take the place of
//! jobs that can go).
//!
//! The scheduler writes the same rows while a heartbeat is in flight, one
//! autocommit statement at a time (§1), and only signals "upload me" when a
//! job's `shard_id` is not already NULL. So an upload is marked done only
//! for the jobs whose entries are still exactly as they were read: marking
//! a job whose entry finished meanwhile would hide that entry from the
//! master for good.
//!
//! The real scheduler decides "not NULL already" on a job row it read at
//! the start of its round, so it can miss a mark that committed since and
//! leave a finished entry unsignalled. [`Running`] follows the entries still
//! running in jobs this shard marked, and [`release_missed`] releases such a
//! job itself once one of them is complete.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use shard_model::status::half_written;
use shard_model::{Hqe, Job};

use crate::error::{Context, StoreError};
use crate::layout::Layout;
use crate::schema::chunk;
use crate::schema::convert::{hqe_from_row, job_from_row};
use crate::schema::entity::shards;
use crate::schema::entity::{hosts, hqes, jobs};

/// The hosts a packet reports: ids and statuses, in the same order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHosts {
    /// Ids of all hosts with `invalid = 0`, ascending.
    pub ids: Vec<i32>,
    /// The status of each, at the same index.
    pub statuses: Vec<Option<String>>,
}

/// Finished jobs waiting for upload, with every entry of those jobs, as
/// read when the packet was built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upload {
    /// The jobs, oldest id first, in the upload shape.
    pub jobs: Vec<Job>,
    /// Every entry of those jobs, by id.
    pub hqes: Vec<Hqe>,
    /// Jobs waiting for upload that were held back because one of their
    /// entries was caught half-written by the scheduler; they go next time.
    pub deferred: Vec<i32>,
    /// The job of each entry of `hqes`, at the same index: what
    /// [`mark_uploaded`] compares the database against.
    hqe_jobs: Vec<i32>,
}

impl Upload {
    /// The ids of the uploaded jobs, in upload order.
    pub fn job_ids(&self) -> Vec<i32> {
        self.jobs.iter().map(|j| j.id).collect()
    }

    /// The upload as marking and following read it.
    fn sent(&self) -> Sent<'_> {
        Sent {
            jobs: &self.jobs,
            hqes: &self.hqes,
            hqe_jobs: &self.hqe_jobs,
        }
    }

    /// Splits the upload into its jobs and entries (which go on the wire)
    /// and the job of each entry (which marking needs afterwards).
    pub(crate) fn into_parts(self) -> (Vec<Job>, Vec<Hqe>, Vec<i32>, Vec<i32>) {
        (self.jobs, self.hqes, self.deferred, self.hqe_jobs)
    }
}

/// Uploaded jobs and entries, wherever they are held (an [`Upload`], or
/// the request a packet sent), with the job of each entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sent<'a> {
    /// The jobs, in upload order.
    pub(crate) jobs: &'a [Job],
    /// Their entries, by id.
    pub(crate) hqes: &'a [Hqe],
    /// The job of each entry, at the same index.
    pub(crate) hqe_jobs: &'a [i32],
}

impl Sent<'_> {
    /// The uploaded entries of each job, in id order.
    fn entries_by_job(&self) -> BTreeMap<i32, Vec<&Hqe>> {
        let mut by_job: BTreeMap<i32, Vec<&Hqe>> =
            self.jobs.iter().map(|j| (j.id, Vec::new())).collect();
        for (job, hqe) in self.hqe_jobs.iter().zip(self.hqes) {
            by_job.entry(*job).or_default().push(hqe);
        }
        by_job
    }
}

/// What [`mark_uploaded`] did with the jobs of an upload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marked {
    /// Jobs now marked uploaded (this shard's again), ascending.
    pub jobs: Vec<i32>,
    /// Jobs left waiting because an entry changed while the heartbeat was
    /// in flight: they go up again, as they are now, next time. Ascending.
    pub changed: Vec<i32>,
}

/// Ids of the jobs that have at least one incomplete entry, ascending and
/// without duplicates (the original's join listed a job once per entry).
pub async fn known_job_ids(db: &impl ConnectionTrait) -> Result<Vec<i32>, StoreError> {
    hqes::Entity::find()
        .select_only()
        .column(hqes::Column::JobId)
        .distinct()
        .filter(hqes::Column::Complete.eq(false))
        .filter(hqes::Column::JobId.is_not_null())
        .order_by_asc(hqes::Column::JobId)
        .into_tuple::<i32>()
        .all(db)
        .await
        .context("reading known job ids")
}

/// All hosts with `invalid = 0` and their statuses (§3). A host whose
/// `invalid` is NULL counts as invalid, as in the original's filter.
pub async fn known_hosts(db: &impl ConnectionTrait) -> Result<KnownHosts, StoreError> {
    let rows: Vec<(i32, Option<String>)> = hosts::Entity::find()
        .select_only()
        .columns([hosts::Column::Id, hosts::Column::Status])
        .filter(hosts::Column::Invalid.eq(false))
        .order_by_asc(hosts::Column::Id)
        .into_tuple()
        .all(db)
        .await
        .context("reading known hosts")?;
    let (ids, statuses) = rows.into_iter().unzip();
    Ok(KnownHosts { ids, statuses })
}

/// `SELECT job_id FROM afe_host_queue_entries WHERE complete = 1`.
fn jobs_with_a_complete_entry() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(hqes::Column::JobId)
        .from(hqes::Entity)
        .and_where(Expr::col(hqes::Column::Complete).eq(true))
        .and_where(Expr::col(hqes::Column::JobId).is_not_null())
        .to_owned()
}

/// Up to `limit` jobs to upload (§7 step 1): `shard_id IS NULL` and at least
/// one complete entry, oldest ids first, with all their entries. A job with
/// an entry caught half-written ([`half_written`]) is held back
/// ([`Upload::deferred`]): uploaded now, it would reach the master in a
/// state the scheduler never meant, and be marked done. Held-back jobs do
/// not count against `limit`: the next waiting jobs are read in their
/// place, so a job stuck half-written never stalls the others.
pub async fn jobs_to_upload(
    db: &impl ConnectionTrait,
    layout: &Layout,
    limit: u64,
) -> Result<Upload, StoreError> {
    let wanted = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut upload = Upload::default();
    let mut entries: Vec<(i32, Hqe)> = Vec::new();
    let mut after: Option<i32> = None;
    while upload.jobs.len() < wanted {
        let mut page = layout
            .select(jobs::Entity)
            .filter(jobs::Column::ShardId.is_null())
            .filter(jobs::Column::Id.in_subquery(jobs_with_a_complete_entry()))
            .order_by_asc(jobs::Column::Id)
            .limit(limit);
        if let Some(after) = after {
            page = page.filter(jobs::Column::Id.gt(after));
        }
        let page: Vec<Job> = page
            .all(db)
            .await
            .context("reading jobs to upload")?
            .into_iter()
            .map(job_from_row)
            .collect();
        let exhausted = (page.len() as u64) < limit;
        after = page.last().map(|j| j.id);
        let ids: Vec<i32> = page.iter().map(|j| j.id).collect();
        let read = entries_of(db, layout, &ids, Lock::None)
            .await
            .context("reading the entries of jobs to upload")?;
        // Entries are read after their jobs, so the check runs on exactly
        // what goes on the wire.
        let held: BTreeSet<i32> = read
            .iter()
            .filter(|(_, hqe)| half_written(hqe.status.as_deref(), hqe.complete))
            .map(|(job, _)| *job)
            .collect();
        let mut taken = BTreeSet::new();
        for job in page {
            if upload.jobs.len() == wanted {
                break;
            }
            if held.contains(&job.id) {
                upload.deferred.push(job.id);
            } else {
                taken.insert(job.id);
                upload.jobs.push(job);
            }
        }
        entries.extend(read.into_iter().filter(|(job, _)| taken.contains(job)));
        if exhausted || held.is_empty() {
            break;
        }
    }
    entries.sort_by_key(|(_, hqe)| hqe.id);
    (upload.hqe_jobs, upload.hqes) = entries.into_iter().unzip();
    Ok(upload)
}

/// Whether a read locks the rows it returns until the transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    None,
    /// `FOR UPDATE` on MySQL and PostgreSQL; SQLite's write transaction
    /// already holds the whole database.
    Exclusive,
}

/// Every entry of `job_ids` with its job, in entry id order: one statement
/// per chunk of jobs.
async fn entries_of(
    db: &impl ConnectionTrait,
    layout: &Layout,
    job_ids: &[i32],
    lock: Lock,
) -> Result<Vec<(i32, Hqe)>, sea_orm::DbErr> {
    let mut entries = Vec::new();
    for chunk in chunk::by_params(db.get_database_backend(), 1, job_ids) {
        let mut select = layout
            .select(hqes::Entity)
            .filter(hqes::Column::JobId.is_in(chunk.iter().copied()))
            .order_by_asc(hqes::Column::Id);
        if lock == Lock::Exclusive {
            select = select.lock_exclusive();
        }
        let rows = select.all(db).await?;
        entries.extend(
            rows.into_iter()
                .filter_map(|row| row.job_id.map(|job| (job, hqe_from_row(row)))),
        );
    }
    // Each chunk's entries come in id order; the packet lists them all so.
    entries.sort_by_key(|(_, hqe)| hqe.id);
    Ok(entries)
}

/// The id of this shard's `afe_shards` row, if the master has sent it yet.
/// Hostnames are not unique in the schema; the lowest id wins.
pub async fn shard_id_by_hostname(
    db: &impl ConnectionTrait,
    hostname: &str,
) -> Result<Option<i32>, StoreError> {
    shards::Entity::find()
        .select_only()
        .column(shards::Column::Id)
        .filter(shards::Column::Hostname.eq(hostname))
        .order_by_asc(shards::Column::Id)
        .into_tuple::<i32>()
        .one(db)
        .await
        .context("looking up this shard's id")
}

/// Marks uploaded jobs as this shard's again (§7 step 3), so they are not
/// uploaded a second time, but only those whose entries are still exactly
/// as `upload` read them: a job whose entry the scheduler changed while the
/// heartbeat was in flight stays waiting and goes up again as it is now
/// ([`Marked::changed`]). Run it in the heartbeat's write transaction: the
/// entries are read with a row lock (SQLite's write transaction holds the
/// whole database), so the scheduler cannot change one between the
/// comparison and the mark; its next write waits for the commit and then
/// sees the job marked, so it signals "upload me" again. Two statements
/// per chunk of jobs.
///
/// Without a shard row yet there is nothing to set: the jobs stay waiting
/// and go up again next time, which the master takes idempotently.
pub async fn mark_uploaded(
    db: &impl ConnectionTrait,
    layout: &Layout,
    upload: &Upload,
    shard_id: Option<i32>,
) -> Result<Marked, StoreError> {
    mark_sent(db, layout, upload.sent(), shard_id).await
}

/// [`mark_uploaded`] for jobs wherever they are held.
pub(crate) async fn mark_sent(
    db: &impl ConnectionTrait,
    layout: &Layout,
    sent: Sent<'_>,
    shard_id: Option<i32>,
) -> Result<Marked, StoreError> {
    let Some(shard_id) = shard_id else {
        return Ok(Marked::default());
    };
    let uploaded = sent.entries_by_job();
    let ids: Vec<i32> = uploaded.keys().copied().collect();
    let mut now: BTreeMap<i32, Vec<Hqe>> = BTreeMap::new();
    for (job, hqe) in entries_of(db, layout, &ids, Lock::Exclusive)
        .await
        .context("reading the entries of uploaded jobs")?
    {
        now.entry(job).or_default().push(hqe);
    }
    let (unchanged, changed): (Vec<i32>, Vec<i32>) = ids.iter().copied().partition(|job| {
        let then = uploaded.get(job).map_or(&[][..], Vec::as_slice);
        let now = now.get(job).map_or(&[][..], Vec::as_slice);
        then.len() == now.len() && then.iter().zip(now).all(|(a, b)| *a == b)
    });
    for chunk in chunk::by_params(db.get_database_backend(), 1, &unchanged) {
        jobs::Entity::update_many()
            .col_expr(jobs::Column::ShardId, Expr::value(shard_id))
            .filter(jobs::Column::Id.is_in(chunk.iter().copied()))
            .filter(jobs::Column::ShardId.is_null())
            .exec(db)
            .await
            .context("marking uploaded jobs")?;
    }
    Ok(Marked {
        jobs: unchanged,
        changed,
    })
}

/// Entries still running (not complete) in jobs marked uploaded, by job.
///
/// The real scheduler signals "upload me" only when the job row it read at
/// the start of its round had a `shard_id`: a mark that committed after
/// that read is missed, and the entry's completion with it. Following
/// these entries lets [`release_missed`] catch that.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Running(BTreeMap<i32, BTreeSet<i32>>);

impl Running {
    /// The jobs followed, ascending.
    pub fn jobs(&self) -> Vec<i32> {
        self.0.keys().copied().collect()
    }

    /// Follows the entries of the `marked` jobs of `upload` that were not
    /// complete when uploaded.
    pub fn follow(&mut self, upload: &Upload, marked: &[i32]) {
        self.follow_sent(upload.sent(), marked);
    }

    /// [`Running::follow`] for jobs wherever they are held.
    pub(crate) fn follow_sent(&mut self, sent: Sent<'_>, marked: &[i32]) {
        let marked: BTreeSet<i32> = marked.iter().copied().collect();
        for (job, hqe) in sent.hqe_jobs.iter().zip(sent.hqes) {
            if marked.contains(job) && hqe.complete != Some(true) {
                self.0.entry(*job).or_default().insert(hqe.id);
            }
        }
    }
}

/// The entries still running in jobs that are assigned (`shard_id` set)
/// and have a complete entry: what a restarted client follows, since any
/// of them may have been marked uploaded with its last entries running.
/// One statement.
pub async fn running_in_marked_jobs(db: &impl ConnectionTrait) -> Result<Running, StoreError> {
    let finished = jobs_with_a_complete_entry();
    let assigned = Query::select()
        .column(jobs::Column::Id)
        .from(jobs::Entity)
        .and_where(Expr::col(jobs::Column::ShardId).is_not_null())
        .to_owned();
    let rows: Vec<(Option<i32>, i32)> = hqes::Entity::find()
        .select_only()
        .columns([hqes::Column::JobId, hqes::Column::Id])
        .filter(
            sea_orm::Condition::any()
                .add(hqes::Column::Complete.eq(false))
                .add(hqes::Column::Complete.is_null()),
        )
        .filter(hqes::Column::JobId.in_subquery(finished))
        .filter(hqes::Column::JobId.in_subquery(assigned))
        .into_tuple()
        .all(db)
        .await
        .context("reading running entries of jobs marked uploaded")?;
    let mut running = Running::default();
    for (job, entry) in rows {
        if let Some(job) = job {
            running.0.entry(job).or_default().insert(entry);
        }
    }
    Ok(running)
}

/// What [`release_missed`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Missed {
    /// Jobs released here (`shard_id = NULL`): still marked uploaded,
    /// although one of their followed entries is complete now. They go up
    /// with the next heartbeat. Ascending.
    pub released: Vec<i32>,
    /// The entries still to follow.
    pub running: Running,
}

/// Releases each job of `running` that is still assigned while one of its
/// followed entries is complete: the scheduler finished that entry without
/// the release (see [`Running`]). A job the scheduler did release, or one
/// that is gone, is no longer followed; the others keep their entries that
/// are still running. Run it in the heartbeat's write transaction, before
/// [`mark_uploaded`]. Two statements per chunk of followed jobs, and one
/// per chunk of released ones.
pub async fn release_missed(
    db: &impl ConnectionTrait,
    running: Running,
) -> Result<Missed, StoreError> {
    let ids = running.jobs();
    let backend = db.get_database_backend();
    let mut assigned: BTreeSet<i32> = BTreeSet::new();
    for chunk in chunk::by_params(backend, 1, &ids) {
        assigned.extend(
            jobs::Entity::find()
                .select_only()
                .column(jobs::Column::Id)
                .filter(jobs::Column::Id.is_in(chunk.iter().copied()))
                .filter(jobs::Column::ShardId.is_not_null())
                .into_tuple::<i32>()
                .all(db)
                .await
                .context("reading the owners of jobs with running entries")?,
        );
    }
    let mut complete: BTreeSet<i32> = BTreeSet::new();
    for chunk in chunk::by_params(backend, 1, &ids) {
        complete.extend(
            hqes::Entity::find()
                .select_only()
                .column(hqes::Column::Id)
                .filter(hqes::Column::JobId.is_in(chunk.iter().copied()))
                .filter(hqes::Column::Complete.eq(true))
                .into_tuple::<i32>()
                .all(db)
                .await
                .context("reading the entries of jobs with running entries")?,
        );
    }
    let mut missed = Missed::default();
    for (job, entries) in running.0 {
        if !assigned.contains(&job) {
            continue;
        }
        if entries.iter().any(|e| complete.contains(e)) {
            missed.released.push(job);
        } else {
            missed.running.0.insert(job, entries);
        }
    }
    for chunk in chunk::by_params(backend, 1, &missed.released) {
        jobs::Entity::update_many()
            .col_expr(jobs::Column::ShardId, Expr::value(Option::<i32>::None))
            .filter(jobs::Column::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await
            .context("releasing jobs the scheduler did not release")?;
    }
    Ok(missed)
}
