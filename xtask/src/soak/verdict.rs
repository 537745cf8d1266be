//! The soak's verdicts: pure functions of the sampled series, so that each
//! can be shown to fail on a synthetic leak (see the tests below).
//!
//! Every trend is a least-squares line fitted over the *second half* of
//! the run: the first half is warm-up (caches filling, the shard database
//! growing to its steady size), and a leak shows as a slope that does not
//! go away once the lab is steady.

use std::fmt;

/// A least-squares line `y = intercept + slope · t` with the standard
/// error of its slope.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Units of `y` per second.
    pub slope: f64,
    /// `y` at `t = 0`.
    pub intercept: f64,
    /// The standard error of `slope`: how far noise alone moves it.
    pub slope_error: f64,
    /// Mean of `y`.
    pub mean: f64,
    /// The span of `t` fitted, in seconds.
    pub span: f64,
}

impl Fit {
    /// The growth the line predicts across the fitted span.
    pub fn growth(&self) -> f64 {
        self.slope * self.span
    }

    /// Whether the slope stands out of the noise (more than three standard
    /// errors from zero), i.e. the trend is real and not a fluke of the
    /// samples.
    pub fn significant(&self) -> bool {
        self.slope.abs() > 3.0 * self.slope_error
    }
}

/// Fits a line through `points` (`(t seconds, y)`); `None` with fewer than
/// three points or no spread in `t`, or a non-finite value.
pub fn fit(points: &[(f64, f64)]) -> Option<Fit> {
    if points.len() < 3 || points.iter().any(|(t, y)| !t.is_finite() || !y.is_finite()) {
        return None;
    }
    let n = points.len() as f64;
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let stt: f64 = points.iter().map(|p| (p.0 - mean_t).powi(2)).sum();
    if stt <= 0.0 {
        return None;
    }
    let sty: f64 = points.iter().map(|p| (p.0 - mean_t) * (p.1 - mean_y)).sum();
    let slope = sty / stt;
    let intercept = mean_y - slope * mean_t;
    let residuals: f64 = points
        .iter()
        .map(|p| (p.1 - intercept - slope * p.0).powi(2))
        .sum();
    let slope_error = (residuals / (n - 2.0) / stt).sqrt();
    let (first, last) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.0), hi.max(p.0))
        });
    Some(Fit {
        slope,
        intercept,
        slope_error,
        mean: mean_y,
        span: last - first,
    })
}

/// The points of the second half of the run (by time).
pub fn second_half(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let Some((start, end)) = points.first().zip(points.last()).map(|(a, b)| (a.0, b.0)) else {
        return Vec::new();
    };
    let middle = start + (end - start) / 2.0;
    points.iter().copied().filter(|p| p.0 >= middle).collect()
}

/// One verdict: its name, whether it holds, and the numbers behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What is judged, with its bound (`client RSS flat (< 1 %/h)`).
    pub name: String,
    /// Whether it holds.
    pub pass: bool,
    /// The measured numbers, for the report.
    pub detail: String,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.pass { "pass" } else { "FAIL" };
        write!(f, "[{mark}] {}: {}", self.name, self.detail)
    }
}

/// The bound on resident memory: growth per hour, relative to its mean.
pub const RSS_PER_HOUR: f64 = 0.01;
/// Growth of RSS under which a short run's trend is warm-up, not a leak:
/// caches filling (SQLite's page cache, prepared statements) and allocator
/// steps take the client some minutes to settle, so a two-minute run is
/// judged on gross leaks only; the hour runs carry [`RSS_PER_HOUR`].
pub const RSS_GRANULE: f64 = 512.0 * 1024.0;
/// A second half shorter than this cannot tell [`RSS_PER_HOUR`] from one
/// [`RSS_GRANULE`]; only there is a trend below one granule let pass.
pub const SHORT_SPAN_SEC: f64 = 1200.0;
/// The bound on held descriptors and connections: growth fitted across
/// the second half.
pub const FDS_GROWTH: f64 = 1.0;
/// How much the heartbeat p99 may grow across the second half, relative.
pub const P99_GROWTH: f64 = 0.25;
/// Growth of the p99 under which a trend is timer noise on a busy machine.
pub const P99_NOISE_MS: f64 = 5.0;
/// The master's backlog may grow by this share of the jobs created across
/// the second half, or by [`BACKLOG_SLACK`] jobs, whichever is more.
pub const BACKLOG_SHARE: f64 = 0.1;
/// See [`BACKLOG_SHARE`].
pub const BACKLOG_SLACK: f64 = 20.0;

