//! §8 step 3: the master takes the shard's word for its hosts' statuses,
//! host by host in the order sent, as the original's loop does.
//!
//! A known id the master does not have fails the call (`DoesNotExist`, the
//! error of the original's `Host.objects.get`); so does, in upstream mode,
//! a changed status the calling user may not save (`AclAccessViolation`).
//! The walk runs in memory on rows read up front; the statuses changed
//! before a failure are written in upstream mode (the original has saved
//! them by then), and none in strict mode.

use std::collections::{BTreeSet, HashMap, HashSet};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use shard_store::schema::chunk;
use shard_store::schema::entity::hosts;
use shard_store::schema::write::update_by_id;

use crate::acl::{self, User};
use crate::{Call, Fault};

/// A host's row as the walk reads it: id, hostname, status, invalid.
type HostRow = (i32, Option<String>, Option<String>, Option<bool>);

/// What the walk needs of a host.
struct HostState {
    hostname: Option<String>,
    status: Option<String>,
    invalid: Option<bool>,
}

/// Sets the status of each known host to the reported one where it
/// differs.
pub async fn sync_host_statuses(
    db: &impl ConnectionTrait,
    ids: &[i32],
    statuses: &[Option<String>],
    call: &Call,
) -> Result<(), Fault> {
    if ids.len() != statuses.len() {
        return Err(Fault::new(
            "AssertionError",
            format!(
                "known_host_ids has {} entries but known_host_statuses has {}",
                ids.len(),
                statuses.len()
            ),
        ));
    }
    let mut hosts = read_hosts(db, ids).await?;
    // Only a user who is not a superuser is checked (`is_superuser`).
    let checked: Option<(&User, HashSet<i32>)> = match &call.user {
        Some(user) if !user.is_superuser() => {
            Some((user, acl::accessible_hosts(db, user, ids).await?))
        }
        _ => None,
    };
    let mut changed: BTreeSet<i32> = BTreeSet::new();
    let mut failure = None;
    for (&id, status) in ids.iter().zip(statuses) {
        let Some(host) = hosts.get_mut(&id) else {
            failure = Some(Fault::new(
                "DoesNotExist",
                "Host matching query does not exist.",
            ));
            tracing::info!(host = id, "a known host id the master does not have");
            break;
        };
        if host.status == *status {
            continue;
        }
        if let Some((user, accessible)) = &checked
            && host.invalid != Some(true)
            && !accessible.contains(&id)
        {
            let hostname = host.hostname.as_deref().unwrap_or("None");
            failure = Some(Fault::new(
                "AclAccessViolation",
                format!("{} does not have access to {hostname}", user.login),
            ));
            break;
        }
        host.status.clone_from(status);
        changed.insert(id);
    }
    if let Some(fault) = failure.as_ref()
        && call.mode.is_transactional()
    {
        return Err(fault.clone());
    }
    let changed: Vec<(i32, Option<String>)> = changed
        .into_iter()
        .filter_map(|id| hosts.remove(&id).map(|h| (id, h.status)))
        .collect();
    // One `UPDATE … SET status = CASE id …` per chunk.
    update_by_id(
        db,
        hosts::Entity,
        hosts::Column::Status,
        hosts::Column::Id,
        &changed,
    )
    .await?;
    match failure {
        Some(fault) => Err(fault),
        None => Ok(()),
    }
}

async fn read_hosts(
    db: &impl ConnectionTrait,
    ids: &[i32],
) -> Result<HashMap<i32, HostState>, Fault> {
    let mut out = HashMap::new();
    for chunk in chunk::by_params(db.get_database_backend(), 1, ids) {
        let rows: Vec<HostRow> = hosts::Entity::find()
            .select_only()
            .columns([
                hosts::Column::Id,
                hosts::Column::Hostname,
                hosts::Column::Status,
                hosts::Column::Invalid,
            ])
            .filter(hosts::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        for (id, hostname, status, invalid) in rows {
            out.insert(
                id,
                HostState {
                    hostname,
                    status,
                    invalid,
                },
            );
        }
    }
    Ok(out)
}
