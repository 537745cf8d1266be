//! Builders for a master database and readers of its rows, shared by the
//! master's tests.
//!
//! A master database is filled with `shard_store::apply`: a host or job
//! record whose `shard` is `ToOne::Null` stays unassigned. Shards and their
//! labels (`afe_shards_labels`) are written directly. Builders return
//! minimal valid records; a test sets exactly the fields its behaviour
//! depends on.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::{Value, json};
use shard_master::request::Heartbeat;
use shard_master::{Call, Fault, Mode};
use shard_model::{
    HeartbeatRequest, HeartbeatResponse, Host, HostAttribute, Hqe, Job, JobKeyval, ToOne,
};
use shard_store::schema::entity::prelude::*;
use shard_store::schema::entity::{
    afe_host_queue_entries, afe_hosts, afe_jobs, afe_labels, afe_shards, afe_shards_labels,
};
use shard_store::testing::TestDb;

use shard_model::testing::records as base;
pub use shard_model::testing::records::{at, group, label, shard, user};

/// An attribute without a row id.
pub fn attribute(name: &str, value: &str) -> HostAttribute {
    HostAttribute {
        id: None,
        ..base::attribute(name, value)
    }
}

/// An unassigned, unleased, ready host carrying the labels `labels`.
pub fn host(id: i32, labels: &[i32]) -> Host {
    Host {
        labels: Some(labels.iter().map(|&l| label(l)).collect()),
        shard: ToOne::Null,
        ..base::host(id)
    }
}

/// Host `id` carrying label `label`, assigned to shard `shard_id`.
pub fn assigned_host(id: i32, label: i32, shard_id: i32) -> Host {
    Host {
        shard: ToOne::Set(shard(shard_id)),
        ..host(id, &[label])
    }
}

/// A queued entry on any host of label `label_id`.
pub fn hqe_meta(id: i32, label_id: i32) -> Hqe {
    Hqe {
        meta_host: ToOne::Set(label(label_id)),
        ..base::hqe(id, None)
    }
}

/// A queued entry bound to host `host_id`, without a meta host.
pub fn hqe_on(id: i32, host_id: i32) -> Hqe {
    Hqe {
        host_id: Some(host_id),
        meta_host: ToOne::Null,
        ..hqe_meta(id, 0)
    }
}

/// A queued entry with neither a host nor a meta host.
pub fn hqe_hostless(id: i32) -> Hqe {
    Hqe {
        meta_host: ToOne::Null,
        ..hqe_meta(id, 0)
    }
}

/// An unassigned job with the entries `hqes`, no dependency labels, no
/// keyvals and no parent.
pub fn job(id: i32, hqes: Vec<Hqe>) -> Job {
    Job {
        parent_job_id: None,
        dependency_labels: Some(vec![]),
        hostqueueentry_set: Some(hqes),
        jobkeyval_set: Some(vec![]),
        shard: ToOne::Null,
        ..base::job(id)
    }
}

/// A keyval without a row id.
pub fn keyval(job_id: i32, key: &str, value: &str) -> JobKeyval {
    JobKeyval {
        id: None,
        ..base::keyval(job_id, key, value)
    }
}

/// Creates shard `id` (named `shard<id>`) owning the labels `labels`
/// (created when missing).
pub async fn add_shard(db: &TestDb, id: i32, labels: &[i32]) {
    let conn = db.store.connection();
    if Shards::find_by_id(id).one(conn).await.unwrap().is_none() {
        afe_shards::ActiveModel {
            id: Set(id),
            hostname: Set(format!("shard{id}")),
        }
        .insert(conn)
        .await
        .unwrap();
    }
    for &label_id in labels {
        if Labels::find_by_id(label_id)
            .one(conn)
            .await
            .unwrap()
            .is_none()
        {
            let l = label(label_id);
            afe_labels::ActiveModel {
                id: Set(l.id),
                name: Set(l.name),
                kernel_config: Set(l.kernel_config),
                platform: Set(l.platform),
                invalid: Set(l.invalid),
                only_if_needed: Set(l.only_if_needed),
                atomic_group_id: Set(None),
            }
            .insert(conn)
            .await
            .unwrap();
        }
        afe_shards_labels::ActiveModel {
            shard_id: Set(id),
            label_id: Set(label_id),
            ..Default::default()
        }
        .insert(conn)
        .await
        .unwrap();
    }
}

/// Moves label `label_id` to shard `to` (a board handed to another shard).
pub async fn move_label(db: &TestDb, label_id: i32, to: i32) {
    let conn = db.store.connection();
    afe_shards_labels::Entity::delete_many()
        .filter(afe_shards_labels::Column::LabelId.eq(label_id))
        .exec(conn)
        .await
        .unwrap();
    afe_shards_labels::ActiveModel {
        shard_id: Set(to),
        label_id: Set(label_id),
        ..Default::default()
    }
    .insert(conn)
    .await
    .unwrap();
}

