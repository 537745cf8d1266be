//! §8 step 2: persisting the jobs and entries a shard uploads.
//!
//! Every uploaded record must exist on the master (else the whole call is
//! refused with `UnallowedRecordsSentToMaster`, before anything is written);
//! a job assigned to another shard is skipped silently; an entry counts only
//! if its job was accepted in the same call. Accepted records get every
//! local field overwritten, as the original's `update_from_serialized`,
//! which refuses (`ValueError`) an accepted record carrying a relation key
//! (`meta_host`, `hostqueueentry_set`, ...). The checks run in the
//! original's order: existence, then owner, then relations.

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Value};
use shard_model::{Hqe, Job};
use shard_store::chunk;
use shard_store::convert::storable;
use shard_store::entity::{afe_host_queue_entries as hqes, afe_jobs as jobs};

use crate::Fault;

/// What the upload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Persisted {
    /// Jobs whose fields were overwritten.
    pub jobs: Vec<i32>,
    /// Entries whose fields were overwritten.
    pub hqes: Vec<i32>,
}

/// Checks and writes the uploaded `jobs` and `hqes` of shard `shard_id`.
pub async fn persist(
    db: &impl ConnectionTrait,
    shard_id: i32,
    uploaded_jobs: &[Job],
    uploaded_hqes: &[Hqe],
) -> Result<Persisted, Fault> {
    let job_ids: Vec<i32> = uploaded_jobs.iter().map(|j| j.id).collect();
    let owners: HashMap<i32, Option<i32>> =
        select_pairs(db, jobs::Column::Id, jobs::Column::ShardId, &job_ids).await?;
    if let Some(missing) = job_ids.iter().find(|id| !owners.contains_key(id)) {
        return Err(unallowed(*missing, "Job"));
    }
    let accepted: HashSet<i32> = job_ids
        .iter()
        .copied()
        .filter(|id| {
            owners
                .get(id)
                .is_some_and(|owner| owner.is_none_or(|o| o == shard_id))
        })
        .collect();

    let hqe_ids: Vec<i32> = uploaded_hqes.iter().map(|q| q.id).collect();
    let hqe_jobs: HashMap<i32, Option<i32>> =
        select_pairs(db, hqes::Column::Id, hqes::Column::JobId, &hqe_ids).await?;
    if let Some(missing) = hqe_ids.iter().find(|id| !hqe_jobs.contains_key(id)) {
        return Err(unallowed(*missing, "HostQueueEntry"));
    }

    let jobs_in: Vec<&Job> = uploaded_jobs
        .iter()
        .filter(|j| accepted.contains(&j.id))
        .collect();
    let hqes_in: Vec<&Hqe> = uploaded_hqes
        .iter()
        .filter(|q| {
            hqe_jobs
                .get(&q.id)
                .copied()
                .flatten()
                .is_some_and(|job| accepted.contains(&job))
        })
        .collect();
    if let Some(job) = jobs_in.iter().find(|j| has_relations(j)) {
        return Err(foreign_objects("job", job.id));
    }
    if let Some(hqe) = hqes_in.iter().find(|q| !q.meta_host.is_absent()) {
        return Err(foreign_objects("host queue entry", hqe.id));
    }
    overwrite_jobs(db, &jobs_in).await?;
    overwrite_hqes(db, &hqes_in).await?;
    Ok(Persisted {
        jobs: jobs_in.iter().map(|j| j.id).collect(),
        hqes: hqes_in.iter().map(|q| q.id).collect(),
    })
}

fn has_relations(job: &Job) -> bool {
    job.dependency_labels.is_some()
        || job.hostqueueentry_set.is_some()
        || job.jobkeyval_set.is_some()
        || !job.shard.is_absent()
}

fn foreign_objects(kind: &str, id: i32) -> Fault {
    Fault::new(
        "ValueError",
        format!("Serialized must not contain foreign objects: {kind} {id}"),
    )
}

fn unallowed(id: i32, kind: &str) -> Fault {
    Fault::new(
        "UnallowedRecordsSentToMaster",
        format!("Object with pk {id} of type {kind} does not exist on master."),
    )
}

