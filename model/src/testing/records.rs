//! Minimal valid records, as a master sends them, for tests of every crate.
//!
//! Every relation is present (empty, or one label and shard 1), so a record
//! applies as it is; a test changes exactly the fields its behaviour depends
//! on, with struct update syntax.

use chrono::NaiveDateTime;

use crate::{
    AclGroup, HeartbeatResponse, Host, HostAttribute, Hqe, Job, JobKeyval, Label, Shard, ToOne,
    User,
};

/// Shard `id`, named `shard<id>`.
pub fn shard(id: i32) -> Shard {
    Shard {
        id,
        hostname: format!("shard{id}"),
    }
}

/// Label `id`, named `board:b<id>`.
pub fn label(id: i32) -> Label {
    Label {
        id,
        name: Some(format!("board:b{id}")),
        kernel_config: Some(String::new()),
        platform: Some(false),
        invalid: false,
        only_if_needed: false,
    }
}

/// User `id` with `login`.
pub fn user(id: i32, login: &str) -> User {
    User {
        id,
        login: Some(login.to_owned()),
        access_level: Some(0),
        reboot_before: 1,
        reboot_after: 2,
        show_experimental: false,
    }
}

/// ACL group `id`, named `group<id>`, with `users`.
pub fn group(id: i32, users: Vec<User>) -> AclGroup {
    AclGroup {
        id,
        name: Some(format!("group{id}")),
        description: Some(String::new()),
        users: Some(users),
    }
}

/// A host attribute (row id 99, which the shard ignores).
pub fn attribute(name: &str, value: &str) -> HostAttribute {
    HostAttribute {
        id: Some(99),
        attribute: name.to_owned(),
        value: Some(value.to_owned()),
        host_id: None,
    }
}

/// A Ready host of label 1, assigned to shard 1.
pub fn host(id: i32) -> Host {
    Host {
        id,
        hostname: Some(format!("host{id}")),
        locked: Some(false),
        leased: false,
        synch_id: None,
        status: Some("Ready".to_owned()),
        invalid: Some(Some(false)),
        protection: 0,
        lock_time: None,
        dirty: false,
        lock_reason: Some(String::new()),
        aclgroup_set: Some(vec![]),
        hostattribute_set: Some(vec![]),
        labels: Some(vec![label(1)]),
        shard: ToOne::Set(shard(1)),
    }
}

/// A queued entry on `host_id`, with label 1 as its meta host.
pub fn hqe(id: i32, host_id: Option<i32>) -> Hqe {
    Hqe {
        id,
        status: Some("Queued".to_owned()),
        active: Some(false),
        complete: Some(false),
        deleted: false,
        aborted: Some(false),
        execution_subdir: String::new(),
        started_on: None,
        finished_on: None,
        host_id,
        meta_host: ToOne::Set(label(1)),
    }
}

/// A keyval of job `job_id` (row id 500, which the shard ignores).
pub fn keyval(job_id: i32, key: &str, value: &str) -> JobKeyval {
    JobKeyval {
        id: Some(500),
        job_id,
        key: key.to_owned(),
        value: Some(value.to_owned()),
    }
}

/// A datetime in any form the wire accepts.
///
/// # Panics
/// When `s` is not a datetime: a mistake in the test itself.
pub fn at(s: &str) -> NaiveDateTime {
    crate::parse_datetime(s).unwrap_or_else(|| panic!("not a datetime: {s:?}"))
}

/// A job assigned to shard 1, depending on label 1, with one queued entry
/// (id `id * 10`) on any host of label 1 and one keyval `suite=bvt`. Like
/// the real master's jobs (§11) it carries no `parent_job_id`: a test of
/// suites sets one.
pub fn job(id: i32) -> Job {
    Job {
        id,
        owner: Some("chromeos-test".to_owned()),
        name: Some(format!("job{id}")),
        priority: Some(40),
        control_file: Some("job.run_test('dummy_Pass')".to_owned()),
        control_type: Some(2),
        created_on: Some(at("2014-09-23T15:56:10")),
        synch_count: 1,
        timeout: 24,
        timeout_mins: 1440,
        max_runtime_hrs: 72,
        max_runtime_mins: 1440,
        test_retry: 0,
        run_verify: Some(false),
        run_reset: true,
        parse_failed_repair: true,
        email_list: String::new(),
        reboot_before: 1,
        reboot_after: 0,
        require_ssp: None,
        parent_job_id: None,
        dependency_labels: Some(vec![label(1)]),
        hostqueueentry_set: Some(vec![hqe(id * 10, None)]),
        jobkeyval_set: Some(vec![keyval(id, "suite", "bvt")]),
        shard: ToOne::Set(shard(1)),
    }
}

/// [`job`]`(id)` as the client uploads it (§3): its local fields only,
/// written out as the wire has them, so a test of the upload shape does
/// not trust the serializer it tests.
pub fn uploaded_job(id: i32) -> serde_json::Value {
    use serde_json::json;

    json!({
        "id": id,
        "owner": "chromeos-test",
        "name": format!("job{id}"),
        "priority": 40,
        "control_file": "job.run_test('dummy_Pass')",
        "control_type": 2,
        "created_on": "2014-09-23T15:56:10",
        "synch_count": 1,
        "timeout": 24,
        "timeout_mins": 1440,
        "max_runtime_hrs": 72,
        "max_runtime_mins": 1440,
        "test_retry": 0,
        "run_verify": false,
        "run_reset": true,
        "parse_failed_repair": true,
        "email_list": "",
        "reboot_before": 1,
        "reboot_after": 0,
        "require_ssp": null,
    })
}

/// A response carrying exactly these records.
pub fn response(
    hosts: Vec<Host>,
    jobs: Vec<Job>,
    suite_keyvals: Vec<JobKeyval>,
) -> HeartbeatResponse {
    HeartbeatResponse {
        hosts,
        jobs,
        suite_keyvals,
        incorrect_host_ids: vec![],
        rejected: vec![],
        defects: Vec::new(),
    }
}
