//! `cargo xtask`: project automation that needs more than one command.
//!
//! - `demo`: a whole lab on one machine (master, shard clients, scheduler
//!   simulators) converging on embedded SQLite;
//! - `bench`: heartbeat throughput against the database floor;
//! - `chaos`: the demo lab under injected faults, then its invariants;
//! - `soak`: a lab with steady churn, sampled, with a verdict per series;
//! - `oracle`: the differential tests of apply and packet, for a soak;
//! - `build-stats`: cold build times and the release binary's size;
//! - `ci`: the local twin of `.ci/run`.

mod bench;
mod build_stats;
mod chaos;
mod db;
mod demo;
mod oracle;
mod plot;
mod soak;

use std::path::PathBuf;
use std::process::{Command as Process, ExitCode};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

/// `cargo xtask <task>`.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Project automation for shard-client.")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run a lab end to end: a master, shard clients and schedulers, until
    /// every job is complete on the master.
    Demo(demo::Options),
    /// Measure a large heartbeat (parse, apply, re-apply, packet build)
    /// against the database's own bulk-insert floor, per backend.
    Bench(bench::Options),
    /// Run the demo lab under injected faults and check that nothing is
    /// lost, duplicated or half-written.
    Chaos(chaos::Options),
    /// A lab with steady churn for minutes or hours, the clients sampled
    /// all along (RSS, fds, connections, heartbeat p50/p99, bytes), then a
    /// verdict per series; fails when one does not hold.
    Soak(soak::Options),
    /// Prove the bulk apply equal to the reference apply and the packet to
    /// a plain reading, on many more random cases than CI runs.
    Oracle(oracle::Options),
    /// Cold build times (tests, release daemon) in fresh target
    /// directories, and the size of the release `shard-client`.
    BuildStats(build_stats::Options),
    /// fmt, clippy and the tests, as .ci/run does (without its backends).
    Ci,
    /// Holds a write lock on a SQLite database (chaos runs this as a
    /// separate process to make a shard database unavailable).
    #[command(hide = true)]
    HoldSqliteLock {
        /// The database.
        url: String,
        /// How long, in seconds.
        seconds: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.task {
        Task::Demo(options) => demo::run(options),
        Task::Bench(options) => bench::run(options),
        Task::Chaos(options) => chaos::run(options),
        Task::Oracle(options) => oracle::run(options),
        Task::Soak(options) => soak::run(options),
        Task::BuildStats(options) => build_stats::run(options),
        Task::Ci => ci(),
        Task::HoldSqliteLock { url, seconds } => chaos::hold_sqlite_lock(&url, seconds),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the same checks as CI, in the order that fails fastest.
fn ci() -> Result<()> {
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&["test", "--workspace"])
}

/// Runs `cargo <args>` in the workspace, failing on a non-zero exit.
pub(crate) fn cargo(args: &[&str]) -> Result<()> {
    cargo_with_env(args, &[])
}

/// [`cargo`] with extra environment variables.
pub(crate) fn cargo_with_env(args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Process::new(&cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("could not start `{cargo}`"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The workspace root (xtask lives one level below it).
pub(crate) fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Where cargo puts build output: `$CARGO_TARGET_DIR` or `<root>/target`.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}
