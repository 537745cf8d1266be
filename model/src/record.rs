//! The records of §5, one struct per AFE model.
//!
//! Every struct's own `Serialize` writes its *local* fields only: that is the
//! upload shape of §3 (a master refuses relation keys in uploads and would
//! unassign a job if `shard_id` were sent). The "with dependencies" shape a
//! master answers with is written by [`Host::with_dependencies`] and
//! [`Job::with_dependencies`].
//!
//! A field is an `Option` exactly when its column is nullable in Autotest's
//! schema (`schema_129.sql`): a master may send `null` there, and a shard
//! uploads what its row holds, so `null` must survive a round trip.
//!
//! Relations are `Option`/[`ToOne`] because their *presence* is meaningful
//! when applying: a host that arrives with a `hostattribute_set` key has its
//! attributes replaced, one without keeps them.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::value::{self, ToOne};

/// A label (`afe_labels`), usually `board:<name>` or `pool:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// Master id, kept on the shard.
    #[serde(deserialize_with = "value::int")]
    pub id: i32,
    /// Unique label name.
    #[serde(default)]
    pub name: Option<String>,
    /// Kernel config, usually empty.
    #[serde(default)]
    pub kernel_config: Option<String>,
    /// Whether the label names a platform.
    #[serde(default, deserialize_with = "value::opt_bool")]
    pub platform: Option<bool>,
    /// Soft-deletion flag of the original's `ModelWithInvalid`.
    #[serde(deserialize_with = "value::bool")]
    pub invalid: bool,
    /// Whether hosts with this label are only used when a job asks for it.
    #[serde(deserialize_with = "value::bool")]
    pub only_if_needed: bool,
}

/// A shard (`afe_shards`), found by hostname.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Master id, kept on the shard.
    #[serde(deserialize_with = "value::int")]
    pub id: i32,
    /// The shard's hostname, as in `shard_hostname`.
    pub hostname: String,
}

/// A user (`afe_users`). Its identity is the pair (`login`, `id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Master id, kept on the shard.
    #[serde(deserialize_with = "value::int")]
    pub id: i32,
    /// Unique login name.
    #[serde(default)]
    pub login: Option<String>,
    /// 0 user, 1 admin, 100 root.
    #[serde(default, deserialize_with = "value::opt_int")]
    pub access_level: Option<i32>,
    /// Reboot preference before jobs (smallint enum).
    #[serde(deserialize_with = "value::int")]
    pub reboot_before: i16,
    /// Reboot preference after jobs (smallint enum).
    #[serde(deserialize_with = "value::int")]
    pub reboot_after: i16,
    /// UI preference; the column defaults to false.
    #[serde(default, deserialize_with = "value::bool")]
    pub show_experimental: bool,
}

/// An ACL group (`afe_acl_groups`) with, in responses, its users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclGroup {
    /// Master id, kept on the shard.
    #[serde(deserialize_with = "value::int")]
    pub id: i32,
    /// Group name.
    #[serde(default)]
    pub name: Option<String>,
    /// Free-text description.
    #[serde(default)]
    pub description: Option<String>,
    /// Members; links are added, never removed, when applied.
    #[serde(default, skip_serializing, deserialize_with = "value::present")]
    pub users: Option<Vec<User>>,
}

/// A host attribute (`afe_host_attributes`). Identity is (`host_id`,
/// `attribute`); the master's `id` is ignored because ids differ between
/// master and shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAttribute {
    /// Master id; never written on the shard.
    #[serde(default, deserialize_with = "value::opt_int")]
    pub id: Option<i32>,
    /// Attribute name.
    pub attribute: String,
    /// Attribute value (whitelisted: overwritten on existing rows; absent,
    /// it leaves an existing row's value alone).
    #[serde(default, deserialize_with = "value::present")]
    pub value: Option<String>,
    /// Owning host. When nested in a host, the host's id wins.
    #[serde(default, deserialize_with = "value::opt_int")]
    pub host_id: Option<i32>,
}

