//! The inputs of the bench: the responses a master sends for generated labs
//! of a given size, and the synthetic shard databases behind the packet
//! measurement.
//!
//! A lab's response is what the reference master answers: the lab of
//! [`LabSpec::bench`] (scaled to the requested number of jobs) is seeded
//! into a throw-away SQLite master, `shard1` sends its first heartbeat
//! (nothing known, nothing to upload), and the [`HeartbeatResponse`] is
//! serialized with serde_json. Those bytes are "the serialized response".

use anyhow::{Context, Result, anyhow, ensure};
use sea_orm::DbBackend;
use shard_master::seed::{LabSpec, seed};
use shard_model::testing::records;
use shard_model::{HeartbeatRequest, HeartbeatResponse, Host, Hqe, Job, Shard, ToOne};
use shard_store::testing::Backend;

use super::floor::Rows;
use crate::db;

/// The hostname of the shard every generated lab belongs to.
const SHARD: &str = "shard1";
/// Hosts per job in [`LabSpec::bench`] (2,000 hosts for 10,000 jobs).
const JOBS_PER_HOST: u32 = 5;
/// Boards of [`LabSpec::bench`].
const BOARDS: u32 = 10;
/// Child jobs per suite of [`LabSpec::bench`].
const JOBS_PER_SUITE: u32 = 100;

/// How big everything is: the lab, or a tenth of it (`--quick`).
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    quick: bool,
}

impl Scale {
    /// The full-size bench, or its tenth.
    pub fn new(quick: bool) -> Self {
        Scale { quick }
    }

    /// Jobs of the main lab (measurements (a)–(g)).
    pub fn lab_jobs(self) -> u32 {
        if self.quick { 1_000 } else { 10_000 }
    }

    /// Jobs of the labs behind the growth measurement (h).
    pub fn growth_jobs(self) -> [u32; 3] {
        if self.quick {
            [100, 1_000, 5_000]
        } else {
            [1_000, 10_000, 50_000]
        }
    }

    /// Known incomplete jobs of the packet measurement (d). The packet
    /// databases are cheap to fill, so `--quick` keeps the sizes:
    /// the 4-statement target is about 100k known jobs.
    pub fn packet_known_jobs(self) -> [u32; 3] {
        [1_000, 10_000, 100_000]
    }

    /// Hosts in the packet databases: as many as the main lab has.
    pub fn packet_hosts(self) -> u32 {
        self.lab_jobs() / JOBS_PER_HOST
    }
}

/// Jobs waiting for upload in the packet measurement (§7's cap).
pub const UPLOAD_JOBS: u32 = 1_000;

/// [`LabSpec::bench`] scaled to `jobs` child jobs: the same 10 boards and
/// per-host and per-job shape, one host per 5 jobs, suites of 100 jobs (or
/// one suite per board when a board has fewer). `lab_spec(10_000)` is
/// exactly [`LabSpec::bench`].
pub fn lab_spec(jobs: u32) -> LabSpec {
    let per_board = (jobs / BOARDS).max(1);
    let (suites_per_board, jobs_per_suite) = if per_board >= JOBS_PER_SUITE {
        (per_board / JOBS_PER_SUITE, JOBS_PER_SUITE)
    } else {
        (1, per_board)
    };
    LabSpec {
        hosts_per_board: (jobs / JOBS_PER_HOST / BOARDS).max(1),
        suites_per_board,
        jobs_per_suite,
        ..LabSpec::bench()
    }
}

/// A serialized response and the size of what it carries.
pub struct Response {
    /// Child jobs in the lab (all of them are in the response).
    pub jobs: u32,
    /// Hosts in the response.
    pub hosts: usize,
    /// Suite keyvals in the response.
    pub suite_keyvals: usize,
    /// The JSON bytes, as a master sends them (the `result` object).
    pub bytes: Vec<u8>,
    /// Rows per table the response writes into an empty shard database.
    pub table_rows: Vec<(&'static str, usize)>,
}

impl Response {
    /// Records the response carries: see [`Rows`].
    pub fn records(&self) -> u64 {
        self.table_rows.iter().map(|(_, n)| *n as u64).sum()
    }

