//! The retry schedule of one call, after the original's `RetryingAFE`:
//! back-off starting at `delay`, doubling, with ±20 % jitter, until the total
//! budget is spent. Nothing here sleeps; the client asks the schedule how long
//! an attempt may last and how long to wait before the next one.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use tokio::time::Instant;

/// The factor between two consecutive delays.
const BACKOFF_FACTOR: u32 = 2;
/// The jitter, as a fraction of the delay, in either direction.
const JITTER: f64 = 0.2;

/// Deadlines and delays of one call's attempts.
#[derive(Debug)]
pub(crate) struct Schedule {
    deadline: Instant,
    budget: Duration,
    next_delay: Duration,
}

impl Schedule {
    /// The schedule of a call starting at `start`.
    pub(crate) fn new(start: Instant, budget: Duration, first_delay: Duration) -> Self {
        Schedule {
            deadline: start
                .checked_add(budget)
                .or_else(|| start.checked_add(NEVER))
                .unwrap_or(start),
            budget,
            next_delay: first_delay,
        }
    }

    /// The timeout of an attempt starting at `now`: the request timeout, cut
    /// short to what is left of the budget.
    pub(crate) fn attempt_timeout(&self, now: Instant, request_timeout: Duration) -> Duration {
        request_timeout.min(self.remaining(now))
    }

    /// How long to wait at `now` after a retryable failure before the next
    /// attempt, cut short to the budget; `None` when the budget is spent.
    pub(crate) fn next_sleep(&mut self, now: Instant) -> Option<Duration> {
        let remaining = self.remaining(now);
        if remaining.is_zero() {
            return None;
        }
        let delay = jittered(self.next_delay, random_unit());
        // Capped at the budget: a longer delay could never be slept whole.
        self.next_delay = self
            .next_delay
            .saturating_mul(BACKOFF_FACTOR)
            .min(self.budget);
        Some(delay.min(remaining))
    }

    /// Whether no time is left at `now`.
    pub(crate) fn is_spent(&self, now: Instant) -> bool {
        self.remaining(now).is_zero()
    }

    /// Time left of the budget at `now`.
    pub(crate) fn remaining(&self, now: Instant) -> Duration {
        self.deadline.saturating_duration_since(now)
    }
}

/// The budget used when the configured one does not fit in an `Instant`:
/// about 30 years, as tokio itself uses for "never".
const NEVER: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `delay` scaled by a factor in `[1 - JITTER, 1 + JITTER]`, chosen by `unit`
/// in `[0, 1)`.
fn jittered(delay: Duration, unit: f64) -> Duration {
    let factor = 1.0 - JITTER + 2.0 * JITTER * unit;
    Duration::try_from_secs_f64(delay.as_secs_f64() * factor).unwrap_or(delay)
}

/// A uniform number in `[0, 1)`. Jitter only needs to keep shards from
/// phase-locking, so the std library's randomly keyed hasher is enough.
fn random_unit() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    // The top 53 bits fill an f64 mantissa exactly.
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn jitter_stays_within_20_percent() {
        let delay = 1000 * MS;
        assert_eq!(jittered(delay, 0.0), 800 * MS);
        assert_eq!(jittered(delay, 0.5), delay);
        assert!(jittered(delay, 0.999_999) <= 1200 * MS);
        for _ in 0..1000 {
            let unit = random_unit();
            assert!((0.0..1.0).contains(&unit), "{unit}");
        }
    }

    #[test]
    fn random_unit_varies() {
        let first = random_unit();
        assert!((0..100).any(|_| random_unit() != first));
    }

    #[test]
    fn delays_double_from_the_first() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, 3600 * 1000 * MS, 100 * MS);
        for expected in [100, 200, 400, 800, 1600] {
            let sleep = schedule.next_sleep(start);
            let low = expected * 8 / 10 * MS;
            let high = expected * 12 / 10 * MS;
            assert!(
                sleep.is_some_and(|s| low <= s && s <= high),
                "{sleep:?} not in {low:?}..={high:?}"
            );
        }
    }

    #[test]
    fn last_sleep_and_attempt_are_cut_to_the_budget() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, 1000 * MS, 5000 * MS);
        assert_eq!(schedule.attempt_timeout(start, 120_000 * MS), 1000 * MS);
        assert_eq!(schedule.attempt_timeout(start + 900 * MS, 50 * MS), 50 * MS);
        assert_eq!(
            schedule.attempt_timeout(start + 900 * MS, 500 * MS),
            100 * MS
        );
        assert_eq!(schedule.next_sleep(start + 700 * MS), Some(300 * MS));
        assert!(!schedule.is_spent(start + 999 * MS));
        assert!(schedule.is_spent(start + 1000 * MS));
        assert_eq!(schedule.next_sleep(start + 1000 * MS), None);
    }

    #[test]
    fn huge_budgets_do_not_overflow() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, Duration::MAX, Duration::MAX / 2);
        assert!(schedule.next_sleep(start).is_some());
        assert!(schedule.next_sleep(start).is_some());
        assert!(!schedule.is_spent(start));
    }
}
