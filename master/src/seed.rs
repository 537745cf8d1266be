//! The lab generator behind `shard-master seed`: shards and their boards,
//! hosts per board (some leased, some locked), users and ACL groups, host
//! attributes, and suite jobs with their child jobs, all sized by a
//! [`LabSpec`].
//!
//! The lab is planned in memory first (a pure function of the spec and its
//! seed), then written in one transaction with one multi-row `INSERT` per
//! table and chunk ([`shard_store::schema::chunk::by_params`]), so a lab of 10,000
//! jobs costs a few dozen statements, not tens of thousands. Ids are
//! assigned explicitly from 1, which is why only an empty master can be
//! seeded.
//!
//! What the master does with the lab (§8): each child job carries its
//! board as dependency label and one `meta_host` entry per machine on the
//! board, so it goes to the shard that owns the board; each suite job has
//! one hostless entry and stays on the master, and its keyvals travel as
//! the suite keyvals of its children.

mod names;
mod plan;

use std::fmt;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityName,
    EntityTrait, Iterable, QuerySelect, Statement, TransactionTrait,
};
use shard_store::StoreError;
use shard_store::schema::chunk;
use shard_store::schema::entity::{groups, hosts, jobs, labels, shards, users};

use plan::{Lab, plan};

/// How big a lab to create; every count is per parent (per shard, per
/// board, per suite, per host, per job).
///
/// [`LabSpec::default`] is the demo's lab, [`LabSpec::bench`] the
/// benchmark's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSpec {
    /// Shards, named `shard1`, `shard2`, ...
    pub shards: u32,
    /// Boards each shard owns (`board:<name>` labels in `afe_shards_labels`).
    pub boards_per_shard: u32,
    /// Hosts carrying each board label.
    pub hosts_per_board: u32,
    /// Suite jobs per board: hostless, they stay on the master.
    pub suites_per_board: u32,
    /// Child jobs per suite job, each with `parent_job_id` = the suite.
    pub jobs_per_suite: u32,
    /// Entries per child job, each a meta-host entry on the job's board.
    pub hqes_per_job: u32,
    /// Labels besides the board that every host carries (`pool:suites`,
    /// `sku:...`, ...); never assigned to a shard. The first one is also
    /// a dependency label of every child job.
    pub extra_labels_per_host: u32,
    /// ACL groups; every host is in all of them.
    pub acl_groups: u32,
    /// Users per ACL group (`user1`, `user2`, ...; each in one group).
    pub users_per_group: u32,
    /// Attributes per host (`serial_number`, `HWID`, ...).
    pub attributes_per_host: u32,
    /// Keyvals per child job (`build`, `suite`, ...).
    pub keyvals_per_job: u32,
    /// Keyvals per suite job: the suite keyvals of its children.
    pub keyvals_per_suite: u32,
    /// Every Nth host (by id) is leased and never goes to a shard; 0: none.
    pub leased_every: u32,
    /// Every Nth host (by id) is locked by `user1`; 0: none.
    pub locked_every: u32,
    /// Seed of the generator behind priorities, creation times and serial
    /// numbers: the same spec gives the same lab.
    pub seed: u64,
}

impl Default for LabSpec {
    /// The demo's lab: 3 shards × 2 boards × 4 hosts (24 hosts), 2 suites
    /// of 4 two-entry child jobs per board (60 jobs, 108 entries: each
    /// child job goes up once per finishing entry). Small enough that
    /// a few shard clients at a 0.5 s pause and the scheduler simulator
    /// finish it within seconds on 2 cores; every board keeps at least two
    /// hosts that are neither leased (7, 14, 21) nor locked (5, 10, 15, 20).
    fn default() -> Self {
        LabSpec {
            shards: 3,
            boards_per_shard: 2,
            hosts_per_board: 4,
            suites_per_board: 2,
            jobs_per_suite: 4,
            hqes_per_job: 2,
            extra_labels_per_host: 2,
            acl_groups: 1,
            users_per_group: 3,
            attributes_per_host: 2,
            keyvals_per_job: 3,
            keyvals_per_suite: 3,
            leased_every: 7,
            locked_every: 5,
            seed: 1,
        }
    }
}

