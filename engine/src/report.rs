//! What one heartbeat did, for its log line, its metrics and `once`.

use std::time::Duration;

use shard_model::{RecordKind, Rejected};

/// A count per kind of top-level record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerKind {
    /// Hosts.
    pub hosts: usize,
    /// Jobs.
    pub jobs: usize,
    /// Suite keyvals.
    pub suite_keyvals: usize,
}

/// How long each step took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    /// Reading what the packet reports (§7 step 1).
    pub build: Duration,
    /// The call to the master, retries included (step 2).
    pub call: Duration,
    /// Marking, applying and reconciling, in one transaction (steps 3–6).
    pub write: Duration,
}

/// The outcome of one successful heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Jobs with an incomplete entry, as reported to the master.
    pub known_jobs: usize,
    /// Valid hosts, as reported to the master.
    pub known_hosts: usize,
    /// Ids of the jobs uploaded.
    pub jobs_uploaded: Vec<i32>,
    /// Entries uploaded with those jobs.
    pub hqes_uploaded: usize,
    /// Uploaded jobs left unmarked because the scheduler changed one of
    /// their entries while the heartbeat was in flight; they go up again.
    pub jobs_changed_in_flight: Vec<i32>,
    /// Jobs marked uploaded earlier whose running entry the scheduler has
    /// since finished without releasing them (it decides on a job row read
    /// before the mark); released here, they go up again.
    pub jobs_released_unsignalled: Vec<i32>,
    /// Finished jobs held back because an entry was caught half-written;
    /// they go up once the scheduler has finished writing it.
    pub jobs_deferred: Vec<i32>,
    /// Records the master sent, parsed or not.
    pub received: PerKind,
    /// Records applied.
    pub applied: PerKind,
    /// Records refused while parsing or applying, with their ids and why.
    pub rejected: Vec<Rejected>,
    /// The jobs of suite keyvals the shard cannot store: the job is not
    /// here and the adopted schema has a foreign key on
    /// `afe_job_keyvals.job_id` (§9). One entry per keyval; the master
    /// sends them every heartbeat, so they are summed up in one log line.
    pub suite_keyvals_without_job: Vec<i32>,
    /// Incorrect hosts that existed here and were removed.
    pub incorrect_hosts_removed: Vec<i32>,
    /// Completed jobs the master resent, unassigned to be uploaded again.
    pub jobs_resynced: Vec<i32>,
    /// Size of the request body.
    pub request_bytes: u64,
    /// Size of the response body (after gzip decoding).
    pub response_bytes: u64,
    /// Attempts the call took (1 unless it was retried).
    pub attempts: u32,
    /// Database statements the heartbeat executed (all three steps).
    pub statements: u64,
    /// Duration of each step.
    pub phases: Phases,
}

impl Report {
    /// Records refused of one kind (suite keyvals without their job
    /// included).
    pub fn failed(&self, kind: RecordKind) -> usize {
        let listed = self.rejected.iter().filter(|r| r.kind == kind).count();
        match kind {
            RecordKind::SuiteKeyval => listed + self.suite_keyvals_without_job.len(),
            _ => listed,
        }
    }
}
