//! The writes that take the database from its snapshot to the planned
//! state: new rows, whitelisted columns that changed, new links, and the
//! name/value sets that changed. What did not change writes nothing, so an
//! unchanged resend costs no statement.

use std::borrow::Cow;
use std::collections::HashMap;

use super::state::{Link, Pairs, Slot, Tables};
use super::{NewHost, NewHqe, NewJob, Writes};
use crate::apply::snapshot::{HostCols, HqeCols, Snapshot};

/// The writes that turn the snapshot into `state`, each list sorted so the
/// statements are the same from one run to the next.
pub(super) fn diff<'a>(state: &Tables<'a>, snap: &Snapshot) -> Writes<'a> {
    let mut w = Writes::default();
    for slot in state.shards.values() {
        if let Slot::New(s) = slot {
            w.shards.push(*s);
        }
    }
    w.shards.sort_by_key(|s| s.id);
    for slot in state.labels.values() {
        if let Slot::New(l) = slot {
            w.labels.push(*l);
        }
    }
    w.labels.sort_by_key(|l| l.id);
    w.users_deleted = snap
        .users
        .keys()
        .copied()
        .filter(|id| state.users.get(id).is_none_or(|u| u.new.is_some()))
        .collect();
    w.users_deleted.sort_unstable();
    w.users = state.users.values().filter_map(|u| u.new).collect();
    w.users.sort_by_key(|u| u.id);
    for slot in state.groups.values() {
        if let Slot::New(g) = slot {
            w.groups.push(*g);
        }
    }
    w.groups.sort_by_key(|g| g.id);
    w.group_users = new_links(&state.group_users);
    for (&id, h) in state.hosts.iter() {
        match (h.new, snap.hosts.get(&id)) {
            (Some(host), _) => w.hosts.push(NewHost {
                host,
                invalid: h.invalid,
                shard_id: h.shard_id,
            }),
            (None, Some(&HostCols { invalid, shard_id })) => {
                if h.invalid != invalid {
                    w.host_invalid.push((id, h.invalid));
                }
                if h.shard_id != shard_id {
                    w.host_shard.push((id, h.shard_id));
                }
            }
            (None, None) => {}
        }
    }
    w.hosts.sort_by_key(|h| h.host.id);
    w.host_invalid.sort_unstable();
    w.host_shard.sort_unstable();
    w.host_groups = new_links(&state.host_groups);
    w.host_labels = new_links(&state.host_labels);
    (w.attributes_cleared, w.attributes) = changed_sets(&state.attributes, &snap.attributes);
    for (&id, j) in state.jobs.iter() {
        match (j.new, snap.jobs.get(&id)) {
            (Some(job), _) => w.jobs.push(NewJob {
                job,
                shard_id: j.shard_id,
            }),
            (None, Some(&shard_id)) if j.shard_id != shard_id => {
                w.job_shard.push((id, j.shard_id));
            }
            _ => {}
        }
    }
    w.jobs.sort_by_key(|j| j.job.id);
    w.job_shard.sort_unstable();
    w.job_labels = new_links(&state.job_labels);
    for (&id, q) in state.hqes.iter() {
        match (q.new, snap.hqes.get(&id)) {
            (Some(hqe), _) => w.hqes.push(NewHqe {
                hqe,
                job_id: q.job_id,
                aborted: q.aborted,
                meta_host: q.meta_host,
            }),
            (
                None,
                Some(&HqeCols {
                    job_id,
                    aborted,
                    meta_host,
                }),
            ) => {
                if q.job_id != job_id {
                    w.hqe_job.push((id, q.job_id));
                }
                if q.aborted != aborted {
                    w.hqe_aborted.push((id, q.aborted));
                }
                if q.meta_host != meta_host {
                    w.hqe_meta_host.push((id, q.meta_host));
                }
            }
            (None, None) => {}
        }
    }
    w.hqes.sort_by_key(|q| q.hqe.id);
    w.hqe_job.sort_unstable();
    w.hqe_aborted.sort_unstable();
    w.hqe_meta_host.sort_unstable();
    (w.keyvals_cleared, w.keyvals) = changed_sets(&state.keyvals, &snap.keyvals);
    w
}

/// The links a record added, sorted.
fn new_links(links: &HashMap<(i32, i32), Link>) -> Vec<(i32, i32)> {
    let mut new: Vec<_> = links
        .iter()
        .filter(|(_, link)| **link == Link::New)
        .map(|(&pair, _)| pair)
        .collect();
    new.sort_unstable();
    new
}

/// For name/value sets (attributes, keyvals): the owners whose rows must be
/// deleted, and the rows to insert. An unchanged set writes nothing.
#[allow(clippy::type_complexity)]
fn changed_sets<'a>(
    state: &HashMap<i32, Pairs<'a>>,
    snap: &HashMap<i32, Vec<(String, String)>>,
) -> (Vec<i32>, Vec<(i32, Cow<'a, str>, Cow<'a, str>)>) {
    let mut cleared = Vec::new();
    let mut rows = Vec::new();
    let mut owners: Vec<i32> = state.keys().copied().collect();
    owners.sort_unstable();
    for owner in owners {
        let Some(set) = state.get(&owner) else {
            continue;
        };
        let before = snap.get(&owner).map(Vec::as_slice).unwrap_or_default();
        let same = set.len() == before.len()
            && set
                .iter()
                .zip(before)
                .all(|((n, v), (bn, bv))| n == bn && v == bv);
        if same {
            continue;
        }
        if !before.is_empty() {
            cleared.push(owner);
        }
        rows.extend(set.iter().map(|(n, v)| (owner, n.clone(), v.clone())));
    }
    (cleared, rows)
}
