//! §8 step 2: persisting the jobs and entries a shard uploads, record by
//! record in the original's order (`persist_records_sent_from_shard`).
//!
//! Jobs first, then entries; for each record: it must exist on the master
//! (else the call fails with `UnallowedRecordsSentToMaster`, `…ToMain` in
//! upstream mode); a job assigned to another shard is skipped silently, and
//! an entry whose job was not persisted in the same call too; a record
//! carrying a relation key is refused (`ValueError`, as
//! `update_from_serialized`); otherwise every key it carries overwrites its
//! column (`fields`). A record may carry only some keys.
//!
//! The walk runs in memory on the rows read up front (one query per table
//! and chunk), then the rows it changed are written (one statement per
//! table and chunk). When a record fails, the records before it are written
//! in upstream mode, as the original has saved them by then; the strict
//! mode writes nothing (its transaction would roll them back anyway).

mod fields;

use std::collections::{BTreeSet, HashMap, HashSet};

use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::{Map, Value};
use shard_store::schema::entity::{hqes, jobs};
use shard_store::schema::read::models_in;
use shard_store::schema::write::upsert_models;

use crate::{Fault, Mode};

/// What the upload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Persisted {
    /// Jobs whose fields were overwritten, in upload order.
    pub jobs: Vec<i32>,
    /// Entries whose fields were overwritten, in upload order.
    pub hqes: Vec<i32>,
}

/// The relations of a job (`Job.SERIALIZATION_LINKS_TO_FOLLOW`).
const JOB_RELATIONS: [&str; 4] = [
    "dependency_labels",
    "hostqueueentry_set",
    "jobkeyval_set",
    "shard",
];

/// The relations of an entry (`HostQueueEntry.SERIALIZATION_LINKS_TO_FOLLOW`).
const HQE_RELATIONS: [&str; 1] = ["meta_host"];

/// Checks and writes the uploaded `jobs` and `hqes` of shard `shard_id`.
pub async fn persist(
    db: &impl ConnectionTrait,
    shard_id: i32,
    uploaded_jobs: &[Value],
    uploaded_hqes: &[Value],
    mode: Mode,
) -> Result<Persisted, Fault> {
    let mut persisted = Persisted::default();
    let mut job_rows =
        rows_by_id::<jobs::Entity>(db, jobs::Column::Id, ids_of(uploaded_jobs), |r| r.id).await?;
    let mut failure = walk_jobs(&mut job_rows, uploaded_jobs, shard_id, mode, &mut persisted).err();
    let mut hqe_rows = HashMap::new();
    if failure.is_none() && !uploaded_hqes.is_empty() {
        hqe_rows =
            rows_by_id::<hqes::Entity>(db, hqes::Column::Id, ids_of(uploaded_hqes), |r| r.id)
                .await?;
        failure = walk_hqes(&mut hqe_rows, uploaded_hqes, mode, &mut persisted).err();
    }
    if let Some(fault) = failure.as_ref()
        && mode.is_transactional()
    {
        return Err(fault.clone());
    }
    let job_ids: BTreeSet<i32> = persisted.jobs.iter().copied().collect();
    let changed_jobs: Vec<&jobs::Model> =
        job_ids.iter().filter_map(|id| job_rows.get(id)).collect();
    upsert_models::<jobs::Entity>(db, &changed_jobs).await?;
    let hqe_ids: BTreeSet<i32> = persisted.hqes.iter().copied().collect();
    let changed_hqes: Vec<&hqes::Model> =
        hqe_ids.iter().filter_map(|id| hqe_rows.get(id)).collect();
    upsert_models::<hqes::Entity>(db, &changed_hqes).await?;
    match failure {
        Some(fault) => Err(fault),
        None => Ok(persisted),
    }
}

