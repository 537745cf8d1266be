//! `--plot DIR`: one SVG chart per backend of apply time against the
//! growth labs' sizes (h), next to the multi-row and the bulk floor of the
//! same rows, drawn by [`crate::plot`]. One chart per backend, because
//! their times differ by an order of magnitude; in seconds when the longest
//! time is 2 s or more, else in milliseconds.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::measure::Timed;
use super::report::{GrowthPoint, Summary, secs};
use crate::plot::{Chart, Series, line_chart};

/// Writes `DIR/apply-<backend>.svg` for every summary; returns the files.
pub fn write(dir: &Path, summaries: &[Summary]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = Vec::new();
    for summary in summaries {
        let path = dir.join(format!("apply-{}.svg", summary.backend));
        let longest = summary
            .growth
            .iter()
            .flat_map(|g| [g.apply, g.floor, g.bulk])
            .map(|t| secs(t.time))
            .fold(0.0, f64::max);
        let (unit, per_second) = if longest >= 2.0 {
            ("seconds", 1.0)
        } else {
            ("milliseconds", 1e3)
        };
        let line = |name: String, time: fn(&GrowthPoint) -> Timed| Series {
            name,
            points: summary
                .growth
                .iter()
                .map(|g| (f64::from(g.jobs), secs(time(g).time) * per_second))
                .collect(),
        };
        let series = [
            line("apply (b)".to_owned(), |g| g.apply),
            line("floor: multi-row INSERTs (e)".to_owned(), |g| g.floor),
            line(format!("bulk floor: {}", summary.bulk_method), |g| g.bulk),
        ];
        let title = format!(
            "{}: apply time by lab size (median of {} run{})",
            summary.backend,
            summary.runs,
            if summary.runs == 1 { "" } else { "s" }
        );
        line_chart(
            &path,
            &Chart {
                title: &title,
                x_label: "jobs in the response",
                y_label: unit,
                series: &series,
            },
        )?;
        files.push(path);
    }
    Ok(files)
}
