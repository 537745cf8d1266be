//! `cargo xtask bench`: heartbeat throughput against the database floor
//! (issue 6).
//!
//! On the response a master sends for a generated lab (`LabSpec::bench`:
//! 2,000 hosts, 10,000 jobs, 500 suite keyvals; `--quick`: a tenth), per
//! backend, the median of `--runs` runs after one warm-up, every write on a
//! fresh database: (a) parse, (b) apply into an empty database, (c) re-apply
//! into the filled one, (d) packet build with 1k, 10k and 100k known jobs
//! and 1,000 to upload, (e) the floor (the same rows as plain multi-row
//! INSERTs) and the bulk floor (the same rows by the backend's fastest
//! loading path: COPY, LOAD DATA INFILE; see [`bulk`]), (f) apply/floor
//! ratios, (g) peak RSS of parse + apply (in a child process), (h) apply
//! time and both floors across lab sizes. Then one table per backend with
//! each target's PASS/MISS, `--json FILE` and `--plot DIR` (SVG charts of
//! (h)).
//!
//! Timings only mean something optimized: a debug build of xtask runs
//! itself again with `cargo run --profile perf`. A MISS does not fail the
//! command (CI runs the bench so that it cannot rot, not to gate on a
//! shared machine's timings); an error does.

mod bulk;
mod chart;
mod floor;
mod lab;
mod measure;
mod profile;
mod report;
mod rss;
mod table;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use shard_store::testing::Backend;

use crate::db;
use lab::Scale;
use measure::Inputs;
use report::Summary;

/// The options of `cargo xtask bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The database to measure; `all` runs SQLite and every server
    /// configured by `SHARD_TEST_MYSQL_URL` / `SHARD_TEST_POSTGRES_URL`.
    #[arg(long, value_enum, default_value_t = Choice::All)]
    backend: Choice,
    /// A tenth of the lab (200 hosts, 1,000 jobs) and of the growth labs.
    #[arg(long)]
    quick: bool,
    /// Measured runs per backend, after one warm-up; the median is shown.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Also write the numbers as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also draw, for each backend, apply time against the growth labs'
    /// sizes (h) next to its multi-row and bulk floors: one SVG chart per
    /// backend (their scales differ), DIR/apply-<backend>.svg.
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    /// Internal: be the RSS probe of (g) for this response file.
    #[arg(long, hide = true, requires = "rss_database")]
    rss_probe: Option<PathBuf>,
    /// Internal: the database the RSS probe applies into.
    #[arg(long, hide = true)]
    rss_database: Option<String>,
}

/// `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Choice {
    Sqlite,
    Mysql,
    Postgres,
    All,
}

/// Runs the bench (optimized: a debug build re-runs itself in release).
pub fn run(options: Options) -> Result<()> {
    if cfg!(debug_assertions) {
        return rerun_optimized();
    }
    if let (Some(file), Some(url)) = (options.rss_probe.clone(), options.rss_database.clone()) {
        return rss::probe(file, url);
    }
    runtime()?.block_on(bench(options))
}

/// The runtime the bench and its probe run on: two workers, like the
/// machines CI runs on.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `cargo run --profile perf -p xtask -- <the same arguments>` (release
/// optimizations without the shipped binary's LTO, which would triple the
/// build for the same timings), from the same
/// directory (so a relative `--json` lands where it was asked for) and
/// with the same environment (so the same `CARGO_TARGET_DIR`).
fn rerun_optimized() -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!(
        "bench: timings need an optimized build; running `cargo run --profile perf -p xtask`"
    );
    let status = std::process::Command::new(&cargo)
        .args(["run", "--profile", "perf", "-p", "xtask", "--"])
        .args(std::env::args_os().skip(1))
        .status()
        .with_context(|| format!("could not start {}", cargo.to_string_lossy()))?;
    if !status.success() {
        bail!("the optimized bench failed ({status})");
    }
    Ok(())
}

