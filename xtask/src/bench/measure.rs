//! One run of measurements (a)–(e) and (h) on one backend, each write on a
//! fresh database that is dropped right after. Both floors are measured on
//! the main lab and on every growth lab.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use shard_model::HeartbeatResponse;
use shard_store::Store;
use shard_store::testing::Backend;

use super::bulk;
use super::floor::{self, Rows};
use super::lab::{self, Response, Scale, UPLOAD_JOBS};
use crate::db;

/// Everything the runs measure, generated once per bench.
pub struct Inputs {
    /// The main lab's response.
    pub lab: Arc<Response>,
    /// The growth labs' responses, smallest first (one of them is `lab`).
    pub growth: Vec<Arc<Response>>,
    /// How big everything is.
    pub scale: Scale,
}

/// A phase's wall time and the statements it executed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timed {
    /// Wall time.
    pub time: Duration,
    /// Statements counted by the store ([`Store::statements`]).
    pub statements: u64,
}

/// One run's numbers.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// (a) `HeartbeatResponse::from_json` of the main lab.
    pub parse: Duration,
    /// (b) apply into an empty database.
    pub apply: Timed,
    /// (c) the same apply again, into the filled database.
    pub reapply: Timed,
    /// (e) the floor.
    pub floor: Timed,
    /// (e′) the bulk floor ([`bulk`]); its statements are those it sent.
    pub bulk: Timed,
    /// (d) packet build, per size of [`Scale::packet_known_jobs`].
    pub packet: Vec<Timed>,
    /// (h) each growth lab: apply into an empty database, and both floors.
    pub growth: Vec<Growth>,
}

/// One growth lab's apply and floors.
#[derive(Debug, Clone, Copy, Default)]
pub struct Growth {
    /// Apply into an empty database.
    pub apply: Timed,
    /// The multi-row floor of the same rows.
    pub floor: Timed,
    /// The bulk floor of the same rows.
    pub bulk: Timed,
}

/// Runs every measurement once. `check` also verifies that the apply left
/// exactly the rows the floor writes (done on the warm-up run).
pub async fn run(backend: Backend, inputs: &Inputs, check: bool) -> Result<Sample> {
    let mut sample = Sample::default();

    let start = Instant::now();
    let parsed = HeartbeatResponse::from_json(&inputs.lab.bytes);
    sample.parse = start.elapsed();
    let response = parsed.context("parsing the lab's response")?;
    ensure!(
        response.rejected.is_empty(),
        "the parser rejected records of the lab: {}",
        response.rejected[0]
    );

    let target = db::fresh(backend).await?;
    let applied = async {
        let apply = apply(&target.store, &response).await?;
        if check {
            check_rows(target.store.connection(), &inputs.lab).await?;
        }
        let reapply = apply_again(&target.store, &response).await?;
        Ok::<_, anyhow::Error>((apply, reapply))
    }
    .await;
    let layout = target.store.layout();
    db::discard(target).await?;
    (sample.apply, sample.reapply) = applied?;

    let rows = Rows::from_response(&response, &layout);
    drop(response);
    (sample.floor, sample.bulk) = floors(backend, &rows).await?;
    drop(rows);

    let hosts = inputs.scale.packet_hosts();
    for known in inputs.scale.packet_known_jobs() {
        sample.packet.push(packet(backend, hosts, known).await?);
    }

    for response in &inputs.growth {
        let growth = if Arc::ptr_eq(response, &inputs.lab) {
            Growth {
                apply: sample.apply,
                floor: sample.floor,
                bulk: sample.bulk,
            }
        } else {
            let parsed = response.parse()?;
            let target = db::fresh(backend).await?;
            let layout = target.store.layout();
            let applied = apply(&target.store, &parsed).await;
            db::discard(target).await?;
            let apply = applied?;
            let rows = Rows::from_response(&parsed, &layout);
            drop(parsed);
            let (floor, bulk) = floors(backend, &rows)
                .await
                .with_context(|| format!("the floors of the {}-job lab", response.jobs))?;
            Growth { apply, floor, bulk }
        };
        sample.growth.push(growth);
    }
    Ok(sample)
}

