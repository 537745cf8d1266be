//! `params[0]` of `shard_heartbeat` as the master reads it (§3): the
//! uploads stay raw JSON objects, because the real master overwrites
//! exactly the keys a record carries (`update_from_serialized`), so a
//! record with only some fields, or with keys it does not know, is valid.

use serde::Deserialize;
use serde_json::{Map, Value};
use shard_model::{HeartbeatRequest, Hqe, Job, ToOne};

use crate::Fault;

/// The keyword arguments of one heartbeat, uploads unparsed.
///
/// Every list defaults to empty when absent, as the original's keyword
/// arguments do.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Heartbeat {
    /// The calling shard's hostname.
    pub shard_hostname: String,
    /// Jobs the shard has with an incomplete entry.
    #[serde(default)]
    pub known_job_ids: Vec<i32>,
    /// Valid hosts the shard has.
    #[serde(default)]
    pub known_host_ids: Vec<i32>,
    /// The status of each known host, in the same order.
    #[serde(default)]
    pub known_host_statuses: Vec<Option<String>>,
    /// Uploaded job records, as sent.
    #[serde(default)]
    pub jobs: Vec<Value>,
    /// Uploaded entry records, as sent.
    #[serde(default)]
    pub hqes: Vec<Value>,
}

impl Heartbeat {
    /// The heartbeat a typed request describes. Uploads get their upload
    /// shape plus every relation key the record carries, so that the
    /// master refuses them as it would on the wire.
    pub fn from_request(request: &HeartbeatRequest) -> Result<Heartbeat, Fault> {
        Ok(Heartbeat {
            shard_hostname: request.shard_hostname.clone(),
            known_job_ids: request.known_job_ids.clone(),
            known_host_ids: request.known_host_ids.clone(),
            known_host_statuses: request.known_host_statuses.clone(),
            jobs: request
                .jobs
                .iter()
                .map(job_upload)
                .collect::<Result<_, _>>()?,
            hqes: request
                .hqes
                .iter()
                .map(hqe_upload)
                .collect::<Result<_, _>>()?,
        })
    }
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, Fault> {
    serde_json::to_value(value).map_err(|e| Fault::new("ValueError", e.to_string()))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn job_upload(job: &Job) -> Result<Value, Fault> {
    let mut record = object(to_value(job)?);
    if let Some(labels) = &job.dependency_labels {
        record.insert("dependency_labels".to_owned(), to_value(labels)?);
    }
    if let Some(entries) = &job.hostqueueentry_set {
        record.insert("hostqueueentry_set".to_owned(), to_value(entries)?);
    }
    if let Some(keyvals) = &job.jobkeyval_set {
        record.insert("jobkeyval_set".to_owned(), to_value(keyvals)?);
    }
    if !matches!(job.shard, ToOne::Absent) {
        record.insert("shard".to_owned(), to_value(&job.shard)?);
    }
    Ok(Value::Object(record))
}

fn hqe_upload(hqe: &Hqe) -> Result<Value, Fault> {
    let mut record = object(to_value(hqe)?);
    if !hqe.meta_host.is_absent() {
        record.insert("meta_host".to_owned(), to_value(&hqe.meta_host)?);
    }
    Ok(Value::Object(record))
}
