//! Reading hosts and jobs "with dependencies" (§5) for a response: one
//! query per table for all records, joined in memory.

use std::collections::{BTreeSet, HashMap};

use sea_orm::ConnectionTrait;
use shard_model::{AclGroup, Host, Job, JobKeyval, Label, Shard, ToOne, User};
use shard_store::schema::convert::{
    attribute_from_row, group_from_row, host_from_row, hqe_from_row, job_from_row, keyval_from_row,
    label_from_row, shard_from_row, user_from_row,
};
use shard_store::schema::entity::{
    attributes, group_hosts, group_users, groups, host_labels, hosts, hqes, job_labels, jobs,
    keyvals, labels, shards, users,
};
use shard_store::schema::read::models_in;

use crate::Fault;

async fn labels_by_id(
    db: &impl ConnectionTrait,
    ids: &BTreeSet<i32>,
) -> Result<HashMap<i32, Label>, Fault> {
    Ok(
        models_in::<labels::Entity>(db, labels::Column::Id, labels::Column::Id, ids)
            .await?
            .into_iter()
            .map(|row| (row.id, label_from_row(row)))
            .collect(),
    )
}

async fn shards_by_id(
    db: &impl ConnectionTrait,
    ids: &BTreeSet<i32>,
) -> Result<HashMap<i32, Shard>, Fault> {
    Ok(
        models_in::<shards::Entity>(db, shards::Column::Id, shards::Column::Id, ids)
            .await?
            .into_iter()
            .map(|row| (row.id, shard_from_row(row)))
            .collect(),
    )
}

/// Groups `items` by `key`, keeping their order.
fn group_by<T, K: std::hash::Hash + Eq>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> Option<K>,
) -> HashMap<K, Vec<T>> {
    let mut map: HashMap<K, Vec<T>> = HashMap::new();
    for item in items {
        if let Some(k) = key(&item) {
            map.entry(k).or_default().push(item);
        }
    }
    map
}

fn shard_link(shards: &HashMap<i32, Shard>, shard_id: Option<i32>) -> ToOne<Shard> {
    match shard_id.and_then(|id| shards.get(&id)) {
        Some(shard) => ToOne::Set(shard.clone()),
        None => ToOne::Null,
    }
}

/// The rows that tie hosts to their labels, ACL groups and attributes.
pub(crate) struct HostLinks {
    /// `afe_hosts_labels`, by row id.
    pub(crate) labels: Vec<host_labels::Model>,
    /// `afe_acl_groups_hosts`, by row id.
    pub(crate) groups: Vec<group_hosts::Model>,
    /// `afe_host_attributes`, by row id.
    pub(crate) attributes: Vec<attributes::Model>,
}

/// The label, ACL group and attribute rows of the hosts `ids`: one query
/// per table and chunk.
pub(crate) async fn host_links(
    db: &impl ConnectionTrait,
    ids: &BTreeSet<i32>,
) -> Result<HostLinks, Fault> {
    Ok(HostLinks {
        labels: models_in::<host_labels::Entity>(
            db,
            host_labels::Column::HostId,
            host_labels::Column::Id,
            ids,
        )
        .await?,
        groups: models_in::<group_hosts::Entity>(
            db,
            group_hosts::Column::HostId,
            group_hosts::Column::Id,
            ids,
        )
        .await?,
        attributes: models_in::<attributes::Entity>(
            db,
            attributes::Column::HostId,
            attributes::Column::Id,
            ids,
        )
        .await?,
    })
}