/// RSS is flat: its trend over the second half is below [`RSS_PER_HOUR`]
/// of its mean, or not distinguishable from noise, or (in a run too short
/// to tell, [`SHORT_SPAN_SEC`]) smaller than one allocator granule.
pub fn rss_flat(who: &str, points: &[(f64, f64)]) -> Verdict {
    let name = format!(
        "{who}: RSS flat (< {:.0} %/h of its mean)",
        RSS_PER_HOUR * 100.0
    );
    let Some(fit) = fit(&second_half(points)) else {
        return too_few(name, points.len());
    };
    let per_hour = fit.slope * 3600.0 / fit.mean.max(1.0);
    let short = fit.span < SHORT_SPAN_SEC;
    let pass =
        per_hour < RSS_PER_HOUR || !fit.significant() || (short && fit.growth() < RSS_GRANULE);
    Verdict {
        name,
        pass,
        detail: format!(
            "{:+.2} %/h (slope {:+.1} KiB/h ± {:.1}), {:+.0} KiB over the second half, mean {:.1} MiB",
            per_hour * 100.0,
            fit.slope * 3600.0 / 1024.0,
            fit.slope_error * 3600.0 / 1024.0,
            fit.growth() / 1024.0,
            fit.mean / (1024.0 * 1024.0)
        ),
    }
}

/// A count of held resources (open descriptors, database connections) is
/// flat: the trend fitted over the second half grows by less than
/// [`FDS_GROWTH`].
pub fn count_flat(who: &str, what: &str, points: &[(f64, f64)]) -> Verdict {
    let name = format!("{who}: {what} flat (< {FDS_GROWTH} over the second half)");
    let Some(fit) = fit(&second_half(points)) else {
        return too_few(name, points.len());
    };
    Verdict {
        name,
        pass: fit.growth() < FDS_GROWTH,
        detail: format!(
            "{:+.2} over the second half, mean {:.1}",
            fit.growth(),
            fit.mean
        ),
    }
}

/// The heartbeat p99 does not grow: across the second half its trend rises
/// by less than [`P99_GROWTH`] of its mean, or less than
/// [`P99_NOISE_MS`], or not distinguishably from noise.
pub fn p99_steady(who: &str, points: &[(f64, f64)]) -> Verdict {
    let name = format!(
        "{who}: heartbeat p99 not growing (< {:.0} % or {P99_NOISE_MS} ms over the second half)",
        P99_GROWTH * 100.0
    );
    let Some(fit) = fit(&second_half(points)) else {
        return too_few(name, points.len());
    };
    let pass =
        fit.growth() < P99_GROWTH * fit.mean || fit.growth() < P99_NOISE_MS || !fit.significant();
    Verdict {
        name,
        pass,
        detail: format!(
            "{:+.1} ms over the second half, mean p99 {:.1} ms",
            fit.growth(),
            fit.mean
        ),
    }
}

/// The master's backlog (child jobs created but not complete) is bounded:
/// across the second half its trend grows by less than [`BACKLOG_SHARE`]
/// of the jobs created meanwhile, or [`BACKLOG_SLACK`] jobs. `created` is
/// the number of jobs created, sampled with the backlog.
pub fn backlog_bounded(backlog: &[(f64, f64)], created: &[(f64, f64)]) -> Verdict {
    let name = format!(
        "master backlog bounded (grows < {:.0} % of jobs created, or {BACKLOG_SLACK} jobs, over the second half)",
        BACKLOG_SHARE * 100.0
    );
    let Some(fit) = fit(&second_half(backlog)) else {
        return too_few(name, backlog.len());
    };
    let half = second_half(created);
    let created_meanwhile = match (half.first(), half.last()) {
        (Some(a), Some(b)) => b.1 - a.1,
        _ => 0.0,
    };
    let bound = (BACKLOG_SHARE * created_meanwhile).max(BACKLOG_SLACK);
    Verdict {
        name,
        pass: fit.growth() < bound,
        detail: format!(
            "{:+.1} jobs over the second half (bound {bound:.0}; {created_meanwhile:.0} created meanwhile), mean {:.1}",
            fit.growth(),
            fit.mean
        ),
    }
}

/// A count that must be zero (failures, lost or duplicated jobs).
pub fn zero(name: impl Into<String>, count: u64, what: &str) -> Verdict {
    Verdict {
        name: name.into(),
        pass: count == 0,
        detail: format!("{count} {what}"),
    }
}

