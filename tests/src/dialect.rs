//! The AFE JSON-RPC dialect (§2), the heartbeat request (§3) and the
//! `get_hosts` query of a shard healing itself (§11), as the scripted master
//! checks every request before answering it.
//!
//! The checks are those a real master would trip over, stated as the
//! problem it would have: a wrong method or envelope, a missing
//! `AUTHORIZATION`, keyword arguments the method does not take, and
//! uploaded records with keys an upload must not carry (the master refuses
//! relation keys and would unassign a job that sent `shard_id`).

use http::{HeaderMap, Method, Uri, header};
use serde_json::{Map, Value};
use shard_model::{GetHostsRequest, HeartbeatRequest};

/// The RPC a shard client calls every tick.
pub(crate) const METHOD: &str = "shard_heartbeat";

/// The RPC a shard client calls to learn which of its hosts the master has.
pub(crate) const GET_HOSTS: &str = "get_hosts";

/// A well-formed call, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    /// `shard_heartbeat` with its keyword arguments.
    Heartbeat(HeartbeatRequest),
    /// `get_hosts` with its keyword arguments.
    GetHosts(GetHostsRequest),
}

/// The keyword arguments of `shard_heartbeat` (§3).
const PARAMS_KEYS: [&str; 6] = [
    "shard_hostname",
    "known_job_ids",
    "known_host_ids",
    "known_host_statuses",
    "jobs",
    "hqes",
];

/// The local fields of a job, which are exactly what an upload carries
/// (§5, without `parent_job_id`).
const JOB_KEYS: [&str; 20] = [
    "id",
    "owner",
    "name",
    "priority",
    "control_file",
    "control_type",
    "created_on",
    "synch_count",
    "timeout",
    "timeout_mins",
    "max_runtime_hrs",
    "max_runtime_mins",
    "test_retry",
    "run_verify",
    "run_reset",
    "parse_failed_repair",
    "email_list",
    "reboot_before",
    "reboot_after",
    "require_ssp",
];

/// The keys of an uploaded host queue entry (§3).
const HQE_KEYS: [&str; 10] = [
    "id",
    "status",
    "active",
    "complete",
    "deleted",
    "aborted",
    "execution_subdir",
    "started_on",
    "finished_on",
    "host_id",
];

/// Checks one request: the call it carries, or every way in which it
/// breaks the dialect. `body` is the body parsed as JSON, or why it is not.
pub(crate) fn check(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Result<Value, String>,
) -> Result<Call, Vec<String>> {
    let mut problems = Vec::new();
    if method != Method::POST {
        problems.push(format!("method {method}, not POST"));
    }
    let called = match query_method(uri) {
        Some(name) if name == METHOD || name == GET_HOSTS => Some(name),
        Some(name) => {
            problems.push(format!(
                "query says method={name}, not {METHOD} or {GET_HOSTS}"
            ));
            None
        }
        None => {
            problems.push(format!(
                "no method={METHOD} in the query (query: {:?})",
                uri.query().unwrap_or_default()
            ));
            None
        }
    };
    check_headers(headers, &mut problems);
    // Without a known method in the query, the body is checked as the
    // heartbeat a shard client sends every tick.
    let call = match body {
        Ok(body) => check_envelope(body, called.unwrap_or(METHOD), &mut problems),
        Err(error) => {
            problems.push(format!("body is not JSON: {error}"));
            None
        }
    };
    match call {
        Some(call) if problems.is_empty() => Ok(call),
        _ => Err(problems),
    }
}

/// The value of `method=` in the query string, if any.
fn query_method(uri: &Uri) -> Option<&str> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("method="))
}

fn check_headers(headers: &HeaderMap, problems: &mut Vec<String>) {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let media_type = content_type
        .as_deref()
        .and_then(|value| value.split(';').next())
        .map(str::trim);
    if !media_type.is_some_and(|media| media.eq_ignore_ascii_case("application/json")) {
        problems.push(format!(
            "Content-Type is {content_type:?}, not application/json"
        ));
    }
    let user = headers
        .get(header::AUTHORIZATION)
        .map(|value| value.as_bytes());
    if user.is_none_or(<[u8]>::is_empty) {
        problems.push("no AUTHORIZATION header naming the user".to_owned());
    }
}

