//! A simulator of the shard's own scheduler, for end-to-end tests and the
//! demo: on a shard database it does what the real scheduler does to the
//! tables the shard client shares with it (§1).
//!
//! Each [`Scheduler::tick`] is one scheduling round in one short write
//! transaction (`BEGIN IMMEDIATE` on SQLite, so it queues behind a
//! heartbeat instead of failing half-way):
//!
//! 1. aborted entries end `Aborted` and free the host they ran on;
//! 2. running entries whose time is up end `Completed` or `Failed`
//!    ([`SchedulerConfig::failure_ratio`]) and free their host;
//! 3. queued entries, oldest job first, start `Running` on a suitable
//!    `Ready` host, which becomes `Running`;
//! 4. jobs whose entries all became complete get `shard_id = NULL`, the
//!    shard client's "upload me".
//!
//! `active` and `complete` are always derived from the status lists of §5
//! ([`shard_model::status`]). Reads are one query per table (per chunk of
//! ids), so a round costs a handful of statements plus one per started
//! entry, whatever the size of the shard. Randomness comes from a seeded
//! generator: the same seed on the same database gives the same run.
//!
//! Tests that need exact times instead of a simulated run use the direct
//! edits [`complete_jobs`], [`set_host_status`] and [`set_job_shard`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::RangeInclusive;
use std::time::Duration;

use chrono::{NaiveDateTime, SubsecRound};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, UpdateMany,
};
use shard_model::status::{
    HOST_STATUSES, HQE_ACTIVE_STATUSES, HQE_COMPLETE_STATUSES, HQE_STATUSES,
};
use shard_store::StoreError;
use shard_store::entity::{
    afe_host_queue_entries as hqes, afe_hosts as hosts, afe_hosts_labels as host_labels,
    afe_jobs as jobs, afe_jobs_dependency_labels as job_labels,
};
use tokio_util::sync::CancellationToken;

/// Ids per `IN (...)` list: far below every backend's parameter limit.
const IDS_PER_STATEMENT: usize = 1000;

// The statuses the simulator writes, each looked up in the vocabulary it
// must belong to, so a misspelling (or a list that changes) fails the build.
const QUEUED: &str = status(&HQE_STATUSES, "Queued");
const RUNNING: &str = status(&HQE_ACTIVE_STATUSES, "Running");
const COMPLETED: &str = status(&HQE_COMPLETE_STATUSES, "Completed");
const FAILED: &str = status(&HQE_COMPLETE_STATUSES, "Failed");
const ABORTED: &str = status(&HQE_COMPLETE_STATUSES, "Aborted");
const HOST_READY: &str = status(&HOST_STATUSES, "Ready");
const HOST_RUNNING: &str = status(&HOST_STATUSES, "Running");

/// `name` as spelled in `vocabulary`; evaluated at compile time, where a
/// name missing from the vocabulary is a build error.
const fn status(vocabulary: &[&'static str], name: &str) -> &'static str {
    let mut i = 0;
    while i < vocabulary.len() {
        if same_bytes(vocabulary[i].as_bytes(), name.as_bytes()) {
            return vocabulary[i];
        }
        i += 1;
    }
    panic!("not a status of this vocabulary (spec §5)");
}

const fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// How the simulated lab behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    /// Share of finished entries that end `Failed` rather than `Completed`:
    /// 0 never fails, 1 always does (values outside 0..=1 act as the bound).
    pub failure_ratio: f64,
    /// How many ticks an entry stays running, drawn uniformly from this
    /// range for each entry; 0 acts as 1 (an entry runs at least one tick).
    pub run_ticks: RangeInclusive<u32>,
    /// Seed of the generator behind durations and failures.
    pub seed: u64,
}

impl Default for SchedulerConfig {
    /// One failure in ten, one to three ticks per entry, seed 1.
    fn default() -> Self {
        SchedulerConfig {
            failure_ratio: 0.1,
            run_ticks: 1..=3,
            seed: 1,
        }
    }
}

/// What one [`Scheduler::tick`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Entries that started running.
    pub started: usize,
    /// Entries that ran to their end, `Completed` or `Failed`.
    pub finished: usize,
    /// Of the `finished` entries, those that ended `Failed`.
    pub failed: usize,
    /// Entries that ended `Aborted`.
    pub aborted: usize,
    /// Jobs whose `shard_id` was set to NULL (handed to the uploader).
    pub released_jobs: usize,
}

/// The simulated scheduler of one shard database.
#[derive(Debug)]
pub struct Scheduler {
    conn: DatabaseConnection,
    config: SchedulerConfig,
    rng: SplitMix64,
    /// Rounds attempted so far; the clock of `finishes_at`.
    tick: u64,
    /// In-flight entries (by id) and the tick at which each finishes.
    finishes_at: HashMap<i32, u64>,
}

