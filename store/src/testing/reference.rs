//! A reference apply: §6 of the protocol (and the last two steps of §7)
//! taken literally, one record and one row at a time, for the differential
//! oracle of `store/tests/it/oracle.rs` (issue 13).
//!
//! It reads the raw JSON `result` of a heartbeat response, not the model's
//! parsed records, and writes with one plain statement per row, each
//! top-level record (a host, a job, a suite keyval) in its own transaction,
//! as the original shard client did with Django's `deserialize`. It shares
//! nothing with the bulk apply (`crate::apply`) but the entities' table and
//! column names and [`crate::begin_write`]; its speed does not matter.
//!
//! # Decisions where the spec is silent
//!
//! Each follows the original (Django 1.11 under Autotest's models) unless
//! said otherwise:
//!
//! - **Only what will be written is read.** An existing record's local
//!   fields other than the whitelisted ones (`invalid`, `aborted`, `value`)
//!   are never read, so a bad, absent or over-long value there does not
//!   refuse the record (`_filter_update_allowed_fields` drops them before
//!   anything looks at them). An absent whitelisted key leaves its column
//!   as it is (`setattr` only runs for keys present).
//! - **Integers** (ids included): a JSON integer, a numeric string (§5;
//!   Python's `int("12")`, surrounding blanks and a sign allowed) or a
//!   float, truncated toward zero (Django's `IntegerField.get_prep_value` is
//!   `int(value)`, and `int(2.5) == 2`); `true`/`false` as 1/0 (`int(True)`).
//!   Anything else is a wrong type. The value must fit the column's width.
//! - **Booleans**: `true`/`false` and the numbers `0`/`1` (§5); anything
//!   else is a wrong type (Django's `BooleanField.to_python` refuses `2`).
//! - **Strings**: JSON strings only; anything else is a wrong type. A
//!   `varchar(n)` holds n characters; `text` is held to MySQL's 65,535
//!   bytes on every backend (§9 "All backends", the project's rule).
//! - **Datetimes**: the shapes of §5 (`T` or a space, an optional
//!   fraction), kept to microseconds, then cut (never rounded) to the
//!   column's precision: none on MySQL's `datetime` (§9).
//! - **Absent fields of a new row** are NULL, except those whose model
//!   column has a default (Autotest's models, which `shard_model`'s parsing
//!   documents the same way): `leased` true, `show_experimental` false,
//!   `test_retry` 0, `run_reset` true, `parse_failed_repair` true,
//!   `aborted` false. A NULL the column refuses refuses the record.
//! - **Ids must be positive** where a master id becomes a primary key (the
//!   project's rule, [`positive_id`]): MySQL would silently replace an id
//!   of 0 by a fresh one.
//! - **A relation list that is `null`** (or not a list) refuses its
//!   record: the original iterates it (`for serialized in data`) and fails.
//!   An absent key is skipped; an empty list applies nothing (and still
//!   empties an attribute or keyval set).
//! - **Nested records belong to their parent**: an entry's and a keyval's
//!   own `job_id` are replaced by their job's id (`Job._deserialize_relation`
//!   does so before reading them); an attribute belongs to its host whatever
//!   its `host_id` says (the model documents the same).
//! - **Relations are applied in the order §5 lists them**: a host's
//!   `aclgroup_set`, `hostattribute_set`, `labels`, `shard`; a job's
//!   `dependency_labels`, `hostqueueentry_set`, `jobkeyval_set`, `shard`.
//!   (The original follows the JSON's key order, which a real master does
//!   not fix, §11.)
//! - **Names are compared by the database**: every lookup is a `WHERE
//!   column = ?`, so on a default MySQL database `alice` finds `Alice`
//!   (§9: "Names compare as the database's collation says").
//!   A user whose `login` is null is found by `login IS NULL`, and the
//!   "same login" deletion does not apply to it.
//! - **Two rows where the identity expects one** (an attribute or keyval
//!   name twice for one owner) refuse the record, as Django's `get` raises
//!   `MultipleObjectsReturned`.
//! - **Deleting a user** removes its group memberships and clears
//!   `afe_hosts.locked_by_id` (§6; Django's model would cascade to the
//!   host rows themselves, the spec says clear).
//! - **Incorrect host ids** that do not read as integers are reported
//!   rejected (kind `incorrect_host_id`); the others are removed as §7
//!   step 5 says, entries whose `complete` is NULL counting as not complete.
//! - **Re-sync** looks at every job of the response whose `id` reads as an
//!   integer, applied or not (the original took the ids from the raw list).
//!
//! Any statement that fails inside a record refuses that record (its
//! transaction is rolled back); only starting or committing a transaction,
//! and the two final steps, fail the call.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{NaiveDateTime, Timelike};
use sea_orm::sea_query::{Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, QueryResult, Statement,
    TransactionTrait, Value,
};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use shard_model::{RecordKind, Rejected};

use crate::StoreError;
use crate::schema::{AFE_TABLES, TEXT_BYTES};
use crate::store::begin_write;

