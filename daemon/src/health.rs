//! `/healthz`: healthy while the last successful heartbeat is recent.
//!
//! "Recent" is three pauses plus the RPC retry budget: one heartbeat may
//! spend its whole budget retrying a flaky master and the next two may fail
//! outright before an operator needs to hear about it. Before the first
//! success the clock starts at process start, so a client that never
//! reaches its master turns unhealthy too.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tracks the last successful heartbeat.
#[derive(Debug)]
pub struct Health {
    started: Instant,
    limit: Duration,
    last_success: Mutex<Option<Instant>>,
}

/// The answer `/healthz` gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// 200 or 503.
    pub healthy: bool,
    /// One line of JSON saying why.
    pub body: String,
}

impl Health {
    /// A tracker that tolerates `3 × pause + budget` without a success.
    pub fn new(pause: Duration, budget: Duration) -> Self {
        Health {
            started: Instant::now(),
            limit: pause.saturating_mul(3).saturating_add(budget),
            last_success: Mutex::new(None),
        }
    }

    /// Records a successful heartbeat.
    pub fn success(&self) {
        if let Ok(mut last) = self.last_success.lock() {
            *last = Some(Instant::now());
        }
    }

    /// Whether the client is healthy now, and why.
    pub fn verdict(&self) -> Verdict {
        let last = self.last_success.lock().ok().and_then(|l| *l);
        let since = last.unwrap_or(self.started).elapsed();
        let limit = self.limit.as_secs_f64();
        let age = since.as_secs_f64();
        match last {
            Some(_) if since <= self.limit => Verdict {
                healthy: true,
                body: format!(
                    r#"{{"status":"ok","last_success_age_sec":{age:.3},"limit_sec":{limit:.3}}}"#
                ),
            },
            None if since <= self.limit => Verdict {
                healthy: true,
                body: format!(
                    r#"{{"status":"starting","since_start_sec":{age:.3},"limit_sec":{limit:.3}}}"#
                ),
            },
            Some(_) => Verdict {
                healthy: false,
                body: format!(
                    r#"{{"status":"unhealthy","reason":"no successful heartbeat for {age:.1} s (limit {limit:.1} s)"}}"#
                ),
            },
            None => Verdict {
                healthy: false,
                body: format!(
                    r#"{{"status":"unhealthy","reason":"no successful heartbeat since start {age:.1} s ago (limit {limit:.1} s)"}}"#
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_after_a_success_and_unhealthy_when_it_is_too_old() {
        let health = Health::new(Duration::from_millis(10), Duration::from_millis(10));
        assert!(health.verdict().healthy, "starting");
        health.success();
        let ok = health.verdict();
        assert!(
            ok.healthy && ok.body.contains(r#""status":"ok""#),
            "{}",
            ok.body
        );
        std::thread::sleep(Duration::from_millis(60));
        let bad = health.verdict();
        assert!(!bad.healthy, "{}", bad.body);
        assert!(
            bad.body.contains("no successful heartbeat for"),
            "{}",
            bad.body
        );
    }

    #[test]
    fn never_succeeding_turns_unhealthy_after_the_limit() {
        let health = Health::new(Duration::from_millis(5), Duration::ZERO);
        std::thread::sleep(Duration::from_millis(30));
        let v = health.verdict();
        assert!(!v.healthy && v.body.contains("since start"), "{}", v.body);
        assert_eq!(v.body.lines().count(), 1);
    }
}
