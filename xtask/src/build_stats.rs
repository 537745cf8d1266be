//! `cargo xtask build-stats`: what a fresh machine pays to build us, and
//! what it ships. Cold builds in fresh target directories (no cache, as CI
//! on a new machine): the test build `.ci/run` starts with, and the release
//! daemon; then the size of the release `shard-client`.

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Options of `cargo xtask build-stats`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Where the fresh target directories go (emptied first, kept after).
    #[arg(long, default_value_os_t = crate::target_dir().join("build-stats"))]
    dir: PathBuf,
    /// Skip the cold test build (the longer of the two).
    #[arg(long)]
    skip_tests: bool,
}

/// Runs the cold builds and prints one line per measurement.
pub fn run(options: Options) -> Result<()> {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "build-stats: cold builds on {jobs} cores, target dirs under {}",
        options.dir.display()
    );
    if !options.skip_tests {
        let took = cold_build(
            &options.dir.join("test"),
            &["test", "--workspace", "--no-run", "--locked"],
        )?;
        println!("cold `cargo test --workspace --no-run`: {}", seconds(took));
    }
    let release = options.dir.join("release");
    let took = cold_build(
        &release,
        &["build", "--release", "-p", "shard-daemon", "--locked"],
    )?;
    println!(
        "cold `cargo build --release -p shard-daemon`: {}",
        seconds(took)
    );
    let binary = release.join("release").join("shard-client");
    let bytes = std::fs::metadata(&binary)
        .with_context(|| format!("reading the size of {}", binary.display()))?
        .len();
    println!(
        "release shard-client: {bytes} bytes ({:.1} MB)",
        bytes as f64 / 1e6
    );
    Ok(())
}

/// Empties `dir`, then times `cargo <args>` building into it.
fn cold_build(dir: &Path, args: &[&str]) -> Result<Duration> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let started = Instant::now();
    let status = Process::new(&cargo)
        .args(args)
        .env("CARGO_TARGET_DIR", dir)
        .current_dir(crate::workspace_root())
        .status()
        .with_context(|| format!("could not start `{cargo}`"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(started.elapsed())
}

/// A duration as minutes and seconds.
fn seconds(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}m{:02}s ({s} s)", s / 60, s % 60)
}