/// A JSON value as the reference reads it: numbers keep whether they were
/// written as integers or floats, because the rules differ.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// A non-negative integer beyond `i64`.
    UInt(u64),
    /// A number written with a fraction or an exponent.
    Float(f64),
    /// A string.
    Str(String),
    /// A list.
    List(Vec<Json>),
    /// An object (a duplicated key keeps its last value).
    Object(BTreeMap<String, Json>),
}

impl Json {
    /// The value under `key` of an object (`None` when absent or when this
    /// is not an object).
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(map) => map.get(key),
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Int(_) | Json::UInt(_) => "an integer",
            Json::Float(_) => "a float",
            Json::Str(_) => "a string",
            Json::List(_) => "a list",
            Json::Object(_) => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(i64::try_from(v).map_or(Json::UInt(v), Json::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut list = Vec::new();
        while let Some(v) = seq.next_element()? {
            list.push(v);
        }
        Ok(Json::List(list))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut object = BTreeMap::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            object.insert(k, v);
        }
        Ok(Json::Object(object))
    }
}

/// Why the reference could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// The `result` is not an object, or one of its lists is not a list:
    /// the whole heartbeat fails (§2), nothing is applied.
    #[error("broken envelope: {0}")]
    Envelope(String),
    /// The database failed outside a record.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the reference apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferenceReport {
    /// Records refused, in response order: hosts, jobs, suite keyvals,
    /// then incorrect host ids that are not integers.
    pub rejected: Vec<Rejected>,
    /// Incorrect host ids that existed and were removed (§7 step 5).
    pub incorrect_hosts_removed: Vec<i32>,
    /// Jobs of the response with a complete entry, set to `shard_id = NULL`
    /// (§7 step 6).
    pub jobs_resynced: Vec<i32>,
}

/// The project's rule for a master id that becomes a primary key: it must
/// be positive (the spec is silent; MySQL would replace an id of 0 by a
/// fresh one, and AFE ids start at 1). The bulk apply refuses the same.
pub fn positive_id(id: i64) -> bool {
    id > 0
}

/// Applies a heartbeat `result` as §6 says, then removes the incorrect hosts
/// and re-syncs completed jobs (§7 steps 5 and 6), each top-level record in
/// its own transaction.
pub async fn apply<C>(db: &C, response: &Json) -> Result<ReferenceReport, ReferenceError>
where
    C: ConnectionTrait + TransactionTrait<Transaction = DatabaseTransaction>,
{
    if !matches!(response, Json::Object(_)) {
        return Err(ReferenceError::Envelope(format!(
            "the result is {}, not an object",
            response.kind()
        )));
    }
    let hosts = envelope_list(response, "hosts")?;
    let jobs = envelope_list(response, "jobs")?;
    let suite_keyvals = envelope_list(response, "suite_keyvals")?;
    let incorrect_host_ids = envelope_list(response, "incorrect_host_ids")?;
    let columns = Columns::read(db).await?;
    let mut report = ReferenceReport::default();

    for (kind, records) in [
        (RecordKind::Host, hosts),
        (RecordKind::Job, jobs),
        (RecordKind::SuiteKeyval, suite_keyvals),
    ] {
        for record in records {
            let txn = begin_write(db).await?;
            let w = Writer {
                txn: &txn,
                columns: &columns,
            };
            let outcome = match kind {
                RecordKind::Host => w.host(record).await,
                RecordKind::Job => w.job(record).await,
                _ => w.suite_keyval(record).await,
            };
            match outcome {
                Ok(()) => txn.commit().await.map_err(|source| StoreError::Database {
                    operation: "committing a reference record",
                    source,
                })?,
                Err(reason) => {
                    txn.rollback()
                        .await
                        .map_err(|source| StoreError::Database {
                            operation: "rolling back a reference record",
                            source,
                        })?;
                    let id = record.get("id").and_then(|id| int(id).ok());
                    report.rejected.push(Rejected { kind, id, reason });
                }
            }
        }
    }

    let mut ids = Vec::new();
    for raw in incorrect_host_ids {
        match int(raw) {
            Ok(id) => ids.push(id),
            Err(reason) => report.rejected.push(Rejected {
                kind: RecordKind::IncorrectHostId,
                id: None,
                reason,
            }),
        }
    }
    report.incorrect_hosts_removed =
        remove_incorrect_hosts(db, &ids)
            .await
            .map_err(|source| StoreError::Database {
                operation: "removing incorrect hosts (reference)",
                source,
            })?;
    let resent: Vec<i64> = jobs
        .iter()
        .filter_map(|j| j.get("id").and_then(|id| int(id).ok()))
        .collect();
    report.jobs_resynced = resync(db, &resent)
        .await
        .map_err(|source| StoreError::Database {
            operation: "re-syncing completed jobs (reference)",
            source,
        })?;
    Ok(report)
}

