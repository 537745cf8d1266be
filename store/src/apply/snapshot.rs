//! What the database already holds of the rows a batch of records touches,
//! read in bulk: one `SELECT … WHERE key IN (…)` per table and chunk.

use std::collections::{BTreeSet, HashMap, HashSet};

use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, TryGetableMany, Value};

use super::collation::{Collation, NameColumn, Names};
use super::{Item, Record};
use crate::error::{Context, StoreError};
use crate::layout::Layout;
use crate::schema::entity::{
    attributes, group_hosts, group_users, groups, host_labels, hosts, hqes, job_labels, jobs,
    keyvals, labels, shards, users,
};
use crate::schema::read;

/// The planned-on columns of an existing host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostCols {
    pub invalid: Option<bool>,
    pub shard_id: Option<i32>,
}

/// The planned-on columns of an existing entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HqeCols {
    pub job_id: Option<i32>,
    pub aborted: bool,
    pub meta_host: Option<i32>,
}

/// Existing rows, as far as the batch's records reach.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub shards: HashSet<i32>,
    /// id → name, for every label with a wanted id or a wanted name.
    pub labels: HashMap<i32, Option<String>>,
    /// id → login, for every user with a wanted id or a wanted login.
    pub users: HashMap<i32, Option<String>>,
    pub groups: HashSet<i32>,
    /// (group, user)
    pub group_users: HashSet<(i32, i32)>,
    pub hosts: HashMap<i32, HostCols>,
    /// (host, label)
    pub host_labels: HashSet<(i32, i32)>,
    /// (group, host)
    pub host_groups: HashSet<(i32, i32)>,
    /// host → [(attribute, value)] in id order.
    pub attributes: HashMap<i32, Vec<(String, String)>>,
    /// id → shard_id
    pub jobs: HashMap<i32, Option<i32>>,
    /// (job, label)
    pub job_labels: HashSet<(i32, i32)>,
    pub hqes: HashMap<i32, HqeCols>,
    /// job → [(key, value)] in id order.
    pub keyvals: HashMap<i32, Vec<(String, String)>>,
    /// Jobs that exist among those a foreign key makes a record need (a
    /// job's parent, a suite keyval's job); read only when the adopted
    /// schema has such keys.
    pub referenced_jobs: HashSet<i32>,
    /// How the database compares the names of the batch and of the rows
    /// above.
    pub collation: Collation,
}

/// Every key the records mention, per table.
#[derive(Default)]
struct Wanted<'a> {
    shards: BTreeSet<i32>,
    labels: BTreeSet<i32>,
    label_names: BTreeSet<&'a str>,
    users: BTreeSet<i32>,
    logins: BTreeSet<&'a str>,
    groups: BTreeSet<i32>,
    hosts: BTreeSet<i32>,
    /// Hosts whose label and group links are applied.
    host_links: BTreeSet<i32>,
    /// Hosts whose attribute set is replaced.
    host_attributes: BTreeSet<i32>,
    jobs: BTreeSet<i32>,
    hqes: BTreeSet<i32>,
    /// Jobs whose keyvals are replaced or upserted.
    keyval_jobs: BTreeSet<i32>,
    /// Parents of jobs and jobs of suite keyvals.
    referenced_jobs: BTreeSet<i32>,
}

