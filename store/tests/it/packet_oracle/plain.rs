//! The plain reading of a packet: §3 and §7 step 1 taken literally, one
//! query per row, nothing of the store but its connection.
//!
//! Every row is looked up by id on its own (`SELECT id FROM afe_hosts`,
//! then `SELECT invalid, status FROM afe_hosts WHERE id = ?` for each, and
//! so on), every integer and boolean read as an integer and every datetime
//! as text, whatever the column's type on this backend and schema, so that
//! what is compared is what the database holds.

use chrono::{NaiveDateTime, Timelike};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};
use serde_json::{Value as Json, json};
use shard_model::{Hqe, Job, ToOne};

use super::spec::{COMPLETE_STATUSES, HQE_STATUSES};

/// One job as the database holds it, with every entry it has.
#[derive(Debug, Clone)]
pub struct PlainJob {
    pub id: i32,
    pub shard_id: Option<i32>,
    pub owner: Option<String>,
    pub name: Option<String>,
    pub priority: Option<i32>,
    pub control_file: Option<String>,
    pub control_type: Option<i32>,
    pub created_on: Option<NaiveDateTime>,
    pub synch_count: i32,
    pub timeout: i32,
    pub run_verify: Option<bool>,
    pub email_list: String,
    pub reboot_before: i16,
    pub reboot_after: i16,
    pub parse_failed_repair: bool,
    pub max_runtime_hrs: i32,
    pub max_runtime_mins: i32,
    pub parent_job_id: Option<i32>,
    pub test_retry: i32,
    pub run_reset: bool,
    pub timeout_mins: i32,
    pub require_ssp: Option<bool>,
    /// Its entries, in id order.
    pub entries: Vec<PlainEntry>,
}

/// One entry as the database holds it.
#[derive(Debug, Clone)]
pub struct PlainEntry {
    pub id: i32,
    pub status: Option<String>,
    pub active: Option<bool>,
    pub complete: Option<bool>,
    pub deleted: bool,
    pub aborted: bool,
    pub execution_subdir: String,
    pub started_on: Option<NaiveDateTime>,
    pub finished_on: Option<NaiveDateTime>,
    pub host_id: Option<i32>,
}

/// What the plain reading finds in one database.
#[derive(Debug, Clone)]
pub struct Plain {
    /// §3 `known_job_ids`, ascending.
    pub known_job_ids: Vec<i32>,
    /// §3 `known_host_ids`, ascending.
    pub known_host_ids: Vec<i32>,
    /// §3 `known_host_statuses`, at the same index.
    pub known_host_statuses: Vec<Option<String>>,
    /// Every job, ascending.
    pub jobs: Vec<PlainJob>,
}

/// §7 step 1 with a cap of `limit` jobs.
#[derive(Debug)]
pub struct PlainUpload<'a> {
    /// The jobs that go up, oldest first.
    pub jobs: Vec<&'a PlainJob>,
    /// Every entry of those jobs, by id.
    pub hqes: Vec<&'a PlainEntry>,
    /// Jobs to upload held back: an entry caught half-written. Ascending.
    pub deferred: Vec<i32>,
}

/// Reads the database behind `conn`.
pub async fn read(conn: &impl ConnectionTrait) -> Result<Plain, String> {
    let r = Reader {
        conn,
        backend: conn.get_database_backend(),
    };

    // §3: "ids of all hosts in the shard DB with `invalid = 0`", and "the
    // `status` of each of those hosts, same order". NULL is not 0.
    let mut known_host_ids = Vec::new();
    let mut known_host_statuses = Vec::new();
    for id in r.ids("SELECT id FROM afe_hosts").await? {
        let sql = format!(
            "SELECT {}, status FROM afe_hosts WHERE id = {}",
            r.int("invalid"),
            r.param()
        );
        let row = r.row(&sql, id).await?;
        if r.bool(&row, 0)? == Some(false) {
            known_host_ids.push(id);
            known_host_statuses.push(text(&row, 1)?);
        }
    }

    let mut jobs = Vec::new();
    for id in r.ids("SELECT id FROM afe_jobs").await? {
        jobs.push(r.job(id).await?);
    }

    // §3: "ids of jobs in the shard DB that have at least one host queue
    // entry with `complete = 0`".
    let known_job_ids = jobs
        .iter()
        .filter(|j| j.entries.iter().any(|e| e.complete == Some(false)))
        .map(|j| j.id)
        .collect();

    Ok(Plain {
        known_job_ids,
        known_host_ids,
        known_host_statuses,
        jobs,
    })
}