impl LabSpec {
    /// The benchmark's large lab, all on one shard so that one heartbeat
    /// carries it whole: 10 boards × 200 hosts (2,000 hosts, each with 4
    /// labels, 2 ACL groups of 5 users and 4 attributes, none leased, 1 in
    /// 50 locked) and 10 suites of 100 child jobs per board (10,000 child
    /// jobs, each with 2 entries, 2 dependency labels and 3 keyvals; 100
    /// suites with 5 keyvals each: 500 suite keyvals).
    pub fn bench() -> Self {
        LabSpec {
            shards: 1,
            boards_per_shard: 10,
            hosts_per_board: 200,
            suites_per_board: 10,
            jobs_per_suite: 100,
            hqes_per_job: 2,
            extra_labels_per_host: 3,
            acl_groups: 2,
            users_per_group: 5,
            attributes_per_host: 4,
            keyvals_per_job: 3,
            keyvals_per_suite: 5,
            leased_every: 0,
            locked_every: 50,
            seed: 1,
        }
    }
}

/// What [`seed`] wrote: rows per kind of record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabSummary {
    /// `afe_shards` rows.
    pub shards: u64,
    /// Board labels (one per `afe_shards_labels` row).
    pub boards: u64,
    /// `afe_labels` rows: boards and extra labels.
    pub labels: u64,
    /// `afe_hosts` rows.
    pub hosts: u64,
    /// Hosts with `leased = 1`.
    pub leased: u64,
    /// Hosts with `locked = 1`.
    pub locked: u64,
    /// `afe_users` rows.
    pub users: u64,
    /// `afe_acl_groups` rows.
    pub groups: u64,
    /// `afe_host_attributes` rows.
    pub attributes: u64,
    /// Suite jobs (hostless, no parent).
    pub suite_jobs: u64,
    /// Child jobs (with a parent).
    pub child_jobs: u64,
    /// `afe_host_queue_entries` rows.
    pub hqes: u64,
    /// `afe_job_keyvals` rows, of suites and children.
    pub keyvals: u64,
}

impl fmt::Display for LabSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self;
        write!(
            f,
            "shards: {}, boards: {}, labels: {}, hosts: {} (leased: {}, locked: {}), \
             users: {}, ACL groups: {}, host attributes: {}, suite jobs: {}, \
             child jobs: {}, host queue entries: {}, job keyvals: {}",
            s.shards,
            s.boards,
            s.labels,
            s.hosts,
            s.leased,
            s.locked,
            s.users,
            s.groups,
            s.attributes,
            s.suite_jobs,
            s.child_jobs,
            s.hqes,
            s.keyvals
        )
    }
}

/// Why a lab could not be seeded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The master already holds records whose ids the lab would reuse.
    #[error(
        "refusing to seed: the database already has rows in {}; seed an empty master database",
        tables.join(", ")
    )]
    NotEmpty {
        /// The tables found non-empty.
        tables: Vec<&'static str>,
    },
    /// The spec asks for more rows of a table than its 32-bit ids allow.
    #[error("refusing to seed: the spec asks for {count} rows of {what}, beyond 32-bit ids")]
    TooLarge {
        /// What there would be too many of.
        what: &'static str,
        /// How many the spec asks for (saturated at `u64::MAX`).
        count: u64,
    },
    /// The transaction could not be started.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A statement failed; nothing was written.
    #[error("database error while {operation}: {source}")]
    Database {
        /// What was being done, e.g. "inserting afe_hosts".
        operation: String,
        /// The driver's error.
        #[source]
        source: DbErr,
    },
}

/// Creates the lab of `spec` on an empty master database, in one
/// transaction, and returns what it wrote. Refuses a database that already
/// has shards, labels, users, ACL groups, hosts or jobs, so a demo cannot
/// seed twice.
pub async fn seed<C>(db: &C, spec: &LabSpec) -> Result<LabSummary, SeedError>
where
    C: TransactionTrait<Transaction = DatabaseTransaction>,
{
    let lab = plan(spec)?;
    let txn = shard_store::begin_write(db).await?;
    refuse_occupied(&txn).await?;
    write(&txn, &lab).await?;
    txn.commit().await.map_err(database("committing the lab"))?;
    Ok(lab.summary)
}