/// A host (`afe_hosts`) with, in responses, its labels, ACL groups,
/// attributes and shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// Master id, kept on the shard.
    #[serde(deserialize_with = "value::int")]
    pub id: i32,
    /// DNS name of the device.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Locked hosts are not scheduled.
    #[serde(default, deserialize_with = "value::opt_bool")]
    pub locked: Option<bool>,
    /// Leased hosts are not handed to shards; the column defaults to true.
    #[serde(default = "default_true", deserialize_with = "value::bool")]
    pub leased: bool,
    /// Synchronization group id, rarely set.
    #[serde(default, deserialize_with = "value::opt_int")]
    pub synch_id: Option<i32>,
    /// Host status (`Ready`, `Running`, ...), owned by the shard's scheduler.
    #[serde(default)]
    pub status: Option<String>,
    /// Soft-deletion flag (whitelisted: overwritten on existing rows, where
    /// absent leaves it alone and `null` sets NULL): `None` when absent,
    /// `Some(None)` when `null`.
    #[serde(
        default,
        deserialize_with = "value::present_opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub invalid: Option<Option<bool>>,
    /// Repair protection level.
    #[serde(deserialize_with = "value::int")]
    pub protection: i32,
    /// When the host was locked.
    #[serde(
        default,
        deserialize_with = "value::opt_datetime",
        serialize_with = "value::ser_opt_datetime"
    )]
    pub lock_time: Option<NaiveDateTime>,
    /// Whether the host needs a cleanup before its next job.
    #[serde(deserialize_with = "value::bool")]
    pub dirty: bool,
    /// Why the host was locked.
    #[serde(default)]
    pub lock_reason: Option<String>,
    /// ACL groups the host belongs to.
    #[serde(default, skip_serializing, deserialize_with = "value::present")]
    pub aclgroup_set: Option<Vec<AclGroup>>,
    /// Attributes; when present they replace the host's whole set.
    #[serde(default, skip_serializing, deserialize_with = "value::present")]
    pub hostattribute_set: Option<Vec<HostAttribute>>,
    /// Labels; links are added, never removed, when applied.
    #[serde(default, skip_serializing, deserialize_with = "value::present")]
    pub labels: Option<Vec<Label>>,
    /// The shard the host is assigned to.
    #[serde(default, skip_serializing)]
    pub shard: ToOne<Shard>,
}

/// A job keyval (`afe_job_keyvals`). Identity is (`job_id`, `key`); the
/// master's `id` is ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobKeyval {
    /// Master id; never written on the shard.
    #[serde(default, deserialize_with = "value::opt_int")]
    pub id: Option<i32>,
    /// Owning job. When nested in a job, the job's id wins.
    #[serde(deserialize_with = "value::int")]
    pub job_id: i32,
    /// Keyval name.
    pub key: String,
    /// Keyval value (whitelisted: overwritten on existing rows; absent, it
    /// leaves an existing row's value alone).
    #[serde(default, deserialize_with = "value::present")]
    pub value: Option<String>,
}

/// A host queue entry (`afe_host_queue_entries`): one job on one host or
/// on any host of a label (`meta_host`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hqe {
    /// Master id, kept on the shard.
    #[serde(deserialize_with = "value::int")]
    pub id: i32,
    /// One of [`crate::status::HQE_STATUSES`].
    #[serde(default)]
    pub status: Option<String>,
    /// The entry is being worked on.
    #[serde(default, deserialize_with = "value::opt_bool")]
    pub active: Option<bool>,
    /// The entry is finished; a complete entry of an unassigned job means
    /// "upload me".
    #[serde(default, deserialize_with = "value::opt_bool")]
    pub complete: Option<bool>,
    /// The entry was deleted.
    #[serde(deserialize_with = "value::bool")]
    pub deleted: bool,
    /// The entry was aborted (whitelisted: overwritten on existing rows;
    /// absent, it leaves an existing entry's flag alone and a new entry's
    /// is false, the column's default).
    #[serde(default, deserialize_with = "value::present_bool")]
    pub aborted: Option<bool>,
    /// Results subdirectory.
    pub execution_subdir: String,
    /// When the entry started running.
    #[serde(
        default,
        deserialize_with = "value::opt_datetime",
        serialize_with = "value::ser_opt_datetime"
    )]
    pub started_on: Option<NaiveDateTime>,
    /// When the entry finished.
    #[serde(
        default,
        deserialize_with = "value::opt_datetime",
        serialize_with = "value::ser_opt_datetime"
    )]
    pub finished_on: Option<NaiveDateTime>,
    /// The host, for entries bound to one.
    #[serde(default, deserialize_with = "value::opt_int")]
    pub host_id: Option<i32>,
    /// The label of "any host with this label" entries.
    #[serde(default, skip_serializing)]
    pub meta_host: ToOne<Label>,
}

