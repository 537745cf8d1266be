//! `cargo xtask`: project automation that needs more than one command.
//! Tasks arrive with their issues (demo, bench, chaos); `ci` is the local
//! twin of `.ci/run`.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "ci" => ci(),
        "" | "help" | "--help" => {
            println!(
                "usage: cargo xtask <task>\n\ntasks:\n  ci    fmt, clippy and tests, as .ci/run does"
            );
            Ok(())
        }
        other => bail!("unknown task `{other}` (try `cargo xtask help`)"),
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

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .args(args)
        .status()
        .with_context(|| format!("could not start `{cargo}`"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