impl<'a> Wanted<'a> {
    fn of(items: &[Item<'a>]) -> Self {
        let mut w = Wanted::default();
        for item in items {
            match item.record {
                Record::Host(h) => {
                    w.hosts.insert(h.id);
                    w.host_links.insert(h.id);
                    for g in h.aclgroup_set.iter().flatten() {
                        w.groups.insert(g.id);
                        for u in g.users.iter().flatten() {
                            w.users.insert(u.id);
                            w.logins.extend(u.login.as_deref());
                        }
                    }
                    if h.hostattribute_set.is_some() {
                        w.host_attributes.insert(h.id);
                    }
                    for l in h.labels.iter().flatten() {
                        w.label(l);
                    }
                    if let Some(s) = h.shard.as_set() {
                        w.shards.insert(s.id);
                    }
                }
                Record::Job(j) => {
                    w.jobs.insert(j.id);
                    for l in j.dependency_labels.iter().flatten() {
                        w.label(l);
                    }
                    for q in j.hostqueueentry_set.iter().flatten() {
                        w.hqes.insert(q.id);
                        w.hosts.extend(q.host_id);
                        if let Some(l) = q.meta_host.as_set() {
                            w.label(l);
                        }
                    }
                    if j.jobkeyval_set.is_some() {
                        w.keyval_jobs.insert(j.id);
                    }
                    if let Some(s) = j.shard.as_set() {
                        w.shards.insert(s.id);
                    }
                    w.referenced_jobs.extend(j.parent_job_id);
                }
                Record::SuiteKeyval(kv) => {
                    w.keyval_jobs.insert(kv.job_id);
                    w.referenced_jobs.insert(kv.job_id);
                }
            }
        }
        w
    }

    fn label(&mut self, l: &'a shard_model::Label) {
        self.labels.insert(l.id);
        self.label_names.extend(l.name.as_deref());
    }
}

impl Snapshot {
    /// Reads the existing rows that `items` touch.
    pub(crate) async fn read(
        db: &impl ConnectionTrait,
        layout: &Layout,
        items: &[Item<'_>],
    ) -> Result<Snapshot, StoreError> {
        let mut w = Wanted::of(items);
        if !layout.has_foreign_key(jobs::Column::ParentJobId)
            && !layout.has_foreign_key(keyvals::Column::JobId)
        {
            w.referenced_jobs.clear();
        }
        if db.get_database_backend() == DbBackend::Postgres {
            // PostgreSQL text cannot hold a NUL, nor can a parameter carry
            // one: no row has such a name, and asking would fail the whole
            // read. The record fails when written and is isolated there.
            w.label_names.retain(|name| !name.contains('\0'));
            w.logins.retain(|login| !login.contains('\0'));
        }
        // Likewise a name a latin1 column cannot hold: no row has it, and
        // MySQL refuses to compare it with the column.
        if let Some(c) = layout.column_of(labels::Column::Name) {
            w.label_names.retain(|name| c.can_hold(name));
        }
        if let Some(c) = layout.column_of(users::Column::Login) {
            w.logins.retain(|login| c.can_hold(login));
        }
        let shards = select_in::<shards::Entity, i32, _>(
            db,
            &w.shards,
            shards::Column::Id,
            [shards::Column::Id],
        )
        .await?;
        let label_cols = [labels::Column::Id, labels::Column::Name];
        let mut labels_by_id = select_in::<labels::Entity, (i32, Option<String>), _>(
            db,
            &w.labels,
            labels::Column::Id,
            label_cols,
        )
        .await?;
        labels_by_id.extend(
            select_in::<labels::Entity, (i32, Option<String>), _>(
                db,
                &w.label_names,
                labels::Column::Name,
                label_cols,
            )
            .await?,
        );
        let user_cols = [users::Column::Id, users::Column::Login];
        let mut users_by_id = select_in::<users::Entity, (i32, Option<String>), _>(
            db,
            &w.users,
            users::Column::Id,
            user_cols,
        )
        .await?;
        users_by_id.extend(
            select_in::<users::Entity, (i32, Option<String>), _>(
                db,
                &w.logins,
                users::Column::Login,
                user_cols,
            )
            .await?,
        );
        let groups = select_in::<groups::Entity, i32, _>(
            db,
            &w.groups,
            groups::Column::Id,
            [groups::Column::Id],
        )
        .await?;
        let group_users = select_in::<group_users::Entity, (Option<i32>, Option<i32>), _>(
            db,
            &w.groups,
            group_users::Column::AclgroupId,
            [group_users::Column::AclgroupId, group_users::Column::UserId],
        )
        .await?;
        let hosts = select_in::<hosts::Entity, (i32, Option<bool>, Option<i32>), _>(
            db,
            &w.hosts,
            hosts::Column::Id,
            [
                hosts::Column::Id,
                hosts::Column::Invalid,
                hosts::Column::ShardId,
            ],
        )
        .await?;
        let host_labels = select_in::<host_labels::Entity, (Option<i32>, Option<i32>), _>(
            db,
            &w.host_links,
            host_labels::Column::HostId,
            [host_labels::Column::HostId, host_labels::Column::LabelId],
        )
        .await?;
        let host_groups = select_in::<group_hosts::Entity, (Option<i32>, Option<i32>), _>(
            db,
            &w.host_links,
            group_hosts::Column::HostId,
            [group_hosts::Column::AclgroupId, group_hosts::Column::HostId],
        )
        .await?;
        let attributes = select_in::<attributes::Entity, (i32, String, String), _>(
            db,
            &w.host_attributes,
            attributes::Column::HostId,
            [
                attributes::Column::HostId,
                attributes::Column::Attribute,
                attributes::Column::Value,
            ],
        )
        .await?;
        let jobs = select_in::<jobs::Entity, (i32, Option<i32>), _>(
            db,
            &w.jobs,
            jobs::Column::Id,
            [jobs::Column::Id, jobs::Column::ShardId],
        )
        .await?;
        let job_labels = select_in::<job_labels::Entity, (i32, i32), _>(
            db,
            &w.jobs,
            job_labels::Column::JobId,
            [job_labels::Column::JobId, job_labels::Column::LabelId],
        )
        .await?;
        let hqes = select_in::<hqes::Entity, (i32, Option<i32>, bool, Option<i32>), _>(
            db,
            &w.hqes,
            hqes::Column::Id,
            [
                hqes::Column::Id,
                hqes::Column::JobId,
                hqes::Column::Aborted,
                hqes::Column::MetaHost,
            ],
        )
        .await?;
        let keyvals = select_in::<keyvals::Entity, (i32, String, String), _>(
            db,
            &w.keyval_jobs,
            keyvals::Column::JobId,
            [
                keyvals::Column::JobId,
                keyvals::Column::Key,
                keyvals::Column::Value,
            ],
        )
        .await?;
        let referenced_jobs = select_in::<jobs::Entity, i32, _>(
            db,
            &w.referenced_jobs,
            jobs::Column::Id,
            [jobs::Column::Id],
        )
        .await?;
        let collation = if db.get_database_backend() == DbBackend::MySql {
            // Only MySQL needs every name of the batch, so only it gathers them.
            let mut names: Names<'_> = HashMap::new();
            let (attribute_names, keyval_keys) = set_names(items);
            let existing_labels = labels_by_id.iter().filter_map(|(_, n)| n.as_deref());
            (names.entry(NameColumn::LabelName).or_default())
                .extend(existing_labels.chain(w.label_names.iter().copied()));
            let existing_logins = users_by_id.iter().filter_map(|(_, l)| l.as_deref());
            (names.entry(NameColumn::Login).or_default())
                .extend(existing_logins.chain(w.logins.iter().copied()));
            let existing_attributes = attributes.iter().map(|(_, n, _)| n.as_str());
            (names.entry(NameColumn::Attribute).or_default())
                .extend(existing_attributes.chain(attribute_names));
            let existing_keys = keyvals.iter().map(|(_, n, _)| n.as_str());
            (names.entry(NameColumn::KeyvalKey).or_default())
                .extend(existing_keys.chain(keyval_keys));
            Collation::read(db, layout, &names).await?
        } else {
            Collation::default()
        };
        Ok(Snapshot {
            collation,
            referenced_jobs: referenced_jobs.into_iter().collect(),
            shards: shards.into_iter().collect(),
            labels: labels_by_id.into_iter().collect(),
            users: users_by_id.into_iter().collect(),
            groups: groups.into_iter().collect(),
            group_users: links(group_users),
            hosts: hosts
                .into_iter()
                .map(|(id, invalid, shard_id)| (id, HostCols { invalid, shard_id }))
                .collect(),
            host_labels: links(host_labels),
            host_groups: links(host_groups),
            attributes: grouped(attributes),
            jobs: jobs.into_iter().collect(),
            job_labels: job_labels.into_iter().collect(),
            hqes: hqes
                .into_iter()
                .map(|(id, job_id, aborted, meta_host)| {
                    let cols = HqeCols {
                        job_id,
                        aborted,
                        meta_host,
                    };
                    (id, cols)
                })
                .collect(),
            keyvals: grouped(keyvals),
        })
    }
}

/// The attribute names and keyval keys the records set.
fn set_names<'a>(items: &[Item<'a>]) -> (Vec<&'a str>, Vec<&'a str>) {
    let (mut attributes, mut keys) = (Vec::new(), Vec::new());
    for item in items {
        match item.record {
            Record::Host(h) => {
                attributes.extend(
                    h.hostattribute_set
                        .iter()
                        .flatten()
                        .map(|a| a.attribute.as_str()),
                );
            }
            Record::Job(j) => {
                keys.extend(j.jobkeyval_set.iter().flatten().map(|kv| kv.key.as_str()))
            }
            Record::SuiteKeyval(kv) => keys.push(kv.key.as_str()),
        }
    }
    (attributes, keys)
}

/// `(owner, name, value)` rows as each owner's ordered list.
fn grouped(rows: Vec<(i32, String, String)>) -> HashMap<i32, Vec<(String, String)>> {
    let mut map: HashMap<i32, Vec<(String, String)>> = HashMap::new();
    for (owner, name, value) in rows {
        map.entry(owner).or_default().push((name, value));
    }
    map
}

/// Link rows with both ends set (the link columns are nullable in
/// Autotest's schema; a half-empty link links nothing).
fn links(rows: Vec<(Option<i32>, Option<i32>)>) -> HashSet<(i32, i32)> {
    rows.into_iter()
        .filter_map(|(a, b)| Some((a?, b?)))
        .collect()
}

/// [`read::select_in`], naming what was read when it fails.
async fn select_in<E, T, K>(
    db: &impl ConnectionTrait,
    keys: &BTreeSet<K>,
    key: E::Column,
    columns: impl IntoIterator<Item = E::Column> + Clone,
) -> Result<Vec<T>, StoreError>
where
    E: EntityTrait,
    T: TryGetableMany + Send,
    K: Into<Value> + Clone,
{
    read::select_in::<E, T, K>(db, keys, key, columns)
        .await
        .context("reading existing rows")
}