async fn bench(options: Options) -> Result<()> {
    let started = Instant::now();
    let backends = backends(options.backend)?;
    let scale = Scale::new(options.quick);
    let inputs = generate(scale).await?;
    println!(
        "generated in {:.1} s; measuring {} on {} (median of {} runs after a warm-up)\n",
        started.elapsed().as_secs_f64(),
        if options.quick {
            "a tenth of the lab (--quick)"
        } else {
            "the full lab"
        },
        backends
            .iter()
            .map(|b| db::name(*b))
            .collect::<Vec<_>>()
            .join(", "),
        options.runs
    );

    let mut summaries = Vec::new();
    for &backend in &backends {
        let began = Instant::now();
        let summary = measure_backend(backend, &inputs, options.runs).await?;
        println!("{}", summary.table());
        println!(
            "{} done in {:.1} s\n",
            db::name(backend),
            began.elapsed().as_secs_f64()
        );
        summaries.push(summary);
    }

    let skipped: Vec<&str> = [Backend::Sqlite, Backend::MySql, Backend::Postgres]
        .into_iter()
        .filter(|b| !backends.contains(b))
        .map(db::name)
        .collect();
    if options.backend == Choice::All && !skipped.is_empty() {
        println!(
            "skipped (not configured): {}; set SHARD_TEST_MYSQL_URL / SHARD_TEST_POSTGRES_URL",
            skipped.join(", ")
        );
    }
    if let Some(path) = &options.json {
        let backends: serde_json::Map<String, serde_json::Value> = summaries
            .iter()
            .map(|s| (s.backend.to_owned(), s.json()))
            .collect();
        let json = serde_json::json!({
            "backends": backends,
            "skipped": skipped,
            "quick": options.quick,
            "runs": options.runs,
        });
        let text = serde_json::to_string_pretty(&json).context("serializing the numbers")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if let Some(dir) = &options.plot {
        for file in chart::write(dir, &summaries)? {
            println!("wrote {}", file.display());
        }
    }
    println!("bench took {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The backends `--backend` asks for; `all` leaves out, and the caller
/// names, the servers that are not configured.
fn backends(choice: Choice) -> Result<Vec<Backend>> {
    let wanted = match choice {
        Choice::Sqlite => vec![Backend::Sqlite],
        Choice::Mysql => vec![Backend::MySql],
        Choice::Postgres => vec![Backend::Postgres],
        Choice::All => {
            return Ok([Backend::Sqlite, Backend::MySql, Backend::Postgres]
                .into_iter()
                .filter(|b| db::configured(*b))
                .collect());
        }
    };
    for &backend in &wanted {
        if !db::configured(backend) {
            bail!(
                "--backend {} needs {}",
                db::name(backend),
                backend.env_var().unwrap_or_default()
            );
        }
    }
    Ok(wanted)
}

/// The main lab's response and the growth labs' (sharing the one that has
/// the main lab's size).
async fn generate(scale: Scale) -> Result<Inputs> {
    let lab_jobs = scale.lab_jobs();
    println!("generating the {lab_jobs}-job lab's response on a SQLite master …");
    let lab = Arc::new(lab::generate(lab_jobs).await?);
    let mut growth = Vec::new();
    for jobs in scale.growth_jobs() {
        if jobs == lab_jobs {
            growth.push(Arc::clone(&lab));
        } else {
            println!("generating the {jobs}-job lab's response …");
            growth.push(Arc::new(lab::generate(jobs).await?));
        }
    }
    Ok(Inputs { lab, growth, scale })
}

/// The warm-up, the measured runs, the RSS probe and the profile pass.
async fn measure_backend(backend: Backend, inputs: &Inputs, runs: u32) -> Result<Summary> {
    let name = db::name(backend);
    let mut samples = Vec::new();
    for run in 0..=runs {
        let began = Instant::now();
        let sample = measure::run(backend, inputs, run == 0)
            .await
            .with_context(|| format!("{name}, run {run}"))?;
        eprintln!(
            "  {name}: {} {:.1} s",
            if run == 0 {
                "warm-up".to_owned()
            } else {
                format!("run {run}/{runs}")
            },
            began.elapsed().as_secs_f64()
        );
        if run > 0 {
            samples.push(sample);
        }
    }
    let rss = rss::measure(backend, &inputs.lab)
        .await
        .with_context(|| format!("{name}: peak RSS"))?;
    let profile = profile::profile(backend, &inputs.lab)
        .await
        .with_context(|| format!("{name}: profile pass"))?;
    Ok(Summary::new(
        name,
        bulk::method(backend),
        inputs,
        &samples,
        rss,
        profile,
    ))
}
