//! The fault "entry finished, upload in flight": a shard client uploads a
//! job one of whose entries just finished (a partial upload, §1), and while
//! the answer is on its way a second entry of the job finishes. The
//! scheduler finds the job's `shard_id` NULL already and leaves it; a
//! client that then marks the job uploaded loses the second entry's
//! completion for good (§7 step 3).
//!
//! Left to chance the race is rare; here it is certain. The shard's
//! scheduler simulator is paused (its gate taken), so nothing else ends
//! these entries, and the proxy holds the client's answers ([`Mode::Hold`]),
//! so the second entry ends while the client has sent the packet carrying
//! the first and has not read the answer:
//!
//! 1. pick a job of the shard that is not released (its `shard_id` set)
//!    with at least two incomplete entries, preferring running ones;
//! 2. hold answers, and end one entry with the §1 sequence
//!    ([`finish_entry`]): the job becomes NULL, a partial upload;
//! 3. release any answer held from before, and wait for a held exchange
//!    whose request uploads the job and which the master has answered;
//! 4. end a second entry of the job with the §1 sequence (the job is NULL
//!    already and stays so);
//! 5. release the answer and resume the simulator.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect};
use shard_store::schema::entity::{hqes, jobs};
use shard_tests::scheduler::{EntryEnd, finish_entry, now};

use super::lab::{Lab, ShardSlot};
use super::proxy::{HeldExchange, Mode};

/// How long the fault looks for a job to race on, over every shard.
const FIND_WITHIN: Duration = Duration::from_secs(20);

/// How long it waits for the client to upload the partial job. The client
/// pauses 0.5 s between heartbeats; a retry after a failure takes longer.
const UPLOAD_WITHIN: Duration = Duration::from_secs(10);

/// What the fault did, summed over its injections.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Entries the fault ended (both steps 2 and 4).
    pub finished: u32,
    /// Of those, entries ended while an upload of their job was held
    /// (step 4): the race itself.
    pub raced: u32,
    /// `shard<n> job <id>` of every race, for the report.
    pub jobs: Vec<String>,
}