/// Checks `{"method": .., "params": [{..}], "id": ..}` for a call of
/// `called` (the query's method); the call when `params[0]` is one.
fn check_envelope(body: &Value, called: &str, problems: &mut Vec<String>) -> Option<Call> {
    let Some(body) = body.as_object() else {
        problems.push(format!("body is not a JSON object but {}", kind(body)));
        return None;
    };
    if !body.contains_key("id") {
        problems.push("body has no \"id\"".to_owned());
    }
    match body.get("method") {
        Some(Value::String(name)) if name == called => {}
        other => problems.push(format!(
            "body \"method\" is {}, not \"{called}\" as in the query",
            shown(other)
        )),
    }
    let params = match body.get("params") {
        Some(Value::Array(params)) if params.len() == 1 => &params[0],
        Some(Value::Array(params)) => {
            problems.push(format!(
                "\"params\" has {} elements, not one object of keyword arguments",
                params.len()
            ));
            return None;
        }
        other => {
            problems.push(format!("\"params\" is {}, not a list", shown(other)));
            return None;
        }
    };
    let Some(params) = params.as_object() else {
        problems.push(format!("params[0] is {}, not an object", kind(params)));
        return None;
    };
    if called == GET_HOSTS {
        check_get_hosts(params, problems).map(Call::GetHosts)
    } else {
        check_heartbeat(params, problems).map(Call::Heartbeat)
    }
}

/// Checks the keyword arguments of the one `get_hosts` query a shard makes:
/// its known ids, invalid hosts included (a master filters unknown keywords
/// as Django lookups, so a misspelt one would return every host).
fn check_get_hosts(
    params: &Map<String, Value>,
    problems: &mut Vec<String>,
) -> Option<GetHostsRequest> {
    check_keys("params[0]", params, &["id__in", "valid_only"], problems);
    if params.get("valid_only") != Some(&Value::Bool(false)) {
        problems.push(format!(
            "get_hosts valid_only is {}, not false: hosts the master made invalid would look deleted",
            shown(params.get("valid_only"))
        ));
    }
    match serde_json::from_value::<GetHostsRequest>(Value::Object(params.clone())) {
        Ok(request) => Some(request),
        Err(error) => {
            problems.push(format!("params[0] is not a get_hosts query: {error}"));
            None
        }
    }
}

/// Checks the keyword arguments of `shard_heartbeat` and parses them.
fn check_heartbeat(
    params: &Map<String, Value>,
    problems: &mut Vec<String>,
) -> Option<HeartbeatRequest> {
    check_keys("params[0]", params, &PARAMS_KEYS, problems);
    for (list, keys) in [("jobs", &JOB_KEYS[..]), ("hqes", &HQE_KEYS[..])] {
        let Some(Value::Array(records)) = params.get(list) else {
            continue;
        };
        for (index, record) in records.iter().enumerate() {
            if let Some(record) = record.as_object() {
                let id = shown(record.get("id"));
                check_keys(
                    &format!("{list}[{index}] (id {id})"),
                    record,
                    keys,
                    problems,
                );
            }
        }
    }
    let heartbeat = match serde_json::from_value::<HeartbeatRequest>(Value::Object(params.clone()))
    {
        Ok(heartbeat) => heartbeat,
        Err(error) => {
            problems.push(format!("params[0] is not a heartbeat request: {error}"));
            return None;
        }
    };
    if heartbeat.known_host_ids.len() != heartbeat.known_host_statuses.len() {
        problems.push(format!(
            "{} known_host_ids but {} known_host_statuses",
            heartbeat.known_host_ids.len(),
            heartbeat.known_host_statuses.len()
        ));
    }
    Some(heartbeat)
}

/// Reports the keys of `object` that are not `expected`, and the expected
/// keys it lacks.
fn check_keys(
    what: &str,
    object: &Map<String, Value>,
    expected: &[&str],
    problems: &mut Vec<String>,
) {
    for key in object.keys() {
        if !expected.contains(&key.as_str()) {
            problems.push(format!("{what} has key \"{key}\", which it must not carry"));
        }
    }
    for key in expected {
        if !object.contains_key(*key) {
            problems.push(format!("{what} lacks key \"{key}\""));
        }
    }
}

/// A JSON value for a message (its first 200 characters), or "absent".
fn shown(value: Option<&Value>) -> String {
    const LIMIT: usize = 200;
    let Some(value) = value else {
        return "absent".to_owned();
    };
    let text = value.to_string();
    match text.char_indices().nth(LIMIT) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    }
}

/// The kind of a JSON value, for a message.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
