//! A lab's cleanup job: jobs finished a while ago are deleted with their
//! entries, dependencies and keyvals, so the databases reach a steady
//! size, as a lab's periodic cleanup keeps them.
//!
//! On a shard, "finished" is what the shard itself can see: every entry
//! complete and the job's `shard_id` set back by the upload (the scheduler
//! clears it before an entry's `complete`, §1). A job must stay so for
//! [`SHARD_AGE`] before it goes, the stand-in for the real cleanup's
//! "older than N days": a job purged before its upload would be lost,
//! which the soak's final checks would show. On the master every entry
//! complete is enough, for [`MASTER_AGE`]: longer than a shard keeps its
//! copy, so a shard's finished job is always still there to compare.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect, QueryTrait};
use shard_store::Store;
use shard_store::schema::entity::{hqes, job_labels, jobs, keyvals};

/// How long a job stays finished and uploaded on a shard before it is
/// purged.
pub const SHARD_AGE: Duration = Duration::from_secs(30);
/// How long a job stays finished on the master before it is purged.
pub const MASTER_AGE: Duration = Duration::from_secs(120);

/// The cleanup of one database.
pub struct Purge {
    db: Store,
    age: Duration,
    /// A shard's: only jobs whose upload is done (`shard_id` set).
    shard: bool,
    /// When each finished, uploaded job was first seen so.
    seen: HashMap<i32, Instant>,
    /// Jobs deleted so far.
    pub purged: u64,
}

impl Purge {
    /// The cleanup of a shard database.
    pub fn shard(db: Store) -> Purge {
        Purge {
            db,
            age: SHARD_AGE,
            shard: true,
            seen: HashMap::new(),
            purged: 0,
        }
    }

    /// The cleanup of the master's database.
    pub fn master(db: Store) -> Purge {
        Purge {
            db,
            age: MASTER_AGE,
            shard: false,
            seen: HashMap::new(),
            purged: 0,
        }
    }

    /// Notes the jobs now finished (and, on a shard, uploaded), and
    /// deletes those noted more than the age ago, in one transaction.
    pub async fn step(&mut self) -> Result<()> {
        let conn = self.db.connection();
        let unfinished = hqes::Entity::find()
            .select_only()
            .column(hqes::Column::JobId)
            .filter(
                Condition::any()
                    .add(hqes::Column::Complete.eq(false))
                    .add(hqes::Column::Complete.is_null()),
            )
            .into_query();
        let mut finished = jobs::Entity::find()
            .select_only()
            .column(jobs::Column::Id)
            .filter(jobs::Column::Id.not_in_subquery(unfinished));
        if self.shard {
            finished = finished.filter(jobs::Column::ShardId.is_not_null());
        }
        let done: Vec<i32> = finished
            .into_tuple::<i32>()
            .all(conn)
            .await
            .context("reading the shard's finished jobs")?;
        let now = Instant::now();
        let mut seen = HashMap::with_capacity(done.len());
        for id in done {
            seen.insert(id, self.seen.get(&id).copied().unwrap_or(now));
        }
        self.seen = seen;
        let old: Vec<i32> = self
            .seen
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= self.age)
            .map(|(id, _)| *id)
            .collect();
        if old.is_empty() {
            return Ok(());
        }
        let txn = shard_store::begin_write(conn)
            .await
            .context("starting the purge")?;
        for chunk in old.chunks(500) {
            let ids = chunk.iter().copied();
            keyvals::Entity::delete_many()
                .filter(keyvals::Column::JobId.is_in(ids.clone()))
                .exec(&txn)
                .await
                .context("purging keyvals")?;
            job_labels::Entity::delete_many()
                .filter(job_labels::Column::JobId.is_in(ids.clone()))
                .exec(&txn)
                .await
                .context("purging dependency labels")?;
            hqes::Entity::delete_many()
                .filter(hqes::Column::JobId.is_in(ids.clone()))
                .exec(&txn)
                .await
                .context("purging entries")?;
            jobs::Entity::delete_many()
                .filter(jobs::Column::Id.is_in(ids))
                .exec(&txn)
                .await
                .context("purging jobs")?;
        }
        txn.commit().await.context("committing the purge")?;
        for id in &old {
            self.seen.remove(id);
        }
        self.purged += old.len() as u64;
        Ok(())
    }
}
