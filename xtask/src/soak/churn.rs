//! The master's side of a steady lab: new suites with children arrive on
//! the boards in turn, a share of the children is aborted soon after, a
//! host now and then moves to a board of another shard (and later back),
//! and finished suites are completed, as the master's own scheduler does.
//!
//! Everything is written straight into the master's database, as the
//! master's frontend would on `create_job`, `abort_host_queue_entries` and
//! a label change; the master process serves the shards from there.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::prelude::DateTime as NaiveDateTime;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use shard_master::rng::SplitMix64;
use shard_store::Store;
use shard_store::schema::entity::{
    host_labels, hosts, hqes, job_labels, jobs, keyvals, shard_labels,
};

/// How fast the lab churns.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// A new suite every this often.
    pub suite_every: Duration,
    /// Child jobs per suite.
    pub children: u32,
    /// Entries per child job (meta-host entries on the suite's board).
    pub hqes_per_job: u32,
    /// One child in this many is aborted soon after it is created.
    pub abort_one_in: u64,
    /// A host moves to a board of another shard (or back) this often.
    pub move_every: Duration,
}

/// A board: its label and the shard that owns it.
#[derive(Debug, Clone, Copy)]
struct Board {
    label_id: i32,
    shard_id: i32,
}

/// A host moved away from its board, to be moved back next time.
#[derive(Debug, Clone, Copy)]
struct Moved {
    host_id: i32,
    home: i32,
    away: i32,
}

/// The churn's state: the boards, the next ids, what is due.
pub struct Churn {
    db: Store,
    rates: Rates,
    boards: Vec<Board>,
    owner: String,
    next_job: i32,
    next_hqe: i32,
    next_board: usize,
    suites: u64,
    aborts_due: VecDeque<(Instant, i32)>,
    moved: Option<Moved>,
    last_suite: Option<Instant>,
    last_move: Instant,
    rng: SplitMix64,
    /// Child jobs created so far.
    pub children_created: u64,
    /// Child jobs aborted so far.
    pub aborted: u64,
    /// Host moves so far (away and back each count).
    pub moves: u64,
}

impl Churn {
    /// Reads the boards and the highest ids of the seeded master.
    pub async fn new(db: Store, rates: Rates, seed: u64) -> Result<Churn> {
        let conn = db.connection();
        let boards: Vec<Board> = shard_labels::Entity::find()
            .order_by_asc(shard_labels::Column::LabelId)
            .all(conn)
            .await
            .context("reading the boards of the master")?
            .into_iter()
            .map(|l| Board {
                label_id: l.label_id,
                shard_id: l.shard_id,
            })
            .collect();
        anyhow::ensure!(!boards.is_empty(), "the master has no boards to churn on");
        let owner = shard_store::schema::entity::users::Entity::find()
            .order_by_asc(shard_store::schema::entity::users::Column::Id)
            .one(conn)
            .await
            .context("reading a user of the master")?
            .and_then(|u| u.login)
            .unwrap_or_else(|| "chromeos-test".to_owned());
        let next_job = max_id::<jobs::Entity, _>(conn, jobs::Column::Id).await? + 1;
        let next_hqe = max_id::<hqes::Entity, _>(conn, hqes::Column::Id).await? + 1;
        Ok(Churn {
            db,
            rates,
            boards,
            owner,
            next_job,
            next_hqe,
            next_board: 0,
            suites: 0,
            aborts_due: VecDeque::new(),
            moved: None,
            last_suite: None,
            last_move: Instant::now(),
            rng: SplitMix64::new(seed),
            children_created: 0,
            aborted: 0,
            moves: 0,
        })
    }

    /// Does whatever is due now: a suite, aborts, a host move, and the
    /// completion of finished suites.
    pub async fn step(&mut self, creating: bool) -> Result<()> {
        let now = Instant::now();
        if creating
            && self
                .last_suite
                .is_none_or(|t| now.duration_since(t) >= self.rates.suite_every)
        {
            self.last_suite = Some(now);
            self.add_suite().await?;
        }
        while let Some(&(due, job_id)) = self.aborts_due.front() {
            if due > now {
                break;
            }
            self.aborts_due.pop_front();
            self.abort(job_id).await?;
        }
        if creating && now.duration_since(self.last_move) >= self.rates.move_every {
            self.last_move = now;
            self.move_host().await?;
        }
        if !creating && let Some(moved) = self.moved.take() {
            // The lab ends as it began: every host on its own board.
            self.relabel(moved.host_id, moved.away, moved.home).await?;
            self.moves += 1;
        }
        shard_master::suites::complete_finished_suites(self.db.connection())
            .await
            .context("completing the finished suites")?;
        Ok(())
    }

