//! A simulator of the shard's own scheduler, for end-to-end tests, the demo
//! and chaos: on a shard database it does what the real scheduler does to
//! the tables the shard client shares with it (§1), statement by statement
//! where the client can tell the difference.
//!
//! Like the real scheduler it writes in autocommit: there is no round
//! transaction, every write is its own statement, and the shard client may
//! read the tables between any two of them. Each [`Scheduler::tick`] is one
//! scheduling round:
//!
//! 1. entries left half-written by an earlier round (a complete status with
//!    `complete = 0`) are finished again, keeping their status;
//! 2. aborted entries end `Aborted`; running entries whose time is up end
//!    `Completed` or `Failed` ([`SchedulerConfig::failure_ratio`]);
//! 3. queued entries, oldest job first, start `Running` on a suitable
//!    `Ready` host (one statement per entry), then the hosts busy with an
//!    entry are set `Running` (one statement per chunk of hosts).
//!
//! Every entry that ends, in steps 1 and 2 and in [`finish_entry`], goes
//! through the same sequence: its host `Ready` (when it held one), then the
//! five statements of §1 in their order: `status`, `active`, `finished_on`
//! (only if the entry started), the job's `shard_id = NULL` (only if it is
//! not NULL already), and last `complete = 1`. So a job is released for
//! upload once per finishing entry, not once when all its entries are done,
//! and a reader can catch a job between "shard_id is NULL" and
//! "complete = 1". Because every write of the sequence comes before
//! `complete = 1`, a round cut anywhere leaves each entry either untouched
//! (still in flight: it ends on a later tick) or half-written (step 1).
//!
//! A round that fails half-way (a statement fails: a lock timeout, a server
//! gone away) keeps what it wrote, as the real one would, and returns the
//! error; the next tick starts over from the database.
//!
//! `active` and `complete` are always derived from the status lists of §5
//! ([`shard_model::status`]). Reads are one query per table (per chunk of
//! ids), whatever the size of the shard. Randomness comes from a seeded
//! generator: the same seed on the same database gives the same run.
//!
//! Tests that need exact times instead of a simulated run use the direct
//! edits [`finish_entry`] (one entry, exactly as a round ends it),
//! [`complete_jobs`] (a fast bulk helper that does *not* follow §1's
//! order), [`set_host_status`] and [`set_job_shard`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, SubsecRound};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, UpdateMany,
};
use shard_master::rng::SplitMix64;
use shard_model::status::{
    HOST_STATUSES, HQE_ACTIVE_STATUSES, HQE_COMPLETE_STATUSES, HQE_STATUSES,
};
use shard_store::StoreError;
use shard_store::schema::entity::{host_labels, hosts, hqes, job_labels, jobs};
use tokio::sync::Mutex;
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

/// How an entry ends: the complete statuses (§5) the simulator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryEnd {
    /// The test ran and passed.
    Completed,
    /// The test ran and failed.
    Failed,
    /// The entry was aborted, running or not.
    Aborted,
}

