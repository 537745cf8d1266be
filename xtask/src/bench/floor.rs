//! The floor (e) and the definition of a *record*.
//!
//! A **record** is one row that applying a response writes into an empty
//! shard database, counted once: each distinct shard, label, user, ACL
//! group, host, host attribute, job, host queue entry and job keyval (the
//! jobs' own and the suite keyvals), and each distinct link row (group–user,
//! host–group, host–label, job–dependency-label). [`Rows`] derives exactly
//! those rows from a response, in memory, without looking anything up; the
//! bench checks once per backend that an apply into an empty database leaves
//! that many rows in the `afe_` tables, so apply and floor write the same
//! rows and every records/s figure divides the same count.
//!
//! The floor writes [`Rows`] the plainest way the driver allows: one
//! multi-row `INSERT` per table and chunk of [`chunk::by_params`], built with
//! sea-query, through the same connection, in one transaction.

use std::collections::HashSet;
use std::hash::Hash;

use anyhow::{Context, Result};
use sea_orm::sea_query::{DynIden, Expr, IntoIden, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, Value};
use shard_model::{HeartbeatResponse, Label, ToOne};
use shard_store::schema::entity::{
    attributes, group_hosts, group_users, groups, host_labels, hosts, hqes, job_labels, jobs,
    keyvals, labels, shards, users,
};
use shard_store::schema::{chunk, rows};
use shard_store::{Layout, begin_write};

/// The rows of one table, as bind values in the order of its columns.
pub struct Table {
    /// The table's name, e.g. `afe_jobs`.
    pub name: &'static str,
    table: DynIden,
    columns: Vec<DynIden>,
    /// The rows, each a value per column.
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// The columns' names, in the order of each row's values.
    pub fn column_names(&self) -> impl Iterator<Item = String> + '_ {
        self.columns.iter().map(ToString::to_string)
    }
}

/// Every row a response writes into an empty shard database, per table,
/// parents before children (see the module's definition of a record).
pub struct Rows {
    /// The tables, in foreign-key order.
    pub tables: Vec<Table>,
}

/// Rows of one table, each kept once by its identity.
struct Distinct<K> {
    seen: HashSet<K>,
    rows: Vec<Vec<Value>>,
}

impl<K: Hash + Eq> Distinct<K> {
    fn new() -> Self {
        Distinct {
            seen: HashSet::new(),
            rows: Vec::new(),
        }
    }

    /// Adds the row of `key` unless a row with that key is already there.
    fn add(&mut self, key: K, row: impl FnOnce() -> Vec<Value>) {
        if self.seen.insert(key) {
            self.rows.push(row());
        }
    }

    fn into_table<E, C, const N: usize>(self, entity: E, columns: [C; N]) -> Table
    where
        E: sea_orm::EntityName + IntoIden,
        C: IntoIden,
    {
        Table {
            name: entity.table_name(),
            table: entity.into_iden(),
            columns: columns.into_iter().map(IntoIden::into_iden).collect(),
            rows: self.rows,
        }
    }
}