impl Plain {
    /// §7 step 1: "jobs with `shard_id IS NULL` that have at least one HQE
    /// with `complete = 1`", oldest ids first, at most `limit`; a job with an
    /// entry caught half-written is not uploaded this time, and does not
    /// take a place of the cap (the walk goes on past it until `limit` jobs
    /// are taken; the held-back ones met on the way are `deferred`).
    pub fn upload(&self, limit: u64) -> PlainUpload<'_> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let waiting = self
            .jobs
            .iter()
            .filter(|j| j.shard_id.is_none())
            .filter(|j| j.entries.iter().any(|e| e.complete == Some(true)));
        let mut jobs: Vec<&PlainJob> = Vec::new();
        let mut deferred: Vec<&PlainJob> = Vec::new();
        for job in waiting {
            if jobs.len() == limit {
                break;
            }
            if job.entries.iter().any(caught_half_written) {
                deferred.push(job);
            } else {
                jobs.push(job);
            }
        }
        let mut hqes: Vec<&PlainEntry> = jobs.iter().flat_map(|j| &j.entries).collect();
        hqes.sort_by_key(|e| e.id);
        PlainUpload {
            jobs,
            hqes,
            deferred: deferred.iter().map(|j| j.id).collect(),
        }
    }
}

/// §7 step 1: "a complete status with `complete = 0`, or the reverse" —
/// read as: one of §5's complete statuses with `complete = 0`, or one of
/// its other statuses with `complete = 1`. A NULL flag is neither 0 nor 1,
/// and a NULL status or one §5 does not list is neither complete nor
/// incomplete, so neither holds a job back.
fn caught_half_written(e: &PlainEntry) -> bool {
    let Some(status) = e.status.as_deref() else {
        return false;
    };
    let complete_status = COMPLETE_STATUSES.contains(&status);
    let incomplete_status = HQE_STATUSES.contains(&status) && !complete_status;
    match e.complete {
        Some(false) => complete_status,
        Some(true) => incomplete_status,
        None => false,
    }
}

// ---------------------------------------------------------------------------
// The records of the packet, from the plain reading.

impl PlainJob {
    /// The job as the packet's model holds an upload: local fields, no
    /// relations.
    pub fn to_model(&self) -> Job {
        Job {
            id: self.id,
            owner: self.owner.clone(),
            name: self.name.clone(),
            priority: self.priority,
            control_file: self.control_file.clone(),
            control_type: self.control_type,
            created_on: self.created_on,
            synch_count: self.synch_count,
            timeout: self.timeout,
            timeout_mins: self.timeout_mins,
            max_runtime_hrs: self.max_runtime_hrs,
            max_runtime_mins: self.max_runtime_mins,
            test_retry: self.test_retry,
            run_verify: self.run_verify,
            run_reset: self.run_reset,
            parse_failed_repair: self.parse_failed_repair,
            email_list: self.email_list.clone(),
            reboot_before: self.reboot_before,
            reboot_after: self.reboot_after,
            require_ssp: self.require_ssp,
            parent_job_id: self.parent_job_id,
            dependency_labels: None,
            hostqueueentry_set: None,
            jobkeyval_set: None,
            shard: ToOne::Absent,
        }
    }

    /// The job on the wire (§3): §5's local fields, without `parent_job_id`,
    /// relations or `shard_id`.
    pub fn to_json(&self) -> Json {
        json!({
            "id": self.id,
            "owner": self.owner,
            "name": self.name,
            "priority": self.priority,
            "control_file": self.control_file,
            "control_type": self.control_type,
            "created_on": self.created_on.map(wire_datetime),
            "synch_count": self.synch_count,
            "timeout": self.timeout,
            "timeout_mins": self.timeout_mins,
            "max_runtime_hrs": self.max_runtime_hrs,
            "max_runtime_mins": self.max_runtime_mins,
            "test_retry": self.test_retry,
            "run_verify": self.run_verify,
            "run_reset": self.run_reset,
            "parse_failed_repair": self.parse_failed_repair,
            "email_list": self.email_list,
            "reboot_before": self.reboot_before,
            "reboot_after": self.reboot_after,
            "require_ssp": self.require_ssp,
        })
    }
}

impl PlainEntry {
    /// The entry as the packet's model holds an upload (the meta host is
    /// not part of it).
    pub fn to_model(&self) -> Hqe {
        Hqe {
            id: self.id,
            status: self.status.clone(),
            active: self.active,
            complete: self.complete,
            deleted: self.deleted,
            aborted: Some(self.aborted),
            execution_subdir: self.execution_subdir.clone(),
            started_on: self.started_on,
            finished_on: self.finished_on,
            host_id: self.host_id,
            meta_host: ToOne::Absent,
        }
    }

