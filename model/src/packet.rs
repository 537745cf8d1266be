//! The heartbeat packets: the request of §3 and the response of §4.
//!
//! A response parses into per-record results: each host, job, suite keyval
//! and incorrect host id either becomes a typed value or a [`Rejected`]
//! naming its id and the reason, and the rest stays usable. Only a broken
//! envelope (the result is not an object, or one of its lists is not a list)
//! fails the whole response.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::record::{Host, Hqe, Job, JobKeyval};
use crate::repair::{self, Defect};
use crate::value;

/// `params[0]` of a `shard_heartbeat` call (§3).
///
/// Every list defaults to empty when absent, as the original master's
/// keyword arguments do (a 2014 client sends no `known_host_statuses`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    /// This shard's hostname; the master finds the shard by it.
    pub shard_hostname: String,
    /// Jobs with at least one incomplete entry in the shard database.
    #[serde(default)]
    pub known_job_ids: Vec<i32>,
    /// Hosts with `invalid = 0` in the shard database.
    #[serde(default)]
    pub known_host_ids: Vec<i32>,
    /// The status of each known host, in the same order.
    #[serde(default)]
    pub known_host_statuses: Vec<Option<String>>,
    /// Finished jobs being uploaded (local fields only).
    #[serde(default)]
    pub jobs: Vec<Job>,
    /// Every entry of the uploaded jobs (local fields and `host_id`).
    #[serde(default)]
    pub hqes: Vec<Hqe>,
}

/// The kind of a top-level response record, as counted by
/// `shard_client_deserialization_failures_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    /// An element of `hosts`.
    Host,
    /// An element of `jobs`.
    Job,
    /// An element of `suite_keyvals`.
    SuiteKeyval,
    /// An element of `incorrect_host_ids`.
    IncorrectHostId,
}

impl RecordKind {
    /// The name used in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Host => "host",
            RecordKind::Job => "job",
            RecordKind::SuiteKeyval => "suite_keyval",
            RecordKind::IncorrectHostId => "incorrect_host_id",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A top-level record that was not applied, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Which list the record came from.
    pub kind: RecordKind,
    /// The record's id, when it had a readable one.
    pub id: Option<i64>,
    /// What was wrong, naming the field or the conflicting row.
    pub reason: String,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id {
            Some(id) => write!(f, "{} {}: {}", self.kind, id, self.reason),
            None => write!(f, "{} without a readable id: {}", self.kind, self.reason),
        }
    }
}

/// The `result` of a `shard_heartbeat` call (§4), parsed record by record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatResponse {
    /// Hosts newly assigned to this shard (or resent).
    pub hosts: Vec<Host>,
    /// Jobs newly assigned (or resent, e.g. aborted on the master).
    pub jobs: Vec<Job>,
    /// Keyvals of the returned jobs' parent (suite) jobs.
    pub suite_keyvals: Vec<JobKeyval>,
    /// Known ids that do not belong to this shard; absent in old masters.
    pub incorrect_host_ids: Vec<i32>,
    /// Records that did not parse, in the order they arrived.
    pub rejected: Vec<Rejected>,
    /// Bad fields of parsed records that only matter if their row is
    /// inserted (see [`crate::repair`]), in list and record order.
    pub defects: Vec<Defect>,
}

impl HeartbeatResponse {
    /// Parses the `result` object of a response.
    ///
    /// Fails only on a broken envelope; bad records end up in
    /// [`HeartbeatResponse::rejected`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The number of records that arrived, parsed or not, per kind.
    pub fn received(&self, kind: RecordKind) -> usize {
        let parsed = match kind {
            RecordKind::Host => self.hosts.len(),
            RecordKind::Job => self.jobs.len(),
            RecordKind::SuiteKeyval => self.suite_keyvals.len(),
            RecordKind::IncorrectHostId => self.incorrect_host_ids.len(),
        };
        parsed + self.rejected.iter().filter(|r| r.kind == kind).count()
    }

    /// The id of every job the master sent, parsed or refused with a
    /// readable id: §7 step 6 looks at them all, as the original took the
    /// ids from the raw list.
    pub fn sent_job_ids(&self) -> Vec<i32> {
        let parsed = self.jobs.iter().map(|j| j.id);
        let refused = (self.rejected.iter())
            .filter(|r| r.kind == RecordKind::Job)
            .filter_map(|r| r.id.and_then(|id| i32::try_from(id).ok()));
        parsed.chain(refused).collect()
    }

    /// The defects of the `index`-th parsed record of `kind`.
    pub fn defects(&self, kind: RecordKind, index: usize) -> &[Defect] {
        let start = self
            .defects
            .partition_point(|d| (d.kind, d.index) < (kind, index));
        let end = self
            .defects
            .partition_point(|d| (d.kind, d.index) <= (kind, index));
        &self.defects[start..end]
    }
}

