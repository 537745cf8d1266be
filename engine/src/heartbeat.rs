//! The heartbeat itself: §7 steps 1–6, top to bottom in [`heartbeat`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use shard_model::{HeartbeatRequest, HeartbeatResponse, RecordKind, Rejected};
use shard_rpc::{AfeClient, Reply};
use shard_store::{Packet, Running, Store, Written};
use tokio_util::sync::CancellationToken;

use crate::{HeartbeatError, PerKind, Phases, Report, heal, metrics};

/// The JSON-RPC method of the heartbeat.
const METHOD: &str = "shard_heartbeat";

/// How many known job ids a log line lists (the rest are counted).
const LOGGED_JOB_IDS: usize = 100;

/// Everything a heartbeat needs: who we are, our database, the master.
#[derive(Debug, Clone)]
pub struct Shard {
    /// This shard's hostname; the master finds the shard by it.
    pub hostname: String,
    /// The shard database.
    pub store: Store,
    /// The master's JSON-RPC client.
    pub client: AfeClient,
    /// The most finished jobs one heartbeat uploads (`max_upload_jobs`).
    pub max_upload_jobs: u64,
    /// What one heartbeat leaves to the next; start with the default.
    pub carried: Carried,
}

/// What one heartbeat leaves to the next: the entries still running in
/// jobs marked uploaded ([`Running`]), so that one the scheduler finishes
/// without releasing its job is caught. Read from the database at the
/// first heartbeat of a process; clones of a [`Shard`] share it.
#[derive(Debug, Clone, Default)]
pub struct Carried(Arc<Mutex<Option<Running>>>);

impl Carried {
    /// The running entries carried over; `None` at the first heartbeat,
    /// when the store reads them from the database.
    fn running(&self) -> Option<Running> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keeps `running` for the next heartbeat; only after a commit, so a
    /// failed heartbeat carries what it found.
    fn keep(&self, running: Running) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(running);
    }
}

/// One heartbeat (§7). Records its metrics and logs its outcome.
///
/// `cancel` abandons the call to the master (a hung master never delays
/// shutdown); once the master has answered, the database transaction is
/// finished whatever `cancel` says, so the database is never half-written.
pub async fn heartbeat(
    shard: &Shard,
    cancel: &CancellationToken,
) -> Result<Report, HeartbeatError> {
    let started = Instant::now();
    let statements = shard.store.statements();
    let mut outcome = steps(shard, cancel).await;
    let took = started.elapsed();
    if let Ok(report) = &mut outcome {
        report.statements = shard.store.statements().saturating_sub(statements);
    }
    match &outcome {
        Ok(report) => {
            log_report(report);
            metrics::success(report, took);
        }
        Err(e) if e.is_cancelled() => {
            tracing::info!("heartbeat abandoned: shutting down");
        }
        Err(e) => {
            match e.hint() {
                Some(hint) => tracing::warn!(
                    failure_type = e.failure_type(),
                    error = %e,
                    hint,
                    "heartbeat failed"
                ),
                None => {
                    tracing::warn!(failure_type = e.failure_type(), error = %e, "heartbeat failed")
                }
            }
            metrics::failure(e.failure_type(), took);
            if e.names_an_unknown_host() {
                heal::forget_hosts_the_master_lacks(shard, cancel).await;
            }
        }
    }
    outcome
}

/// The steps of §7, in order.
async fn steps(shard: &Shard, cancel: &CancellationToken) -> Result<Report, HeartbeatError> {
    let mut phases = Phases::default();

    let t = Instant::now();
    let packet = build_packet(shard).await?;
    phases.build = t.elapsed();

    let t = Instant::now();
    let reply = call_master(shard, &packet.request, cancel).await?;
    phases.call = t.elapsed();

    let t = Instant::now();
    let mut written = shard
        .store
        .write_answer(&packet, &reply.result, shard.carried.running())
        .await?;
    shard.carried.keep(std::mem::take(&mut written.running));
    phases.write = t.elapsed();

    Ok(report(packet, &reply, written, phases))
}

/// §7 step 1: what the shard knows and what it uploads.
async fn build_packet(shard: &Shard) -> Result<Packet, HeartbeatError> {
    let packet = shard
        .store
        .build_packet(&shard.hostname, shard.max_upload_jobs)
        .await?;
    let request = &packet.request;
    metrics::packet(request.known_job_ids.len(), request.known_host_ids.len());
    tracing::debug!(
        known_jobs = request.known_job_ids.len(),
        first_known_jobs = ?&request.known_job_ids[..request.known_job_ids.len().min(LOGGED_JOB_IDS)],
        known_hosts = request.known_host_ids.len(),
        uploading = ?packet.uploaded_job_ids(),
        deferred = ?packet.deferred,
        "heartbeat packet built"
    );
    Ok(packet)
}

