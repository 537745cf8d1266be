//! `cargo xtask soak`: a lab with steady churn for minutes or hours, the
//! clients sampled from outside all along, and a verdict per series at the
//! end: a daemon must look the same after a week as after a minute.
//!
//! The master keeps creating suites with children (a share aborted, a
//! host now and then moving to another shard's board, see [`churn`]); the
//! scheduler simulators run them; each shard's cleanup purges old finished
//! jobs ([`purge`]), so the lab reaches a steady size. Every few seconds
//! the soak samples each client ([`sample`]) and the master's backlog.
//! When the time is up the churn stops, the lab drains, and the checks of
//! chaos (nothing lost, nothing duplicated) run with the verdicts of
//! [`verdict`]. Any verdict that fails fails the command.
//!
//! Nothing of this is in the product: the clients are the release
//! `shard-client` binaries, run as an operator would.

mod churn;
mod lab;
mod purge;
mod sample;
mod verdict;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sea_orm::{EntityTrait, QuerySelect};
use shard_master::seed::{LabSpec, seed};
use shard_store::Store;
use shard_store::schema::entity::jobs;
use shard_store::testing::Backend;
use tokio_util::sync::CancellationToken;

use crate::chaos::ShardBackend;
use churn::{Churn, Rates};
use lab::Lab;
use purge::Purge;
use sample::{LogTail, quantile};
use verdict::Verdict;

/// The options of `cargo xtask soak`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// How long the lab churns before it drains and is judged.
    #[arg(long, default_value_t = 60.0)]
    minutes: f64,
    /// Where the shard databases live (MariaDB and PostgreSQL: the servers
    /// of `SHARD_TEST_MYSQL_URL` / `SHARD_TEST_POSTGRES_URL`, one throw-away
    /// database per shard).
    #[arg(long, value_enum, default_value_t = ShardBackend::Sqlite)]
    backend: ShardBackend,
    /// Shards (and shard-client processes).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=20))]
    shards: u32,
    /// Seconds between samples (default: 2 for runs up to ten minutes,
    /// else 5).
    #[arg(long)]
    sample_sec: Option<f64>,
    /// Write SVG charts here: rss.svg, fds.svg, heartbeat.svg, backlog.svg.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write every sample and verdict as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where the databases and logs go (wiped first).
    #[arg(long, default_value = "target/soak")]
    dir: PathBuf,
    /// Soak the release binaries (built first), what a lab deploys; by
    /// default the debug ones, as the demo (`SHARD_XTASK_BINARIES` names
    /// prebuilt ones instead).
    #[arg(long)]
    release: bool,
}

/// How fast the lab churns: a suite of six two-entry children every four
/// seconds (1.5 jobs a second over the lab), one child in ten aborted, a
/// host moving every 45 s. The lab runs some three times that.
const RATES: Rates = Rates {
    suite_every: Duration::from_secs(4),
    children: 6,
    hqes_per_job: 2,
    abort_one_in: 10,
    move_every: Duration::from_secs(45),
};
/// How often the churn looks for work due.
const CHURN_TICK: Duration = Duration::from_millis(250);
/// How often each shard's cleanup runs.
const PURGE_TICK: Duration = Duration::from_secs(5);
/// How long the lab may take to finish its work once the churn stops.
const DRAIN: Duration = Duration::from_secs(180);

/// One sample of one client.
#[derive(Debug, Clone, Copy, Default)]
struct ClientSample {
    /// Seconds since the start.
    t: f64,
    rss: Option<f64>,
    fds: Option<f64>,
    db_connections: Option<f64>,
    /// Heartbeats in the window since the previous sample.
    beats: usize,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    request_bytes: Option<f64>,
    response_bytes: Option<f64>,
    known_jobs: Option<f64>,
    /// The client's failed heartbeats so far (its counter).
    failures: Option<f64>,
}

/// One sample of the master.
#[derive(Debug, Clone, Copy)]
struct MasterSample {
    t: f64,
    created: f64,
    /// Child jobs with an entry not complete.
    backlog: f64,
}

/// Everything sampled.
#[derive(Default)]
struct Samples {
    clients: Vec<Vec<ClientSample>>,
    master: Vec<MasterSample>,
    /// Job id → the shard it was first seen on.
    seen_on: HashMap<i32, usize>,
    /// Jobs seen on a second shard.
    crossings: Vec<String>,
}