    /// The entry on the wire: exactly the keys §3 lists.
    pub fn to_json(&self) -> Json {
        json!({
            "id": self.id,
            "status": self.status,
            "active": self.active,
            "complete": self.complete,
            "deleted": self.deleted,
            "aborted": self.aborted,
            "execution_subdir": self.execution_subdir,
            "started_on": self.started_on.map(wire_datetime),
            "finished_on": self.finished_on.map(wire_datetime),
            "host_id": self.host_id,
        })
    }
}

/// §5: `YYYY-MM-DDTHH:MM:SS`, plus `.ffffff` only when the fraction is not
/// zero.
fn wire_datetime(t: NaiveDateTime) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    match t.nanosecond() / 1000 {
        0 => base,
        micros => format!("{base}.{micros:06}"),
    }
}

// ---------------------------------------------------------------------------
// Reading rows.

struct Reader<'c, C> {
    conn: &'c C,
    backend: DbBackend,
}

impl<C: ConnectionTrait> Reader<'_, C> {
    /// The statement's one parameter.
    fn param(&self) -> &'static str {
        match self.backend {
            DbBackend::Postgres => "$1",
            _ => "?",
        }
    }

    /// `column` as an integer (a boolean as 0 or 1), whatever its width.
    fn int(&self, column: &str) -> String {
        match self.backend {
            DbBackend::MySql => format!("CAST({column} AS SIGNED)"),
            // PostgreSQL: `smallint`, `integer` and `boolean` alike.
            _ => format!("CAST({column} AS INTEGER)"),
        }
    }

    /// `column` (a datetime) as text: SQLite stores text already.
    fn datetime(&self, column: &str) -> String {
        match self.backend {
            DbBackend::MySql => format!("CAST({column} AS CHAR)"),
            DbBackend::Postgres => format!("CAST({column} AS TEXT)"),
            _ => column.to_owned(),
        }
    }

    /// The ids `sql` lists, ascending.
    async fn ids(&self, sql: &str) -> Result<Vec<i32>, String> {
        let rows = self
            .conn
            .query_all_raw(Statement::from_string(self.backend, sql))
            .await
            .map_err(|e| format!("{sql}: {e}"))?;
        let mut ids = Vec::new();
        for row in &rows {
            ids.push(self.get_i32(row, 0)?.ok_or("a NULL id")?);
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// The one row `sql` (with one parameter) reads for `id`.
    async fn row(&self, sql: &str, id: i32) -> Result<QueryResult, String> {
        let statement = Statement::from_sql_and_values(self.backend, sql, [Value::from(id)]);
        self.conn
            .query_one_raw(statement)
            .await
            .map_err(|e| format!("{sql} [{id}]: {e}"))?
            .ok_or_else(|| format!("{sql} [{id}]: no row"))
    }

    async fn job(&self, id: i32) -> Result<PlainJob, String> {
        let i = |c: &str| self.int(c);
        let sql = format!(
            "SELECT {}, owner, name, {}, control_file, {}, {}, {}, {}, {}, email_list, {}, {}, \
             {}, {}, {}, {}, {}, {}, {}, {} FROM afe_jobs WHERE id = {}",
            i("shard_id"),
            i("priority"),
            i("control_type"),
            self.datetime("created_on"),
            i("synch_count"),
            i("timeout"),
            i("run_verify"),
            i("reboot_before"),
            i("reboot_after"),
            i("parse_failed_repair"),
            i("max_runtime_hrs"),
            i("max_runtime_mins"),
            i("parent_job_id"),
            i("test_retry"),
            i("run_reset"),
            i("timeout_mins"),
            i("require_ssp"),
            self.param(),
        );
        let row = self.row(&sql, id).await?;
        let mut job = PlainJob {
            id,
            shard_id: self.get_i32(&row, 0)?,
            owner: text(&row, 1)?,
            name: text(&row, 2)?,
            priority: self.get_i32(&row, 3)?,
            control_file: text(&row, 4)?,
            control_type: self.get_i32(&row, 5)?,
            created_on: datetime(&row, 6)?,
            synch_count: required(self.get_i32(&row, 7)?)?,
            timeout: required(self.get_i32(&row, 8)?)?,
            run_verify: self.bool(&row, 9)?,
            email_list: required(text(&row, 10)?)?,
            reboot_before: small(required(self.get_i32(&row, 11)?)?)?,
            reboot_after: small(required(self.get_i32(&row, 12)?)?)?,
            parse_failed_repair: required(self.bool(&row, 13)?)?,
            max_runtime_hrs: required(self.get_i32(&row, 14)?)?,
            max_runtime_mins: required(self.get_i32(&row, 15)?)?,
            parent_job_id: self.get_i32(&row, 16)?,
            test_retry: required(self.get_i32(&row, 17)?)?,
            run_reset: required(self.bool(&row, 18)?)?,
            timeout_mins: required(self.get_i32(&row, 19)?)?,
            require_ssp: self.bool(&row, 20)?,
            entries: Vec::new(),
        };
        let entries = format!(
            "SELECT id FROM afe_host_queue_entries WHERE job_id = {}",
            self.param()
        );
        let rows = self
            .conn
            .query_all_raw(Statement::from_sql_and_values(
                self.backend,
                &entries,
                [Value::from(id)],
            ))
            .await
            .map_err(|e| format!("{entries} [{id}]: {e}"))?;
        let mut entry_ids = Vec::new();
        for row in &rows {
            entry_ids.push(required(self.get_i32(row, 0)?)?);
        }
        entry_ids.sort_unstable();
        for entry in entry_ids {
            job.entries.push(self.entry(entry).await?);
        }
        Ok(job)
    }

    async fn entry(&self, id: i32) -> Result<PlainEntry, String> {
        let i = |c: &str| self.int(c);
        let sql = format!(
            "SELECT status, {}, {}, {}, {}, execution_subdir, {}, {}, {} \
             FROM afe_host_queue_entries WHERE id = {}",
            i("active"),
            i("complete"),
            i("deleted"),
            i("aborted"),
            self.datetime("started_on"),
            self.datetime("finished_on"),
            i("host_id"),
            self.param(),
        );
        let row = self.row(&sql, id).await?;
        Ok(PlainEntry {
            id,
            status: text(&row, 0)?,
            active: self.bool(&row, 1)?,
            complete: self.bool(&row, 2)?,
            deleted: required(self.bool(&row, 3)?)?,
            aborted: required(self.bool(&row, 4)?)?,
            execution_subdir: required(text(&row, 5)?)?,
            started_on: datetime(&row, 6)?,
            finished_on: datetime(&row, 7)?,
            host_id: self.get_i32(&row, 8)?,
        })
    }

    /// Column `i`, selected through [`Reader::int`].
    fn get_i32(&self, row: &QueryResult, i: usize) -> Result<Option<i32>, String> {
        let wide: Option<i64> = match self.backend {
            // `CAST(.. AS INTEGER)` is 32 bits there.
            DbBackend::Postgres => row
                .try_get_by_index::<Option<i32>>(i)
                .map(|v| v.map(i64::from)),
            _ => row.try_get_by_index::<Option<i64>>(i),
        }
        .map_err(|e| format!("column {i}: {e}"))?;
        wide.map(|v| i32::try_from(v).map_err(|_| format!("column {i}: {v} beyond 32 bits")))
            .transpose()
    }

    /// Column `i`, selected through [`Reader::int`], as a boolean: 0 or 1.
    fn bool(&self, row: &QueryResult, i: usize) -> Result<Option<bool>, String> {
        match self.get_i32(row, i)? {
            None => Ok(None),
            Some(0) => Ok(Some(false)),
            Some(1) => Ok(Some(true)),
            Some(v) => Err(format!("column {i}: {v} in a boolean")),
        }
    }
}

fn text(row: &QueryResult, i: usize) -> Result<Option<String>, String> {
    row.try_get_by_index::<Option<String>>(i)
        .map_err(|e| format!("column {i}: {e}"))
}

/// Column `i`, selected through [`Reader::datetime`]: `YYYY-MM-DD
/// HH:MM:SS`, an optional fraction, and on a `timestamp with time zone`
/// the session's offset, which is left out (the session's local time is
/// the lab's, §9).
fn datetime(row: &QueryResult, i: usize) -> Result<Option<NaiveDateTime>, String> {
    let Some(s) = text(row, i)? else {
        return Ok(None);
    };
    let bad = || format!("column {i}: {s:?} is not a datetime");
    let (base, rest) = s.split_at_checked(19).ok_or_else(bad)?;
    let fraction: String = rest
        .strip_prefix('.')
        .map(|f| f.chars().take_while(char::is_ascii_digit).collect())
        .unwrap_or_default();
    let t = NaiveDateTime::parse_from_str(&base.replacen('T', " ", 1), "%Y-%m-%d %H:%M:%S")
        .map_err(|_| bad())?;
    if fraction.is_empty() {
        return Ok(Some(t));
    }
    let nanos: u32 = format!("{fraction:0<9}")[..9].parse().map_err(|_| bad())?;
    t.with_nanosecond(nanos).map(Some).ok_or_else(bad)
}

fn required<T>(v: Option<T>) -> Result<T, String> {
    v.ok_or_else(|| "NULL in a NOT NULL column".to_owned())
}

fn small(v: i32) -> Result<i16, String> {
    i16::try_from(v).map_err(|_| format!("{v} beyond 16 bits"))
}
