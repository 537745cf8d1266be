//! `shard_heartbeat` on the master (§8), step by step: in one transaction
//! in strict mode, statement by statement (each saved as it goes, as the
//! original's autocommit) in upstream mode.

use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use shard_model::{HeartbeatRequest, HeartbeatResponse};

use crate::request::Heartbeat;
use crate::{Call, Fault, Mode, assign, load, statuses, uploads};

/// Answers one heartbeat by the strict rules: finds the shard, persists its
/// uploads, syncs its host statuses, assigns hosts and jobs, and returns
/// them with their dependencies and the suite keyvals of their parents.
pub async fn shard_heartbeat(
    db: &DatabaseConnection,
    request: &HeartbeatRequest,
) -> Result<HeartbeatResponse, Fault> {
    heartbeat_with(db, &Heartbeat::from_request(request)?, &Call::strict()).await
}

/// Answers one heartbeat in the mode of `call`. In upstream mode the jobs
/// carry no `parent_job_id` (the suite keyvals are still those of their
/// parents).
pub async fn heartbeat_with(
    db: &DatabaseConnection,
    request: &Heartbeat,
    call: &Call,
) -> Result<HeartbeatResponse, Fault> {
    let mut response = match call.mode {
        Mode::Strict => {
            let txn = shard_store::begin_write(db).await?;
            let response = answer(&txn, request, call).await?;
            txn.commit().await?;
            response
        }
        Mode::Upstream => answer(db, request, call).await?,
    };
    if call.mode == Mode::Upstream {
        // The real master does not serialize this foreign key.
        for job in &mut response.jobs {
            job.parent_job_id = None;
        }
    }
    tracing::info!(
        shard = %request.shard_hostname,
        mode = ?call.mode,
        uploaded_jobs = request.jobs.len(),
        hosts = response.hosts.len(),
        jobs = response.jobs.len(),
        incorrect_hosts = response.incorrect_host_ids.len(),
        "heartbeat answered"
    );
    Ok(response)
}

/// The steps of §8, on a transaction (strict) or the bare connection
/// (upstream).
async fn answer(
    db: &impl ConnectionTrait,
    request: &Heartbeat,
    call: &Call,
) -> Result<HeartbeatResponse, Fault> {
    let shard_id = find_shard(db, &request.shard_hostname).await?;
    uploads::persist(db, shard_id, &request.jobs, &request.hqes, call.mode).await?;
    statuses::sync_host_statuses(
        db,
        &request.known_host_ids,
        &request.known_host_statuses,
        call,
    )
    .await?;

    let candidates = assign::host_candidates(db, shard_id, &request.known_host_ids).await?;
    let host_ids = assign::assign_hosts(db, shard_id, &candidates).await?;
    let incorrect_host_ids =
        assign::incorrect_host_ids(db, shard_id, &request.known_host_ids).await?;
    let candidates =
        assign::job_candidates(db, shard_id, &request.known_job_ids, call.mode).await?;
    let job_ids = assign::assign_jobs(db, shard_id, &candidates, call.mode).await?;

    let hosts = load::hosts_with_dependencies(db, &host_ids).await?;
    let jobs = load::jobs_with_dependencies(db, &job_ids).await?;
    let parents: BTreeSet<i32> = jobs.iter().filter_map(|j| j.parent_job_id).collect();
    let suite_keyvals = load::keyvals_of(db, &parents.into_iter().collect::<Vec<_>>()).await?;
    Ok(HeartbeatResponse {
        hosts,
        jobs,
        suite_keyvals,
        incorrect_host_ids,
        rejected: Vec::new(),
        defects: Vec::new(),
    })
}

/// §8 step 1: the shard by hostname (the lowest id if several share it).
async fn find_shard(db: &impl ConnectionTrait, hostname: &str) -> Result<i32, Fault> {
    shard_store::shard_id_by_hostname(db, hostname)
        .await?
        .ok_or_else(|| Fault::new("DoesNotExist", "Shard matching query does not exist."))
}
