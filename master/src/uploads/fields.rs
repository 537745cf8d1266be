//! The keys of an uploaded record, laid over the row the master has.
//!
//! The real master sets every key the record carries on the model and saves
//! it (`update_from_serialized`): keys it does not know are ignored, keys it
//! does know overwrite their column, whatever the upload shape of §3 says
//! (a `shard_id` on a job reassigns it). Values are read with the quirks of
//! §5 (bools as `0`/`1`, ids as numeric strings, datetimes with a `T` or a
//! space and an optional fraction); one that cannot be read refuses the
//! record, naming it and the key.

use chrono::NaiveDateTime;
use serde_json::{Map, Value};
use shard_store::schema::entity::{hqes, jobs};

use crate::Fault;

/// Sets every known key of a job `record` on `row`; `row` is left as it was
/// if a value cannot be read.
pub(super) fn overlay_job(
    row: &mut jobs::Model,
    record: &Map<String, Value>,
    culprit: &str,
) -> Result<(), Fault> {
    let mut next = row.clone();
    for (key, value) in record {
        let at = Field {
            culprit,
            key,
            value,
        };
        let r = &mut next;
        match key.as_str() {
            "owner" => r.owner = at.opt_string()?,
            "name" => r.name = at.opt_string()?,
            "priority" => r.priority = at.opt_int()?,
            "control_file" => r.control_file = at.opt_string()?,
            "control_type" => r.control_type = at.opt_int()?,
            "created_on" => r.created_on = at.opt_datetime()?,
            "synch_count" => r.synch_count = at.int()?,
            "timeout" => r.timeout = at.int()?,
            "run_verify" => r.run_verify = at.opt_bool()?,
            "email_list" => r.email_list = at.string()?,
            "reboot_before" => r.reboot_before = at.int()?,
            "reboot_after" => r.reboot_after = at.int()?,
            "parse_failed_repair" => r.parse_failed_repair = at.bool()?,
            "max_runtime_hrs" => r.max_runtime_hrs = at.int()?,
            "drone_set_id" => r.drone_set_id = at.opt_int()?,
            "parameterized_job_id" => r.parameterized_job_id = at.opt_int()?,
            "max_runtime_mins" => r.max_runtime_mins = at.int()?,
            "parent_job_id" => r.parent_job_id = at.opt_int()?,
            "test_retry" => r.test_retry = at.int()?,
            "run_reset" => r.run_reset = at.bool()?,
            "timeout_mins" => r.timeout_mins = at.int()?,
            "shard_id" => r.shard_id = at.opt_int()?,
            "require_ssp" => r.require_ssp = at.opt_bool()?,
            // `id` is the record's identity, already matched; anything else
            // is not a column and Django ignores it.
            _ => {}
        }
    }
    *row = next;
    Ok(())
}

/// Sets every known key of an entry `record` on `row`; `row` is left as it
/// was if a value cannot be read.
pub(super) fn overlay_hqe(
    row: &mut hqes::Model,
    record: &Map<String, Value>,
    culprit: &str,
) -> Result<(), Fault> {
    let mut next = row.clone();
    for (key, value) in record {
        let at = Field {
            culprit,
            key,
            value,
        };
        let r = &mut next;
        match key.as_str() {
            "job_id" => r.job_id = at.opt_int()?,
            "host_id" => r.host_id = at.opt_int()?,
            "status" => r.status = at.opt_string()?,
            // The column behind the `meta_host` relation (Django's attname).
            "meta_host_id" => r.meta_host = at.opt_int()?,
            "active" => r.active = at.opt_bool()?,
            "complete" => r.complete = at.opt_bool()?,
            "deleted" => r.deleted = at.bool()?,
            "execution_subdir" => r.execution_subdir = at.string()?,
            "atomic_group_id" => r.atomic_group_id = at.opt_int()?,
            "aborted" => r.aborted = at.bool()?,
            "started_on" => r.started_on = at.opt_datetime()?,
            "finished_on" => r.finished_on = at.opt_datetime()?,
            _ => {}
        }
    }
    *row = next;
    Ok(())
}

/// Reads a record's id (a number or a numeric string).
pub(super) fn id(record: &Map<String, Value>, culprit: &str) -> Result<Option<i32>, Fault> {
    match record.get("id") {
        None => Ok(None),
        Some(value) => Field {
            culprit,
            key: "id",
            value,
        }
        .int()
        .map(Some),
    }
}

/// One value of one record, for reading and for naming it in a refusal.
struct Field<'a> {
    culprit: &'a str,
    key: &'a str,
    value: &'a Value,
}

impl Field<'_> {
    fn refuse(&self, expected: &str) -> Fault {
        Fault::new(
            "ValueError",
            format!(
                "{}: `{}` must be {expected}, not {}",
                self.culprit, self.key, self.value
            ),
        )
    }

    fn non_null<T>(&self, read: Result<Option<T>, Fault>, expected: &str) -> Result<T, Fault> {
        read?.ok_or_else(|| self.refuse(&format!("{expected} (its column is NOT NULL)")))
    }

    fn opt_string(&self) -> Result<Option<String>, Fault> {
        match self.value {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(self.refuse("a string")),
        }
    }

    fn string(&self) -> Result<String, Fault> {
        self.non_null(self.opt_string(), "a string")
    }

    fn opt_int<T: TryFrom<i64>>(&self) -> Result<Option<T>, Fault> {
        const EXPECTED: &str = "an integer that fits its column (a number or a numeric string)";
        let wide = match self.value {
            Value::Null => return Ok(None),
            Value::Number(n) => n.as_i64().or_else(|| {
                // The original decodes numbers loosely: an integral float
                // is an integer.
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            }),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        let wide = wide.ok_or_else(|| self.refuse(EXPECTED))?;
        T::try_from(wide)
            .map(Some)
            .map_err(|_| self.refuse(EXPECTED))
    }

    fn int<T: TryFrom<i64>>(&self) -> Result<T, Fault> {
        self.non_null(self.opt_int(), "an integer")
    }

    fn opt_bool(&self) -> Result<Option<bool>, Fault> {
        match self.value {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(0) => Ok(Some(false)),
                Some(1) => Ok(Some(true)),
                _ => Err(self.refuse("a boolean (true/false or 0/1)")),
            },
            _ => Err(self.refuse("a boolean (true/false or 0/1)")),
        }
    }

    fn bool(&self) -> Result<bool, Fault> {
        self.non_null(self.opt_bool(), "a boolean")
    }

    fn opt_datetime(&self) -> Result<Option<NaiveDateTime>, Fault> {
        const EXPECTED: &str =
            "a datetime (YYYY-MM-DDTHH:MM:SS or with a space, optional fraction)";
        match self.value {
            Value::Null => Ok(None),
            Value::String(s) => shard_model::parse_datetime(s)
                .map(Some)
                .ok_or_else(|| self.refuse(EXPECTED)),
            _ => Err(self.refuse(EXPECTED)),
        }
    }
}