/// §7 step 2: the call, with the client's retries.
async fn call_master(
    shard: &Shard,
    request: &HeartbeatRequest,
    cancel: &CancellationToken,
) -> Result<Reply<HeartbeatResponse>, HeartbeatError> {
    Ok(shard.client.call(METHOD, request, cancel).await?)
}

/// The report of a heartbeat that sent `packet`, got `reply` and wrote it.
fn report(
    packet: Packet,
    reply: &Reply<HeartbeatResponse>,
    written: Written,
    phases: Phases,
) -> Report {
    let jobs_uploaded = packet.uploaded_job_ids();
    let request: &HeartbeatRequest = &packet.request;
    let response = &reply.result;
    let Written {
        marked,
        released_unsignalled,
        applied,
        incorrect_hosts_removed,
        jobs_resynced,
        running: _,
    } = written;
    let received = PerKind {
        hosts: response.received(RecordKind::Host),
        jobs: response.received(RecordKind::Job),
        suite_keyvals: response.received(RecordKind::SuiteKeyval),
    };
    let mut rejected: Vec<Rejected> = response.rejected.clone();
    rejected.extend(applied.rejected);
    let suite_keyvals_without_job = applied.suite_keyvals_without_job;
    Report {
        known_jobs: request.known_job_ids.len(),
        known_hosts: request.known_host_ids.len(),
        jobs_uploaded,
        hqes_uploaded: request.hqes.len(),
        jobs_changed_in_flight: marked.changed,
        jobs_released_unsignalled: released_unsignalled,
        jobs_deferred: packet.deferred,
        received,
        applied: PerKind {
            hosts: applied.hosts,
            jobs: applied.jobs,
            suite_keyvals: applied.suite_keyvals,
        },
        rejected,
        suite_keyvals_without_job,
        incorrect_hosts_removed,
        jobs_resynced,
        request_bytes: reply.request_bytes,
        response_bytes: reply.response_bytes,
        attempts: reply.attempts,
        statements: 0,
        phases,
    }
}

/// One info line per heartbeat, one warning per refused record, and one
/// for all the suite keyvals whose job is not on the shard.
fn log_report(r: &Report) {
    for rejected in &r.rejected {
        tracing::warn!(
            kind = rejected.kind.as_str(),
            id = rejected.id,
            reason = %rejected.reason,
            "record not applied"
        );
    }
    if !r.suite_keyvals_without_job.is_empty() {
        let jobs: std::collections::BTreeSet<i32> =
            r.suite_keyvals_without_job.iter().copied().collect();
        tracing::warn!(
            keyvals = r.suite_keyvals_without_job.len(),
            jobs = ?jobs.iter().take(LOGGED_JOB_IDS).collect::<Vec<_>>(),
            "suite keyvals not stored: their jobs are not on this shard and \
             afe_job_keyvals.job_id has a foreign key here"
        );
    }
    if !r.jobs_changed_in_flight.is_empty() {
        tracing::info!(
            jobs = ?r.jobs_changed_in_flight,
            "uploaded jobs changed while the heartbeat was in flight; uploading them again"
        );
    }
    if !r.jobs_released_unsignalled.is_empty() {
        tracing::warn!(
            jobs = ?r.jobs_released_unsignalled,
            "the scheduler finished entries of jobs marked uploaded without asking for an upload; uploading them again"
        );
    }
    if !r.jobs_resynced.is_empty() {
        tracing::warn!(jobs = ?r.jobs_resynced, "completed jobs resent by the master; uploading them again");
    }
    tracing::info!(
        known_jobs = r.known_jobs,
        known_hosts = r.known_hosts,
        uploaded_jobs = r.jobs_uploaded.len(),
        uploaded_hqes = r.hqes_uploaded,
        changed_in_flight = r.jobs_changed_in_flight.len(),
        deferred_jobs = r.jobs_deferred.len(),
        hosts = format!("{}/{}", r.applied.hosts, r.received.hosts),
        jobs = format!("{}/{}", r.applied.jobs, r.received.jobs),
        suite_keyvals = format!("{}/{}", r.applied.suite_keyvals, r.received.suite_keyvals),
        rejected = r.rejected.len(),
        incorrect_hosts_removed = r.incorrect_hosts_removed.len(),
        jobs_resynced = r.jobs_resynced.len(),
        request_bytes = r.request_bytes,
        response_bytes = r.response_bytes,
        attempts = r.attempts,
        statements = r.statements,
        build_ms = r.phases.build.as_millis() as u64,
        call_ms = r.phases.call.as_millis() as u64,
        write_ms = r.phases.write.as_millis() as u64,
        "heartbeat done"
    );
}
