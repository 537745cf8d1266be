//! The daemon loop (§7): heartbeat, sleep the pause with ±10 % jitter,
//! until a signal or the lifetime says stop.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use shard_engine::{Shard, heartbeat};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::health::Health;

/// Runs heartbeats until `stop` is cancelled or `lifetime` has passed.
///
/// A failed heartbeat (master down, database down) is logged and counted by
/// the engine and retried next tick; it never ends the loop. Cancelling
/// `stop` abandons a call in flight at once and ends a pause at once; a
/// database transaction in flight is finished first.
pub async fn run(
    shard: &Shard,
    pause: Duration,
    lifetime: Option<Duration>,
    health: &Arc<Health>,
    stop: CancellationToken,
) {
    if let Some(lifetime) = lifetime {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(lifetime).await;
            tracing::info!(
                lifetime_sec = lifetime.as_secs_f64(),
                "lifetime reached; stopping"
            );
            stop.cancel();
        });
    }
    let mut tick: u64 = 0;
    while !stop.is_cancelled() {
        tick += 1;
        health.tick();
        // One span per heartbeat: every line it logs carries its tick.
        let span = tracing::info_span!("heartbeat", tick);
        if heartbeat(shard, &stop).instrument(span).await.is_ok() {
            health.success();
        } else {
            health.failure();
        }
        let wait = jittered(pause, tick);
        tokio::select! {
            () = tokio::time::sleep_until(Instant::now() + wait) => {}
            () = stop.cancelled() => {}
        }
    }
}

/// `pause` ± 10 %, so that shards started together do not phase-lock.
fn jittered(pause: Duration, tick: u64) -> Duration {
    // A per-process random key makes the sequence differ between shards
    // without a random-number crate.
    let hash = RandomState::new().hash_one(tick);
    let unit = (hash >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
    pause.mul_f64(0.9 + 0.2 * unit)
}

#[cfg(test)]
mod tests {
    use super::jittered;
    use std::time::Duration;

    #[test]
    fn jitter_stays_within_ten_percent_and_varies() {
        let pause = Duration::from_secs(60);
        let waits: Vec<Duration> = (0..200).map(|t| jittered(pause, t)).collect();
        assert!(
            waits
                .iter()
                .all(|w| *w >= Duration::from_secs(54) && *w <= Duration::from_secs(66))
        );
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(distinct.len() > 100, "jitter varies");
    }
}