    /// Parses the bytes, failing if any record is rejected (a generated
    /// lab has none, so a rejection is a bug in the bench or the parser).
    pub fn parse(&self) -> Result<HeartbeatResponse> {
        let response =
            HeartbeatResponse::from_json(&self.bytes).context("parsing a generated response")?;
        ensure!(
            response.rejected.is_empty(),
            "the parser rejected records of a generated response: {}",
            response.rejected[0]
        );
        Ok(response)
    }
}

/// Seeds a lab of `jobs` child jobs on a throw-away SQLite master and
/// returns `shard1`'s first heartbeat response, serialized.
pub async fn generate(jobs: u32) -> Result<Response> {
    let spec = lab_spec(jobs);
    let master = db::fresh(Backend::Sqlite).await?;
    let generated = async {
        seed(master.store.connection(), &spec)
            .await
            .with_context(|| format!("seeding the {jobs}-job lab"))?;
        let request = HeartbeatRequest {
            shard_hostname: SHARD.to_owned(),
            known_job_ids: Vec::new(),
            known_host_ids: Vec::new(),
            known_host_statuses: Vec::new(),
            jobs: Vec::new(),
            hqes: Vec::new(),
        };
        shard_master::shard_heartbeat(master.store.connection(), &request)
            .await
            .map_err(|fault| anyhow!("the master refused the heartbeat: {fault}"))
    }
    .await;
    db::discard(master).await?;
    let response = generated?;
    ensure!(
        response.jobs.len() == jobs as usize,
        "the {jobs}-job lab's response carries {} jobs",
        response.jobs.len()
    );
    let bytes = serde_json::to_vec(&response).context("serializing the response")?;
    let table_rows =
        Rows::from_response(&response, &shard_store::Layout::none(DbBackend::Sqlite)).counts();
    Ok(Response {
        jobs,
        hosts: response.hosts.len(),
        suite_keyvals: response.suite_keyvals.len(),
        bytes,
        table_rows,
    })
}

/// A response that fills a shard database for the packet measurement:
/// `hosts` bare hosts, `known` jobs of `shard1` with one incomplete entry
/// each, and `uploads` finished jobs (one complete entry, `shard_id` NULL)
/// waiting for upload. Jobs carry no labels or keyvals: only the rows the
/// packet queries read.
pub fn packet_fill(hosts: u32, known: u32, uploads: u32) -> HeartbeatResponse {
    let shard = Shard {
        id: 1,
        hostname: SHARD.to_owned(),
    };
    let hosts = (1..=to_id(hosts)).map(|id| bare_host(id, &shard)).collect();
    let jobs = (1..=to_id(known.saturating_add(uploads)))
        .map(|id| {
            let finished = id > to_id(known);
            let shard = match finished {
                true => ToOne::Null,
                false => ToOne::Set(shard.clone()),
            };
            bare_job(id, shard, finished)
        })
        .collect();
    HeartbeatResponse {
        hosts,
        jobs,
        ..HeartbeatResponse::default()
    }
}

fn to_id(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A Ready host of `shard` with no relations but its shard: the bench's
/// hosts cost what a host costs, not what its labels cost.
fn bare_host(id: i32, shard: &Shard) -> Host {
    Host {
        lock_reason: None,
        aclgroup_set: None,
        hostattribute_set: None,
        labels: None,
        shard: ToOne::Set(shard.clone()),
        ..records::host(id)
    }
}

/// A job with one hostless entry, finished (complete) or queued.
fn bare_job(id: i32, shard: ToOne<Shard>, finished: bool) -> Job {
    let entry = Hqe {
        id,
        status: Some(if finished { "Completed" } else { "Queued" }.to_owned()),
        active: Some(false),
        complete: Some(finished),
        deleted: false,
        aborted: Some(false),
        execution_subdir: String::new(),
        started_on: None,
        finished_on: None,
        host_id: None,
        meta_host: ToOne::Absent,
    };
    Job {
        id,
        owner: Some("bench".to_owned()),
        name: Some(format!("job{id}")),
        priority: Some(0),
        control_file: None,
        control_type: Some(2),
        created_on: None,
        synch_count: 1,
        timeout: 24,
        timeout_mins: 1_440,
        max_runtime_hrs: 72,
        max_runtime_mins: 1_440,
        test_retry: 0,
        run_verify: Some(false),
        run_reset: true,
        parse_failed_repair: true,
        email_list: String::new(),
        reboot_before: 0,
        reboot_after: 0,
        require_ssp: None,
        parent_job_id: None,
        dependency_labels: None,
        hostqueueentry_set: Some(vec![entry]),
        jobkeyval_set: None,
        shard,
    }
}