/// The rows one round works on, read at its start.
struct Snapshot {
    /// Incomplete entries, oldest job first, then by id.
    entries: Vec<hqes::Model>,
    /// Every host, by id.
    hosts: BTreeMap<i32, hosts::Model>,
}

/// The writes one round decided on.
#[derive(Default)]
struct Round {
    report: TickReport,
    aborted: Vec<i32>,
    completed: Vec<i32>,
    failed: Vec<i32>,
    /// (entry, host and its hostname): entries to start.
    started: Vec<(i32, Option<(i32, String)>)>,
    /// Hosts whose status changes, and to what.
    host_status: BTreeMap<i32, &'static str>,
    /// Jobs that had an entry end in this round.
    touched_jobs: BTreeSet<i32>,
    /// Jobs that still have an incomplete entry after this round.
    busy_jobs: HashSet<i32>,
    /// In-flight entries after this round, and when each finishes.
    finishes_at: HashMap<i32, u64>,
}

impl Scheduler {
    /// A scheduler on `conn` (a shard database with the AFE schema); it
    /// adopts entries already in flight there, as a restarted scheduler
    /// would.
    pub fn new(conn: DatabaseConnection, config: SchedulerConfig) -> Scheduler {
        Scheduler {
            conn,
            rng: SplitMix64(config.seed),
            config,
            tick: 0,
            finishes_at: HashMap::new(),
        }
    }

    /// One scheduling round (see the module documentation) in one write
    /// transaction. On error nothing of the round is kept, and the next
    /// tick starts over from the database.
    pub async fn tick(&mut self) -> Result<TickReport, StoreError> {
        self.tick += 1;
        let saved_rng = self.rng.clone();
        let txn = shard_store::begin_write(&self.conn).await?;
        match self.round(&txn).await {
            Ok(round) => {
                txn.commit()
                    .await
                    .map_err(database("committing a scheduling round"))?;
                self.finishes_at = round.finishes_at;
                Ok(round.report)
            }
            Err(e) => {
                // The transaction may already be dead; dropping it rolls
                // back too, so a failed rollback adds nothing to report.
                let _ = txn.rollback().await;
                self.rng = saved_rng;
                Err(e)
            }
        }
    }

    /// Ticks every `period` until `cancel` fires. A failed tick (the
    /// database locked by a heartbeat, a server gone away) is logged and
    /// the next one tries again.
    pub async fn run(mut self, period: Duration, cancel: CancellationToken) {
        while !cancel.is_cancelled() {
            match self.tick().await {
                Ok(report) if report != TickReport::default() => {
                    tracing::debug!(
                        tick = self.tick,
                        started = report.started,
                        finished = report.finished,
                        failed = report.failed,
                        aborted = report.aborted,
                        released_jobs = report.released_jobs,
                        "scheduler simulator round"
                    );
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(tick = self.tick, %error, "scheduler simulator round failed; retrying next tick");
                }
            }
            if cancel
                .run_until_cancelled(tokio::time::sleep(period))
                .await
                .is_none()
            {
                break;
            }
        }
    }

    /// Reads, decides and writes one round inside `txn`.
    async fn round(&mut self, txn: &DatabaseTransaction) -> Result<Round, StoreError> {
        let now = chrono::Local::now().naive_local().trunc_subsecs(0);
        let snapshot = read_snapshot(txn).await?;
        let mut round = Round::default();
        self.end_aborted_and_finished(&snapshot, &mut round);
        self.start_queued(txn, &snapshot, &mut round).await?;
        write_entries(txn, &round, now).await?;
        write_hosts(txn, &snapshot, &round).await?;
        round.report.released_jobs = release_jobs(txn, &round).await?;
        Ok(round)
    }

    /// Steps 1 and 2: aborted entries end `Aborted`; in-flight entries
    /// whose time is up end `Completed` or `Failed`. Both free their host.
    fn end_aborted_and_finished(&mut self, snapshot: &Snapshot, round: &mut Round) {
        for entry in &snapshot.entries {
            let in_flight = entry.status.as_deref() != Some(QUEUED);
            if entry.aborted {
                round.aborted.push(entry.id);
                round.report.aborted += 1;
            } else if in_flight {
                let finish = match self.finishes_at.get(&entry.id) {
                    Some(&tick) => tick,
                    // Started by someone else (or before a restart).
                    None => self.tick + self.draw_run_ticks(),
                };
                if finish > self.tick {
                    round.finishes_at.insert(entry.id, finish);
                    round.busy_jobs.extend(entry.job_id);
                    continue;
                }
                round.report.finished += 1;
                if self.rng.next_f64() < self.config.failure_ratio {
                    round.failed.push(entry.id);
                    round.report.failed += 1;
                } else {
                    round.completed.push(entry.id);
                }
            } else {
                // Queued: decided in step 3.
                continue;
            }
            round.touched_jobs.extend(entry.job_id);
            if let (true, Some(host)) = (in_flight, entry.host_id) {
                round.host_status.insert(host, HOST_READY);
            }
        }
    }