/// `id → column` for the rows of `ids`.
async fn select_pairs<C: ColumnTrait>(
    db: &impl ConnectionTrait,
    id: C,
    column: C,
    ids: &[i32],
) -> Result<HashMap<i32, Option<i32>>, Fault>
where
    <C as ColumnTrait>::EntityName: EntityTrait<Column = C>,
{
    let mut map = HashMap::new();
    for chunk in chunk::by_params(db.get_database_backend(), 1, ids) {
        let rows: Vec<(i32, Option<i32>)> = <C::EntityName as EntityTrait>::find()
            .select_only()
            .column(id)
            .column(column)
            .filter(id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        map.extend(rows);
    }
    Ok(map)
}

/// Overwrites the local fields of existing jobs: an upsert on the primary
/// key, one statement per chunk.
async fn overwrite_jobs(db: &impl ConnectionTrait, rows: &[&Job]) -> Result<(), Fault> {
    use jobs::Column as J;
    let b = db.get_database_backend();
    let columns = [
        J::Id,
        J::Owner,
        J::Name,
        J::Priority,
        J::ControlFile,
        J::ControlType,
        J::CreatedOn,
        J::SynchCount,
        J::Timeout,
        J::TimeoutMins,
        J::MaxRuntimeHrs,
        J::MaxRuntimeMins,
        J::TestRetry,
        J::RunVerify,
        J::RunReset,
        J::ParseFailedRepair,
        J::EmailList,
        J::RebootBefore,
        J::RebootAfter,
        J::RequireSsp,
    ];
    for chunk in chunk::by_params(b, columns.len(), rows) {
        let mut stmt = Query::insert();
        stmt.into_table(jobs::Entity).columns(columns);
        for j in chunk {
            let values: Vec<Value> = vec![
                j.id.into(),
                j.owner.clone().into(),
                j.name.clone().into(),
                j.priority.into(),
                j.control_file.clone().into(),
                j.control_type.into(),
                Value::ChronoDateTime(storable(b, j.created_on)),
                j.synch_count.into(),
                j.timeout.into(),
                j.timeout_mins.into(),
                j.max_runtime_hrs.into(),
                j.max_runtime_mins.into(),
                j.test_retry.into(),
                j.run_verify.into(),
                j.run_reset.into(),
                j.parse_failed_repair.into(),
                j.email_list.clone().into(),
                j.reboot_before.into(),
                j.reboot_after.into(),
                j.require_ssp.into(),
            ];
            stmt.values(values.into_iter().map(Expr::from))
                .map_err(|e| Fault::new("DatabaseError", e.to_string()))?;
        }
        stmt.on_conflict(
            OnConflict::column(J::Id)
                .update_columns(columns[1..].iter().copied())
                .to_owned(),
        );
        db.execute(&stmt).await?;
    }
    Ok(())
}

/// Overwrites the local fields of existing entries (not `job_id`: the
/// upload does not carry it, the master keeps its own).
async fn overwrite_hqes(db: &impl ConnectionTrait, rows: &[&Hqe]) -> Result<(), Fault> {
    use hqes::Column as Q;
    let b = db.get_database_backend();
    let columns = [
        Q::Id,
        Q::Status,
        Q::Active,
        Q::Complete,
        Q::Deleted,
        Q::Aborted,
        Q::ExecutionSubdir,
        Q::StartedOn,
        Q::FinishedOn,
        Q::HostId,
    ];
    for chunk in chunk::by_params(b, columns.len(), rows) {
        let mut stmt = Query::insert();
        stmt.into_table(hqes::Entity).columns(columns);
        for q in chunk {
            let values: Vec<Value> = vec![
                q.id.into(),
                q.status.clone().into(),
                q.active.into(),
                q.complete.into(),
                q.deleted.into(),
                q.aborted.into(),
                q.execution_subdir.clone().into(),
                Value::ChronoDateTime(storable(b, q.started_on)),
                Value::ChronoDateTime(storable(b, q.finished_on)),
                q.host_id.into(),
            ];
            stmt.values(values.into_iter().map(Expr::from))
                .map_err(|e| Fault::new("DatabaseError", e.to_string()))?;
        }
        stmt.on_conflict(
            OnConflict::column(Q::Id)
                .update_columns(columns[1..].iter().copied())
                .to_owned(),
        );
        db.execute(&stmt).await?;
    }
    Ok(())
}