/// The multi-row floor and the bulk floor of `rows`, each into a fresh
/// database.
async fn floors(backend: Backend, rows: &Rows) -> Result<(Timed, Timed)> {
    let target = db::fresh(backend).await?;
    let floor = timed(&target.store, floor::write(target.store.connection(), rows)).await;
    db::discard(target).await?;
    let floor = floor.context("the multi-row floor")?.0;

    let target = db::fresh(backend).await?;
    let start = Instant::now();
    let loaded = bulk::write(target.store.connection(), rows).await;
    let time = start.elapsed();
    db::discard(target).await?;
    let statements = loaded.context("the bulk floor")?;
    Ok((floor, Timed { time, statements }))
}

/// Times `phase` and counts the statements it ran through `store`.
async fn timed<T>(store: &Store, phase: impl Future<Output = Result<T>>) -> Result<(Timed, T)> {
    let statements = store.statements();
    let start = Instant::now();
    let value = phase.await?;
    let time = start.elapsed();
    let statements = store.statements() - statements;
    Ok((Timed { time, statements }, value))
}

/// `shard_store::apply`, timed, refusing any rejection (a generated lab
/// has none, so one means the numbers would not be comparable).
async fn apply(store: &Store, response: &HeartbeatResponse) -> Result<Timed> {
    let (timed, report) = timed(store, async {
        shard_store::apply(store.connection(), &store.layout(), response)
            .await
            .context("applying the response")
    })
    .await?;
    ensure!(
        report.rejected.is_empty(),
        "the store rejected {} records, e.g. {}",
        report.rejected.len(),
        report.rejected[0]
    );
    Ok(timed)
}

/// The steady-state resend: the same apply into the filled database.
async fn apply_again(store: &Store, response: &HeartbeatResponse) -> Result<Timed> {
    apply(store, response)
        .await
        .context("re-applying the response")
}

/// Checks that the `afe_` tables hold exactly the rows [`Rows`] counted,
/// so apply and floor are compared on the same rows.
async fn check_rows(db: &DatabaseConnection, lab: &Response) -> Result<()> {
    for &(table, expected) in &lab.table_rows {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .with_context(|| format!("counting the rows of {table}"))?
            .with_context(|| format!("counting the rows of {table} returned nothing"))?;
        let found: i64 = row
            .try_get("", "n")
            .with_context(|| format!("reading the row count of {table}"))?;
        ensure!(
            found == expected as i64,
            "after apply {table} has {found} rows, but the response carries {expected}: \
             apply and floor would not write the same rows"
        );
    }
    Ok(())
}

/// (d): fills a fresh database with `known` incomplete jobs and
/// [`UPLOAD_JOBS`] jobs waiting for upload (one apply of a synthetic
/// response), then times building the packet.
async fn packet(backend: Backend, hosts: u32, known: u32) -> Result<Timed> {
    let target = db::fresh(backend).await?;
    let measured = async {
        let fill = lab::packet_fill(hosts, known, UPLOAD_JOBS);
        apply(&target.store, &fill)
            .await
            .with_context(|| format!("filling a database with {known} known jobs"))?;
        drop(fill);
        let (timed, packet) = timed(&target.store, build_packet(&target.store)).await?;
        ensure!(
            packet == (known as usize, hosts as usize, UPLOAD_JOBS as usize),
            "the packet holds (known jobs, hosts, uploads) {packet:?}, expected \
             ({known}, {hosts}, {UPLOAD_JOBS})"
        );
        Ok(timed)
    }
    .await;
    db::discard(target).await?;
    measured
}

/// The engine's packet build (§7 step 1): known jobs, known hosts and jobs
/// to upload with their entries. Returns how many of each it found.
async fn build_packet(store: &Store) -> Result<(usize, usize, usize)> {
    let db = store.connection();
    let known = shard_store::known_job_ids(db)
        .await
        .context("reading known job ids")?;
    let hosts = shard_store::known_hosts(db)
        .await
        .context("reading known hosts")?;
    let upload = shard_store::jobs_to_upload(db, &store.layout(), u64::from(UPLOAD_JOBS))
        .await
        .context("reading jobs to upload")?;
    ensure!(
        upload.hqes.len() == upload.jobs.len(),
        "{} jobs to upload came with {} entries, expected one each",
        upload.jobs.len(),
        upload.hqes.len()
    );
    Ok((known.len(), hosts.ids.len(), upload.jobs.len()))
}
