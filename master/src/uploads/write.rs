//! Writing the rows an upload produced: an upsert on the primary key, one
//! statement per chunk. Every row already exists, so the upsert is an
//! update of every column, as Django's `save()` of the whole model is.

use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ConnectionTrait, Value};
use shard_store::chunk;
use shard_store::convert::storable;
use shard_store::entity::{afe_host_queue_entries as hqes, afe_jobs as jobs};

use crate::Fault;

/// Overwrites the given job rows.
pub(super) async fn jobs(db: &impl ConnectionTrait, rows: &[&jobs::Model]) -> Result<(), Fault> {
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
        J::RunVerify,
        J::EmailList,
        J::RebootBefore,
        J::RebootAfter,
        J::ParseFailedRepair,
        J::MaxRuntimeHrs,
        J::DroneSetId,
        J::ParameterizedJobId,
        J::MaxRuntimeMins,
        J::ParentJobId,
        J::TestRetry,
        J::RunReset,
        J::TimeoutMins,
        J::ShardId,
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
                j.run_verify.into(),
                j.email_list.clone().into(),
                j.reboot_before.into(),
                j.reboot_after.into(),
                j.parse_failed_repair.into(),
                j.max_runtime_hrs.into(),
                j.drone_set_id.into(),
                j.parameterized_job_id.into(),
                j.max_runtime_mins.into(),
                j.parent_job_id.into(),
                j.test_retry.into(),
                j.run_reset.into(),
                j.timeout_mins.into(),
                j.shard_id.into(),
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

/// Overwrites the given entry rows.
pub(super) async fn hqes(db: &impl ConnectionTrait, rows: &[&hqes::Model]) -> Result<(), Fault> {
    use hqes::Column as Q;
    let b = db.get_database_backend();
    let columns = [
        Q::Id,
        Q::JobId,
        Q::HostId,
        Q::Status,
        Q::MetaHost,
        Q::Active,
        Q::Complete,
        Q::Deleted,
        Q::ExecutionSubdir,
        Q::AtomicGroupId,
        Q::Aborted,
        Q::StartedOn,
        Q::FinishedOn,
    ];
    for chunk in chunk::by_params(b, columns.len(), rows) {
        let mut stmt = Query::insert();
        stmt.into_table(hqes::Entity).columns(columns);
        for q in chunk {
            let values: Vec<Value> = vec![
                q.id.into(),
                q.job_id.into(),
                q.host_id.into(),
                q.status.clone().into(),
                q.meta_host.into(),
                q.active.into(),
                q.complete.into(),
                q.deleted.into(),
                q.execution_subdir.clone().into(),
                q.atomic_group_id.into(),
                q.aborted.into(),
                Value::ChronoDateTime(storable(b, q.started_on)),
                Value::ChronoDateTime(storable(b, q.finished_on)),
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