/// Runs the soak.
pub fn run(options: Options) -> Result<()> {
    if options.minutes.is_nan() || options.minutes <= 0.0 {
        bail!("--minutes must be above 0");
    }
    if options.sample_sec.is_some_and(|s| s.is_nan() || s < 0.2) {
        bail!("--sample-sec must be at least 0.2");
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(soak(options))
}

async fn soak(options: Options) -> Result<()> {
    let backend: Backend = options.backend.into();
    if !crate::db::configured(backend) {
        bail!(
            "{} is not configured: set {}",
            crate::db::name(backend),
            backend.env_var().unwrap_or("its URL")
        );
    }
    let (dir, bin) = crate::demo::prepare_lab_with(&options.dir, options.release)?;
    let master_url = crate::demo::sqlite_url(&dir.join("master.db"));
    let master_db = Store::connect(&master_url).await?;
    master_db.migrate().await?;
    let spec = LabSpec {
        shards: options.shards,
        hosts_per_board: 6,
        suites_per_board: 0,
        ..LabSpec::default()
    };
    let summary = seed(master_db.connection(), &spec).await?;
    println!("seeded: {summary}");

    let stop = CancellationToken::new();
    let mut lab = Lab::start(&dir, &bin, &master_url, options.shards, backend, &stop).await?;
    let outcome = drive(&options, &master_db, &mut lab).await;
    stop.cancel();
    let exited: Vec<String> = lab
        .shards
        .iter_mut()
        .filter_map(|s| s.client.exited().then(|| s.name.clone()))
        .collect();
    lab.shut_down().await;
    let (samples, tally) = outcome?;

    let verdicts = judge(&samples, &tally, &exited, &lab_names(options.shards));
    let report = report(&options, &samples, &tally, &verdicts);
    print!("{report}");
    std::fs::write(dir.join("report.txt"), &report).context("writing the report")?;
    if let Some(file) = &options.json {
        write_json(file, &options, &samples, &tally, &verdicts)?;
        println!("samples and verdicts: {}", file.display());
    }
    if let Some(plots) = &options.plot {
        draw(plots, &samples, &lab_names(options.shards))?;
        println!("charts: {}", plots.display());
    }
    if verdicts.iter().all(|v| v.pass) {
        Ok(())
    } else {
        bail!(
            "a verdict failed; see the report above and the logs in {}",
            dir.display()
        )
    }
}

fn lab_names(shards: u32) -> Vec<String> {
    (1..=shards).map(|n| format!("shard{n}")).collect()
}

/// What the lab did, besides the samples.
#[derive(Debug, Default)]
struct Tally {
    steady: Duration,
    drained_in: Option<Duration>,
    children_created: u64,
    aborted: u64,
    moves: u64,
    /// Jobs purged, shards and master.
    purged: u64,
    purged_on_master: u64,
    churn_errors: u64,
    purge_errors: u64,
    scheduler_errors: u64,
    /// Entries incomplete on the master after the drain.
    incomplete: Option<i64>,
    /// Entries complete on a shard and not, or otherwise, on the master.
    missing: Option<crate::chaos::Missing>,
    check_error: Option<String>,
}

/// Churns and samples for `--minutes`, then drains and checks.
async fn drive(options: &Options, master: &Store, lab: &mut Lab) -> Result<(Samples, Tally)> {
    let mut churn = Churn::new(master.clone(), RATES, 1).await?;
    let mut purges: Vec<Purge> = lab
        .shards
        .iter()
        .map(|s| Purge::shard(s.store.clone()))
        .chain([Purge::master(master.clone())])
        .collect();
    let mut tails: Vec<LogTail> = lab.shards.iter().map(|s| LogTail::new(&s.log)).collect();
    let mut samples = Samples {
        clients: vec![Vec::new(); lab.shards.len()],
        ..Samples::default()
    };
    let mut tally = Tally::default();
    let steady = Duration::from_secs_f64(options.minutes * 60.0);
    let every = Duration::from_secs_f64(options.sample_sec.unwrap_or(if options.minutes <= 10.0 {
        2.0
    } else {
        5.0
    }));
    let started = Instant::now();
    let mut churn_tick = tokio::time::interval(CHURN_TICK);
    let mut purge_tick = tokio::time::interval(PURGE_TICK);
    let mut sample_tick = tokio::time::interval(every);
    let mut next_progress = Duration::from_secs(60);
    println!(
        "soaking for {:.1} min on {} ({} shards), sampling every {:.1} s …",
        options.minutes,
        db_label(options.backend),
        lab.shards.len(),
        every.as_secs_f64()
    );
    // The steady phase: churn, purge, sample.
    while started.elapsed() < steady {
        tokio::select! {
            _ = churn_tick.tick() => churn_step(&mut churn, true, &mut tally).await,
            _ = purge_tick.tick() => purge_all(&mut purges, &mut tally).await,
            _ = sample_tick.tick() => {
                let t = started.elapsed().as_secs_f64();
                take_sample(t, churn.children_created, master, lab, &mut tails, &mut samples).await;
                if started.elapsed() >= next_progress {
                    next_progress += Duration::from_secs(60);
                    println!("{}", progress(t, &samples, &churn));
                }
            }
            _ = tokio::signal::ctrl_c() => bail!("interrupted; every process has been stopped"),
        }
    }
    tally.steady = started.elapsed();
    println!(
        "churn stopped after {:.1} min; draining …",
        tally.steady.as_secs_f64() / 60.0
    );
    // The drain: no new work; the lab finishes what it has.
    let drain_started = Instant::now();
    while drain_started.elapsed() < DRAIN {
        tokio::select! {
            _ = churn_tick.tick() => churn_step(&mut churn, false, &mut tally).await,
            _ = purge_tick.tick() => purge_all(&mut purges, &mut tally).await,
            _ = tokio::signal::ctrl_c() => bail!("interrupted; every process has been stopped"),
        }
        if drained(master).await {
            tally.drained_in = Some(drain_started.elapsed());
            break;
        }
    }
    // One last look for crossings, with every client alive.
    check_crossings(lab, &mut samples).await;

    tally.children_created = churn.children_created;
    tally.aborted = churn.aborted;
    tally.moves = churn.moves;
    tally.purged = purges.iter().map(|p| p.purged).sum();
    tally.purged_on_master = purges.last().map_or(0, |p| p.purged);
    tally.scheduler_errors = lab
        .shards
        .iter()
        .map(|s| s.scheduler_errors.load(Ordering::Relaxed))
        .sum();
    match incomplete_entries(master).await {
        Ok(n) => tally.incomplete = Some(n),
        Err(e) => tally.check_error = Some(format!("{e:#}")),
    }
    let shards: Vec<(&str, &Store)> = lab
        .shards
        .iter()
        .map(|s| (s.name.as_str(), &s.store))
        .collect();
    match crate::chaos::ends_missing_on_master(master, &shards).await {
        Ok(missing) => tally.missing = Some(missing),
        Err(e) => tally.check_error = Some(format!("{e:#}")),
    }
    // The last heartbeat counters, after the drain.
    for (n, shard) in lab.shards.iter().enumerate() {
        if let Some(failures) = scrape_failures(&shard.metrics_url).await
            && let Some(last) = samples.clients[n].last_mut()
        {
            last.failures = Some(failures);
        }
    }
    Ok((samples, tally))
}

fn db_label(backend: ShardBackend) -> &'static str {
    crate::db::name(backend.into())
}

