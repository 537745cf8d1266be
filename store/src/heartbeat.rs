//! The shard's side of one heartbeat as two operations on a [`Store`]:
//! [`Store::build_packet`] (§7 step 1) and [`Store::write_answer`] (steps
//! 3–6 in one transaction). The engine calls these and nothing below them,
//! so it holds no connection, no transaction and no SQL.

use shard_model::{HeartbeatRequest, HeartbeatResponse};

use crate::apply::{ApplyReport, apply};
use crate::error::StoreError;
use crate::packet::{
    KnownHosts, Marked, Running, Sent, jobs_to_upload, known_hosts, known_job_ids, mark_sent,
    release_missed, running_in_marked_jobs, shard_id_by_hostname,
};
use crate::reconcile::{remove_incorrect_hosts, resync_completed_jobs};
use crate::store::{Store, begin_write};

/// The packet of one heartbeat: the request to send, and what marking its
/// upload needs once the master has answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The request, uploaded jobs and entries included.
    pub request: HeartbeatRequest,
    /// Finished jobs held back because an entry was caught half-written;
    /// they go up once the scheduler has finished writing it.
    pub deferred: Vec<i32>,
    /// The job of each entry of `request.hqes`, at the same index.
    hqe_jobs: Vec<i32>,
}

impl Packet {
    /// The ids of the uploaded jobs, in upload order.
    pub fn uploaded_job_ids(&self) -> Vec<i32> {
        self.request.jobs.iter().map(|j| j.id).collect()
    }

    /// The upload as marking and following read it.
    fn sent(&self) -> Sent<'_> {
        Sent {
            jobs: &self.request.jobs,
            hqes: &self.request.hqes,
            hqe_jobs: &self.hqe_jobs,
        }
    }
}

/// What writing one answer did (§7 steps 3–6).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Uploaded jobs marked this shard's again, and those that changed in
    /// flight (step 3).
    pub marked: Marked,
    /// Jobs marked uploaded earlier whose followed entry the scheduler
    /// finished without releasing them; released here, they go up again.
    pub released_unsignalled: Vec<i32>,
    /// The records applied and refused (step 4).
    pub applied: ApplyReport,
    /// Incorrect hosts that existed and were removed (step 5).
    pub incorrect_hosts_removed: Vec<i32>,
    /// Completed jobs the master resent, unassigned to go up again (step 6).
    pub jobs_resynced: Vec<i32>,
    /// The entries to follow from now on: pass them to the next
    /// [`Store::write_answer`].
    pub running: Running,
}

impl Store {
    /// §7 step 1: what the shard knows (jobs with an incomplete entry,
    /// valid hosts and their statuses) and up to `max_upload_jobs` finished
    /// jobs to upload, with their entries. Reads only.
    pub async fn build_packet(
        &self,
        shard_hostname: &str,
        max_upload_jobs: u64,
    ) -> Result<Packet, StoreError> {
        let db = self.connection();
        let known_job_ids = known_job_ids(db).await?;
        let KnownHosts { ids, statuses } = known_hosts(db).await?;
        let (jobs, hqes, deferred, hqe_jobs) = jobs_to_upload(db, &self.layout(), max_upload_jobs)
            .await?
            .into_parts();
        Ok(Packet {
            request: HeartbeatRequest {
                shard_hostname: shard_hostname.to_owned(),
                known_job_ids,
                known_host_ids: ids,
                known_host_statuses: statuses,
                jobs,
                hqes,
            },
            deferred,
            hqe_jobs,
        })
    }

    /// §7 steps 3–6 for the master's `response` to `packet`, in one write
    /// transaction: release the jobs whose followed entries finished
    /// unsignalled, mark the upload, apply the records, remove the
    /// incorrect hosts, re-sync the resent completed jobs. `running` is
    /// what the previous answer returned in [`Written::running`], or `None`
    /// at the first heartbeat of a process (it is then read from the
    /// database). Nothing is written unless everything is.
    pub async fn write_answer(
        &self,
        packet: &Packet,
        response: &HeartbeatResponse,
        running: Option<Running>,
    ) -> Result<Written, StoreError> {
        let layout = self.layout();
        let txn = begin_write(self.connection()).await?;
        let running = match running {
            Some(running) => running,
            None => running_in_marked_jobs(&txn).await?,
        };
        let missed = release_missed(&txn, running).await?;
        let shard_id = shard_id_by_hostname(&txn, &packet.request.shard_hostname).await?;
        let marked = mark_sent(&txn, &layout, packet.sent(), shard_id).await?;
        let mut running = missed.running;
        running.follow_sent(packet.sent(), &marked.jobs);
        let applied = apply(&txn, &layout, response).await?;
        let incorrect_hosts_removed =
            remove_incorrect_hosts(&txn, &response.incorrect_host_ids).await?;
        let jobs_resynced = resync_completed_jobs(&txn, &response.sent_job_ids()).await?;
        commit(txn, "committing the heartbeat").await?;
        Ok(Written {
            marked,
            released_unsignalled: missed.released,
            applied,
            incorrect_hosts_removed,
            jobs_resynced,
            running,
        })
    }

    /// The valid hosts and their statuses, as a packet reports them.
    pub async fn known_hosts(&self) -> Result<KnownHosts, StoreError> {
        known_hosts(self.connection()).await
    }

    /// Removes the hosts of `ids` that exist, as §7 step 5 removes
    /// incorrect hosts, in a write transaction of its own. Returns the ids
    /// that existed.
    pub async fn forget_hosts(&self, ids: &[i32]) -> Result<Vec<i32>, StoreError> {
        let txn = begin_write(self.connection()).await?;
        let forgotten = remove_incorrect_hosts(&txn, ids).await?;
        commit(txn, "committing the removal of hosts").await?;
        Ok(forgotten)
    }
}

/// Commits `txn`, naming what was committed in the error.
async fn commit(
    txn: sea_orm::DatabaseTransaction,
    operation: &'static str,
) -> Result<(), StoreError> {
    txn.commit()
        .await
        .map_err(|source| StoreError::Database { operation, source })
}