/// Maps a driver error to [`SeedError::Database`] for `operation`.
fn database(operation: &str) -> impl FnOnce(DbErr) -> SeedError + '_ {
    move |source| SeedError::Database {
        operation: operation.to_owned(),
        source,
    }
}

/// Refuses a master that already has any of the records whose ids the lab
/// assigns explicitly.
async fn refuse_occupied(db: &impl ConnectionTrait) -> Result<(), SeedError> {
    let tables: Vec<&'static str> = [
        occupied::<shards::Entity>(db).await?,
        occupied::<labels::Entity>(db).await?,
        occupied::<users::Entity>(db).await?,
        occupied::<groups::Entity>(db).await?,
        occupied::<hosts::Entity>(db).await?,
        occupied::<jobs::Entity>(db).await?,
    ]
    .into_iter()
    .flatten()
    .collect();
    match tables.is_empty() {
        true => Ok(()),
        false => Err(SeedError::NotEmpty { tables }),
    }
}

/// `E`'s table name if it has a row (`SELECT 1 FROM t LIMIT 1`).
async fn occupied<E: EntityTrait>(
    db: &impl ConnectionTrait,
) -> Result<Option<&'static str>, SeedError> {
    let row = E::find()
        .select_only()
        .expr(Expr::val(1))
        .limit(1)
        .into_tuple::<i32>()
        .one(db)
        .await
        .map_err(database("checking that the master is empty"))?;
    Ok(row.map(|_| E::default().table_name()))
}

/// Writes every table of the lab, parents before children.
async fn write(db: &DatabaseTransaction, lab: &Lab) -> Result<(), SeedError> {
    insert_rows(db, &lab.shards).await?;
    insert_rows(db, &lab.labels).await?;
    insert_rows(db, &lab.shard_labels).await?;
    insert_rows(db, &lab.users).await?;
    insert_rows(db, &lab.groups).await?;
    insert_rows(db, &lab.group_users).await?;
    insert_rows(db, &lab.hosts).await?;
    insert_rows(db, &lab.group_hosts).await?;
    insert_rows(db, &lab.host_labels).await?;
    insert_rows(db, &lab.attributes).await?;
    insert_rows(db, &lab.jobs).await?;
    insert_rows(db, &lab.job_labels).await?;
    insert_rows(db, &lab.hqes).await?;
    insert_rows(db, &lab.keyvals).await?;
    if db.get_database_backend() == DbBackend::Postgres {
        advance_sequences(db).await?;
    }
    Ok(())
}

/// One multi-row `INSERT` per chunk of rows (none for no rows).
async fn insert_rows<A>(db: &DatabaseTransaction, rows: &[A]) -> Result<(), SeedError>
where
    A: ActiveModelTrait + Clone + Send + Sync,
{
    let columns = <A::Entity as EntityTrait>::Column::iter().count();
    let table = A::Entity::default().table_name();
    for chunk in chunk::by_params(db.get_database_backend(), columns, rows) {
        A::Entity::insert_many(chunk.iter().cloned())
            .exec_without_returning(db)
            .await
            .map_err(|source| SeedError::Database {
                operation: format!("inserting {table}"),
                source,
            })?;
    }
    Ok(())
}

/// PostgreSQL's id sequences do not see explicit ids: move each past the
/// highest id seeded, so rows added later without an id do not collide.
/// (MySQL and SQLite follow explicit ids by themselves.)
async fn advance_sequences(db: &DatabaseTransaction) -> Result<(), SeedError> {
    let tables = [
        "afe_shards",
        "afe_labels",
        "afe_users",
        "afe_acl_groups",
        "afe_hosts",
        "afe_jobs",
        "afe_host_queue_entries",
    ];
    let calls: Vec<String> = tables
        .iter()
        .map(|t| format!("(SELECT setval(pg_get_serial_sequence('{t}', 'id'), MAX(id)) FROM {t})"))
        .collect();
    let sql = format!("SELECT {}", calls.join(", "));
    db.execute_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .map_err(database("advancing the id sequences"))?;
    Ok(())
}
