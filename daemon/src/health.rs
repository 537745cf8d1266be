//! The probes of the metrics endpoint:
//!
//! - `/healthz`: healthy while the last successful heartbeat is recent.
//!   "Recent" is three pauses plus the RPC retry budget: one heartbeat may
//!   spend its whole budget retrying a flaky master and the next two may
//!   fail outright before an operator needs to hear about it. Before the
//!   first success the clock starts at process start, so a client that
//!   never reaches its master turns unhealthy too.
//! - `/livez` (a liveness probe): the loop is not wedged. Its last tick (a
//!   heartbeat, or an attempt to reach the database at start) began within
//!   a pause, one call's whole budget and one attempt's timeout, plus a
//!   margin for a slow database write. A failing master does not make the
//!   client dead: restarting it would not help.
//! - `/readyz` (a readiness probe): the last heartbeat succeeded, and
//!   recently (within the `/healthz` limit).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How much longer than its expected longest a tick may take before the
/// loop counts as wedged: a database write may wait out lock timeouts.
const LIVENESS_MARGIN: Duration = Duration::from_secs(60);

/// Tracks the loop's ticks and its last successful heartbeat.
#[derive(Debug)]
pub struct Health {
    started: Instant,
    limit: Duration,
    tick_limit: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last_success: Option<Instant>,
    last_tick: Option<Instant>,
    /// Whether the last heartbeat that ended succeeded.
    last_ok: bool,
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
    /// A tracker that tolerates `3 × pause + budget` without a success, and
    /// a tick that began up to `1.1 × pause + budget + attempt` ago (plus a
    /// margin) on a live loop.
    pub fn new(pause: Duration, budget: Duration, attempt: Duration) -> Self {
        Health {
            started: Instant::now(),
            limit: pause.saturating_mul(3).saturating_add(budget),
            tick_limit: pause
                .mul_f64(1.1)
                .saturating_add(budget)
                .saturating_add(attempt)
                .saturating_add(LIVENESS_MARGIN),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that the loop began a tick.
    pub fn tick(&self) {
        self.state().last_tick = Some(Instant::now());
    }

    /// Records a successful heartbeat.
    pub fn success(&self) {
        let mut state = self.state();
        state.last_success = Some(Instant::now());
        state.last_ok = true;
    }

    /// Records a failed heartbeat.
    pub fn failure(&self) {
        self.state().last_ok = false;
    }

    /// `/livez`: whether the loop is alive (not wedged), and why.
    pub fn liveness(&self) -> Verdict {
        let since = self.state().last_tick.unwrap_or(self.started).elapsed();
        let (age, limit) = (since.as_secs_f64(), self.tick_limit.as_secs_f64());
        if since <= self.tick_limit {
            Verdict {
                healthy: true,
                body: format!(
                    r#"{{"status":"ok","last_tick_age_sec":{age:.3},"limit_sec":{limit:.3}}}"#
                ),
            }
        } else {
            Verdict {
                healthy: false,
                body: format!(
                    r#"{{"status":"wedged","reason":"no tick began for {age:.1} s (limit {limit:.1} s)"}}"#
                ),
            }
        }
    }

    /// `/readyz`: whether the last heartbeat succeeded, recently, and why.
    pub fn readiness(&self) -> Verdict {
        let (last_success, last_ok) = {
            let state = self.state();
            (state.last_success, state.last_ok)
        };
        let limit = self.limit.as_secs_f64();
        match last_success {
            Some(at) if last_ok && at.elapsed() <= self.limit => Verdict {
                healthy: true,
                body: format!(
                    r#"{{"status":"ready","last_success_age_sec":{:.3},"limit_sec":{limit:.3}}}"#,
                    at.elapsed().as_secs_f64()
                ),
            },
            None => Verdict {
                healthy: false,
                body: r#"{"status":"not ready","reason":"no successful heartbeat yet"}"#.to_owned(),
            },
            Some(_) if !last_ok => Verdict {
                healthy: false,
                body: r#"{"status":"not ready","reason":"the last heartbeat failed"}"#.to_owned(),
            },
            Some(at) => Verdict {
                healthy: false,
                body: format!(
                    r#"{{"status":"not ready","reason":"no successful heartbeat for {:.1} s (limit {limit:.1} s)"}}"#,
                    at.elapsed().as_secs_f64()
                ),
            },
        }
    }

    /// `/healthz`: whether the client is healthy now, and why.
    pub fn verdict(&self) -> Verdict {
        let last = self.state().last_success;
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
    fn ready_only_while_the_last_heartbeat_succeeded_recently() {
        let health = Health::new(Duration::from_millis(10), Duration::ZERO, Duration::ZERO);
        let v = health.readiness();
        assert!(
            !v.healthy && v.body.contains("no successful heartbeat yet"),
            "{}",
            v.body
        );
        health.success();
        assert!(health.readiness().healthy);
        health.failure();
        let v = health.readiness();
        assert!(
            !v.healthy && v.body.contains("the last heartbeat failed"),
            "{}",
            v.body
        );
        health.success();
        std::thread::sleep(Duration::from_millis(60));
        let v = health.readiness();
        assert!(
            !v.healthy && v.body.contains("no successful heartbeat for"),
            "{}",
            v.body
        );
    }

    #[test]
    fn alive_while_ticks_begin_and_a_failing_master_does_not_change_that() {
        let health = Health::new(Duration::ZERO, Duration::ZERO, Duration::ZERO);
        health.tick();
        health.failure();
        let v = health.liveness();
        assert!(
            v.healthy && v.body.contains(r#""status":"ok""#),
            "{}",
            v.body
        );
        assert_eq!(health.tick_limit, LIVENESS_MARGIN);
        let wedged = Health {
            tick_limit: Duration::from_millis(5),
            ..Health::new(Duration::ZERO, Duration::ZERO, Duration::ZERO)
        };
        wedged.tick();
        std::thread::sleep(Duration::from_millis(30));
        let v = wedged.liveness();
        assert!(!v.healthy && v.body.contains("no tick began"), "{}", v.body);
    }

    #[test]
    fn healthy_after_a_success_and_unhealthy_when_it_is_too_old() {
        let health = Health::new(
            Duration::from_millis(10),
            Duration::from_millis(10),
            Duration::ZERO,
        );
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
        let health = Health::new(Duration::from_millis(5), Duration::ZERO, Duration::ZERO);
        std::thread::sleep(Duration::from_millis(30));
        let v = health.verdict();
        assert!(!v.healthy && v.body.contains("since start"), "{}", v.body);
        assert_eq!(v.body.lines().count(), 1);
    }
}