    /// One hostless suite job on the next board, with its children, each
    /// with meta-host entries on the board, the board as dependency and a
    /// few keyvals; one transaction.
    async fn add_suite(&mut self) -> Result<()> {
        let board = self.boards[self.next_board % self.boards.len()];
        self.next_board += 1;
        self.suites += 1;
        let created = now();
        let suite_id = self.next_job;
        let mut job_rows = vec![self.job(
            suite_id,
            format!("soak/suite{}", self.suites),
            None,
            created,
        )];
        let mut entry_rows = vec![self.entry(suite_id, None)];
        let mut label_rows = Vec::new();
        let mut keyval_rows = vec![keyval(suite_id, "suite", format!("soak{}", self.suites))];
        self.next_job += 1;
        let mut children = Vec::new();
        for c in 0..self.rates.children {
            let id = self.next_job;
            self.next_job += 1;
            children.push(id);
            job_rows.push(self.job(
                id,
                format!("soak/suite{}/test{c}", self.suites),
                Some(suite_id),
                created,
            ));
            for _ in 0..self.rates.hqes_per_job {
                entry_rows.push(self.entry(id, Some(board.label_id)));
            }
            label_rows.push(job_labels::ActiveModel {
                id: NotSet,
                job_id: Set(id),
                label_id: Set(board.label_id),
            });
            keyval_rows.push(keyval(
                id,
                "build",
                format!("soak-release/R{}", self.suites),
            ));
            keyval_rows.push(keyval(id, "experimental", "False".to_owned()));
        }
        let txn = shard_store::begin_write(self.db.connection())
            .await
            .context("starting the suite's transaction")?;
        jobs::Entity::insert_many(job_rows)
            .exec(&txn)
            .await
            .context("creating the suite's jobs")?;
        hqes::Entity::insert_many(entry_rows)
            .exec(&txn)
            .await
            .context("creating the suite's entries")?;
        job_labels::Entity::insert_many(label_rows)
            .exec(&txn)
            .await
            .context("creating the children's dependencies")?;
        keyvals::Entity::insert_many(keyval_rows)
            .exec(&txn)
            .await
            .context("creating the suite's keyvals")?;
        txn.commit().await.context("committing the suite")?;
        self.children_created += children.len() as u64;
        for id in children {
            if self.rng.below(self.rates.abort_one_in.max(1)) == 0 {
                // Soon: queued on the master, sent, or already running.
                let after = Duration::from_millis(500 + self.rng.below(4_000));
                self.aborts_due.push_back((Instant::now() + after, id));
            }
        }
        Ok(())
    }

    /// Aborts the job's unfinished entries, as `abort_host_queue_entries`
    /// does on the master.
    async fn abort(&mut self, job_id: i32) -> Result<()> {
        hqes::Entity::update_many()
            .col_expr(hqes::Column::Aborted, Expr::value(true))
            .filter(hqes::Column::JobId.eq(job_id))
            .filter(hqes::Column::Complete.eq(false))
            .exec(self.db.connection())
            .await
            .with_context(|| format!("aborting job {job_id}"))?;
        self.aborted += 1;
        Ok(())
    }

