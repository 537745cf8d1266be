//! Error messages that name the key, say where its value came from, and
//! quote it as the operator wrote it.

use figment::error::{Actual, Kind};
use figment::{Figment, Metadata, Profile};

use super::ConfigError;
use super::key::{DefaultValue, Key, Secret, find};
use super::layers::DEFAULTS;

/// Where the value of `key` came from: the layer that set it last, else the
/// layer the error came from; nothing for a fixed default.
pub(super) fn origin(figment: &Figment, key: &str, fallback: Option<&Metadata>) -> Option<String> {
    let metadata = figment.find_metadata(key).or(fallback)?;
    if metadata.name == DEFAULTS {
        // A default that is not ours (a login name that is no valid header
        // value) must point at where it came from.
        return match find(key)?.default {
            DefaultValue::Computed(_, from) => Some(format!("from {from}, the default")),
            _ => None,
        };
    }
    Some(match metadata.source.as_ref().and_then(|s| s.file_path()) {
        Some(path) => format!("in {}", path.display()),
        None => format!(
            "from {} {}",
            metadata.name,
            metadata.interpolate(&Profile::Default, &[key])
        ),
    })
}

/// `key` is wrong for `reason`.
pub(super) fn invalid(figment: &Figment, key: &Key, reason: String) -> ConfigError {
    ConfigError::Key {
        key: key.name.to_owned(),
        reason,
        origin: origin(figment, key.name, None),
    }
}

/// "must be <what key must be>, got <value>"; the value is left out for a
/// key whose value is a secret as a whole.
pub(super) fn must_be(key: &Key, got: &str) -> String {
    match key.secret {
        Secret::Whole => format!("must be {}", key.must_be),
        Secret::No | Secret::Password => format!("must be {}, got {got}", key.must_be),
    }
}

/// `key` is required and no layer set it.
pub(super) fn missing(key: &Key) -> ConfigError {
    ConfigError::Key {
        key: key.name.to_owned(),
        reason: format!(
            "is required: set it in the --config file, as {} or with --{}",
            key.variable(),
            key.flag
        ),
        origin: None,
    }
}

/// A figment error (unknown key, wrong type, TOML syntax) as a
/// [`ConfigError`] that names the key in our words rather than serde's.
pub(super) fn from_figment(figment: &Figment, error: figment::Error) -> ConfigError {
    let metadata = error.metadata.as_ref();
    let key = match &error.kind {
        Kind::UnknownField(key, _) => {
            return ConfigError::Key {
                key: key.clone(),
                reason: "is not a configuration key".to_owned(),
                origin: origin(figment, key, metadata),
            };
        }
        // Every value is optional until checked, so only a key that is not
        // in the table could be missing here.
        Kind::MissingField(name) => match find(name) {
            Some(key) => return missing(key),
            None => name.to_string(),
        },
        _ => error.path.join("."),
    };
    if key.is_empty() {
        return ConfigError::Syntax {
            origin: metadata.map_or_else(
                || "in an unknown source".to_owned(),
                |metadata| match metadata.source.as_ref().and_then(|s| s.file_path()) {
                    Some(path) => format!("in {}", path.display()),
                    None => format!("in {}", metadata.name),
                },
            ),
            message: one_line(&error.kind.to_string()),
        };
    }
    let reason = match (&error.kind, find(&key)) {
        (Kind::InvalidType(actual, _) | Kind::InvalidValue(actual, _), Some(known)) => {
            must_be(known, &shown(known, actual))
        }
        (kind, _) => one_line(&kind.to_string()),
    };
    ConfigError::Key {
        origin: origin(figment, &key, metadata),
        key,
        reason,
    }
}

/// A value as the operator wrote it, not as serde names its type.
fn shown(key: &Key, actual: &Actual) -> String {
    match actual {
        Actual::Str(text) => key.quoted(text),
        Actual::Char(c) => format!("{:?}", c.to_string()),
        Actual::Unsigned(n) => n.to_string(),
        Actual::Signed(n) => n.to_string(),
        Actual::Float(x) => number(*x),
        Actual::Bool(b) => b.to_string(),
        Actual::Seq => "a list".to_owned(),
        Actual::Map => "a table".to_owned(),
        other => other.to_string(),
    }
}

/// `x` as written in a file: `-1`, `0.05`, `NaN`, and `1e300` rather than
/// three hundred digits.
pub(super) fn number(x: f64) -> String {
    if x.is_finite() && x.abs() >= 1e15 {
        format!("{x:e}")
    } else {
        x.to_string()
    }
}

/// A multi-line parser message (TOML errors quote the line with a caret) as
/// one line: the quoted source is dropped, the rest joined with `: `.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| {
            let quoted = line
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start()
                .starts_with('|');
            !line.is_empty() && !quoted
        })
        .collect::<Vec<_>>()
        .join(": ")
}