/// A list of the envelope (§4); `incorrect_host_ids` may be absent.
fn envelope_list<'j>(response: &'j Json, key: &str) -> Result<&'j [Json], ReferenceError> {
    match response.get(key) {
        Some(Json::List(items)) => Ok(items),
        None if key == "incorrect_host_ids" => Ok(&[]),
        other => Err(ReferenceError::Envelope(format!(
            "`{key}` is {}, not a list",
            other.map_or("absent", Json::kind)
        ))),
    }
}

/// §7 step 5, one host at a time.
async fn remove_incorrect_hosts<C>(db: &C, ids: &[i64]) -> Result<Vec<i32>, DbErr>
where
    C: ConnectionTrait + TransactionTrait<Transaction = DatabaseTransaction>,
{
    let mut removed = Vec::new();
    for &id in ids {
        let txn = db.begin().await?;
        let found = txn.query_all(&select_id("afe_hosts", "id", id)).await?;
        if found.is_empty() {
            txn.rollback().await?;
            continue;
        }
        txn.execute(
            Query::update()
                .table("afe_hosts")
                .value("invalid", true)
                .and_where(Expr::col("id").eq(id)),
        )
        .await?;
        for table in [
            "afe_hosts_labels",
            "afe_acl_groups_hosts",
            "afe_host_attributes",
        ] {
            txn.execute(
                Query::delete()
                    .from_table(table)
                    .and_where(Expr::col("host_id").eq(id)),
            )
            .await?;
        }
        txn.execute(
            Query::update()
                .table("afe_host_queue_entries")
                .value("aborted", true)
                .and_where(Expr::col("host_id").eq(id))
                .and_where(
                    Expr::col("complete")
                        .eq(false)
                        .or(Expr::col("complete").is_null()),
                ),
        )
        .await?;
        txn.commit().await?;
        removed.push(id_i32(id));
    }
    removed.sort_unstable();
    removed.dedup();
    Ok(removed)
}

/// §7 step 6, one job at a time.
async fn resync(db: &impl ConnectionTrait, ids: &[i64]) -> Result<Vec<i32>, DbErr> {
    let mut resynced = Vec::new();
    for &id in ids {
        let complete = db
            .query_all(
                Query::select()
                    .column("id")
                    .from("afe_host_queue_entries")
                    .and_where(Expr::col("job_id").eq(id))
                    .and_where(Expr::col("complete").eq(true)),
            )
            .await?;
        if complete.is_empty() {
            continue;
        }
        db.execute(
            Query::update()
                .table("afe_jobs")
                .value("shard_id", Value::Int(None))
                .and_where(Expr::col("id").eq(id)),
        )
        .await?;
        resynced.push(id_i32(id));
    }
    resynced.sort_unstable();
    resynced.dedup();
    Ok(resynced)
}

/// An id that was found in an `int` column fits `i32`.
fn id_i32(id: i64) -> i32 {
    i32::try_from(id).unwrap_or(i32::MAX)
}

/// Why a record is refused.
type Refusal = String;

/// Names a database error as the refusal of the record.
trait Refuse<T> {
    fn refused(self) -> Result<T, Refusal>;
}

impl<T> Refuse<T> for Result<T, DbErr> {
    fn refused(self) -> Result<T, Refusal> {
        self.map_err(|e| format!("the database refused: {e}"))
    }
}

/// Reads an integer as the reference's rules say (see the module doc).
pub fn int(v: &Json) -> Result<i64, Refusal> {
    match v {
        Json::Int(i) => Ok(*i),
        Json::UInt(u) => Err(format!("{u} does not fit any integer column")),
        // Python's int(): toward zero.
        Json::Float(f) if f.is_finite() && f.abs() < 9.2e18 => Ok(f.trunc() as i64),
        Json::Float(f) => Err(format!("{f} does not fit any integer column")),
        Json::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an integer")),
        Json::Bool(b) => Ok(i64::from(*b)),
        other => Err(format!("expected an integer, got {}", other.kind())),
    }
}

fn boolean(v: &Json) -> Result<bool, Refusal> {
    match v {
        Json::Bool(b) => Ok(*b),
        Json::Int(0) => Ok(false),
        Json::Int(1) => Ok(true),
        other => Err(format!(
            "expected a boolean (true/false/0/1), got {other:?}"
        )),
    }
}

fn datetime(s: &str) -> Result<NaiveDateTime, Refusal> {
    let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .map_err(|_| format!("{s:?} is not a datetime of §5"))?;
    Ok(t.with_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t))
}

/// What a column holds, from the database's catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// A boolean (`boolean`, MySQL's `tinyint(1)`).
    Bool,
    /// A signed integer of this many bits.
    Int(u8),
    /// `varchar(n)`: n characters.
    Varchar(usize),
    /// `text`: held to MySQL's 65,535 bytes everywhere.
    Text,
    /// A datetime keeping this many fraction digits (`None`: what it is
    /// given, SQLite's text).
    DateTime(Option<u8>),
    /// Anything else.
    Other,
}

/// The columns of the `afe_` tables, in catalog order, with their kinds.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    tables: BTreeMap<String, Vec<(String, ColumnKind)>>,
}