impl EntryEnd {
    /// The entry status this end writes.
    pub fn status(self) -> &'static str {
        match self {
            EntryEnd::Completed => COMPLETED,
            EntryEnd::Failed => FAILED,
            EntryEnd::Aborted => ABORTED,
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
    /// Entries found half-written (a complete status with `complete = 0`)
    /// and finished again.
    pub healed: usize,
    /// Jobs whose `shard_id` went from a shard to NULL (handed to the
    /// uploader): at most one per ending entry, none for an entry whose job
    /// was NULL already.
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
    /// Half-written entries, finished again with the status they have.
    healed: Vec<Ending>,
    /// Entries that end in this round.
    ending: Vec<Ending>,
    /// (entry, host and its hostname): entries to start.
    started: Vec<(i32, Option<(i32, String)>)>,
    /// Hosts an ending entry frees.
    freed: HashSet<i32>,
    /// In-flight entries after this round, and when each finishes.
    finishes_at: HashMap<i32, u64>,
}

/// One entry's end, decided before it is written (see [`write_ending`]).
#[derive(Debug, Clone)]
struct Ending {
    entry_id: i32,
    job_id: Option<i32>,
    /// The host the entry holds, set `Ready` first; `None` when it holds
    /// none (hostless, or never started).
    host_id: Option<i32>,
    /// A complete status (§5).
    status: String,
    /// The `finished_on` to write; `None` for an entry that never started,
    /// whose `finished_on` §1 leaves alone.
    finished_on: Option<NaiveDateTime>,
}

impl Ending {
    /// `entry` ending with `status` at `now`. An entry half-written by an
    /// earlier attempt keeps the `finished_on` it already has.
    fn of(entry: &hqes::Model, status: &str, now: NaiveDateTime) -> Ending {
        Ending {
            entry_id: entry.id,
            job_id: entry.job_id,
            host_id: entry.host_id.filter(|_| in_flight(entry)),
            status: status.to_owned(),
            finished_on: entry.started_on.map(|_| entry.finished_on.unwrap_or(now)),
        }
    }
}

impl Scheduler {
    /// A scheduler on `conn` (a shard database with the AFE schema); it
    /// adopts entries already in flight there, as a restarted scheduler
    /// would.
    pub fn new(conn: DatabaseConnection, config: SchedulerConfig) -> Scheduler {
        Scheduler {
            conn,
            rng: SplitMix64::new(config.seed),
            config,
            tick: 0,
            finishes_at: HashMap::new(),
        }
    }

    /// One scheduling round (see the module documentation), each write in
    /// its own statement. On error, what was written stays written; entries
    /// not yet ended stay due and end on the next tick, which also finishes
    /// any entry the failure left half-written.
    pub async fn tick(&mut self) -> Result<TickReport, StoreError> {
        self.tick += 1;
        let now = now();
        let snapshot = read_snapshot(&self.conn).await?;
        let mut round = Round::default();
        self.decide_endings(&snapshot, now, &mut round);
        self.start_queued(&snapshot, &mut round).await?;
        let previous = std::mem::replace(&mut self.finishes_at, round.finishes_at.clone());
        match write_round(&self.conn, &snapshot, &round, now).await {
            Ok(released_jobs) => Ok(TickReport {
                released_jobs,
                ..round.report
            }),
            Err(e) => {
                // An entry whose end was not written is still in flight in
                // the database: it keeps the tick it was due at.
                for (entry, due) in previous {
                    self.finishes_at.entry(entry).or_insert(due);
                }
                Err(e)
            }
        }
    }

    /// Ticks every `period` until `cancel` fires. A failed tick (the
    /// database locked by a heartbeat, a server gone away) is logged and
    /// the next one tries again.
    pub async fn run(self, period: Duration, cancel: CancellationToken) {
        self.run_gated(period, Arc::new(Mutex::new(())), cancel)
            .await;
    }

