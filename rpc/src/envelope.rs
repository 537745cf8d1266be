//! The JSON-RPC envelope of the AFE dialect (spec §2): the request
//! `{"method", "params": [kwargs], "id": "jsonrpc"}` and the response
//! `{"result", "error", "id"}`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// The `id` the original client sends with every call.
pub(crate) const REQUEST_ID: &str = "jsonrpc";

/// A request body: the keyword arguments travel as the one element of `params`.
#[derive(Serialize)]
struct Call<'a, P: ?Sized> {
    method: &'a str,
    params: [&'a P; 1],
    id: &'static str,
}

/// The JSON body of a call of `method` with keyword arguments `params`.
pub(crate) fn request_body<P: Serialize + ?Sized>(
    method: &str,
    params: &P,
) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&Call {
        method,
        params: [params],
        id: REQUEST_ID,
    })
}

/// The master's error object (`error`): an exception it raised.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct MasterError {
    pub(crate) name: String,
    pub(crate) message: String,
    pub(crate) traceback: String,
}

/// What a well-formed response says.
#[derive(Debug)]
pub(crate) enum Outcome<'a> {
    /// `error` is null: the raw `result`.
    Result(&'a RawValue),
    /// `error` is not null.
    Error(MasterError),
}

/// The response as received; `result` and `error` keep `null` apart from a
/// missing key.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

/// `Some` for a key that is there, even when its value is `null`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// The error object's fields, each optional: a master that leaves one out
/// has still answered with an error.
#[derive(Deserialize)]
struct ErrorObject {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    traceback: Option<String>,
}

/// Parses a response body; `Err` says why it is not a JSON-RPC response.
///
/// As the original proxy, this requires the `error` key, and `result` when
/// `error` is null; `id` is not checked.
pub(crate) fn parse(body: &[u8]) -> Result<Outcome<'_>, String> {
    // A derived struct would also accept a JSON list of its fields.
    let first = body.iter().find(|byte| !byte.is_ascii_whitespace());
    if first.is_some_and(|byte| *byte != b'{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
    {
        return Err("JSON, but not an object".to_owned());
    }
    let envelope: Envelope<'_> =
        serde_json::from_slice(body).map_err(|error| match error.classify() {
            serde_json::error::Category::Data => format!("not a JSON-RPC envelope: {error}"),
            _ => format!("not JSON: {error}"),
        })?;
    let error = envelope
        .error
        .ok_or("not a JSON-RPC envelope: no \"error\" key")?;
    if error.get() != "null" {
        return Ok(Outcome::Error(master_error(error)));
    }
    envelope
        .result
        .map(Outcome::Result)
        .ok_or_else(|| "not a JSON-RPC envelope: no \"result\" key".to_owned())
}

/// The master's error from the raw `error` value, whatever its shape.
fn master_error(raw: &RawValue) -> MasterError {
    match serde_json::from_str::<ErrorObject>(raw.get()) {
        Ok(object) => MasterError {
            name: object.name.unwrap_or_default(),
            message: object.message.unwrap_or_default(),
            traceback: object.traceback.unwrap_or_default(),
        },
        // Not an object: keep the value itself as the message.
        Err(_) => MasterError {
            message: raw.get().to_owned(),
            ..MasterError::default()
        },
    }
}

/// Deserializes `result` into `R`; `Err` names the path of what did not fit.
pub(crate) fn decode_result<R: DeserializeOwned>(raw: &RawValue) -> Result<R, String> {
    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        if path == "." {
            format!("result: {}", error.inner())
        } else {
            format!("result.{path}: {}", error.inner())
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{Value, json};

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn request_has_params_as_a_list_of_one_object() -> TestResult {
        let body = request_body("shard_heartbeat", &json!({"shard_hostname": "s1"}))?;
        let value: Value = serde_json::from_slice(&body)?;
        assert_eq!(
            value,
            json!({
                "method": "shard_heartbeat",
                "params": [{"shard_hostname": "s1"}],
                "id": "jsonrpc"
            })
        );
        Ok(())
    }

    #[test]
    fn success_gives_the_raw_result() -> TestResult {
        let body = br#"{"result": {"hosts": []}, "id": "jsonrpc", "error": null}"#;
        match parse(body)? {
            Outcome::Result(raw) => assert_eq!(raw.get(), r#"{"hosts": []}"#),
            other => panic!("{other:?}"),
        }
        Ok(())
    }

    #[test]
    fn null_result_is_a_result() -> TestResult {
        match parse(br#"{"result": null, "error": null, "id": 1}"#)? {
            Outcome::Result(raw) => assert_eq!(raw.get(), "null"),
            other => panic!("{other:?}"),
        }
        Ok(())
    }

    #[test]
    fn error_object_gives_name_message_and_traceback() -> TestResult {
        let body = br#"{"result": null, "id": "jsonrpc", "error":
            {"name": "DoesNotExist", "message": "no shard", "traceback": "Traceback..."}}"#;
        match parse(body)? {
            Outcome::Error(error) => assert_eq!(
                error,
                MasterError {
                    name: "DoesNotExist".to_owned(),
                    message: "no shard".to_owned(),
                    traceback: "Traceback...".to_owned(),
                }
            ),
            other => panic!("{other:?}"),
        }
        Ok(())
    }

    #[test]
    fn error_of_another_shape_is_still_an_error() -> TestResult {
        match parse(br#"{"result": null, "error": "boom"}"#)? {
            Outcome::Error(error) => assert_eq!(error.message, r#""boom""#),
            other => panic!("{other:?}"),
        }
        Ok(())
    }

    #[test]
    fn rejects_what_is_not_the_envelope() {
        for body in [
            &b"<html>502</html>"[..],
            b"",
            b"[1, 2]",
            b"\"result\"",
            br#"{"hello": "world"}"#,
            br#"{"result": 1}"#,
            br#"{"error": null, "id": 1}"#,
            br#"{"result": 1, "error": null} trailing"#,
        ] {
            assert!(parse(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn decode_names_the_path_that_did_not_fit() -> TestResult {
        let raw: Box<RawValue> = serde_json::from_str(r#"{"hosts": [1, "two"]}"#)?;
        let error = decode_result::<BTreeMap<String, Vec<i32>>>(&raw);
        let error = error.err().unwrap_or_default();
        assert!(
            error.starts_with("result.hosts[1]: invalid type"),
            "{error}"
        );
        let error = decode_result::<Vec<i32>>(&raw).err().unwrap_or_default();
        assert!(error.starts_with("result: invalid type: map"), "{error}");
        Ok(())
    }
}