/// Fills the master database with hosts, jobs and (suite) keyvals; every
/// record must land.
pub async fn seed(db: &TestDb, hosts: Vec<Host>, jobs: Vec<Job>, keyvals: Vec<JobKeyval>) {
    let records = HeartbeatResponse {
        hosts,
        jobs,
        suite_keyvals: keyvals,
        incorrect_host_ids: vec![],
        rejected: vec![],
        defects: Vec::new(),
    };
    let report = shard_store::apply(db.store.connection(), &db.store.layout(), &records)
        .await
        .unwrap();
    assert_eq!(report.rejected, vec![], "the test's master data must land");
}

/// A heartbeat of `shard<shard_id>` that knows nothing and uploads nothing.
pub fn request(shard_id: i32) -> HeartbeatRequest {
    HeartbeatRequest {
        shard_hostname: format!("shard{shard_id}"),
        known_job_ids: vec![],
        known_host_ids: vec![],
        known_host_statuses: vec![],
        jobs: vec![],
        hqes: vec![],
    }
}

/// Answers `request`, which must succeed.
pub async fn heartbeat(db: &TestDb, request: &HeartbeatRequest) -> HeartbeatResponse {
    match shard_master::shard_heartbeat(db.store.connection(), request).await {
        Ok(response) => response,
        Err(fault) => panic!("heartbeat refused: {fault}"),
    }
}

/// Answers `request`, which must be refused.
pub async fn refused(db: &TestDb, request: &HeartbeatRequest) -> Fault {
    match shard_master::shard_heartbeat(db.store.connection(), request).await {
        Ok(response) => panic!("heartbeat answered instead of refused: {response:?}"),
        Err(fault) => fault,
    }
}

/// Both modes, for behaviours they share.
pub const MODES: [Mode; 2] = [Mode::Strict, Mode::Upstream];

/// Answers `request` in `mode` as a superuser would be answered (no ACL
/// check), or returns the refusal.
pub async fn heartbeat_in(
    db: &TestDb,
    request: &HeartbeatRequest,
    mode: Mode,
) -> Result<HeartbeatResponse, Fault> {
    let call = Call { mode, user: None };
    let heartbeat = Heartbeat::from_request(request).unwrap();
    shard_master::heartbeat_with(db.store.connection(), &heartbeat, &call).await
}

/// Answers a heartbeat whose keyword arguments are the JSON `kwargs`, in
/// `mode` as a superuser would be answered, or returns the refusal.
pub async fn heartbeat_json(
    db: &TestDb,
    kwargs: Value,
    mode: Mode,
) -> Result<HeartbeatResponse, Fault> {
    let call = Call { mode, user: None };
    let heartbeat: Heartbeat = serde_json::from_value(kwargs).unwrap();
    shard_master::heartbeat_with(db.store.connection(), &heartbeat, &call).await
}

/// Calls the JSON-RPC `method` with `kwargs` in `mode`, as `login`, and
/// returns the `result` or the refusal.
pub async fn rpc(
    db: &TestDb,
    mode: Mode,
    login: Option<&str>,
    method: &str,
    kwargs: Value,
) -> Result<Value, Fault> {
    let call = json!({"method": method, "params": [kwargs], "id": "jsonrpc"});
    shard_master::rpc::call(db.store.connection(), &call, mode, login).await
}

pub fn host_ids(response: &HeartbeatResponse) -> Vec<i32> {
    response.hosts.iter().map(|h| h.id).collect()
}

pub fn job_ids(response: &HeartbeatResponse) -> Vec<i32> {
    response.jobs.iter().map(|j| j.id).collect()
}

pub async fn host_row(db: &TestDb, id: i32) -> afe_hosts::Model {
    Hosts::find_by_id(id)
        .one(db.store.connection())
        .await
        .unwrap()
        .expect("host row")
}

pub async fn job_row(db: &TestDb, id: i32) -> afe_jobs::Model {
    Jobs::find_by_id(id)
        .one(db.store.connection())
        .await
        .unwrap()
        .expect("job row")
}

pub async fn hqe_row(db: &TestDb, id: i32) -> afe_host_queue_entries::Model {
    HostQueueEntries::find_by_id(id)
        .one(db.store.connection())
        .await
        .unwrap()
        .expect("entry row")
}

/// The shard a host is assigned to on the master.
pub async fn host_shard(db: &TestDb, id: i32) -> Option<i32> {
    host_row(db, id).await.shard_id
}

/// The shard a job is assigned to on the master.
pub async fn job_shard(db: &TestDb, id: i32) -> Option<i32> {
    job_row(db, id).await.shard_id
}

/// Every host id of the master database, in order.
pub async fn all_host_ids(db: &TestDb) -> Vec<i32> {
    Hosts::find()
        .order_by_asc(afe_hosts::Column::Id)
        .all(db.store.connection())
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect()
}
