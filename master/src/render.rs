//! Values as the real master writes them (§11): its JSON encoder is
//! Django's, which writes a datetime `YYYY-MM-DDTHH:MM:SS` and, when the
//! time has a fraction, cuts it to three digits (milliseconds, truncated).
//! The model crate writes six digits; answers are converted here.

use chrono::{NaiveDateTime, Timelike};
use serde_json::Value;
use shard_model::HeartbeatResponse;

use crate::{Fault, Mode};

/// The keys of the records of §5 that hold a datetime.
const DATETIME_KEYS: [&str; 4] = ["lock_time", "created_on", "started_on", "finished_on"];

/// A datetime as `DjangoJSONEncoder` writes it: no fraction when the
/// microseconds are zero, else exactly three digits (so 500 µs is `.000`).
pub fn datetime(t: NaiveDateTime) -> String {
    let micros = t.nanosecond() / 1_000;
    if micros == 0 {
        t.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        format!("{}.{:03}", t.format("%Y-%m-%dT%H:%M:%S"), micros / 1_000)
    }
}

/// The `result` of a heartbeat as the master sends it: datetimes in the
/// encoder's shape and, in upstream mode, jobs without `parent_job_id`.
pub fn heartbeat(response: &HeartbeatResponse, mode: Mode) -> Result<Value, Fault> {
    let mut value =
        serde_json::to_value(response).map_err(|e| Fault::new("ValueError", e.to_string()))?;
    if mode == Mode::Upstream
        && let Some(jobs) = value.get_mut("jobs").and_then(Value::as_array_mut)
    {
        for job in jobs.iter_mut().filter_map(Value::as_object_mut) {
            job.remove("parent_job_id");
        }
    }
    datetimes_to_millis(&mut value);
    Ok(value)
}

/// Rewrites, anywhere in `value`, the datetimes under the keys of §5.
fn datetimes_to_millis(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(datetimes_to_millis),
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if DATETIME_KEYS.contains(&key.as_str())
                    && let Some(t) = item.as_str().and_then(shard_model::parse_datetime)
                {
                    *item = Value::String(datetime(t));
                } else {
                    datetimes_to_millis(item);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        shard_model::parse_datetime(s).unwrap_or_default()
    }

    #[test]
    fn datetimes_have_no_fraction_or_three_truncated_digits() {
        assert_eq!(datetime(at("2014-09-23T15:56:10")), "2014-09-23T15:56:10");
        assert_eq!(
            datetime(at("2014-09-23T15:56:10.678999")),
            "2014-09-23T15:56:10.678"
        );
        assert_eq!(
            datetime(at("2014-09-23T15:56:10.000500")),
            "2014-09-23T15:56:10.000"
        );
    }
}