/// One step of the churn (`creating` new work or not), its failure counted.
async fn churn_step(churn: &mut Churn, creating: bool, tally: &mut Tally) {
    if let Err(e) = churn.step(creating).await {
        tally.churn_errors += 1;
        eprintln!("soak: churn: {e:#}");
    }
}

/// One round of every database's cleanup, its failures counted.
async fn purge_all(purges: &mut [Purge], tally: &mut Tally) {
    for purge in purges {
        if let Err(e) = purge.step().await {
            tally.purge_errors += 1;
            eprintln!("soak: purge: {e:#}");
        }
    }
}

/// Whether every entry on the master is complete (so every child job is:
/// the backlog counts jobs with an incomplete entry).
async fn drained(master: &Store) -> bool {
    matches!(incomplete_entries(master).await, Ok(0))
}

/// Entries not complete on the master (suites included).
async fn incomplete_entries(master: &Store) -> Result<i64> {
    use sea_orm::ConnectionTrait;
    let conn = master.connection();
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT COUNT(*) FROM afe_host_queue_entries WHERE complete = 0 OR complete IS NULL",
        ))
        .await
        .context("counting incomplete entries on the master")?
        .context("the count returned no row")?;
    row.try_get_by_index(0)
        .context("reading incomplete entries on the master")
}