impl Columns {
    /// Reads the catalog: `pragma_table_info` on SQLite,
    /// `information_schema.columns` elsewhere.
    pub async fn read(db: &impl ConnectionTrait) -> Result<Columns, StoreError> {
        let backend = db.get_database_backend();
        let sql = match backend {
            DbBackend::Sqlite => AFE_TABLES
                .iter()
                .map(|t| {
                    format!("SELECT '{t}', name, type, NULL, NULL FROM pragma_table_info('{t}')")
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL "),
            DbBackend::MySql => "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR), \
                 CAST(COLUMN_TYPE AS CHAR), CAST(CHARACTER_MAXIMUM_LENGTH AS SIGNED), \
                 CAST(DATETIME_PRECISION AS SIGNED) FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION"
                .to_owned(),
            _ => "SELECT table_name::text, column_name::text, data_type::text, \
                 character_maximum_length::int8, datetime_precision::int8 \
                 FROM information_schema.columns WHERE table_schema = current_schema() \
                 ORDER BY table_name, ordinal_position"
                .to_owned(),
        };
        let rows = db
            .query_all_raw(Statement::from_string(backend, sql))
            .await
            .map_err(|source| StoreError::Database {
                operation: "reading the catalog (reference)",
                source,
            })?;
        let mut tables: BTreeMap<String, Vec<(String, ColumnKind)>> = BTreeMap::new();
        for row in rows {
            let get = |i| -> Result<Option<String>, StoreError> {
                row.try_get_by_index::<Option<String>>(i)
                    .map_err(|source| StoreError::Database {
                        operation: "reading the catalog (reference)",
                        source,
                    })
            };
            let num = |i| row.try_get_by_index::<Option<i64>>(i).ok().flatten();
            let (Some(table), Some(column), Some(ty)) = (get(0)?, get(1)?, get(2)?) else {
                continue;
            };
            if !AFE_TABLES.contains(&table.as_str()) {
                continue;
            }
            let kind = kind_of(backend, &ty, num(3), num(4));
            tables.entry(table).or_default().push((column, kind));
        }
        Ok(Columns { tables })
    }

    /// The column names of `table`, in catalog order.
    pub fn names(&self, table: &str) -> Vec<&str> {
        self.tables
            .get(table)
            .map(|cols| cols.iter().map(|(name, _)| name.as_str()).collect())
            .unwrap_or_default()
    }

    /// What `table.column` holds.
    pub fn kind(&self, table: &str, column: &str) -> Option<ColumnKind> {
        self.tables
            .get(table)?
            .iter()
            .find(|(name, _)| name == column)
            .map(|(_, kind)| *kind)
    }
}

/// A declared type as a [`ColumnKind`].
fn kind_of(backend: DbBackend, ty: &str, chars: Option<i64>, precision: Option<i64>) -> ColumnKind {
    let ty = ty.trim().to_ascii_lowercase();
    let base = ty.split(['(', ' ']).next().unwrap_or_default();
    let arg = ty
        .split_once('(')
        .and_then(|(_, rest)| rest.split([')', ',']).next())
        .and_then(|n| n.trim().parse::<usize>().ok());
    match base {
        "boolean" | "bool" => ColumnKind::Bool,
        "tinyint" if arg == Some(1) => ColumnKind::Bool,
        "smallint" => ColumnKind::Int(16),
        "int" | "integer" => ColumnKind::Int(32),
        "bigint" => ColumnKind::Int(64),
        "varchar" | "character" => match arg.or(chars.and_then(|c| usize::try_from(c).ok())) {
            Some(n) => ColumnKind::Varchar(n),
            None => ColumnKind::Text,
        },
        "text" => ColumnKind::Text,
        _ if base.contains("date") || base.contains("time") => {
            ColumnKind::DateTime(match backend {
                DbBackend::Sqlite => None,
                DbBackend::MySql => Some(u8::try_from(arg.unwrap_or(0)).unwrap_or(6)),
                _ => Some(precision.and_then(|p| u8::try_from(p).ok()).unwrap_or(6)),
            })
        }
        _ => ColumnKind::Other,
    }
}

/// What a field is on the wire (§5), whatever column holds it (MySQL keeps
/// the boolean `run_reset` in a `smallint`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ty {
    Int,
    Bool,
    Str,
    DateTime,
}

/// The value a JSON field becomes in a column, or why it cannot.
fn column_value(ty: Ty, kind: ColumnKind, v: &Json) -> Result<Value, Refusal> {
    if *v == Json::Null {
        return Ok(match kind {
            ColumnKind::Bool => Value::Bool(None),
            ColumnKind::Int(_) => Value::BigInt(None),
            ColumnKind::DateTime(_) => Value::ChronoDateTime(None),
            _ => Value::String(None),
        });
    }
    let mismatch = || Err(format!("a {kind:?} column cannot hold it"));
    match (ty, kind) {
        (Ty::Bool, ColumnKind::Bool) => Ok(Value::Bool(Some(boolean(v)?))),
        (Ty::Bool, ColumnKind::Int(bits)) => int_value(i64::from(boolean(v)?), bits),
        (Ty::Int, ColumnKind::Int(bits)) => int_value(int(v)?, bits),
        (Ty::Str, ColumnKind::Varchar(n)) => {
            let s = string(v)?;
            let len = s.chars().count();
            if len > n {
                return Err(format!("{len} characters do not fit varchar({n})"));
            }
            Ok(Value::String(Some(s.to_owned())))
        }
        (Ty::Str, ColumnKind::Text) => {
            let s = string(v)?;
            if s.len() > TEXT_BYTES {
                return Err(format!("{} bytes do not fit text", s.len()));
            }
            Ok(Value::String(Some(s.to_owned())))
        }
        (Ty::DateTime, ColumnKind::DateTime(precision)) => {
            let t = datetime(string(v)?)?;
            let t = match precision {
                Some(p) if p < 6 => {
                    let unit = 10u32.pow(9 - u32::from(p));
                    t.with_nanosecond(t.nanosecond() / unit * unit).unwrap_or(t)
                }
                _ => t,
            };
            Ok(Value::ChronoDateTime(Some(t)))
        }
        _ => mismatch(),
    }
}

/// An integer in a column of `bits` bits.
fn int_value(n: i64, bits: u8) -> Result<Value, Refusal> {
    let max = (1i64 << (bits.clamp(2, 64) - 1)).wrapping_sub(1);
    if bits < 64 && !(-max - 1..=max).contains(&n) {
        return Err(format!("{n} does not fit a {bits}-bit column"));
    }
    Ok(match bits {
        16 => Value::SmallInt(Some(n as i16)),
        32 => Value::Int(Some(n as i32)),
        _ => Value::BigInt(Some(n)),
    })
}

fn string(v: &Json) -> Result<&str, Refusal> {
    match v {
        Json::Str(s) => Ok(s),
        other => Err(format!("expected a string, got {}", other.kind())),
    }
}

/// What an absent field becomes in a new row.
#[derive(Clone, Copy)]
enum Absent {
    Null,
    Is(bool),
    Zero,
}

/// The local fields of each record type, as (JSON key = column, wire type,
/// when absent), `id` first. Relations and the columns they decide are not here.
const SHARD: &[(&str, Ty, Absent)] = &[
    ("id", Ty::Int, Absent::Null),
    ("hostname", Ty::Str, Absent::Null),
];
const LABEL: &[(&str, Ty, Absent)] = &[
    ("id", Ty::Int, Absent::Null),
    ("name", Ty::Str, Absent::Null),
    ("kernel_config", Ty::Str, Absent::Null),
    ("platform", Ty::Bool, Absent::Null),
    ("invalid", Ty::Bool, Absent::Null),
    ("only_if_needed", Ty::Bool, Absent::Null),
];
const USER: &[(&str, Ty, Absent)] = &[
    ("id", Ty::Int, Absent::Null),
    ("login", Ty::Str, Absent::Null),
    ("access_level", Ty::Int, Absent::Null),
    ("reboot_before", Ty::Int, Absent::Null),
    ("reboot_after", Ty::Int, Absent::Null),
    ("show_experimental", Ty::Bool, Absent::Is(false)),
];
const GROUP: &[(&str, Ty, Absent)] = &[
    ("id", Ty::Int, Absent::Null),
    ("name", Ty::Str, Absent::Null),
    ("description", Ty::Str, Absent::Null),
];
const HOST: &[(&str, Ty, Absent)] = &[
    ("id", Ty::Int, Absent::Null),
    ("hostname", Ty::Str, Absent::Null),
    ("locked", Ty::Bool, Absent::Null),
    ("leased", Ty::Bool, Absent::Is(true)),
    ("synch_id", Ty::Int, Absent::Null),
    ("status", Ty::Str, Absent::Null),
    ("invalid", Ty::Bool, Absent::Null),
    ("protection", Ty::Int, Absent::Null),
    ("lock_time", Ty::DateTime, Absent::Null),
    ("dirty", Ty::Bool, Absent::Null),
    ("lock_reason", Ty::Str, Absent::Null),
];
const JOB: &[(&str, Ty, Absent)] = &[
    ("id", Ty::Int, Absent::Null),
    ("owner", Ty::Str, Absent::Null),
    ("name", Ty::Str, Absent::Null),
    ("priority", Ty::Int, Absent::Null),
    ("control_file", Ty::Str, Absent::Null),
    ("control_type", Ty::Int, Absent::Null),
    ("created_on", Ty::DateTime, Absent::Null),
    ("synch_count", Ty::Int, Absent::Null),
    ("timeout", Ty::Int, Absent::Null),
    ("timeout_mins", Ty::Int, Absent::Null),
    ("max_runtime_hrs", Ty::Int, Absent::Null),
    ("max_runtime_mins", Ty::Int, Absent::Null),
    ("test_retry", Ty::Int, Absent::Zero),
    ("run_verify", Ty::Bool, Absent::Null),
    ("run_reset", Ty::Bool, Absent::Is(true)),
    ("parse_failed_repair", Ty::Bool, Absent::Is(true)),
    ("email_list", Ty::Str, Absent::Null),
    ("reboot_before", Ty::Int, Absent::Null),
    ("reboot_after", Ty::Int, Absent::Null),
    ("require_ssp", Ty::Bool, Absent::Null),
    ("parent_job_id", Ty::Int, Absent::Null),
];
const HQE: &[(&str, Ty, Absent)] = &[
    ("id", Ty::Int, Absent::Null),
    ("status", Ty::Str, Absent::Null),
    ("active", Ty::Bool, Absent::Null),
    ("complete", Ty::Bool, Absent::Null),
    ("deleted", Ty::Bool, Absent::Null),
    ("aborted", Ty::Bool, Absent::Is(false)),
    ("execution_subdir", Ty::Str, Absent::Null),
    ("started_on", Ty::DateTime, Absent::Null),
    ("finished_on", Ty::DateTime, Absent::Null),
    ("host_id", Ty::Int, Absent::Null),
];

/// `SELECT id FROM table WHERE column = value`.
fn select_id(
    table: &'static str,
    column: &'static str,
    value: impl Into<Value>,
) -> SelectStatement {
    Query::select()
        .column("id")
        .from(table)
        .and_where(Expr::col(column).eq(value.into()))
        .to_owned()
}

/// One record's writes, inside its transaction.
struct Writer<'a> {
    txn: &'a DatabaseTransaction,
    columns: &'a Columns,
}