    /// Moves the host moved last time back home, or else one usable host of
    /// a board to a board of another shard: the master hands it to that
    /// shard and tells the old one it is no longer its own.
    async fn move_host(&mut self) -> Result<()> {
        if let Some(moved) = self.moved.take() {
            self.relabel(moved.host_id, moved.away, moved.home).await?;
            self.moves += 1;
            return Ok(());
        }
        let from = self.boards[self.rng.below(self.boards.len() as u64) as usize];
        let Some(to) = self
            .boards
            .iter()
            .copied()
            .find(|b| b.shard_id != from.shard_id)
        else {
            return Ok(()); // one shard: nowhere to move to
        };
        let host_ids: Vec<i32> = host_labels::Entity::find()
            .select_only()
            .column(host_labels::Column::HostId)
            .filter(host_labels::Column::LabelId.eq(from.label_id))
            .into_tuple::<Option<i32>>()
            .all(self.db.connection())
            .await
            .context("reading the hosts of a board")?
            .into_iter()
            .flatten()
            .collect();
        let usable: Vec<i32> = hosts::Entity::find()
            .select_only()
            .column(hosts::Column::Id)
            .filter(hosts::Column::Id.is_in(host_ids))
            .filter(hosts::Column::Locked.eq(false))
            .filter(hosts::Column::Leased.eq(false))
            .order_by_asc(hosts::Column::Id)
            .into_tuple::<i32>()
            .all(self.db.connection())
            .await
            .context("reading the usable hosts of a board")?;
        // Keep two usable hosts on the board, so its jobs still run.
        if usable.len() <= 2 {
            return Ok(());
        }
        let host_id = usable[self.rng.below(usable.len() as u64) as usize];
        self.relabel(host_id, from.label_id, to.label_id).await?;
        self.moved = Some(Moved {
            host_id,
            home: from.label_id,
            away: to.label_id,
        });
        self.moves += 1;
        Ok(())
    }

    /// Replaces the host's label `from` with `to`, in one transaction.
    async fn relabel(&self, host_id: i32, from: i32, to: i32) -> Result<()> {
        let txn = shard_store::begin_write(self.db.connection())
            .await
            .context("starting a host move")?;
        host_labels::Entity::delete_many()
            .filter(host_labels::Column::HostId.eq(host_id))
            .filter(host_labels::Column::LabelId.eq(from))
            .exec(&txn)
            .await
            .with_context(|| format!("taking host {host_id} off its board"))?;
        host_labels::Entity::insert(host_labels::ActiveModel {
            id: NotSet,
            host_id: Set(Some(host_id)),
            label_id: Set(Some(to)),
        })
        .exec(&txn)
        .await
        .with_context(|| format!("putting host {host_id} on its new board"))?;
        txn.commit().await.context("committing a host move")?;
        Ok(())
    }

    fn job(
        &self,
        id: i32,
        name: String,
        parent: Option<i32>,
        created: NaiveDateTime,
    ) -> jobs::ActiveModel {
        jobs::Model {
            owner: Some(self.owner.clone()),
            name: Some(name),
            priority: Some(50),
            created_on: Some(created),
            parent_job_id: parent,
            ..jobs::Model::with_defaults(id)
        }
        .into_active_model()
    }

    fn entry(&mut self, job_id: i32, meta_host: Option<i32>) -> hqes::ActiveModel {
        let id = self.next_hqe;
        self.next_hqe += 1;
        hqes::Model {
            meta_host,
            ..hqes::Model::queued(id, job_id)
        }
        .into_active_model()
    }
}

fn keyval(job_id: i32, key: &str, value: String) -> keyvals::ActiveModel {
    keyvals::ActiveModel {
        id: NotSet,
        job_id: Set(job_id),
        key: Set(key.to_owned()),
        value: Set(value),
    }
}

/// The lab's clock for `created_on`: local time in whole seconds.
fn now() -> NaiveDateTime {
    shard_tests::scheduler::now()
}

/// `MAX(id)` of a table, 0 when empty.
async fn max_id<E: EntityTrait, C: ColumnTrait>(
    db: &impl ConnectionTrait,
    column: C,
) -> Result<i32> {
    let max: Option<Option<i32>> = E::find()
        .select_only()
        .column_as(column.max(), "max")
        .into_tuple::<Option<i32>>()
        .one(db)
        .await
        .context("reading the highest id")?;
    Ok(max.flatten().unwrap_or(0))
}

/// The master's backlog: child jobs with an entry not complete. (Complete
/// ones are purged after a while, so the jobs created are counted by the
/// churn, not read back.)
pub async fn backlog(db: &Store) -> Result<i64> {
    let sql = "SELECT COUNT(*) FROM afe_jobs j WHERE j.parent_job_id IS NOT NULL AND EXISTS \
            (SELECT 1 FROM afe_host_queue_entries q WHERE q.job_id = j.id \
             AND (q.complete = 0 OR q.complete IS NULL))";
    let conn = db.connection();
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            sql,
        ))
        .await
        .context("reading the master's backlog")?
        .context("the backlog query returned no row")?;
    row.try_get_by_index(0)
        .context("reading the master's backlog")
}
