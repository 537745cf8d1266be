//! The numbers of one backend: medians over the runs, the targets
//! with PASS/MISS, and the JSON object (the printed table is in
//! [`super::table`]).
//!
//! Units: MB is 10⁶ bytes; a *record* is defined in [`super::floor`].

use std::time::Duration;

use serde_json::{Value, json};

use super::lab::Response;
use super::measure::{Growth, Inputs, Sample, Timed};
use super::profile::{Breakdown, Profile};
use super::rss::Rss;
use super::table::thousands;

/// At most one statement per this many rows of a table (the issue's
/// "statements per apply grow only with chunks").
const ROWS_PER_STATEMENT: usize = 500;
/// Parse throughput target, MB/s.
const PARSE_MB_PER_S: f64 = 100.0;
/// Apply time target, as a multiple of the floor's.
const APPLY_VS_FLOOR: f64 = 2.0;
/// Re-apply time target, as a multiple of the floor's.
const REAPPLY_VS_FLOOR: f64 = 1.5;
/// Packet build target with 100k known jobs, statements.
const PACKET_STATEMENTS: u64 = 4;
/// Peak RSS target (added by parse + apply), as a multiple of the response.
const RSS_VS_RESPONSE: f64 = 3.0;
/// Growth target: time per job at the largest lab over the smallest's.
const GROWTH_PER_JOB: f64 = 1.3;
/// The growth lab whose statements are `statements_apply_small`.
const SMALL_JOBS: u32 = 1_000;

/// A growth point: one lab's apply into an empty database.
#[derive(Debug, Clone)]
pub struct GrowthPoint {
    /// Child jobs in the lab.
    pub jobs: u32,
    /// Records the lab's response carries.
    pub records: u64,
    /// At most one statement per 500 rows per table, for this lab.
    pub budget: u64,
    /// Median apply.
    pub apply: Timed,
    /// Median multi-row floor of the same rows.
    pub floor: Timed,
    /// Median bulk floor of the same rows.
    pub bulk: Timed,
}

impl GrowthPoint {
    /// The JSON object of this lab.
    fn json(&self) -> Value {
        let apply = secs(self.apply.time);
        json!({
            "jobs": self.jobs,
            "records": self.records,
            "apply_s": apply,
            "us_per_job": apply / f64::from(self.jobs) * 1e6,
            "statements": self.apply.statements,
            "statement_budget": self.budget,
            "floor_s": secs(self.floor.time),
            "bulk_floor_s": secs(self.bulk.time),
            "apply_vs_floor": apply / secs(self.floor.time),
            "apply_vs_bulk_floor": apply / secs(self.bulk.time),
        })
    }
}

/// One issue target and whether it is met.
#[derive(Debug, Clone)]
pub struct Target {
    /// Short name, also the JSON key.
    pub key: &'static str,
    /// What was measured, in words.
    pub value: String,
    /// The target, in words.
    pub goal: String,
    /// Whether it is met.
    pub pass: bool,
}

/// Everything the bench found on one backend.
#[derive(Debug, Clone)]
pub struct Summary {
    /// `sqlite`, `mysql` or `postgres`.
    pub backend: &'static str,
    /// Measured runs (after the warm-up).
    pub runs: usize,
    /// The main lab: jobs, hosts, suite keyvals.
    pub jobs: u32,
    /// Hosts in the main lab's response.
    pub hosts: usize,
    /// Suite keyvals in the main lab's response.
    pub suite_keyvals: usize,
    /// Size of the main lab's serialized response.
    pub response_bytes: u64,
    /// Records of the main lab.
    pub records: u64,
    /// At most one statement per 500 rows per table, for the main lab.
    pub budget: u64,
    /// (a) median parse time.
    pub parse: Duration,
    /// (b) median apply.
    pub apply: Timed,
    /// (c) median re-apply.
    pub reapply: Timed,
    /// (e) median floor.
    pub floor: Timed,
    /// How the bulk floor loads, e.g. `COPY FROM STDIN`.
    pub bulk_method: &'static str,
    /// (e′) median bulk floor.
    pub bulk: Timed,
    /// (d) median packet build per number of known jobs.
    pub packet: Vec<(u32, Timed)>,
    /// (h) median apply per growth lab, smallest first.
    pub growth: Vec<GrowthPoint>,
    /// (g) the RSS probe.
    pub rss: Rss,
    /// Where the time goes (one extra pass).
    pub profile: Profile,
}