impl Writer<'_> {
    fn value(&self, table: &str, column: &str, ty: Ty, v: &Json) -> Result<Value, Refusal> {
        let kind = self
            .columns
            .kind(table, column)
            .ok_or_else(|| format!("`{table}` has no column `{column}`"))?;
        column_value(ty, kind, v).map_err(|e| format!("field `{column}`: {e}"))
    }

    /// Inserts a new row from a record's local fields plus `extra` columns.
    async fn insert(
        &self,
        table: &'static str,
        fields: &[(&'static str, Ty, Absent)],
        record: &Json,
        extra: &[(&'static str, Value)],
    ) -> Result<(), Refusal> {
        let mut columns = Vec::new();
        let mut values: Vec<Expr> = Vec::new();
        for &(key, ty, absent) in fields {
            let v = match (record.get(key), absent) {
                (Some(v), _) => self.value(table, key, ty, v)?,
                (None, Absent::Null) => self.value(table, key, ty, &Json::Null)?,
                (None, Absent::Is(b)) => self.value(table, key, ty, &Json::Bool(b))?,
                (None, Absent::Zero) => self.value(table, key, ty, &Json::Int(0))?,
            };
            if key == "id" {
                let id = match v {
                    Value::Int(Some(id)) => i64::from(id),
                    Value::SmallInt(Some(id)) => i64::from(id),
                    Value::BigInt(Some(id)) => id,
                    _ => return Err(format!("`{table}.id` is missing")),
                };
                if !positive_id(id) {
                    return Err(format!("`{table}.id` is {id}; ids must be positive"));
                }
            }
            columns.push(key);
            values.push(v.into());
        }
        for (column, v) in extra {
            columns.push(column);
            values.push(v.clone().into());
        }
        let mut insert = Query::insert();
        insert.into_table(table).columns(columns);
        insert
            .values(values)
            .map_err(|e| format!("building an insert: {e}"))?;
        self.txn.execute(&insert).await.refused()?;
        Ok(())
    }

    async fn rows(&self, select: &SelectStatement) -> Result<Vec<QueryResult>, Refusal> {
        self.txn.query_all(select).await.refused()
    }

    async fn exists(&self, table: &'static str, id: i64) -> Result<bool, Refusal> {
        Ok(!self.rows(&select_id(table, "id", id)).await?.is_empty())
    }

    async fn set(
        &self,
        table: &'static str,
        column: &'static str,
        value: Value,
        id: i64,
    ) -> Result<(), Refusal> {
        self.txn
            .execute(
                Query::update()
                    .table(table)
                    .value(column, value)
                    .and_where(Expr::col("id").eq(id)),
            )
            .await
            .refused()?;
        Ok(())
    }

    /// Adds a many-to-many link unless it is there.
    async fn link(
        &self,
        table: &'static str,
        (a, b): (&'static str, &'static str),
        (x, y): (i64, i64),
    ) -> Result<(), Refusal> {
        let found = self
            .rows(
                &Query::select()
                    .column("id")
                    .from(table)
                    .and_where(Expr::col(a).eq(x))
                    .and_where(Expr::col(b).eq(y))
                    .to_owned(),
            )
            .await?;
        if found.is_empty() {
            let mut insert = Query::insert();
            insert.into_table(table).columns([a, b]);
            insert
                .values([Expr::val(x), Expr::val(y)])
                .map_err(|e| format!("building an insert: {e}"))?;
            self.txn.execute(&insert).await.refused()?;
        }
        Ok(())
    }

    /// A record with an id by the general rule: inserted when absent,
    /// untouched (but for `whitelist`) when present. Returns its id.
    async fn by_id(
        &self,
        table: &'static str,
        fields: &[(&'static str, Ty, Absent)],
        record: &Json,
        whitelist: Option<&'static str>,
        extra: &[(&'static str, Value)],
    ) -> Result<i64, Refusal> {
        let id = record_id(record)?;
        if !self.exists(table, id).await? {
            self.insert(table, fields, record, extra).await?;
        } else if let Some(column) = whitelist
            && let Some(v) = record.get(column)
        {
            let v = self.value(table, column, Ty::Bool, v)?;
            self.set(table, column, v, id).await?;
        }
        Ok(id)
    }

    async fn shard(&self, s: &Json) -> Result<i64, Refusal> {
        self.by_id("afe_shards", SHARD, s, None, &[]).await
    }

    async fn label(&self, l: &Json) -> Result<i64, Refusal> {
        self.by_id("afe_labels", LABEL, l, None, &[]).await
    }

    /// Users are found by (login, id); otherwise the rows with that login
    /// and with that id are deleted, with their cascade, and it is inserted.
    async fn user(&self, u: &Json) -> Result<i64, Refusal> {
        let id = record_id(u)?;
        let login = match u.get("login") {
            None | Some(Json::Null) => None,
            Some(v) => Some(string(v).map_err(|e| format!("field `login`: {e}"))?),
        };
        let login_is = |select: &mut SelectStatement| {
            match login {
                Some(login) => select.and_where(Expr::col("login").eq(login)),
                None => select.and_where(Expr::col("login").is_null()),
            };
        };
        let mut same = select_id("afe_users", "id", id);
        login_is(&mut same);
        if !self.rows(&same).await?.is_empty() {
            return Ok(id);
        }
        if let Some(login) = login {
            for row in self.rows(&select_id("afe_users", "login", login)).await? {
                let other: i32 = row.try_get_by_index(0).refused()?;
                self.delete_user(i64::from(other)).await?;
            }
        }
        self.delete_user(id).await?;
        self.insert("afe_users", USER, u, &[]).await?;
        Ok(id)
    }

    async fn delete_user(&self, id: i64) -> Result<(), Refusal> {
        let by_user = Expr::col("user_id").eq(id);
        self.txn
            .execute(
                Query::delete()
                    .from_table("afe_acl_groups_users")
                    .and_where(by_user),
            )
            .await
            .refused()?;
        self.txn
            .execute(
                Query::update()
                    .table("afe_hosts")
                    .value("locked_by_id", Value::Int(None))
                    .and_where(Expr::col("locked_by_id").eq(id)),
            )
            .await
            .refused()?;
        self.txn
            .execute(
                Query::delete()
                    .from_table("afe_users")
                    .and_where(Expr::col("id").eq(id)),
            )
            .await
            .refused()?;
        Ok(())
    }

    async fn group(&self, g: &Json) -> Result<i64, Refusal> {
        let id = self.by_id("afe_acl_groups", GROUP, g, None, &[]).await?;
        for u in relation_list(g, "users")? {
            let user = self.user(u).await?;
            self.link(
                "afe_acl_groups_users",
                ("aclgroup_id", "user_id"),
                (id, user),
            )
            .await?;
        }
        Ok(id)
    }

    /// A to-one relation: absent leaves `column` alone, `null` clears it,
    /// a record is applied and linked.
    async fn to_one(
        &self,
        record: &Json,
        key: &str,
        table: &'static str,
        column: &'static str,
        id: i64,
    ) -> Result<(), Refusal> {
        let target = match record.get(key) {
            None => return Ok(()),
            Some(Json::Null) => None,
            Some(r @ Json::Object(_)) => Some(match key {
                "shard" => self.shard(r).await?,
                _ => self.label(r).await?,
            }),
            Some(other) => return Err(format!("`{key}` is {}", other.kind())),
        };
        let target = Value::BigInt(target);
        self.set(table, column, target, id).await
    }

    async fn host(&self, h: &Json) -> Result<(), Refusal> {
        let id = self
            .by_id("afe_hosts", HOST, h, Some("invalid"), &[])
            .await?;
        for g in relation_list(h, "aclgroup_set")? {
            let group = self.group(g).await?;
            self.link(
                "afe_acl_groups_hosts",
                ("aclgroup_id", "host_id"),
                (group, id),
            )
            .await?;
        }
        if h.get("hostattribute_set").is_some() {
            self.txn
                .execute(
                    Query::delete()
                        .from_table("afe_host_attributes")
                        .and_where(Expr::col("host_id").eq(id)),
                )
                .await
                .refused()?;
            for a in relation_list(h, "hostattribute_set")? {
                self.pair("afe_host_attributes", ("host_id", id), "attribute", a)
                    .await?;
            }
        }
        for l in relation_list(h, "labels")? {
            let label = self.label(l).await?;
            self.link("afe_hosts_labels", ("host_id", "label_id"), (id, label))
                .await?;
        }
        self.to_one(h, "shard", "afe_hosts", "shard_id", id).await
    }

    async fn job(&self, j: &Json) -> Result<(), Refusal> {
        let id = self.by_id("afe_jobs", JOB, j, None, &[]).await?;
        for l in relation_list(j, "dependency_labels")? {
            let label = self.label(l).await?;
            self.link(
                "afe_jobs_dependency_labels",
                ("job_id", "label_id"),
                (id, label),
            )
            .await?;
        }
        for q in relation_list(j, "hostqueueentry_set")? {
            self.hqe(q, id).await?;
        }
        if j.get("jobkeyval_set").is_some() {
            self.txn
                .execute(
                    Query::delete()
                        .from_table("afe_job_keyvals")
                        .and_where(Expr::col("job_id").eq(id)),
                )
                .await
                .refused()?;
            for kv in relation_list(j, "jobkeyval_set")? {
                self.pair("afe_job_keyvals", ("job_id", id), "key", kv)
                    .await?;
            }
        }
        self.to_one(j, "shard", "afe_jobs", "shard_id", id).await
    }

    /// An entry of job `job`: the general rule (`aborted` whitelisted),
    /// then it belongs to that job, then its meta host.
    async fn hqe(&self, q: &Json, job: i64) -> Result<(), Refusal> {
        let job_id = [("job_id", Value::BigInt(Some(job)))];
        let table = "afe_host_queue_entries";
        let id = self.by_id(table, HQE, q, Some("aborted"), &job_id).await?;
        self.set(table, "job_id", Value::BigInt(Some(job)), id)
            .await?;
        self.to_one(q, "meta_host", table, "meta_host", id).await
    }

    /// An attribute or a keyval, found by (owner, name): `value` is
    /// overwritten when it exists, else the row is inserted.
    async fn pair(
        &self,
        table: &'static str,
        (owner_column, owner): (&'static str, i64),
        name_column: &'static str,
        record: &Json,
    ) -> Result<(), Refusal> {
        if !matches!(record, Json::Object(_)) {
            return Err(format!("an element of `{table}` is {}", record.kind()));
        }
        let name_json = record.get(name_column).unwrap_or(&Json::Null);
        let name = self.value(table, name_column, Ty::Str, name_json)?;
        let found = self
            .rows(
                &Query::select()
                    .column("id")
                    .from(table)
                    .and_where(Expr::col(owner_column).eq(owner))
                    .and_where(Expr::col(name_column).eq(name.clone()))
                    .to_owned(),
            )
            .await?;
        match found.len() {
            0 => {
                let value_json = record.get("value").unwrap_or(&Json::Null);
                let value = self.value(table, "value", Ty::Str, value_json)?;
                let owner_value = self.value(table, owner_column, Ty::Int, &Json::Int(owner))?;
                let mut insert = Query::insert();
                insert
                    .into_table(table)
                    .columns([owner_column, name_column, "value"]);
                insert
                    .values([owner_value.into(), name.into(), value.into()])
                    .map_err(|e| format!("building an insert: {e}"))?;
                self.txn.execute(&insert).await.refused()?;
            }
            1 => {
                if let Some(v) = record.get("value") {
                    let value = self.value(table, "value", Ty::Str, v)?;
                    self.txn
                        .execute(
                            Query::update()
                                .table(table)
                                .value("value", value)
                                .and_where(Expr::col(owner_column).eq(owner))
                                .and_where(Expr::col(name_column).eq(name)),
                        )
                        .await
                        .refused()?;
                }
            }
            n => return Err(format!("{n} rows of `{table}` have this identity")),
        }
        Ok(())
    }

    /// A suite keyval: upserted by (`job_id`, `key`); nothing is deleted.
    async fn suite_keyval(&self, kv: &Json) -> Result<(), Refusal> {
        let job = match kv.get("job_id") {
            Some(v) => int(v).map_err(|e| format!("field `job_id`: {e}"))?,
            None => return Err("field `job_id` is missing".to_owned()),
        };
        self.pair("afe_job_keyvals", ("job_id", job), "key", kv)
            .await
    }
}

/// The `id` of a record, which must be an object.
fn record_id(record: &Json) -> Result<i64, Refusal> {
    match record {
        Json::Object(map) => match map.get("id") {
            Some(id) => int(id).map_err(|e| format!("field `id`: {e}")),
            None => Err("field `id` is missing".to_owned()),
        },
        other => Err(format!("the record is {}, not an object", other.kind())),
    }
}

/// The records of a to-many relation: none when the key is absent; a
/// `null` or anything but a list refuses the record.
fn relation_list<'j>(record: &'j Json, key: &str) -> Result<&'j [Json], Refusal> {
    match record.get(key) {
        None => Ok(&[]),
        Some(Json::List(items)) => Ok(items),
        Some(other) => Err(format!("`{key}` is {}, not a list", other.kind())),
    }
}