fn too_few(name: String, samples: usize) -> Verdict {
    Verdict {
        name,
        pass: false,
        detail: format!("{samples} samples: too few to fit a trend; run longer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1024.0 * 1024.0;

    /// A deterministic noise in [-1, 1] (no generator needed).
    fn noise(i: usize) -> f64 {
        ((i as f64 * 12.9898).sin() * 43_758.547).fract() * 2.0 - 1.0
    }

    /// `n` samples every `step` seconds of `f(t, i)`.
    fn series(n: usize, step: f64, f: impl Fn(f64, usize) -> f64) -> Vec<(f64, f64)> {
        (0..n)
            .map(|i| (i as f64 * step, f(i as f64 * step, i)))
            .collect()
    }

    #[test]
    fn a_line_is_fitted_exactly() {
        let points = series(10, 1.0, |t, _| 3.0 + 2.0 * t);
        let fit = fit(&points).unwrap_or_else(|| panic!("no fit"));
        assert!((fit.slope - 2.0).abs() < 1e-9);
        assert!((fit.intercept - 3.0).abs() < 1e-9);
        assert!(fit.slope_error < 1e-9);
        assert!((fit.growth() - 18.0).abs() < 1e-9);
        assert!(fit.significant());
    }

    #[test]
    fn too_few_or_degenerate_points_give_no_fit_and_a_failed_verdict() {
        assert!(fit(&[(0.0, 1.0), (1.0, 2.0)]).is_none());
        assert!(fit(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]).is_none());
        assert!(fit(&[(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0)]).is_none());
        let verdict = rss_flat("c", &[(0.0, MIB)]);
        assert!(!verdict.pass, "{verdict}");
        assert!(verdict.detail.contains("too few"), "{verdict}");
    }

    #[test]
    fn the_second_half_is_by_time() {
        let points = series(11, 1.0, |t, _| t);
        let half = second_half(&points);
        assert_eq!(half.first().map(|p| p.0), Some(5.0));
        assert_eq!(half.len(), 6);
    }

    // One hour of samples every 5 s, RSS around 20 MiB.
    const HOUR: usize = 720;

    #[test]
    fn flat_rss_passes() {
        let flat = series(HOUR, 5.0, |_, _| 20.0 * MIB);
        assert!(rss_flat("c", &flat).pass);
    }

    #[test]
    fn noisy_but_flat_rss_passes() {
        // ±1 MiB of noise, no trend.
        let noisy = series(HOUR, 5.0, |_, i| 20.0 * MIB + noise(i) * MIB);
        let verdict = rss_flat("c", &noisy);
        assert!(verdict.pass, "{verdict}");
    }

    #[test]
    fn slowly_leaking_rss_fails() {
        // 2 %/h of 20 MiB: 400 KiB an hour, under the noise of one sample.
        let leak = 0.02 * 20.0 * MIB / 3600.0;
        let leaking = series(HOUR, 5.0, |t, i| {
            20.0 * MIB + leak * t + noise(i) * 64.0 * 1024.0
        });
        let verdict = rss_flat("c", &leaking);
        assert!(!verdict.pass, "{verdict}");
    }

    #[test]
    fn one_allocator_step_in_a_short_run_passes_a_steady_climb_does_not() {
        // Two minutes every 2 s: a single 132 KiB arena step late in the run.
        let step = series(60, 2.0, |t, _| {
            20.0 * MIB + if t > 100.0 { 132.0 * 1024.0 } else { 0.0 }
        });
        assert!(rss_flat("c", &step).pass);
        // 1 MiB a minute over the same two minutes.
        let climbing = series(60, 2.0, |t, _| 20.0 * MIB + t / 60.0 * MIB);
        assert!(!rss_flat("c", &climbing).pass);
    }

    #[test]
    fn held_counts_flat_noisy_and_leaking() {
        let flat = series(HOUR, 5.0, |_, _| 17.0);
        assert!(count_flat("c", "fds", &flat).pass);
        // A socket open now and then at the moment of a sample.
        let noisy = series(HOUR, 5.0, |_, i| 17.0 + f64::from(noise(i) > 0.8));
        let verdict = count_flat("c", "fds", &noisy);
        assert!(verdict.pass, "{verdict}");
        // One descriptor lost every ten minutes.
        let leaking = series(HOUR, 5.0, |t, _| 17.0 + (t / 600.0).floor());
        assert!(!count_flat("c", "fds", &leaking).pass);
    }

    #[test]
    fn p99_steady_noisy_and_growing() {
        let noisy = series(HOUR, 5.0, |_, i| 20.0 + 8.0 * noise(i));
        let verdict = p99_steady("c", &noisy);
        assert!(verdict.pass, "{verdict}");
        // From 20 ms to 60 ms over the hour: a heartbeat slowing with age.
        let growing = series(HOUR, 5.0, |t, i| 20.0 + 40.0 * t / 3600.0 + noise(i));
        assert!(!p99_steady("c", &growing).pass);
        // A tiny lab's 1 ms heartbeats doubling is noise, not a trend.
        let tiny = series(HOUR, 5.0, |t, _| 1.0 + t / 3600.0);
        assert!(p99_steady("c", &tiny).pass);
    }

    #[test]
    fn backlog_bounded_and_runaway() {
        // 1.5 jobs a second created, the lab keeps up: a backlog of ~30.
        let created = series(HOUR, 5.0, |t, _| 1.5 * t);
        let steady = series(HOUR, 5.0, |_, i| 30.0 + 10.0 * noise(i));
        let verdict = backlog_bounded(&steady, &created);
        assert!(verdict.pass, "{verdict}");
        // The lab runs a third slower than jobs arrive.
        let runaway = series(HOUR, 5.0, |t, _| 0.5 * t);
        assert!(!backlog_bounded(&runaway, &created).pass);
    }

    #[test]
    fn zero_counts_pass_and_any_other_fails() {
        assert!(zero("lost jobs", 0, "lost").pass);
        let verdict = zero("lost jobs", 2, "lost");
        assert!(!verdict.pass);
        assert_eq!(verdict.to_string(), "[FAIL] lost jobs: 2 lost");
    }
}
