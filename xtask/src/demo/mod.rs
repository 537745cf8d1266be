//! `cargo xtask demo`: a lab converging on one machine.
//!
//! A master (`shard-master serve`) and N shard clients (`shard-client run`)
//! run as real processes talking HTTP on loopback, each over its own SQLite
//! file in `--dir`; a scheduler simulator per shard runs in this process.
//! The demo seeds the master, shows live progress per shard, plays the
//! master's own scheduler for the hostless suite jobs, and ends when every
//! entry on the master is complete, with a summary.

mod lab;
pub(crate) mod procs;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use shard_master::seed::{LabSpec, seed};
use shard_store::Store;
use shard_tests::scheduler::{Scheduler, SchedulerConfig};
use tokio_util::sync::CancellationToken;

use procs::{Child, free_port};

/// The options of `cargo xtask demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Shards (and shard-client processes).
    #[arg(long, default_value_t = 3)]
    shards: u32,
    /// Boards per shard.
    #[arg(long, default_value_t = 2)]
    boards_per_shard: u32,
    /// Hosts per board.
    #[arg(long, default_value_t = 4)]
    hosts_per_board: u32,
    /// Child jobs in the lab (spread over the boards' suites).
    #[arg(long, default_value_t = 48)]
    jobs: u32,
    /// Where the databases and logs go (wiped first).
    #[arg(long, default_value = "target/demo")]
    dir: PathBuf,
    /// Give up when the lab has not converged after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_sec: u64,
}

/// Suites per board: children are spread over this many suite jobs.
const SUITES_PER_BOARD: u32 = 2;
/// The shard clients' pause between heartbeats.
const PAUSE_SEC: &str = "0.5";

/// Runs the demo.
pub fn run(options: Options) -> Result<()> {
    if options.shards == 0 || options.boards_per_shard == 0 || options.hosts_per_board == 0 {
        bail!("--shards, --boards-per-shard and --hosts-per-board must be at least 1");
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(demo(options))
}

async fn demo(options: Options) -> Result<()> {
    let (dir, bin) = prepare_lab(&options.dir)?;

    let spec = lab_spec(&options);
    let master_url = sqlite_url(&dir.join("master.db"));
    let master_db = Store::connect(&master_url).await?;
    master_db.migrate().await?;
    let summary = seed(master_db.connection(), &spec).await?;
    println!("seeded {}: {summary}", dir.join("master.db").display());

    let stop = CancellationToken::new();
    let port = free_port()?;
    let mut master = Child::spawn(
        &bin.join("shard-master"),
        &[
            "--database-url",
            &master_url,
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
        &dir.join("master.log"),
    )?;
    procs::wait_for_port(port, Duration::from_secs(20))
        .await
        .context("the master did not start")?;

    let mut clients = Vec::new();
    let mut shard_dbs = Vec::new();
    let mut metrics_urls = Vec::new();
    for n in 1..=options.shards {
        let url = sqlite_url(&dir.join(format!("shard-{n}.db")));
        // The schema exists before the client and the scheduler start, so
        // neither waits for the other.
        let store = Store::connect(&url).await?;
        store.migrate().await?;
        let metrics_port = free_port()?;
        metrics_urls.push(format!("http://127.0.0.1:{metrics_port}/metrics"));
        clients.push(Child::spawn(
            &bin.join("shard-client"),
            &[
                "--global-afe-hostname",
                &format!("127.0.0.1:{port}"),
                "--shard-hostname",
                &format!("shard{n}"),
                "--database-url",
                &url,
                "--heartbeat-pause-sec",
                PAUSE_SEC,
                "--rpc-timeout-min",
                "0.5",
                "--rpc-delay-sec",
                "0.2",
                "--metrics-addr",
                &format!("127.0.0.1:{metrics_port}"),
                "--log-format",
                "json",
                "run",
            ],
            &dir.join(format!("shard-{n}.log")),
        )?);
        let scheduler = Scheduler::new(
            store.connection().clone(),
            SchedulerConfig {
                seed: u64::from(n),
                // One to three seconds per test at 250 ms ticks: long
                // enough to watch, short enough to finish in seconds.
                run_ticks: 4..=12,
                ..SchedulerConfig::default()
            },
        );
        tokio::spawn(scheduler.run(Duration::from_millis(250), stop.clone()));
        shard_dbs.push(store);
    }
    for (n, url) in metrics_urls.iter().enumerate() {
        println!("shard{} metrics: {url}", n + 1);
    }

    let started = Instant::now();
    let outcome = watch(&master_db, &shard_dbs, &options, &stop).await;
    let took = started.elapsed();
    let report = lab::final_counts(&master_db, options.shards).await;
    let scraped = lab::scrape_all(&metrics_urls).await;
    stop.cancel();
    for client in &mut clients {
        client.terminate();
    }
    master.terminate();
    for client in &mut clients {
        client.wait(Duration::from_secs(5)).await;
    }
    master.wait(Duration::from_secs(5)).await;

    let report = report?;
    let heartbeat_times = lab::heartbeat_times(&dir, options.shards);
    print!(
        "{}",
        lab::summary(outcome.is_ok(), &report, &scraped, &heartbeat_times, took)
    );
    for (n, url) in metrics_urls.iter().enumerate() {
        println!("shard{} served its metrics at {url} while it ran", n + 1);
    }
    println!("logs and databases: {}", dir.display());
    outcome
}

/// Polls the lab, drawing progress, until it converges, times out or is
/// interrupted.
async fn watch(
    master: &Store,
    shards: &[Store],
    options: &Options,
    stop: &CancellationToken,
) -> Result<()> {
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>7} [{bar:30}] {pos:>4}/{len:<4} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let per_shard: Vec<ProgressBar> = (1..=options.shards)
        .map(|n| {
            let bar = bars.add(ProgressBar::new(0));
            bar.set_style(style.clone());
            bar.set_prefix(format!("shard{n}"));
            bar
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(options.timeout_sec);
    let outcome = loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = tokio::signal::ctrl_c() => {
                stop.cancel();
                break Err(anyhow::anyhow!("interrupted; every process has been stopped"));
            }
        }
        if let Err(e) = shard_master::suites::complete_finished_suites(master.connection()).await {
            bars.println(format!("suite completion failed this round: {e:#}"))
                .ok();
        }
        let progress = match lab::progress(master, shards).await {
            Ok(progress) => progress,
            Err(e) => {
                bars.println(format!("progress unavailable this round: {e:#}"))
                    .ok();
                continue;
            }
        };
        for (bar, shard) in per_shard.iter().zip(&progress.shards) {
            bar.set_length(shard.expected);
            bar.set_position(shard.synced);
            bar.set_message(format!(
                "assigned {} · running {} · done on shard {} · synced {}",
                shard.assigned, shard.running, shard.done_on_shard, shard.synced
            ));
        }
        if progress.incomplete_on_master == 0 {
            break Ok(());
        }
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!(
                "the lab did not converge within {} s: {} entries are still incomplete on the master \
                 (see the logs in {})",
                options.timeout_sec,
                progress.incomplete_on_master,
                options.dir.display()
            ));
        }
    };
    for bar in &per_shard {
        bar.finish();
    }
    outcome
}