    /// Step 3: queued entries, oldest job first, start on a suitable host.
    async fn start_queued(
        &mut self,
        txn: &DatabaseTransaction,
        snapshot: &Snapshot,
        round: &mut Round,
    ) -> Result<(), StoreError> {
        let queued: Vec<&hqes::Model> = snapshot
            .entries
            .iter()
            .filter(|e| !e.aborted && e.status.as_deref() == Some(QUEUED))
            .collect();
        // Hosts still busy with an entry that goes on are never free,
        // whatever their status says.
        let busy_hosts: HashSet<i32> = snapshot
            .entries
            .iter()
            .filter(|e| round.finishes_at.contains_key(&e.id))
            .filter_map(|e| e.host_id)
            .collect();
        let mut free: BTreeMap<i32, &hosts::Model> = snapshot
            .hosts
            .values()
            .filter(|h| {
                let status = round
                    .host_status
                    .get(&h.id)
                    .copied()
                    .or(h.status.as_deref());
                status == Some(HOST_READY)
                    && h.locked != Some(true)
                    && h.invalid == Some(false)
                    && !busy_hosts.contains(&h.id)
            })
            .map(|h| (h.id, h))
            .collect();
        let any_meta = queued
            .iter()
            .any(|e| e.host_id.is_none() && e.meta_host.is_some());
        let (host_labels, job_labels) = if any_meta && !free.is_empty() {
            let meta_jobs: Vec<i32> = queued
                .iter()
                .filter(|e| e.host_id.is_none() && e.meta_host.is_some())
                .filter_map(|e| e.job_id)
                .collect();
            let free_ids: Vec<i32> = free.keys().copied().collect();
            (
                read_host_labels(txn, &free_ids).await?,
                read_job_labels(txn, &meta_jobs).await?,
            )
        } else {
            Default::default()
        };
        let no_labels = BTreeSet::new();
        for entry in queued {
            let host = match (entry.host_id, entry.meta_host) {
                (Some(bound), _) => match free.contains_key(&bound) {
                    true => Some(bound),
                    false => None,
                },
                (None, Some(meta)) => {
                    let deps = entry
                        .job_id
                        .and_then(|j| job_labels.get(&j))
                        .unwrap_or(&no_labels);
                    free.keys().copied().find(|h| {
                        host_labels
                            .get(h)
                            .is_some_and(|l| l.contains(&meta) && l.is_superset(deps))
                    })
                }
                // Hostless (a suite job): the real scheduler runs it on
                // the drone, without a host.
                (None, None) => {
                    self.start(entry, None, round);
                    continue;
                }
            };
            match host.and_then(|h| free.remove(&h)) {
                Some(host) => {
                    let hostname = host.hostname.clone().unwrap_or_default();
                    self.start(entry, Some((host.id, hostname)), round);
                }
                None => round.busy_jobs.extend(entry.job_id),
            }
        }
        Ok(())
    }

    /// Starts `entry` on `host` in this round.
    fn start(&mut self, entry: &hqes::Model, host: Option<(i32, String)>, round: &mut Round) {
        if let Some((id, _)) = &host {
            round.host_status.insert(*id, HOST_RUNNING);
        }
        round
            .finishes_at
            .insert(entry.id, self.tick + self.draw_run_ticks());
        round.busy_jobs.extend(entry.job_id);
        round.started.push((entry.id, host));
        round.report.started += 1;
    }

    /// How many ticks a new entry runs: at least one.
    fn draw_run_ticks(&mut self) -> u64 {
        u64::from(self.rng.in_range(&self.config.run_ticks).max(1))
    }
}

/// True when no entry of this database is incomplete (`complete` 0 or
/// NULL): everything the shard held has run.
pub async fn all_done(conn: &impl ConnectionTrait) -> Result<bool, StoreError> {
    let left = hqes::Entity::find()
        .select_only()
        .column(hqes::Column::Id)
        .filter(incomplete())
        .into_tuple::<i32>()
        .one(conn)
        .await
        .map_err(database("looking for incomplete entries"))?;
    Ok(left.is_none())
}