/// The jobs in order: exists, is not another shard's, has no relation key,
/// has readable values.
fn walk_jobs(
    rows: &mut HashMap<i32, jobs::Model>,
    records: &[Value],
    shard_id: i32,
    mode: Mode,
    persisted: &mut Persisted,
) -> Result<(), Fault> {
    for (index, record) in records.iter().enumerate() {
        let (id, map) = identify(record, "jobs", index)?;
        let Some(row) = rows.get_mut(&id) else {
            return Err(unallowed(mode, id, "Job"));
        };
        if let Some(owner) = row.shard_id
            && owner != shard_id
        {
            tracing::debug!(
                job = id,
                owner,
                shard_id,
                "upload of another shard's job skipped"
            );
            continue;
        }
        let culprit = format!("job {id}");
        refuse_relations(map, &JOB_RELATIONS, &culprit)?;
        fields::overlay_job(row, map, &culprit)?;
        persisted.jobs.push(id);
    }
    Ok(())
}

/// The entries in order: exists, belongs to a job persisted in this call,
/// has no relation key, has readable values.
fn walk_hqes(
    rows: &mut HashMap<i32, hqes::Model>,
    records: &[Value],
    mode: Mode,
    persisted: &mut Persisted,
) -> Result<(), Fault> {
    let jobs_sent: HashSet<i32> = persisted.jobs.iter().copied().collect();
    for (index, record) in records.iter().enumerate() {
        let (id, map) = identify(record, "hqes", index)?;
        let Some(row) = rows.get_mut(&id) else {
            return Err(unallowed(mode, id, "HostQueueEntry"));
        };
        if !row.job_id.is_some_and(|job| jobs_sent.contains(&job)) {
            tracing::debug!(hqe = id, job = ?row.job_id, "upload of an entry without its job skipped");
            continue;
        }
        let culprit = format!("host queue entry {id}");
        refuse_relations(map, &HQE_RELATIONS, &culprit)?;
        fields::overlay_hqe(row, map, &culprit)?;
        persisted.hqes.push(id);
    }
    Ok(())
}

/// The record at `list[index]` as an object with its id.
fn identify<'a>(
    record: &'a Value,
    list: &str,
    index: usize,
) -> Result<(i32, &'a Map<String, Value>), Fault> {
    let position = format!("{list}[{index}]");
    let map = record.as_object().ok_or_else(|| {
        Fault::new(
            "TypeError",
            format!("{position} is not a record (a JSON object): {record}"),
        )
    })?;
    let id = fields::id(map, &position)?
        .ok_or_else(|| Fault::new("KeyError", format!("{position} has no `id`")))?;
    Ok((id, map))
}

/// The ids of the records that are objects with a readable id: the rows to
/// read up front (a record without one fails in the walk).
fn ids_of(records: &[Value]) -> BTreeSet<i32> {
    records
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|map| fields::id(map, "").ok().flatten())
        .collect()
}

fn refuse_relations(
    record: &Map<String, Value>,
    relations: &[&str],
    culprit: &str,
) -> Result<(), Fault> {
    let carried: Vec<String> = relations
        .iter()
        .filter(|key| record.contains_key(**key))
        .map(|key| format!("`{key}`"))
        .collect();
    if carried.is_empty() {
        return Ok(());
    }
    Err(Fault::new(
        "ValueError",
        format!(
            "Serialized must not contain foreign objects: {culprit} carries {}",
            carried.join(", ")
        ),
    ))
}

/// The refusal of a record the master does not have. Upstream names the
/// type as Python prints a Django model class.
fn unallowed(mode: Mode, id: i32, model: &str) -> Fault {
    let message = match mode {
        Mode::Strict => format!("Object with pk {id} of type {model} does not exist on master."),
        Mode::Upstream => format!(
            "Object with pk {id} of type <class 'autotest_lib.frontend.afe.models.{model}'> \
             does not exist on main."
        ),
    };
    Fault::new(mode.unallowed_records(), message)
}

/// The rows of `ids` (any order in), by the key `key` reads off a row.
async fn rows_by_id<E: EntityTrait>(
    db: &impl ConnectionTrait,
    id: E::Column,
    ids: BTreeSet<i32>,
    key: impl Fn(&E::Model) -> i32,
) -> Result<HashMap<i32, E::Model>, Fault> {
    Ok(models_in::<E>(db, id, id, &ids)
        .await?
        .into_iter()
        .map(|row| (key(&row), row))
        .collect())
}