impl Summary {
    /// Medians of `samples` (the warm-up already left out).
    pub fn new(
        backend: &'static str,
        bulk_method: &'static str,
        inputs: &Inputs,
        samples: &[Sample],
        rss: Rss,
        profile: Profile,
    ) -> Summary {
        let lab = &inputs.lab;
        let timed = |f: &dyn Fn(&Sample) -> Timed| median_timed(samples.iter().map(f).collect());
        let packet = inputs
            .scale
            .packet_known_jobs()
            .iter()
            .enumerate()
            .map(|(i, &known)| (known, timed(&|s| s.packet[i])))
            .collect();
        let growth = inputs
            .growth
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let growth = |f: fn(&Growth) -> Timed| timed(&|s| f(&s.growth[i]));
                GrowthPoint {
                    jobs: r.jobs,
                    records: r.records(),
                    budget: budget(r),
                    apply: growth(|g| g.apply),
                    floor: growth(|g| g.floor),
                    bulk: growth(|g| g.bulk),
                }
            })
            .collect();
        Summary {
            backend,
            runs: samples.len(),
            jobs: lab.jobs,
            hosts: lab.hosts,
            suite_keyvals: lab.suite_keyvals,
            response_bytes: lab.bytes.len() as u64,
            records: lab.records(),
            budget: budget(lab),
            parse: median(samples.iter().map(|s| s.parse).collect()),
            apply: timed(&|s| s.apply),
            reapply: timed(&|s| s.reapply),
            floor: timed(&|s| s.floor),
            bulk_method,
            bulk: timed(&|s| s.bulk),
            packet,
            growth,
            rss,
            profile,
        }
    }

    pub(super) fn parse_mb_per_s(&self) -> f64 {
        self.response_bytes as f64 / 1e6 / secs(self.parse)
    }

    pub(super) fn per_s(&self, t: Timed) -> f64 {
        self.records as f64 / secs(t.time)
    }

    pub(super) fn vs_floor(&self, t: Timed) -> f64 {
        secs(t.time) / secs(self.floor.time)
    }

    pub(super) fn vs_bulk(&self, t: Timed) -> f64 {
        secs(t.time) / secs(self.bulk.time)
    }

    pub(super) fn small(&self) -> Option<&GrowthPoint> {
        self.growth.iter().find(|g| g.jobs == SMALL_JOBS)
    }

    pub(super) fn packet_largest(&self) -> Option<&(u32, Timed)> {
        self.packet.last()
    }

    pub(super) fn rss_ratio(&self) -> f64 {
        self.rss.added() as f64 / self.response_bytes as f64
    }

    /// Time per job at the largest growth lab over the smallest's.
    pub(super) fn growth_ratio(&self) -> Option<f64> {
        let per_job = |g: &GrowthPoint| secs(g.apply.time) / f64::from(g.jobs);
        Some(per_job(self.growth.last()?) / per_job(self.growth.first()?))
    }

    /// The cost of one more job between the two largest growth labs over
    /// that between the two smallest: like [`Summary::growth_ratio`], but
    /// blind to fixed costs (a fresh database's first statements), which
    /// flatter the largest lab's time per job.
    pub(super) fn marginal_ratio(&self) -> Option<f64> {
        let slope = |a: &GrowthPoint, b: &GrowthPoint| {
            (secs(b.apply.time) - secs(a.apply.time)) / (f64::from(b.jobs) - f64::from(a.jobs))
        };
        let g = &self.growth;
        let n = g.len();
        if n < 3 {
            return None;
        }
        Some(slope(&g[n - 2], &g[n - 1]) / slope(&g[0], &g[1]))
    }

    /// The targets, in its order.
    pub fn targets(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        let apply = self.vs_floor(self.apply);
        targets.push(Target {
            key: "apply_vs_floor",
            value: format!("{apply:.2}×"),
            goal: format!("≤ {APPLY_VS_FLOOR}×"),
            pass: apply <= APPLY_VS_FLOOR,
        });
        let reapply = self.vs_floor(self.reapply);
        targets.push(Target {
            key: "reapply_vs_floor",
            value: format!("{reapply:.2}×"),
            goal: format!("≤ {REAPPLY_VS_FLOOR}×"),
            pass: reapply <= REAPPLY_VS_FLOOR,
        });
        let mut within = vec![
            (
                format!("{} jobs", thousands(u64::from(self.jobs))),
                self.apply.statements,
                self.budget,
            ),
            ("re-apply".to_owned(), self.reapply.statements, self.budget),
        ];
        if let Some(small) = self.small().filter(|g| g.jobs != self.jobs) {
            within.insert(
                0,
                (
                    format!("{} jobs", thousands(u64::from(small.jobs))),
                    small.apply.statements,
                    small.budget,
                ),
            );
        }
        targets.push(Target {
            key: "statements_grow_with_chunks",
            value: within
                .iter()
                .map(|(what, n, max)| format!("{what} {n} (≤ {max})"))
                .collect::<Vec<_>>()
                .join(", "),
            goal: format!("≤ 1 per {ROWS_PER_STATEMENT} rows per table"),
            pass: within.iter().all(|(_, n, max)| n <= max),
        });
        if let Some((known, packet)) = self.packet_largest() {
            targets.push(Target {
                key: "packet_build_statements",
                value: format!(
                    "{} statements with {} known jobs",
                    packet.statements,
                    thousands(u64::from(*known))
                ),
                goal: format!("≤ {PACKET_STATEMENTS} statements"),
                pass: packet.statements <= PACKET_STATEMENTS,
            });
        }
        let parse = self.parse_mb_per_s();
        targets.push(Target {
            key: "parse",
            value: format!("{parse:.0} MB/s"),
            goal: format!("≥ {PARSE_MB_PER_S} MB/s"),
            pass: parse >= PARSE_MB_PER_S,
        });
        let rss = self.rss_ratio();
        targets.push(Target {
            key: "peak_rss",
            value: format!("{rss:.2}× response (added by parse + apply)"),
            goal: format!("≤ {RSS_VS_RESPONSE}× response"),
            pass: rss <= RSS_VS_RESPONSE,
        });
        if let Some(growth) = self.growth_ratio() {
            targets.push(Target {
                key: "linear_growth",
                value: format!("{growth:.2}× the smallest lab's time per job"),
                goal: format!("≤ {GROWTH_PER_JOB}×"),
                pass: growth <= GROWTH_PER_JOB,
            });
        }
        targets
    }

    /// The bulk floor's numbers, next to the multi-row floor's.
    fn bulk_json(&self) -> Value {
        json!({
            "method": self.bulk_method,
            "s": secs(self.bulk.time),
            "records_per_s": self.per_s(self.bulk),
            "statements": self.bulk.statements,
            "apply_vs_bulk_floor": self.vs_bulk(self.apply),
            "reapply_vs_bulk_floor": self.vs_bulk(self.reapply),
            "floor_vs_bulk_floor": self.vs_bulk(self.floor),
        })
    }

    /// The JSON object of this backend.
    pub fn json(&self) -> Value {
        let targets: serde_json::Map<String, Value> = self
            .targets()
            .into_iter()
            .map(|t| {
                (
                    t.key.to_owned(),
                    json!({ "value": t.value, "target": t.goal, "pass": t.pass }),
                )
            })
            .collect();
        let packet_100k = self.packet_largest();
        json!({
            "parse_mb_per_s": self.parse_mb_per_s(),
            "apply_records_per_s": self.per_s(self.apply),
            "reapply_records_per_s": self.per_s(self.reapply),
            "floor_records_per_s": self.per_s(self.floor),
            "apply_vs_floor": self.vs_floor(self.apply),
            "reapply_vs_floor": self.vs_floor(self.reapply),
            "bulk_floor": self.bulk_json(),
            "statements_apply_small": self.small().map(|g| g.apply.statements),
            "statements_apply_large": self.apply.statements,
            "packet_build_ms_100k": packet_100k.map(|(_, t)| secs(t.time) * 1e3),
            "packet_build_statements_100k": packet_100k.map(|(_, t)| t.statements),
            "peak_rss_bytes": self.rss.peak,
            "response_bytes": self.response_bytes,

            "runs": self.runs,
            "jobs": self.jobs,
            "hosts": self.hosts,
            "suite_keyvals": self.suite_keyvals,
            "records": self.records,
            "parse_s": secs(self.parse),
            "apply_s": secs(self.apply.time),
            "reapply_s": secs(self.reapply.time),
            "floor_s": secs(self.floor.time),
            "statements_reapply": self.reapply.statements,
            "statements_floor": self.floor.statements,
            "statement_budget_small": self.small().map(|g| g.budget),
            "statement_budget_large": self.budget,
            "rss_before_bytes": self.rss.before,
            "peak_rss_added_bytes": self.rss.added(),
            "peak_rss_parse_added_bytes": self.rss.parse_added(),
            "peak_rss_apply_added_bytes": self.rss.apply_added(),
            "rss_parsed_bytes": self.rss.parsed,
            "peak_rss_added_vs_response": self.rss_ratio(),
            "peak_rss_vs_response": self.rss.peak as f64 / self.response_bytes as f64,
            "packet_build": self.packet.iter().map(|(known, t)| json!({
                "known_jobs": known,
                "ms": secs(t.time) * 1e3,
                "statements": t.statements,
            })).collect::<Vec<_>>(),
            "growth": self.growth.iter().map(GrowthPoint::json).collect::<Vec<_>>(),
            "growth_per_job_ratio": self.growth_ratio(),
            "growth_marginal_ratio": self.marginal_ratio(),
            "profile": {
                "apply": breakdown_json(&self.profile.apply),
                "reapply": breakdown_json(&self.profile.reapply),
                "floor": breakdown_json(&self.profile.floor),
            },
            "targets": targets,
        })
    }
}

/// At most one statement per 500 rows, per table with rows.
fn budget(response: &Response) -> u64 {
    response
        .table_rows
        .iter()
        .map(|(_, n)| n.div_ceil(ROWS_PER_STATEMENT) as u64)
        .sum()
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort_unstable();
    match values.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2,
    }
}

fn median_timed(values: Vec<Timed>) -> Timed {
    let mut statements: Vec<u64> = values.iter().map(|t| t.statements).collect();
    statements.sort_unstable();
    Timed {
        time: median(values.iter().map(|t| t.time).collect()),
        statements: statements.get(statements.len() / 2).copied().unwrap_or(0),
    }
}

/// Seconds, never zero (numbers are divided by it).
pub(super) fn secs(d: Duration) -> f64 {
    d.as_secs_f64().max(1e-9)
}

fn breakdown_json(b: &Breakdown) -> Value {
    let kinds: serde_json::Map<String, Value> = b
        .kinds
        .iter()
        .map(|(kind, k)| {
            (
                kind.clone(),
                json!({ "statements": k.count, "s": secs(k.time) }),
            )
        })
        .collect();
    json!({
        "total_s": secs(b.total),
        "outside_statements_s": secs(b.outside()),
        "by_kind": kinds,
    })
}