/// A job (`afe_jobs`) with, in responses, its dependency labels, entries,
/// keyvals and shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Master id, kept on the shard.
    #[serde(deserialize_with = "value::int")]
    pub id: i32,
    /// Login of the user who created the job.
    #[serde(default)]
    pub owner: Option<String>,
    /// Job name.
    #[serde(default)]
    pub name: Option<String>,
    /// Scheduling priority.
    #[serde(default, deserialize_with = "value::opt_int")]
    pub priority: Option<i32>,
    /// The control file the job runs.
    #[serde(default)]
    pub control_file: Option<String>,
    /// Client or server control file (enum).
    #[serde(default, deserialize_with = "value::opt_int")]
    pub control_type: Option<i32>,
    /// When the job was created on the master.
    #[serde(
        default,
        deserialize_with = "value::opt_datetime",
        serialize_with = "value::ser_opt_datetime"
    )]
    pub created_on: Option<NaiveDateTime>,
    /// Number of hosts that run the job together.
    #[serde(deserialize_with = "value::int")]
    pub synch_count: i32,
    /// Legacy timeout in hours.
    #[serde(deserialize_with = "value::int")]
    pub timeout: i32,
    /// Timeout in minutes.
    #[serde(deserialize_with = "value::int")]
    pub timeout_mins: i32,
    /// Legacy maximum runtime in hours.
    #[serde(deserialize_with = "value::int")]
    pub max_runtime_hrs: i32,
    /// Maximum runtime in minutes.
    #[serde(deserialize_with = "value::int")]
    pub max_runtime_mins: i32,
    /// Retries of failed tests; the column defaults to 0.
    #[serde(default, deserialize_with = "value::int")]
    pub test_retry: i32,
    /// Verify hosts before running.
    #[serde(default, deserialize_with = "value::opt_bool")]
    pub run_verify: Option<bool>,
    /// Reset hosts before running; the column defaults to true.
    #[serde(default = "default_true", deserialize_with = "value::bool")]
    pub run_reset: bool,
    /// Repair hosts whose results failed to parse; defaults to true.
    #[serde(default = "default_true", deserialize_with = "value::bool")]
    pub parse_failed_repair: bool,
    /// Addresses notified when the job ends.
    pub email_list: String,
    /// Reboot policy before the job (smallint enum).
    #[serde(deserialize_with = "value::int")]
    pub reboot_before: i16,
    /// Reboot policy after the job (smallint enum).
    #[serde(deserialize_with = "value::int")]
    pub reboot_after: i16,
    /// Server-side packaging requirement; null means "the default".
    #[serde(default, deserialize_with = "value::opt_bool")]
    pub require_ssp: Option<bool>,
    /// The suite job that created this one; suite jobs stay on the master.
    #[serde(default, deserialize_with = "value::opt_int", skip_serializing)]
    pub parent_job_id: Option<i32>,
    /// Labels a host needs to run the job.
    #[serde(default, skip_serializing, deserialize_with = "value::present")]
    pub dependency_labels: Option<Vec<Label>>,
    /// The job's entries; nested entries belong to this job whatever they say.
    #[serde(default, skip_serializing, deserialize_with = "value::present")]
    pub hostqueueentry_set: Option<Vec<Hqe>>,
    /// Keyvals; when present they replace the job's whole set.
    #[serde(default, skip_serializing, deserialize_with = "value::present")]
    pub jobkeyval_set: Option<Vec<JobKeyval>>,
    /// The shard the job is assigned to.
    #[serde(default, skip_serializing)]
    pub shard: ToOne<Shard>,
}

fn default_true() -> bool {
    true
}

/// Serializes an [`AclGroup`] with its users.
#[derive(Serialize)]
struct AclGroupOut<'a> {
    #[serde(flatten)]
    group: &'a AclGroup,
    users: &'a [User],
}

/// Serializes a [`Host`] in the master's "with dependencies" shape.
#[derive(Serialize)]
struct HostOut<'a> {
    #[serde(flatten)]
    host: &'a Host,
    aclgroup_set: Vec<AclGroupOut<'a>>,
    hostattribute_set: &'a [HostAttribute],
    labels: &'a [Label],
    #[serde(skip_serializing_if = "ToOne::is_absent")]
    shard: &'a ToOne<Shard>,
}

/// Serializes an [`Hqe`] with its `meta_host`.
#[derive(Serialize)]
struct HqeOut<'a> {
    #[serde(flatten)]
    hqe: &'a Hqe,
    #[serde(skip_serializing_if = "ToOne::is_absent")]
    meta_host: &'a ToOne<Label>,
}

/// Serializes a [`Job`] in the master's "with dependencies" shape.
#[derive(Serialize)]
struct JobOut<'a> {
    #[serde(flatten)]
    job: &'a Job,
    parent_job_id: Option<i32>,
    dependency_labels: &'a [Label],
    hostqueueentry_set: Vec<HqeOut<'a>>,
    jobkeyval_set: &'a [JobKeyval],
    #[serde(skip_serializing_if = "ToOne::is_absent")]
    shard: &'a ToOne<Shard>,
}

impl Host {
    /// The host as a master sends it: local fields plus every relation
    /// (absent relations are written as empty lists).
    pub fn with_dependencies(&self) -> impl Serialize + '_ {
        HostOut {
            host: self,
            aclgroup_set: self
                .aclgroup_set
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|group| AclGroupOut {
                    group,
                    users: group.users.as_deref().unwrap_or_default(),
                })
                .collect(),
            hostattribute_set: self.hostattribute_set.as_deref().unwrap_or_default(),
            labels: self.labels.as_deref().unwrap_or_default(),
            shard: &self.shard,
        }
    }
}

impl Job {
    /// The job as a master sends it: local fields, `parent_job_id` and every
    /// relation (absent relations are written as empty lists).
    pub fn with_dependencies(&self) -> impl Serialize + '_ {
        JobOut {
            job: self,
            parent_job_id: self.parent_job_id,
            dependency_labels: self.dependency_labels.as_deref().unwrap_or_default(),
            hostqueueentry_set: self
                .hostqueueentry_set
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|hqe| HqeOut {
                    hqe,
                    meta_host: &hqe.meta_host,
                })
                .collect(),
            jobkeyval_set: self.jobkeyval_set.as_deref().unwrap_or_default(),
            shard: &self.shard,
        }
    }
}