/// Samples every client and the master at `t`, `created` child jobs into
/// the run.
async fn take_sample(
    t: f64,
    created: u64,
    master: &Store,
    lab: &Lab,
    tails: &mut [LogTail],
    samples: &mut Samples,
) {
    for (n, shard) in lab.shards.iter().enumerate() {
        let beats = tails[n].beats();
        let ms: Vec<f64> = beats.iter().map(|b| b.ms).collect();
        let mean = |f: fn(&sample::Beat) -> f64| {
            (!beats.is_empty()).then(|| beats.iter().map(f).sum::<f64>() / beats.len() as f64)
        };
        let pid = shard.client.id();
        let client = ClientSample {
            t,
            rss: pid.and_then(sample::rss),
            fds: pid.and_then(sample::open_fds),
            db_connections: pid.and_then(|p| sample::db_connections(p, &shard.db_target)),
            beats: beats.len(),
            p50_ms: quantile(&ms, 0.5),
            p99_ms: quantile(&ms, 0.99),
            request_bytes: mean(|b| b.request_bytes),
            response_bytes: mean(|b| b.response_bytes),
            known_jobs: beats.last().map(|b| b.known_jobs),
            failures: scrape_failures(&shard.metrics_url).await,
        };
        if let Some(series) = samples.clients.get_mut(n) {
            series.push(client);
        }
    }
    if let Ok(backlog) = churn::backlog(master).await {
        samples.master.push(MasterSample {
            t,
            created: created as f64,
            backlog: backlog as f64,
        });
    }
    check_crossings(lab, samples).await;
}

/// Notes every job on each shard; a job on a second shard is a crossing
/// (one job run twice).
async fn check_crossings(lab: &Lab, samples: &mut Samples) {
    for (n, shard) in lab.shards.iter().enumerate() {
        let Ok(ids) = jobs::Entity::find()
            .select_only()
            .column(jobs::Column::Id)
            .into_tuple::<i32>()
            .all(shard.store.connection())
            .await
        else {
            continue;
        };
        for id in ids {
            let first = *samples.seen_on.entry(id).or_insert(n);
            if first != n {
                samples.crossings.push(format!(
                    "job {id} on shard{} and {}",
                    first + 1,
                    shard.name
                ));
            }
        }
    }
    samples.crossings.sort();
    samples.crossings.dedup();
}

/// The client's failed heartbeats so far, from its metrics.
async fn scrape_failures(url: &str) -> Option<f64> {
    let answer = shard_tests::scrape::get(url, Duration::from_secs(2))
        .await
        .ok()?;
    Some(sample::sum_series(
        &answer.body,
        shard_engine::metrics::HEARTBEAT_FAILURES,
    ))
}

/// One line of progress a minute.
fn progress(t: f64, samples: &Samples, churn: &Churn) -> String {
    let mut line = format!("{:>5.1} min:", t / 60.0);
    for (n, series) in samples.clients.iter().enumerate() {
        if let Some(s) = series.last() {
            let _ = write!(
                line,
                " shard{} rss {:.1} MiB fds {} p99 {} ms known {};",
                n + 1,
                s.rss.unwrap_or(0.0) / MIB,
                s.fds.unwrap_or(0.0),
                s.p99_ms.map_or_else(|| "-".to_owned(), |v| v.to_string()),
                s.known_jobs.unwrap_or(0.0)
            );
        }
    }
    if let Some(m) = samples.master.last() {
        let _ = write!(
            line,
            " master backlog {} of {} created ({} aborted, {} host moves)",
            m.backlog, m.created, churn.aborted, churn.moves
        );
    }
    line
}

const MIB: f64 = 1024.0 * 1024.0;

/// `(t, field)` for every sample that has the field.
fn points(series: &[ClientSample], field: fn(&ClientSample) -> Option<f64>) -> Vec<(f64, f64)> {
    series
        .iter()
        .filter_map(|s| field(s).map(|v| (s.t, v)))
        .collect()
}