/// Injects the fault once, on shard `first` or, when it has no job to race
/// on, the next shard that has one. Finding none within [`FIND_WITHIN`]
/// is not an error: the tally shows that nothing raced.
pub async fn finish_during_upload(lab: &Lab, first: usize, tally: &mut Tally) -> Result<()> {
    let deadline = Instant::now() + FIND_WITHIN;
    loop {
        for n in 0..lab.shards.len() {
            let slot = &lab.shards[(first + n) % lab.shards.len()];
            let paused = slot.scheduler_gate.lock().await;
            let Some((job, entries)) = pick(slot).await? else {
                continue;
            };
            slot.proxy.set_mode(Mode::Hold);
            let raced = race(slot, job, entries, tally).await;
            // Whatever happened, the client gets its answers and the
            // simulator goes on.
            slot.proxy.set_mode(Mode::Pass);
            slot.proxy.release_held();
            drop(paused);
            return raced;
        }
        if Instant::now() > deadline {
            println!("  no shard had a job with two incomplete entries to race on");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Steps 2 to 4, with the simulator paused and the proxy holding answers.
async fn race(
    slot: &ShardSlot,
    job: i32,
    [first, second]: [i32; 2],
    tally: &mut Tally,
) -> Result<()> {
    let conn = slot.store.connection();
    finish_entry(conn, first, EntryEnd::Completed, now())
        .await
        .with_context(|| format!("{}: ending entry {first} of job {job}", slot.name))?;
    tally.finished += 1;
    slot.proxy.release_held();

    let deadline = Instant::now() + UPLOAD_WITHIN;
    while !slot
        .proxy
        .held()
        .iter()
        .any(|held| held.answered && uploads(held, job))
    {
        if Instant::now() > deadline {
            println!(
                "  {}: job {job} was not uploaded within {UPLOAD_WITHIN:?}; nothing raced",
                slot.name
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let released = finish_entry(conn, second, EntryEnd::Completed, now())
        .await
        .with_context(|| format!("{}: ending entry {second} of job {job}", slot.name))?;
    tally.finished += 1;
    tally.raced += 1;
    tally.jobs.push(format!("{} job {job}", slot.name));
    println!(
        "  {}: job {job}: entry {first} ended and uploaded; entry {second} ended while the \
         answer was held{}",
        slot.name,
        if released {
            " (and released the job again: unexpected)"
        } else {
            ""
        }
    );
    Ok(())
}

/// A job of `slot` that is not released, with two incomplete entries to
/// end (running ones first), the lowest such job id.
async fn pick(slot: &ShardSlot) -> Result<Option<(i32, [i32; 2])>> {
    let conn = slot.store.connection();
    let entries: Vec<(i32, Option<i32>, Option<String>, bool)> = hqes::Entity::find()
        .select_only()
        .columns([
            hqes::Column::Id,
            hqes::Column::JobId,
            hqes::Column::Status,
            hqes::Column::Aborted,
        ])
        .filter(
            Condition::any()
                .add(hqes::Column::Complete.eq(false))
                .add(hqes::Column::Complete.is_null()),
        )
        .into_tuple()
        .all(conn)
        .await
        .with_context(|| format!("{}: reading incomplete entries", slot.name))?;
    let held: Vec<i32> = jobs::Entity::find()
        .select_only()
        .column(jobs::Column::Id)
        .filter(jobs::Column::ShardId.is_not_null())
        .into_tuple()
        .all(conn)
        .await
        .with_context(|| format!("{}: reading the jobs it holds", slot.name))?;
    let held: BTreeSet<i32> = held.into_iter().collect();
    // Per job: its running entries, then its queued ones. An aborted entry
    // is the simulator's to end; a half-written one (a complete status)
    // too.
    let mut by_job: BTreeMap<i32, (Vec<i32>, Vec<i32>)> = BTreeMap::new();
    let mut spoiled = BTreeSet::new();
    for (id, job, status, aborted) in entries {
        let Some(job) = job.filter(|j| held.contains(j)) else {
            continue;
        };
        match status.as_deref() {
            _ if aborted => {
                spoiled.insert(job);
            }
            Some("Running") => by_job.entry(job).or_default().0.push(id),
            Some("Queued") => by_job.entry(job).or_default().1.push(id),
            _ => {
                spoiled.insert(job);
            }
        }
    }
    let two = |(running, queued): &(Vec<i32>, Vec<i32>)| -> Option<[i32; 2]> {
        let mut ids = running.iter().chain(queued);
        Some([*ids.next()?, *ids.next()?])
    };
    let candidates: Vec<(i32, [i32; 2], usize)> = by_job
        .iter()
        .filter(|(job, _)| !spoiled.contains(job))
        .filter_map(|(job, entries)| Some((*job, two(entries)?, entries.0.len())))
        .collect();
    // Two running entries if a job has them, else any two.
    let best = candidates
        .iter()
        .find(|(_, _, running)| *running >= 2)
        .or(candidates.first());
    Ok(best.map(|&(job, entries, _)| (job, entries)))
}

/// Whether `held`'s request is a heartbeat uploading job `job`.
fn uploads(held: &HeldExchange, job: i32) -> bool {
    let Some(body) = held.body() else {
        return false;
    };
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    request["params"][0]["jobs"].as_array().is_some_and(|jobs| {
        jobs.iter()
            .any(|j| j["id"].as_i64() == Some(i64::from(job)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(body: &str) -> HeldExchange {
        HeldExchange {
            request: format!(
                "POST /afe/server/noauth/rpc/?method=shard_heartbeat HTTP/1.1\r\n\
                 content-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
            answered: true,
            ..HeldExchange::default()
        }
    }

    #[test]
    fn a_heartbeat_uploads_the_jobs_of_its_jobs_list_only() {
        let heartbeat = held(
            r#"{"method":"shard_heartbeat","params":[{"known_job_ids":[5],"jobs":[{"id":7,"name":"x"}],"hqes":[]}],"id":"jsonrpc"}"#,
        );

        assert!(uploads(&heartbeat, 7));
        assert!(!uploads(&heartbeat, 5), "known, not uploaded");
        assert!(!uploads(&held("not json"), 7));
    }
}