fn lab_spec(options: &Options) -> LabSpec {
    let boards = options.shards * options.boards_per_shard;
    let suites = boards * SUITES_PER_BOARD;
    LabSpec {
        shards: options.shards,
        boards_per_shard: options.boards_per_shard,
        hosts_per_board: options.hosts_per_board,
        suites_per_board: SUITES_PER_BOARD,
        jobs_per_suite: options.jobs.div_ceil(suites).max(1),
        ..LabSpec::default()
    }
}

/// Where a lab takes prebuilt binaries from instead of building them:
/// `.ci/run` builds the whole workspace once and points here, because a
/// `cargo build -p …` of two packages unifies the dependencies' features
/// differently from the workspace build and compiles much of the tree again.
const PREBUILT_ENV: &str = "SHARD_XTASK_BINARIES";

/// Empties the lab directory (relative to the workspace root unless
/// absolute) and builds the binaries a lab runs (unless [`PREBUILT_ENV`]
/// names a directory holding them); returns the directory and where the
/// binaries are.
pub(crate) fn prepare_lab(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    prepare_lab_with(dir, false)
}

/// [`prepare_lab`], building the release binaries when `release` (what a
/// lab deploys, for measurements that must be about them).
pub(crate) fn prepare_lab_with(dir: &Path, release: bool) -> Result<(PathBuf, PathBuf)> {
    let dir = if dir.is_absolute() {
        dir.to_owned()
    } else {
        crate::workspace_root().join(dir)
    };
    prepare_dir(&dir)?;
    if let Some(bin) = std::env::var_os(PREBUILT_ENV) {
        let bin = PathBuf::from(bin);
        for name in ["shard-client", "shard-master"] {
            if !bin.join(name).is_file() {
                anyhow::bail!(
                    "{PREBUILT_ENV}={} holds no {name}: build the workspace first",
                    bin.display()
                );
            }
        }
        return Ok((dir, bin));
    }
    println!("building shard-client and shard-master …");
    let mut args = vec![
        "build",
        "--quiet",
        "-p",
        "shard-daemon",
        "-p",
        "shard-master",
    ];
    if release {
        args.push("--release");
    }
    crate::cargo(&args)?;
    let profile = if release { "release" } else { "debug" };
    Ok((dir, crate::target_dir().join(profile)))
}

pub(crate) fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Empties `dir`, refusing to wipe anything that does not look like a demo
/// directory.
fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        let foreign = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|name| {
                let ours = name.ends_with(".db")
                    || name.contains(".db-")
                    || name.ends_with(".log")
                    || name == "report.txt"
                    || name == "master.fault";
                !ours
            });
        if let Some(name) = foreign {
            bail!(
                "{} holds {name}, which neither the demo nor chaos made; pick another --dir",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("wiping {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}
