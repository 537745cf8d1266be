//! The readable table of one backend: one row per measurement, with the
//! target and PASS/MISS where the issue sets one, then where the time of
//! apply, re-apply and floor goes.

use std::time::Duration;

use super::profile::Breakdown;
use super::report::{Summary, Target, secs};

impl Summary {
    /// The readable table.
    pub fn table(&self) -> String {
        let targets = self.targets();
        let target = |key: &str| targets.iter().find(|t| t.key == key);
        let mut rows: Vec<[String; 4]> = Vec::new();
        let mut row = |what: &str, result: String, t: Option<&Target>| {
            let (goal, verdict) = match t {
                Some(t) => (t.goal.clone(), verdict(t.pass).to_owned()),
                None => (String::new(), String::new()),
            };
            rows.push([what.to_owned(), result, goal, verdict]);
        };
        row(
            "(a) parse",
            format!(
                "{} in {} = {:.0} MB/s",
                mb(self.response_bytes),
                duration(self.parse),
                self.parse_mb_per_s()
            ),
            target("parse"),
        );
        let bulk = format!("    bulk floor, {}", self.bulk_method);
        for (what, t) in [
            ("(b) apply, empty database", self.apply),
            ("(c) re-apply, filled database", self.reapply),
            ("(e) floor, multi-row INSERTs", self.floor),
            (bulk.as_str(), self.bulk),
        ] {
            row(
                what,
                format!(
                    "{} = {} records/s, {} statements",
                    duration(t.time),
                    thousands(self.per_s(t) as u64),
                    t.statements
                ),
                None,
            );
        }
        for (what, key) in [
            ("(f) apply / floor", "apply_vs_floor"),
            ("    re-apply / floor", "reapply_vs_floor"),
            ("    statements per apply", "statements_grow_with_chunks"),
        ] {
            let t = target(key);
            row(what, t.map(|t| t.value.clone()).unwrap_or_default(), t);
        }
        row(
            "    apply / bulk floor",
            format!(
                "{:.2}× (re-apply {:.2}×, floor {:.2}×)",
                self.vs_bulk(self.apply),
                self.vs_bulk(self.reapply),
                self.vs_bulk(self.floor)
            ),
            None,
        );
        for (i, (known, t)) in self.packet.iter().enumerate() {
            let last = i + 1 == self.packet.len();
            row(
                &format!(
                    "{} packet, {} known jobs",
                    if i == 0 { "(d)" } else { "   " },
                    thousands(u64::from(*known))
                ),
                format!("{}, {} statements", duration(t.time), t.statements),
                target("packet_build_statements").filter(|_| last),
            );
        }
        row(
            "(g) peak RSS, parse + apply",
            format!(
                "+{} = {:.2}× the response{}",
                mb(self.rss.added()),
                self.rss_ratio(),
                if self.rss.reset {
                    ""
                } else {
                    " (peak not reset)"
                }
            ),
            target("peak_rss"),
        );
        row(
            "    parse; apply",
            format!(
                "+{}; +{} over the parsed response",
                mb(self.rss.parse_added()),
                mb(self.rss.apply_added()),
            ),
            None,
        );
        row(
            "    before; absolute peak",
            format!("{}; {}", mb(self.rss.before), mb(self.rss.peak)),
            None,
        );
        let first = self
            .growth
            .first()
            .map(|g| secs(g.apply.time) / f64::from(g.jobs));
        for (i, g) in self.growth.iter().enumerate() {
            let last = i + 1 == self.growth.len();
            let per_job = secs(g.apply.time) / f64::from(g.jobs);
            let ratio = match (first, last, self.marginal_ratio()) {
                (Some(first), true, marginal) => format!(
                    " = {:.2}× the first (marginal cost per job: {})",
                    per_job / first,
                    marginal.map_or("-".to_owned(), |m| format!("{m:.2}×"))
                ),
                _ => String::new(),
            };
            row(
                &format!(
                    "{} apply, {} jobs",
                    if i == 0 { "(h)" } else { "   " },
                    thousands(u64::from(g.jobs))
                ),
                format!(
                    "{}, {:.1} µs/job{ratio}, {} statements; floor {}, bulk {}",
                    duration(g.apply.time),
                    per_job * 1e6,
                    g.apply.statements,
                    duration(g.floor.time),
                    duration(g.bulk.time)
                ),
                target("linear_growth").filter(|_| last),
            );
        }

        let mut out = format!(
            "{}: {} jobs, {} hosts, {} suite keyvals; response {} = {} records; \
             median of {} run{} after a warm-up\n",
            self.backend,
            thousands(u64::from(self.jobs)),
            thousands(self.hosts as u64),
            thousands(self.suite_keyvals as u64),
            mb(self.response_bytes),
            thousands(self.records),
            self.runs,
            if self.runs == 1 { "" } else { "s" }
        );
        let header = [
            "measurement".to_owned(),
            "result".to_owned(),
            "target".to_owned(),
            String::new(),
        ];
        out.push_str(&columns(&[&[header], &rows[..]].concat()));
        out.push_str("where the time goes (one extra pass; driver time per statement kind):\n");
        for (what, b) in [
            ("apply", &self.profile.apply),
            ("re-apply", &self.profile.reapply),
            ("floor", &self.profile.floor),
        ] {
            out.push_str(&format!("  {what:<9}{}\n", breakdown(b)));
        }
        out
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.3} s", d.as_secs_f64())
    }
}

/// `1234567` as `1,234,567`.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Left-aligned columns, two spaces apart.
fn columns(rows: &[[String; 4]]) -> String {
    let mut widths = [0; 4];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::from("  ");
        for (cell, w) in row.iter().zip(widths) {
            line.push_str(cell);
            line.push_str(&" ".repeat(w - cell.chars().count() + 2));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn breakdown(b: &Breakdown) -> String {
    let verb = |v: &str| {
        let k = b.verb(v);
        format!("{v} {} ({})", duration(k.time), k.count)
    };
    let update_delete = {
        let (u, d) = (b.verb("UPDATE"), b.verb("DELETE"));
        format!(
            "UPDATE/DELETE {} ({})",
            duration(u.time + d.time),
            u.count + d.count
        )
    };
    let top: Vec<String> = b
        .top(3)
        .into_iter()
        .map(|(kind, k)| format!("{kind} {} ({})", duration(k.time), k.count))
        .collect();
    format!(
        "{} = {}, {}, {}, outside statements {}; slowest: {}",
        duration(b.total),
        verb("SELECT"),
        verb("INSERT"),
        update_delete,
        duration(b.outside()),
        top.join(", ")
    )
}