/// The envelope of a response: lists of records left unparsed, so one bad
/// record cannot fail the others.
#[derive(Deserialize)]
struct RawResponse {
    hosts: Vec<Box<RawValue>>,
    jobs: Vec<Box<RawValue>>,
    suite_keyvals: Vec<Box<RawValue>>,
    /// Absent in old masters (empty); `null` is not a list and fails the
    /// response, as §2 says.
    #[serde(default, deserialize_with = "value::present")]
    incorrect_host_ids: Option<Vec<Box<RawValue>>>,
}

impl<'de> Deserialize<'de> for HeartbeatResponse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawResponse::deserialize(d)?;
        let mut rejected = Vec::new();
        let mut defects = Vec::new();
        let mut out = (&mut rejected, &mut defects);
        let hosts = parse_all(RecordKind::Host, raw.hosts, &mut out);
        let jobs = parse_all(RecordKind::Job, raw.jobs, &mut out);
        let suite_keyvals = parse_all(RecordKind::SuiteKeyval, raw.suite_keyvals, &mut out);
        let incorrect_host_ids = parse_all::<HostId>(
            RecordKind::IncorrectHostId,
            raw.incorrect_host_ids.unwrap_or_default(),
            &mut out,
        )
        .into_iter()
        .map(|HostId(id)| id)
        .collect();
        Ok(HeartbeatResponse {
            hosts,
            jobs,
            suite_keyvals,
            incorrect_host_ids,
            rejected,
            defects,
        })
    }
}

impl Serialize for HeartbeatResponse {
    /// Writes the response as a master sends it: hosts and jobs with their
    /// dependencies. Rejected records have no wire form and are left out.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let hosts: Vec<_> = self.hosts.iter().map(Host::with_dependencies).collect();
        let jobs: Vec<_> = self.jobs.iter().map(Job::with_dependencies).collect();
        let mut out = s.serialize_struct("HeartbeatResponse", 4)?;
        out.serialize_field("hosts", &hosts)?;
        out.serialize_field("jobs", &jobs)?;
        out.serialize_field("suite_keyvals", &self.suite_keyvals)?;
        out.serialize_field("incorrect_host_ids", &self.incorrect_host_ids)?;
        out.end()
    }
}

/// An element of `incorrect_host_ids`: an id, possibly as a numeric string.
#[derive(Deserialize)]
#[serde(transparent)]
struct HostId(#[serde(deserialize_with = "value::int")] i32);

/// Just the `id` of a record that failed to parse, to name it.
#[derive(Deserialize)]
struct IdOnly {
    #[serde(default, deserialize_with = "value::opt_int")]
    id: Option<i64>,
}

fn parse_all<T: DeserializeOwned>(
    kind: RecordKind,
    raws: Vec<Box<RawValue>>,
    (rejected, defects): &mut (&mut Vec<Rejected>, &mut Vec<Defect>),
) -> Vec<T> {
    let mut parsed = Vec::with_capacity(raws.len());
    for raw in raws {
        match parse_record(kind, &raw) {
            Ok((record, found)) => {
                let index = parsed.len();
                defects.extend(found.into_iter().map(|(at, reason)| Defect {
                    kind,
                    index,
                    at,
                    reason,
                }));
                parsed.push(record);
            }
            Err(r) => rejected.push(r),
        }
    }
    parsed
}

/// A record of `kind` and its defects, or why it was refused.
type Parsed<T> = Result<(T, repair::Found), Rejected>;

fn parse_record<T: DeserializeOwned>(kind: RecordKind, raw: &RawValue) -> Parsed<T> {
    // The fast path parses without tracking the field path; only a record
    // that fails is parsed again, to repair it or to say where it failed.
    let first = match serde_json::from_str(raw.get()) {
        Ok(record) => return Ok((record, Vec::new())),
        Err(e) => e,
    };
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let reason = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) if e.path().iter().next().is_some() => {
            format!("field `{}`: {}", e.path(), without_position(e.inner()))
        }
        _ => without_position(&first),
    };
    let repaired = match serde_json::from_str::<serde_json::Value>(raw.get()) {
        Ok(value) => repair::parse::<T>(kind, value),
        Err(_) => Err(None),
    };
    let reason = match repaired {
        Ok(parsed) => return Ok(parsed),
        Err(Some(later)) => later,
        Err(None) => reason,
    };
    let id = match kind {
        RecordKind::IncorrectHostId => serde_json::from_str::<HostId>(raw.get())
            .ok()
            .map(|HostId(id)| i64::from(id)),
        _ => serde_json::from_str::<IdOnly>(raw.get())
            .ok()
            .and_then(|r| r.id),
    };
    Err(Rejected { kind, id, reason })
}

/// serde_json's message without its "at line 1 column 87" suffix, which
/// points into the record's own text and means nothing to an operator.
fn without_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(at) if e.line() > 0 => msg[..at].to_owned(),
        _ => msg,
    }
}