/// Every verdict of the run.
fn judge(samples: &Samples, tally: &Tally, exited: &[String], names: &[String]) -> Vec<Verdict> {
    let mut out = Vec::new();
    for (series, name) in samples.clients.iter().zip(names) {
        out.push(verdict::rss_flat(name, &points(series, |s| s.rss)));
        out.push(verdict::count_flat(
            name,
            "open fds",
            &points(series, |s| s.fds),
        ));
        out.push(verdict::count_flat(
            name,
            "database connections",
            &points(series, |s| s.db_connections),
        ));
        out.push(verdict::p99_steady(name, &points(series, |s| s.p99_ms)));
    }
    let backlog: Vec<(f64, f64)> = samples.master.iter().map(|m| (m.t, m.backlog)).collect();
    let created: Vec<(f64, f64)> = samples.master.iter().map(|m| (m.t, m.created)).collect();
    out.push(verdict::backlog_bounded(&backlog, &created));
    let failures: f64 = samples
        .clients
        .iter()
        .filter_map(|s| s.iter().rev().find_map(|c| c.failures))
        .sum();
    out.push(verdict::zero(
        "no failed heartbeat",
        failures as u64,
        "failed heartbeats",
    ));
    out.push(verdict::zero(
        "no failure in the lab (churn, purge, schedulers)",
        tally.churn_errors + tally.purge_errors + tally.scheduler_errors,
        &format!(
            "failures ({} churn, {} purge, {} scheduler)",
            tally.churn_errors, tally.purge_errors, tally.scheduler_errors
        ),
    ));
    out.push(Verdict {
        name: "every client alive to the end".to_owned(),
        pass: exited.is_empty(),
        detail: match exited.is_empty() {
            true => format!("{} clients ran throughout", names.len()),
            false => format!("exited early: {}", exited.join(", ")),
        },
    });
    let lost = match (&tally.incomplete, &tally.drained_in) {
        (Some(n), Some(_)) => Verdict {
            name: "no job lost: every entry complete on the master after the drain".to_owned(),
            pass: *n == 0,
            detail: format!("{n} entries incomplete"),
        },
        (n, _) => Verdict {
            name: "no job lost: every entry complete on the master after the drain".to_owned(),
            pass: false,
            detail: format!(
                "the lab did not drain within {} s ({} entries incomplete{})",
                DRAIN.as_secs(),
                n.map_or_else(|| "?".to_owned(), |n| n.to_string()),
                tally
                    .check_error
                    .as_ref()
                    .map_or_else(String::new, |e| format!("; {e}"))
            ),
        },
    };
    out.push(lost);
    out.push(match &tally.missing {
        Some(missing) => Verdict {
            name: "every end on a shard reached the master, same status".to_owned(),
            pass: missing.offenders.is_empty(),
            detail: missing.to_string(),
        },
        None => Verdict {
            name: "every end on a shard reached the master, same status".to_owned(),
            pass: false,
            detail: tally
                .check_error
                .clone()
                .unwrap_or_else(|| "not checked".to_owned()),
        },
    });
    out.push(Verdict {
        name: "no job duplicated: none on two shards".to_owned(),
        pass: samples.crossings.is_empty(),
        detail: match samples.crossings.first() {
            None => format!("{} jobs followed", samples.seen_on.len()),
            Some(first) => format!("{} crossings, e.g. {first}", samples.crossings.len()),
        },
    });
    out
}

/// The report printed at the end (and kept as report.txt).
fn report(options: &Options, samples: &Samples, tally: &Tally, verdicts: &[Verdict]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nsoak on {}: {} shards, {:.1} min of churn, drained in {}",
        db_label(options.backend),
        samples.clients.len(),
        tally.steady.as_secs_f64() / 60.0,
        tally.drained_in.map_or_else(
            || "(did not drain)".to_owned(),
            |d| format!("{:.1} s", d.as_secs_f64())
        )
    );
    let _ = writeln!(
        out,
        "  lab: {} child jobs created, {} aborted, {} host moves; jobs purged: {} on the shards, {} on the master",
        tally.children_created,
        tally.aborted,
        tally.moves,
        tally.purged - tally.purged_on_master,
        tally.purged_on_master
    );
    let _ = writeln!(
        out,
        "  {:<7} {:>8} {:>9} {:>9} {:>5} {:>4} {:>8} {:>8} {:>9} {:>10} {:>6}",
        "client",
        "beats",
        "RSS MiB",
        "(first)",
        "fds",
        "db",
        "p50 ms",
        "p99 ms",
        "req B",
        "resp B",
        "known"
    );
    for (n, series) in samples.clients.iter().enumerate() {
        let last_half = &series[series.len() / 2..];
        let median = |f: fn(&ClientSample) -> Option<f64>| {
            let values: Vec<f64> = last_half.iter().filter_map(f).collect();
            quantile(&values, 0.5).map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"))
        };
        let mib = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{:.2}", v / MIB));
        let _ = writeln!(
            out,
            "  shard{:<2} {:>8} {:>9} {:>9} {:>5} {:>4} {:>8} {:>8} {:>9} {:>10} {:>6}",
            n + 1,
            series.iter().map(|s| s.beats).sum::<usize>(),
            mib(series.last().and_then(|s| s.rss)),
            mib(series.first().and_then(|s| s.rss)),
            median(|s| s.fds),
            median(|s| s.db_connections),
            median(|s| s.p50_ms),
            median(|s| s.p99_ms),
            median(|s| s.request_bytes),
            median(|s| s.response_bytes),
            median(|s| s.known_jobs),
        );
    }
    let _ = writeln!(out, "  (medians over the second half; RSS last and first)");
    let _ = writeln!(out, "  verdicts:");
    for v in verdicts {
        let _ = writeln!(out, "    {v}");
    }
    out
}