impl Rows {
    /// The rows `response` writes into an empty database laid out as
    /// `layout` (datetimes are stored as its columns store them).
    pub fn from_response(response: &HeartbeatResponse, layout: &Layout) -> Rows {
        let mut shard_rows = Distinct::new();
        let mut label_rows = Distinct::new();
        let mut user_rows = Distinct::new();
        let mut group_rows = Distinct::new();
        let mut group_user_rows = Distinct::new();
        let mut host_rows = Distinct::new();
        let mut host_group_rows = Distinct::new();
        let mut host_label_rows = Distinct::new();
        let mut attribute_rows = Distinct::new();
        let mut job_rows = Distinct::new();
        let mut job_label_rows = Distinct::new();
        let mut hqe_rows = Distinct::new();
        let mut keyval_rows = Distinct::new();

        let mut add_label = |l: &Label| label_rows.add(l.id, || rows::label(l));
        let mut add_shard = |s: &ToOne<shard_model::Shard>| {
            let shard = s.as_set()?;
            shard_rows.add(shard.id, || rows::shard(shard));
            Some(shard.id)
        };
        let pair = |owner: i32, name: &str, value: Option<&str>| -> Vec<Value> {
            vec![
                owner.into(),
                name.to_owned().into(),
                value.map(str::to_owned).into(),
            ]
        };

        for h in &response.hosts {
            let shard_id = add_shard(&h.shard);
            host_rows.add(h.id, || {
                rows::host(layout, h, h.invalid.flatten(), shard_id)
            });
            for l in h.labels.iter().flatten() {
                add_label(l);
                host_label_rows.add((h.id, l.id), || vec![h.id.into(), l.id.into()]);
            }
            for g in h.aclgroup_set.iter().flatten() {
                group_rows.add(g.id, || rows::group(g));
                host_group_rows.add((g.id, h.id), || vec![g.id.into(), h.id.into()]);
                for u in g.users.iter().flatten() {
                    user_rows.add(u.id, || rows::user(u));
                    group_user_rows.add((g.id, u.id), || vec![g.id.into(), u.id.into()]);
                }
            }
            for a in h.hostattribute_set.iter().flatten() {
                attribute_rows.add((h.id, a.attribute.as_str()), || {
                    pair(h.id, &a.attribute, a.value.as_deref())
                });
            }
        }
        for j in &response.jobs {
            let shard_id = add_shard(&j.shard);
            job_rows.add(j.id, || rows::job(layout, j, shard_id));
            for l in j.dependency_labels.iter().flatten() {
                add_label(l);
                job_label_rows.add((j.id, l.id), || vec![j.id.into(), l.id.into()]);
            }
            for q in j.hostqueueentry_set.iter().flatten() {
                let meta_host = q.meta_host.as_set().map(|l| {
                    add_label(l);
                    l.id
                });
                hqe_rows.add(q.id, || {
                    rows::hqe(layout, q, Some(j.id), q.aborted.unwrap_or(false), meta_host)
                });
            }
            for kv in j.jobkeyval_set.iter().flatten() {
                keyval_rows.add((j.id, kv.key.as_str()), || {
                    pair(j.id, &kv.key, kv.value.as_deref())
                });
            }
        }
        for kv in &response.suite_keyvals {
            keyval_rows.add((kv.job_id, kv.key.as_str()), || {
                pair(kv.job_id, &kv.key, kv.value.as_deref())
            });
        }

        let tables = vec![
            shard_rows.into_table(shards::Entity, rows::SHARDS),
            label_rows.into_table(labels::Entity, rows::LABELS),
            user_rows.into_table(users::Entity, rows::USERS),
            group_rows.into_table(groups::Entity, rows::GROUPS),
            group_user_rows.into_table(group_users::Entity, rows::GROUP_USERS),
            host_rows.into_table(hosts::Entity, rows::HOSTS),
            host_group_rows.into_table(group_hosts::Entity, rows::GROUP_HOSTS),
            host_label_rows.into_table(host_labels::Entity, rows::HOST_LABELS),
            attribute_rows.into_table(attributes::Entity, rows::ATTRIBUTES),
            job_rows.into_table(jobs::Entity, rows::JOBS),
            job_label_rows.into_table(job_labels::Entity, rows::JOB_LABELS),
            hqe_rows.into_table(hqes::Entity, rows::HQES),
            keyval_rows.into_table(keyvals::Entity, rows::KEYVALS),
        ];
        Rows { tables }
    }

    /// Rows per table, in foreign-key order.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        self.tables.iter().map(|t| (t.name, t.rows.len())).collect()
    }
}

/// Writes `rows` as plain multi-row `INSERT`s (one per table and chunk),
/// in one transaction: the floor of any apply of the same rows.
pub async fn write(db: &DatabaseConnection, rows: &Rows) -> Result<()> {
    let max_params = chunk::max_params(db.get_database_backend());
    write_chunks(db, rows, max_params).await.map(drop)
}

/// Writes `rows` as multi-row `INSERT`s of at most `max_params` bind
/// parameters each (the chunks of [`chunk::by_params`] when that is the
/// store's limit), in one transaction; returns the statements sent.
pub async fn write_chunks(db: &DatabaseConnection, rows: &Rows, max_params: usize) -> Result<u64> {
    let txn = begin_write(db)
        .await
        .context("starting the floor's transaction")?;
    let mut statements = 0;
    for table in &rows.tables {
        let per_chunk = (max_params / table.columns.len().max(1)).max(1);
        for chunk in table.rows.chunks(per_chunk) {
            let mut insert = Query::insert();
            insert
                .into_table(table.table.clone())
                .columns(table.columns.iter().cloned());
            for row in chunk {
                insert
                    .values(row.iter().cloned().map(Expr::from))
                    .with_context(|| format!("building an insert into {}", table.name))?;
            }
            txn.execute(&insert)
                .await
                .with_context(|| format!("inserting into {}", table.name))?;
            statements += 1;
        }
    }
    txn.commit().await.context("committing the floor")?;
    Ok(statements)
}