/// Finishes every entry of `job_ids` at once, as a scheduler that ran them
/// between `started_on` and `finished_on` would: `Completed`, with the
/// flags of §5, and the jobs' `shard_id` set to NULL ("upload me"). Hosts
/// and execution subdirectories are left as they are. For tests that need
/// exact times rather than a simulated run.
pub async fn complete_jobs(
    conn: &impl ConnectionTrait,
    job_ids: &[i32],
    started_on: NaiveDateTime,
    finished_on: NaiveDateTime,
) -> Result<(), StoreError> {
    for chunk in job_ids.chunks(IDS_PER_STATEMENT) {
        set_status(hqes::Entity::update_many(), COMPLETED)
            .col_expr(hqes::Column::StartedOn, Expr::value(started_on))
            .col_expr(hqes::Column::FinishedOn, Expr::value(finished_on))
            .filter(hqes::Column::JobId.is_in(chunk.iter().copied()))
            .exec(conn)
            .await
            .map_err(database("completing the entries of jobs"))?;
    }
    set_job_shard(conn, job_ids, None).await
}

/// Sets the `status` of host `host_id`, as the scheduler does when a host
/// starts or ends a job or a repair.
pub async fn set_host_status(
    conn: &impl ConnectionTrait,
    host_id: i32,
    status: &str,
) -> Result<(), StoreError> {
    hosts::Entity::update_many()
        .col_expr(hosts::Column::Status, Expr::value(status))
        .filter(hosts::Column::Id.eq(host_id))
        .exec(conn)
        .await
        .map_err(database("setting a host status"))?;
    Ok(())
}

/// Sets the `shard_id` of `job_ids`: NULL releases them for upload, a
/// shard's id marks them as that shard's (uploaded).
pub async fn set_job_shard(
    conn: &impl ConnectionTrait,
    job_ids: &[i32],
    shard_id: Option<i32>,
) -> Result<(), StoreError> {
    for chunk in job_ids.chunks(IDS_PER_STATEMENT) {
        jobs::Entity::update_many()
            .col_expr(jobs::Column::ShardId, Expr::value(shard_id))
            .filter(jobs::Column::Id.is_in(chunk.iter().copied()))
            .exec(conn)
            .await
            .map_err(database("setting the shard of jobs"))?;
    }
    Ok(())
}

/// Entries whose `complete` is 0 or NULL.
fn incomplete() -> Condition {
    Condition::any()
        .add(hqes::Column::Complete.eq(false))
        .add(hqes::Column::Complete.is_null())
}

/// The incomplete entries and every host.
async fn read_snapshot(txn: &DatabaseTransaction) -> Result<Snapshot, StoreError> {
    let entries = hqes::Entity::find()
        .filter(incomplete())
        .order_by_asc(hqes::Column::JobId)
        .order_by_asc(hqes::Column::Id)
        .all(txn)
        .await
        .map_err(database("reading incomplete entries"))?;
    let hosts = hosts::Entity::find()
        .all(txn)
        .await
        .map_err(database("reading hosts"))?
        .into_iter()
        .map(|h| (h.id, h))
        .collect();
    Ok(Snapshot { entries, hosts })
}