/// The hosts of `ids` with their ACL groups (and their users), attributes,
/// labels and shard, in id order.
pub async fn hosts_with_dependencies(
    db: &impl ConnectionTrait,
    ids: &[i32],
) -> Result<Vec<Host>, Fault> {
    let ids: BTreeSet<i32> = ids.iter().copied().collect();
    let rows = models_in::<hosts::Entity>(db, hosts::Column::Id, hosts::Column::Id, &ids).await?;
    let HostLinks {
        labels: label_links,
        groups: group_links,
        attributes: attribute_rows,
    } = host_links(db, &ids).await?;

    let label_ids: BTreeSet<i32> = label_links.iter().filter_map(|l| l.label_id).collect();
    let labels = labels_by_id(db, &label_ids).await?;
    let group_ids: BTreeSet<i32> = group_links.iter().filter_map(|l| l.aclgroup_id).collect();
    let group_rows =
        models_in::<groups::Entity>(db, groups::Column::Id, groups::Column::Id, &group_ids).await?;
    let member_links = models_in::<group_users::Entity>(
        db,
        group_users::Column::AclgroupId,
        group_users::Column::Id,
        &group_ids,
    )
    .await?;
    let user_ids: BTreeSet<i32> = member_links.iter().filter_map(|l| l.user_id).collect();
    let users: HashMap<i32, User> =
        models_in::<users::Entity>(db, users::Column::Id, users::Column::Id, &user_ids)
            .await?
            .into_iter()
            .map(|row| (row.id, user_from_row(row)))
            .collect();
    let shard_ids: BTreeSet<i32> = rows.iter().filter_map(|h| h.shard_id).collect();
    let shards = shards_by_id(db, &shard_ids).await?;

    let mut members: HashMap<i32, Vec<User>> = HashMap::new();
    for link in member_links {
        if let (Some(group), Some(user)) =
            (link.aclgroup_id, link.user_id.and_then(|u| users.get(&u)))
        {
            members.entry(group).or_default().push(user.clone());
        }
    }
    let groups: HashMap<i32, AclGroup> = group_rows
        .into_iter()
        .map(|row| {
            let mut group = group_from_row(row);
            group.users = Some(members.remove(&group.id).unwrap_or_default());
            (group.id, group)
        })
        .collect();

    let mut labels_of = group_by(label_links, |l| l.host_id);
    let mut groups_of = group_by(group_links, |l| l.host_id);
    let mut attributes_of = group_by(attribute_rows, |a| Some(a.host_id));
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let shard_id = row.shard_id;
        let mut host = host_from_row(row);
        let id = host.id;
        host.labels = Some(
            labels_of
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|l| l.label_id.and_then(|label| labels.get(&label)).cloned())
                .collect(),
        );
        host.aclgroup_set = Some(
            groups_of
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|l| l.aclgroup_id.and_then(|group| groups.get(&group)).cloned())
                .collect(),
        );
        host.hostattribute_set = Some(
            attributes_of
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .map(attribute_from_row)
                .collect(),
        );
        host.shard = shard_link(&shards, shard_id);
        out.push(host);
    }
    Ok(out)
}

/// The jobs of `ids` with their dependency labels, entries (with meta
/// hosts), keyvals and shard, in id order.
pub async fn jobs_with_dependencies(
    db: &impl ConnectionTrait,
    ids: &[i32],
) -> Result<Vec<Job>, Fault> {
    let ids: BTreeSet<i32> = ids.iter().copied().collect();
    let rows = models_in::<jobs::Entity>(db, jobs::Column::Id, jobs::Column::Id, &ids).await?;
    let label_links = models_in::<job_labels::Entity>(
        db,
        job_labels::Column::JobId,
        job_labels::Column::Id,
        &ids,
    )
    .await?;
    let entry_rows =
        models_in::<hqes::Entity>(db, hqes::Column::JobId, hqes::Column::Id, &ids).await?;
    let keyval_rows =
        models_in::<keyvals::Entity>(db, keyvals::Column::JobId, keyvals::Column::Id, &ids).await?;
    let label_ids: BTreeSet<i32> = label_links
        .iter()
        .map(|l| l.label_id)
        .chain(entry_rows.iter().filter_map(|q| q.meta_host))
        .collect();
    let labels = labels_by_id(db, &label_ids).await?;
    let shard_ids: BTreeSet<i32> = rows.iter().filter_map(|j| j.shard_id).collect();
    let shards = shards_by_id(db, &shard_ids).await?;

    let mut labels_of = group_by(label_links, |l| Some(l.job_id));
    let mut entries_of = group_by(entry_rows, |q| q.job_id);
    let mut keyvals_of = group_by(keyval_rows, |k| Some(k.job_id));
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let shard_id = row.shard_id;
        let mut job = job_from_row(row);
        let id = job.id;
        job.dependency_labels = Some(
            labels_of
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|l| labels.get(&l.label_id).cloned())
                .collect(),
        );
        job.hostqueueentry_set = Some(
            entries_of
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .map(|q| {
                    let meta_host = q.meta_host;
                    let mut hqe = hqe_from_row(q);
                    hqe.meta_host = match meta_host.and_then(|l| labels.get(&l)) {
                        Some(label) => ToOne::Set(label.clone()),
                        None => ToOne::Null,
                    };
                    hqe
                })
                .collect(),
        );
        job.jobkeyval_set = Some(
            keyvals_of
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .map(keyval_from_row)
                .collect(),
        );
        job.shard = shard_link(&shards, shard_id);
        out.push(job);
    }
    Ok(out)
}

/// All keyvals of the given (suite) jobs.
pub async fn keyvals_of(
    db: &impl ConnectionTrait,
    job_ids: &[i32],
) -> Result<Vec<JobKeyval>, Fault> {
    let ids: BTreeSet<i32> = job_ids.iter().copied().collect();
    Ok(
        models_in::<keyvals::Entity>(db, keyvals::Column::JobId, keyvals::Column::Id, &ids)
            .await?
            .into_iter()
            .map(keyval_from_row)
            .collect(),
    )
}