/// Every sample and verdict as JSON.
fn write_json(
    file: &Path,
    options: &Options,
    samples: &Samples,
    tally: &Tally,
    verdicts: &[Verdict],
) -> Result<()> {
    use serde_json::json;
    let clients: Vec<_> = samples
        .clients
        .iter()
        .enumerate()
        .map(|(n, series)| {
            json!({
                "name": format!("shard{}", n + 1),
                "samples": series.iter().map(|s| json!({
                    "t": s.t,
                    "rss_bytes": s.rss,
                    "open_fds": s.fds,
                    "db_connections": s.db_connections,
                    "heartbeats": s.beats,
                    "p50_ms": s.p50_ms,
                    "p99_ms": s.p99_ms,
                    "request_bytes": s.request_bytes,
                    "response_bytes": s.response_bytes,
                    "known_jobs": s.known_jobs,
                    "failures": s.failures,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let value = json!({
        "backend": db_label(options.backend),
        "shards": options.shards,
        "minutes": tally.steady.as_secs_f64() / 60.0,
        "drained_sec": tally.drained_in.map(|d| d.as_secs_f64()),
        "lab": {
            "children_created": tally.children_created,
            "aborted": tally.aborted,
            "host_moves": tally.moves,
            "purged_on_shards": tally.purged - tally.purged_on_master,
            "purged_on_master": tally.purged_on_master,
        },
        "clients": clients,
        "master": samples.master.iter().map(|m| json!({
            "t": m.t, "created": m.created, "backlog": m.backlog,
        })).collect::<Vec<_>>(),
        "verdicts": verdicts.iter().map(|v| json!({
            "name": v.name, "pass": v.pass, "detail": v.detail,
        })).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&value).context("encoding the samples")?;
    std::fs::write(file, text).with_context(|| format!("writing {}", file.display()))
}

/// The charts of `--plot`.
fn draw(dir: &Path, samples: &Samples, names: &[String]) -> Result<()> {
    use crate::plot::{Chart, Series, line_chart};
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let minutes = |points: Vec<(f64, f64)>, scale: f64| -> Vec<(f64, f64)> {
        points
            .into_iter()
            .map(|(t, v)| (t / 60.0, v / scale))
            .collect()
    };
    let per_client = |field: fn(&ClientSample) -> Option<f64>, scale: f64, suffix: &str| {
        samples
            .clients
            .iter()
            .zip(names)
            .map(|(series, name)| Series {
                name: format!("{name}{suffix}"),
                points: minutes(points(series, field), scale),
            })
            .collect::<Vec<_>>()
    };
    line_chart(
        &dir.join("rss.svg"),
        &Chart {
            title: "shard-client resident memory",
            x_label: "minutes",
            y_label: "RSS (MiB)",
            series: &per_client(|s| s.rss, MIB, ""),
        },
    )?;
    let mut held = per_client(|s| s.fds, 1.0, " fds");
    held.extend(per_client(|s| s.db_connections, 1.0, " db connections"));
    line_chart(
        &dir.join("fds.svg"),
        &Chart {
            title: "shard-client open file descriptors and database connections",
            x_label: "minutes",
            y_label: "count",
            series: &held,
        },
    )?;
    let mut times = per_client(|s| s.p50_ms, 1.0, " p50");
    times.extend(per_client(|s| s.p99_ms, 1.0, " p99"));
    line_chart(
        &dir.join("heartbeat.svg"),
        &Chart {
            title: "heartbeat duration (per sampling window)",
            x_label: "minutes",
            y_label: "ms",
            series: &times,
        },
    )?;
    let mut lab = vec![Series {
        name: "master backlog (child jobs not complete)".to_owned(),
        points: samples
            .master
            .iter()
            .map(|m| (m.t / 60.0, m.backlog))
            .collect(),
    }];
    lab.extend(per_client(|s| s.known_jobs, 1.0, " known job ids"));
    line_chart(
        &dir.join("backlog.svg"),
        &Chart {
            title: "master backlog and the shards' known job ids",
            x_label: "minutes",
            y_label: "jobs",
            series: &lab,
        },
    )
}