/// The labels of `host_ids`, by host.
async fn read_host_labels(
    txn: &DatabaseTransaction,
    host_ids: &[i32],
) -> Result<HashMap<i32, BTreeSet<i32>>, StoreError> {
    let mut labels: HashMap<i32, BTreeSet<i32>> = HashMap::new();
    for chunk in host_ids.chunks(IDS_PER_STATEMENT) {
        let rows: Vec<(Option<i32>, Option<i32>)> = host_labels::Entity::find()
            .select_only()
            .columns([host_labels::Column::HostId, host_labels::Column::LabelId])
            .filter(host_labels::Column::HostId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(txn)
            .await
            .map_err(database("reading the labels of ready hosts"))?;
        for (host, label) in rows {
            if let (Some(host), Some(label)) = (host, label) {
                labels.entry(host).or_default().insert(label);
            }
        }
    }
    Ok(labels)
}

/// The dependency labels of `job_ids`, by job.
async fn read_job_labels(
    txn: &DatabaseTransaction,
    job_ids: &[i32],
) -> Result<HashMap<i32, BTreeSet<i32>>, StoreError> {
    let mut labels: HashMap<i32, BTreeSet<i32>> = HashMap::new();
    for chunk in job_ids.chunks(IDS_PER_STATEMENT) {
        let rows: Vec<(i32, i32)> = job_labels::Entity::find()
            .select_only()
            .columns([job_labels::Column::JobId, job_labels::Column::LabelId])
            .filter(job_labels::Column::JobId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(txn)
            .await
            .map_err(database("reading the dependency labels of queued jobs"))?;
        for (job, label) in rows {
            labels.entry(job).or_default().insert(label);
        }
    }
    Ok(labels)
}

/// Sets an entry's `status`, and `active` and `complete` as the lists of
/// §5 say for that status.
fn set_status(update: UpdateMany<hqes::Entity>, status: &'static str) -> UpdateMany<hqes::Entity> {
    update
        .col_expr(hqes::Column::Status, Expr::value(status))
        .col_expr(
            hqes::Column::Active,
            Expr::value(HQE_ACTIVE_STATUSES.contains(&status)),
        )
        .col_expr(
            hqes::Column::Complete,
            Expr::value(HQE_COMPLETE_STATUSES.contains(&status)),
        )
}

/// Writes the entries that ended or started in this round.
async fn write_entries(
    txn: &DatabaseTransaction,
    round: &Round,
    now: NaiveDateTime,
) -> Result<(), StoreError> {
    for (status, ids) in [
        (ABORTED, &round.aborted),
        (COMPLETED, &round.completed),
        (FAILED, &round.failed),
    ] {
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            set_status(hqes::Entity::update_many(), status)
                .col_expr(hqes::Column::FinishedOn, Expr::value(now))
                .filter(hqes::Column::Id.is_in(chunk.iter().copied()))
                .exec(txn)
                .await
                .map_err(database("ending entries"))?;
        }
    }
    for (id, host) in &round.started {
        let mut update = set_status(hqes::Entity::update_many(), RUNNING)
            .col_expr(hqes::Column::StartedOn, Expr::value(now));
        if let Some((host_id, hostname)) = host {
            update = update
                .col_expr(hqes::Column::HostId, Expr::value(*host_id))
                .col_expr(hqes::Column::ExecutionSubdir, Expr::value(hostname.clone()));
        }
        update
            .filter(hqes::Column::Id.eq(*id))
            .exec(txn)
            .await
            .map_err(database("starting an entry"))?;
    }
    Ok(())
}

/// Writes the host statuses that changed in this round, one statement per
/// status (and chunk).
async fn write_hosts(
    txn: &DatabaseTransaction,
    snapshot: &Snapshot,
    round: &Round,
) -> Result<(), StoreError> {
    for status in [HOST_READY, HOST_RUNNING] {
        let ids: Vec<i32> = round
            .host_status
            .iter()
            .filter(|&(id, &s)| {
                s == status
                    && snapshot.hosts.get(id).and_then(|h| h.status.as_deref()) != Some(status)
            })
            .map(|(&id, _)| id)
            .collect();
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            hosts::Entity::update_many()
                .col_expr(hosts::Column::Status, Expr::value(status))
                .filter(hosts::Column::Id.is_in(chunk.iter().copied()))
                .exec(txn)
                .await
                .map_err(database("setting host statuses"))?;
        }
    }
    Ok(())
}

/// Step 4: jobs whose last incomplete entries ended in this round get
/// `shard_id = NULL`. Only those: a job the shard client has since marked
/// uploaded is never released again. Returns how many were released.
async fn release_jobs(txn: &DatabaseTransaction, round: &Round) -> Result<usize, StoreError> {
    let done: Vec<i32> = round
        .touched_jobs
        .iter()
        .copied()
        .filter(|j| !round.busy_jobs.contains(j))
        .collect();
    let mut released = 0;
    for chunk in done.chunks(IDS_PER_STATEMENT) {
        let result = jobs::Entity::update_many()
            .col_expr(jobs::Column::ShardId, Expr::value(Option::<i32>::None))
            .filter(jobs::Column::Id.is_in(chunk.iter().copied()))
            .filter(jobs::Column::ShardId.is_not_null())
            .exec(txn)
            .await
            .map_err(database("releasing finished jobs"))?;
        released += usize::try_from(result.rows_affected).unwrap_or(usize::MAX);
    }
    Ok(released)
}

/// Wraps a driver error with what the simulator was doing.
fn database(operation: &'static str) -> impl FnOnce(DbErr) -> StoreError {
    move |source| StoreError::Database { operation, source }
}

/// splitmix64: tiny, seedable and good enough to pick durations and
/// failures reproducibly.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Uniform in `range`; an empty range yields its start.
    fn in_range(&mut self, range: &RangeInclusive<u32>) -> u32 {
        let (low, high) = (*range.start(), (*range.end()).max(*range.start()));
        let span = u64::from(high - low) + 1;
        low + u32::try_from(self.next_u64() % span).unwrap_or(0)
    }
}