    /// As [`Scheduler::run`], but every tick first takes `gate`: whoever
    /// holds it pauses the simulator, e.g. to finish entries itself with
    /// [`finish_entry`] without the simulator ending the same entries
    /// concurrently. A tick under way ends before the gate can be taken.
    pub async fn run_gated(
        mut self,
        period: Duration,
        gate: Arc<Mutex<()>>,
        cancel: CancellationToken,
    ) {
        while !cancel.is_cancelled() {
            let outcome = {
                let Some(_turn) = cancel.run_until_cancelled(gate.lock()).await else {
                    break;
                };
                self.tick().await
            };
            match outcome {
                Ok(report) if report != TickReport::default() => {
                    tracing::debug!(
                        tick = self.tick,
                        started = report.started,
                        finished = report.finished,
                        failed = report.failed,
                        aborted = report.aborted,
                        healed = report.healed,
                        released_jobs = report.released_jobs,
                        "scheduler simulator round"
                    );
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(tick = self.tick, %error, "scheduler simulator round failed half-way; the next tick finishes what it left");
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

    /// Steps 1 and 2: half-written entries are finished again; aborted
    /// entries end `Aborted`; in-flight entries whose time is up end
    /// `Completed` or `Failed`.
    fn decide_endings(&mut self, snapshot: &Snapshot, now: NaiveDateTime, round: &mut Round) {
        for entry in &snapshot.entries {
            if let Some(status) = complete_status(entry) {
                round.healed.push(Ending::of(entry, status, now));
                round.report.healed += 1;
                continue;
            }
            let status = if entry.aborted {
                round.report.aborted += 1;
                ABORTED
            } else if in_flight(entry) {
                let finish = match self.finishes_at.get(&entry.id) {
                    Some(&tick) => tick,
                    // Started by someone else (or before a restart).
                    None => self.tick + self.draw_run_ticks(),
                };
                if finish > self.tick {
                    round.finishes_at.insert(entry.id, finish);
                    continue;
                }
                round.report.finished += 1;
                if self.rng.next_f64() < self.config.failure_ratio {
                    round.report.failed += 1;
                    FAILED
                } else {
                    COMPLETED
                }
            } else {
                // Queued: decided in step 3.
                continue;
            };
            let ending = Ending::of(entry, status, now);
            round.freed.extend(ending.host_id);
            round.ending.push(ending);
        }
    }

    /// Step 3: queued entries, oldest job first, start on a suitable host.
    async fn start_queued(
        &mut self,
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
                let status = match round.freed.contains(&h.id) {
                    true => Some(HOST_READY),
                    false => h.status.as_deref(),
                };
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
                read_host_labels(&self.conn, &free_ids).await?,
                read_job_labels(&self.conn, &meta_jobs).await?,
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
            if let Some(host) = host.and_then(|h| free.remove(&h)) {
                let hostname = host.hostname.clone().unwrap_or_default();
                self.start(entry, Some((host.id, hostname)), round);
            }
        }
        Ok(())
    }

    /// Starts `entry` on `host` in this round.
    fn start(&mut self, entry: &hqes::Model, host: Option<(i32, String)>, round: &mut Round) {
        round
            .finishes_at
            .insert(entry.id, self.tick + self.draw_run_ticks());
        round.started.push((entry.id, host));
        round.report.started += 1;
    }

    /// How many ticks a new entry runs: at least one.
    fn draw_run_ticks(&mut self) -> u64 {
        u64::from(self.rng.in_range(&self.config.run_ticks).max(1))
    }
}

/// Ends entry `entry_id` with `end`, as the real scheduler does (§1): if
/// the entry holds a host (it has one and is in flight: neither queued nor
/// complete), that host becomes `Ready`; then, each its own statement and
/// in this order, the entry's `status`, its `active` flag, its
/// `finished_on` (only if it has a `started_on`; `now`, unless it has a
/// `finished_on` already), its job's `shard_id = NULL` (only if not NULL
/// already), and last its `complete` flag. Exactly what a
/// [`Scheduler::tick`] writes for an entry that ends.
///
/// Returns whether this released the job, i.e. its `shard_id` went from a
/// shard to NULL; `false` when it was NULL already (an upload of an earlier
/// entry is pending, or in flight). An entry that does not exist is an
/// error.
pub async fn finish_entry(
    conn: &impl ConnectionTrait,
    entry_id: i32,
    end: EntryEnd,
    now: NaiveDateTime,
) -> Result<bool, StoreError> {
    const OPERATION: &str = "reading the entry to finish";
    let entry = hqes::Entity::find_by_id(entry_id)
        .one(conn)
        .await
        .map_err(database(OPERATION))?
        .ok_or_else(|| StoreError::Database {
            operation: OPERATION,
            source: DbErr::RecordNotFound(format!("host queue entry {entry_id}")),
        })?;
    write_ending(conn, &Ending::of(&entry, end.status(), now)).await
}

/// The simulator's clock, as it writes `started_on` and `finished_on`:
/// lab-local naive time (Autotest's), in whole seconds so that every
/// backend stores it exactly. For callers of [`finish_entry`].
pub fn now() -> NaiveDateTime {
    chrono::Local::now().naive_local().trunc_subsecs(0)
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
/// and execution subdirectories are left as they are. A fast bulk helper
/// for tests that need exact times rather than a simulated run: it writes
/// the entries in one statement per chunk and the jobs after them, *not*
/// in §1's order (use [`finish_entry`] for that).
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

/// The status of an entry whose status is a complete one (§5).
fn complete_status(entry: &hqes::Model) -> Option<&str> {
    entry
        .status
        .as_deref()
        .filter(|s| HQE_COMPLETE_STATUSES.contains(s))
}

/// Whether `entry` has started and not ended: its status is neither
/// `Queued` nor complete. Only such an entry holds its host.
fn in_flight(entry: &hqes::Model) -> bool {
    entry.status.as_deref() != Some(QUEUED) && complete_status(entry).is_none()
}

/// The incomplete entries and every host.
async fn read_snapshot(conn: &impl ConnectionTrait) -> Result<Snapshot, StoreError> {
    let entries = hqes::Entity::find()
        .filter(incomplete())
        .order_by_asc(hqes::Column::JobId)
        .order_by_asc(hqes::Column::Id)
        .all(conn)
        .await
        .map_err(database("reading incomplete entries"))?;
    let hosts = hosts::Entity::find()
        .all(conn)
        .await
        .map_err(database("reading hosts"))?
        .into_iter()
        .map(|h| (h.id, h))
        .collect();
    Ok(Snapshot { entries, hosts })
}

/// The labels of `host_ids`, by host.
async fn read_host_labels(
    conn: &impl ConnectionTrait,
    host_ids: &[i32],
) -> Result<HashMap<i32, BTreeSet<i32>>, StoreError> {
    let mut labels: HashMap<i32, BTreeSet<i32>> = HashMap::new();
    for chunk in host_ids.chunks(IDS_PER_STATEMENT) {
        let rows: Vec<(Option<i32>, Option<i32>)> = host_labels::Entity::find()
            .select_only()
            .columns([host_labels::Column::HostId, host_labels::Column::LabelId])
            .filter(host_labels::Column::HostId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(conn)
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
    conn: &impl ConnectionTrait,
    job_ids: &[i32],
) -> Result<HashMap<i32, BTreeSet<i32>>, StoreError> {
    let mut labels: HashMap<i32, BTreeSet<i32>> = HashMap::new();
    for chunk in job_ids.chunks(IDS_PER_STATEMENT) {
        let rows: Vec<(i32, i32)> = job_labels::Entity::find()
            .select_only()
            .columns([job_labels::Column::JobId, job_labels::Column::LabelId])
            .filter(job_labels::Column::JobId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(conn)
            .await
            .map_err(database("reading the dependency labels of queued jobs"))?;
        for (job, label) in rows {
            labels.entry(job).or_default().insert(label);
        }
    }
    Ok(labels)
}

/// Sets an entry's `status`, and `active` and `complete` as the lists of
/// §5 say for that status, in one statement (starting an entry; the bulk
/// [`complete_jobs`]).
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

/// Writes one round: the endings (half-written ones first), then the
/// entries that start, then the hosts they run on. Returns how many jobs
/// the endings released.
async fn write_round(
    conn: &impl ConnectionTrait,
    snapshot: &Snapshot,
    round: &Round,
    now: NaiveDateTime,
) -> Result<usize, StoreError> {
    let mut released = 0;
    for ending in round.healed.iter().chain(&round.ending) {
        released += usize::from(write_ending(conn, ending).await?);
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
            .exec(conn)
            .await
            .map_err(database("starting an entry"))?;
    }
    write_busy_hosts(conn, snapshot, round).await?;
    Ok(released)
}

/// One entry's end: its host `Ready` first, then the five statements of
/// §1, each on its own, `complete` last. Returns whether the job's
/// `shard_id` went from a shard to NULL.
async fn write_ending(conn: &impl ConnectionTrait, ending: &Ending) -> Result<bool, StoreError> {
    // The host first, as the original does when it aborts an entry: every
    // write then precedes `complete = 1`, so an ending cut short is either
    // not started or half-written, and the next round finishes it.
    if let Some(host) = ending.host_id {
        hosts::Entity::update_many()
            .col_expr(hosts::Column::Status, Expr::value(HOST_READY))
            .filter(hosts::Column::Id.eq(host))
            .exec(conn)
            .await
            .map_err(database("freeing the host of an ending entry"))?;
    }
    let status = ending.status.as_str();
    let entry = || hqes::Entity::update_many().filter(hqes::Column::Id.eq(ending.entry_id));
    entry()
        .col_expr(hqes::Column::Status, Expr::value(status))
        .exec(conn)
        .await
        .map_err(database("writing the status of an ending entry"))?;
    entry()
        .col_expr(
            hqes::Column::Active,
            Expr::value(HQE_ACTIVE_STATUSES.contains(&status)),
        )
        .exec(conn)
        .await
        .map_err(database("writing the active flag of an ending entry"))?;
    if let Some(finished_on) = ending.finished_on {
        entry()
            .col_expr(hqes::Column::FinishedOn, Expr::value(finished_on))
            .exec(conn)
            .await
            .map_err(database("writing the finished_on of an ending entry"))?;
    }
    let mut released = false;
    if let Some(job) = ending.job_id {
        // "Upload me", unless an earlier entry's upload is still pending:
        // then the job is NULL already and stays so.
        let result = jobs::Entity::update_many()
            .col_expr(jobs::Column::ShardId, Expr::value(Option::<i32>::None))
            .filter(jobs::Column::Id.eq(job))
            .filter(jobs::Column::ShardId.is_not_null())
            .exec(conn)
            .await
            .map_err(database("releasing the job of an ending entry"))?;
        released = result.rows_affected > 0;
    }
    entry()
        .col_expr(
            hqes::Column::Complete,
            Expr::value(HQE_COMPLETE_STATUSES.contains(&status)),
        )
        .exec(conn)
        .await
        .map_err(database("writing the complete flag of an ending entry"))?;
    Ok(released)
}

/// Sets `Running` every host busy with an entry after this round (started
/// in it or still in flight) whose status says otherwise, one statement
/// per chunk. The hosts of entries that go on are included so that a round
/// that failed between starting an entry and marking its host is made good.
async fn write_busy_hosts(
    conn: &impl ConnectionTrait,
    snapshot: &Snapshot,
    round: &Round,
) -> Result<(), StoreError> {
    let going_on = snapshot
        .entries
        .iter()
        .filter(|e| round.finishes_at.contains_key(&e.id))
        .filter_map(|e| e.host_id);
    let started = round
        .started
        .iter()
        .filter_map(|(_, host)| host.as_ref().map(|(id, _)| *id));
    let busy: BTreeSet<i32> = going_on.chain(started).collect();
    let ids: Vec<i32> = busy
        .into_iter()
        .filter(|id| {
            let status = match round.freed.contains(id) {
                true => Some(HOST_READY),
                false => snapshot.hosts.get(id).and_then(|h| h.status.as_deref()),
            };
            status != Some(HOST_RUNNING)
        })
        .collect();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        hosts::Entity::update_many()
            .col_expr(hosts::Column::Status, Expr::value(HOST_RUNNING))
            .filter(hosts::Column::Id.is_in(chunk.iter().copied()))
            .exec(conn)
            .await
            .map_err(database("setting busy hosts running"))?;
    }
    Ok(())
}

/// Wraps a driver error with what the simulator was doing.
fn database(operation: &'static str) -> impl FnOnce(DbErr) -> StoreError {
    move |source| StoreError::Database { operation, source }
}
