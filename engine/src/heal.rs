//! A shard that heals itself (§11): when the master refuses every heartbeat
//! because this shard reports a host the master has deleted, ask the master
//! which of the known hosts still exist (`get_hosts`) and forget the others
//! as incorrect hosts (§7 step 5), so the next heartbeat succeeds without an
//! operator.

use std::collections::BTreeSet;

use shard_model::{GetHostsRequest, ListedHost};
use tokio_util::sync::CancellationToken;

use crate::{HeartbeatError, Shard, metrics};

/// The AFE RPC that lists hosts.
const GET_HOSTS: &str = "get_hosts";

/// Forgets the known hosts the master no longer has, logging one warning
/// that names them. Best effort: a failure is logged and the next
/// heartbeat fails (and tries) again.
pub(crate) async fn forget_hosts_the_master_lacks(shard: &Shard, cancel: &CancellationToken) {
    match forget(shard, cancel).await {
        Ok(forgotten) if forgotten.is_empty() => tracing::warn!(
            "the master refused a known host, but lists every host this shard knows; nothing forgotten"
        ),
        Ok(forgotten) => {
            metrics::hosts_forgotten(forgotten.len());
            tracing::warn!(
                hosts = ?forgotten,
                "forgot hosts the master no longer has: marked invalid, their labels, ACL groups \
                 and attributes removed, their unfinished entries aborted"
            );
        }
        Err(e) if e.is_cancelled() => {}
        Err(e) => tracing::warn!(
            failure_type = e.failure_type(),
            error = %e,
            "could not find out which known hosts the master lacks; the next heartbeat fails again"
        ),
    }
}

/// Asks the master about every known host and removes the missing ones in
/// one write transaction. Returns their ids, ascending.
async fn forget(shard: &Shard, cancel: &CancellationToken) -> Result<Vec<i32>, HeartbeatError> {
    let known = shard.store.known_hosts().await?.ids;
    if known.is_empty() {
        return Ok(Vec::new());
    }
    let request = GetHostsRequest::ids(known.clone());
    let listed: Vec<ListedHost> = shard.client.call(GET_HOSTS, &request, cancel).await?.result;
    let missing = missing(&known, &listed);
    if missing.is_empty() {
        return Ok(missing);
    }
    Ok(shard.store.forget_hosts(&missing).await?)
}

/// The `known` ids that `listed` does not name, ascending.
fn missing(known: &[i32], listed: &[ListedHost]) -> Vec<i32> {
    let listed: BTreeSet<i32> = listed.iter().map(|h| h.id).collect();
    let mut missing: Vec<i32> = known
        .iter()
        .copied()
        .filter(|id| !listed.contains(id))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_hosts_are_the_known_ones_the_master_does_not_list() {
        let listed = [
            ListedHost { id: 1 },
            ListedHost { id: 3 },
            ListedHost { id: 9 },
        ];
        assert_eq!(missing(&[3, 1, 7, 2], &listed), vec![2, 7]);
        assert_eq!(missing(&[1, 3], &listed), Vec::<i32>::new());
    }
}
