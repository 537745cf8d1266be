//! (g) Peak RSS of parse + apply, measured in a child process.
//!
//! The bench process itself holds every generated response and a heap that
//! the allocator does not hand back, so its RSS says little. The bench
//! instead runs itself again (`bench --rss-probe FILE --rss-database URL`):
//! the child reads the serialized response, resets its peak (`5` into
//! `/proc/self/clear_refs`), notes its RSS, parses the response, notes its
//! peak (`VmHWM`) and RSS, resets the peak again, applies the response into
//! the fresh database the parent made, notes the peak, and prints the four
//! numbers as one JSON line.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use shard_model::HeartbeatResponse;
use shard_store::Store;
use shard_store::testing::Backend;

use super::lab::Response;
use crate::db;

/// What the child saw, in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rss {
    /// RSS just before parsing (the process, its runtime, its pool and the
    /// response bytes it read).
    pub before: u64,
    /// Peak RSS during parse + apply (`VmHWM`).
    pub peak: u64,
    /// Peak RSS during the parse alone.
    pub parse_peak: u64,
    /// RSS between parse and apply (the parsed response held).
    pub parsed: u64,
    /// Peak RSS during the apply alone.
    pub apply_peak: u64,
    /// Whether the peak could be reset before parsing and again before
    /// applying; if not, the peaks cover the whole child process.
    pub reset: bool,
}

impl Rss {
    /// What parse + apply added on top of the process before them: the
    /// number the target's ratio uses.
    pub fn added(&self) -> u64 {
        self.peak.saturating_sub(self.before)
    }

    /// What the parse added on top of the process before it.
    pub fn parse_added(&self) -> u64 {
        self.parse_peak.saturating_sub(self.before)
    }

    /// What the apply added on top of the parsed response.
    pub fn apply_added(&self) -> u64 {
        self.apply_peak.saturating_sub(self.parsed)
    }
}

/// Runs the probe in a child process against a fresh database.
pub async fn measure(backend: Backend, lab: &Response) -> Result<Rss> {
    let file = std::env::temp_dir().join(format!(
        "shard-bench-response-{}-{}.json",
        std::process::id(),
        db::name(backend)
    ));
    std::fs::write(&file, &lab.bytes)
        .with_context(|| format!("writing the response to {}", file.display()))?;
    let target = db::fresh(backend).await?;
    let outcome = run_child(&file, target.url()).await;
    db::discard(target).await?;
    let _ = std::fs::remove_file(&file);
    outcome
}

async fn run_child(file: &Path, url: &str) -> Result<Rss> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let output = tokio::process::Command::new(&exe)
        .arg("bench")
        .arg("--rss-probe")
        .arg(file)
        .arg("--rss-database")
        .arg(url)
        .output()
        .await
        .with_context(|| format!("starting {}", exe.display()))?;
    if !output.status.success() {
        bail!(
            "the RSS probe failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .last()
        .context("the RSS probe printed nothing")?;
    let v: serde_json::Value =
        serde_json::from_str(line).with_context(|| format!("reading the RSS probe's {line:?}"))?;
    let field = |name: &str| {
        v.get(name)
            .and_then(serde_json::Value::as_u64)
            .with_context(|| format!("the RSS probe's line has no {name}: {line}"))
    };
    let (parse_peak, apply_peak) = (field("parse_peak")?, field("apply_peak")?);
    Ok(Rss {
        before: field("before")?,
        peak: parse_peak.max(apply_peak),
        parse_peak,
        parsed: field("parsed")?,
        apply_peak,
        reset: v.get("reset").and_then(serde_json::Value::as_bool) == Some(true),
    })
}

/// The child's side: parse and apply `file` into `url`, print the RSS line.
pub fn probe(file: PathBuf, url: String) -> Result<()> {
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let store = Store::connect(&url).await.context("connecting the probe")?;
        let mut reset = reset_peak();
        let before = status_bytes("VmRSS")?;
        let response = HeartbeatResponse::from_json(&bytes).context("parsing the response")?;
        let parse_peak = status_bytes("VmHWM")?;
        reset &= reset_peak();
        let parsed = status_bytes("VmRSS")?;
        let report = shard_store::apply(store.connection(), &store.layout(), &response)
            .await
            .context("applying the response")?;
        let apply_peak = status_bytes("VmHWM")?;
        ensure!(
            report.rejected.is_empty(),
            "the store rejected records of the generated lab"
        );
        drop(response);
        store.close().await.context("closing the probe's pool")?;
        println!(
            "{}",
            serde_json::json!({
                "before": before,
                "parse_peak": parse_peak,
                "parsed": parsed,
                "apply_peak": apply_peak,
                "reset": reset,
            })
        );
        Ok(())
    })
}

/// Resets the process's peak RSS to its current RSS (Linux 4.0+).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A `kB` field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("reading /proc/self/status (the RSS probe needs Linux)")?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .with_context(|| format!("/proc/self/status has no {field}"))?;
    let kb: u64 = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("reading {field} from {line:?}"))?;
    Ok(kb * 1024)
}
