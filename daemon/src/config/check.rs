//! The checks of the keys' values, one function per kind of value, named by
//! the table in `keys.rs`: each takes the key (for the words of its message)
//! and the value as given, and returns the value the daemon uses or why it
//! refuses it. [`required`] and [`optional`] run a key's check on its merged
//! value and say where a refused value came from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use shard_store::redact_url;

use super::ConfigError;
use super::key::Key;
use super::messages::{invalid, missing, must_be, number};

/// A key's check: its value as given, in, the value the daemon uses, or why
/// not, out.
pub(super) type Check<T, U> = fn(&Key, T) -> Result<U, String>;

/// `value` checked by `check`; no value is an error naming every layer that
/// could have set it.
pub(super) fn required<T, U>(
    figment: &Figment,
    key: &Key,
    value: Option<T>,
    check: Check<T, U>,
) -> Result<U, ConfigError> {
    let value = value.ok_or_else(|| missing(key))?;
    check(key, value).map_err(|reason| invalid(figment, key, reason))
}

/// `value`, when there is one, checked by `check`.
pub(super) fn optional<T, U>(
    figment: &Figment,
    key: &Key,
    value: Option<T>,
    check: Check<T, U>,
) -> Result<Option<U>, ConfigError> {
    value
        .map(|value| check(key, value).map_err(|reason| invalid(figment, key, reason)))
        .transpose()
}

/// A host name, trimmed: the master looks the shard up by it, so `" s1"`
/// and `"s1"` must not differ.
pub(super) fn host(_key: &Key, value: String) -> Result<String, String> {
    match value.trim() {
        "" => Err("must not be empty".to_owned()),
        trimmed => Ok(trimmed.to_owned()),
    }
}

/// A time zone name, trimmed. Only its shape is checked here (PostgreSQL,
/// the one backend that uses it, refuses an unknown zone at connect, naming
/// it); quotes, spaces and control characters never belong in one.
pub(super) fn time_zone(key: &Key, value: String) -> Result<String, String> {
    let zone = value.trim();
    if zone.is_empty() {
        return Err("must not be empty".to_owned());
    }
    match zone
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/_+-:.".contains(*c)))
    {
        Some(c) => Err(format!(
            "must be {}, not {zone:?} (it holds {c:?})",
            key.must_be
        )),
        None => Ok(zone.to_owned()),
    }
}

/// A positive number of seconds as a duration.
pub(super) fn seconds(key: &Key, value: f64) -> Result<Duration, String> {
    duration(key, value, 1.0)
}

/// A positive number of minutes as a duration.
pub(super) fn minutes(key: &Key, value: f64) -> Result<Duration, String> {
    duration(key, value, 60.0)
}

/// A positive number of hours as a duration.
pub(super) fn hours(key: &Key, value: f64) -> Result<Duration, String> {
    duration(key, value, 3600.0)
}

/// A positive, finite, possibly fractional number of units of `unit`
/// seconds as a duration. Zero is refused too, and so is a value too small
/// to last a nanosecond: a zero pause or delay would spin.
fn duration(key: &Key, value: f64, unit: f64) -> Result<Duration, String> {
    // NaN compares false with everything, so it needs its own test.
    if value.is_nan() || value <= 0.0 {
        return Err(must_be(key, &number(value)));
    }
    match Duration::try_from_secs_f64(value * unit) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err(must_be(key, &number(value))),
        Err(_) => Err(format!("is too large, got {}", number(value))),
    }
}

/// A count that must not be zero.
pub(super) fn positive(key: &Key, value: u64) -> Result<u64, String> {
    match value {
        0 => Err(must_be(key, "0")),
        n => Ok(n),
    }
}

/// A URL whose scheme the store speaks, with something after it. Deeper
/// checks are the driver's: MySQL and PostgreSQL URLs may legitimately omit
/// the host (a Unix socket in the query), so only the shape is checked here.
pub(super) fn database_url(key: &Key, value: String) -> Result<String, String> {
    let url = value.trim();
    let ok = match url.split_once(':') {
        // sqlx also takes `sqlite:PATH` and `sqlite::memory:`.
        Some(("sqlite", rest)) => !rest.trim_start_matches('/').is_empty(),
        Some(("mysql" | "mariadb" | "postgres" | "postgresql", rest)) => {
            rest.len() > 2 && rest.starts_with("//")
        }
        _ => false,
    };
    match ok {
        true => Ok(url.to_owned()),
        false => Err(must_be(key, &key.quoted(url))),
    }
}

/// The JSON-RPC path: it is appended to the server as is, so without a
/// leading `/` it would run into the host name.
pub(super) fn url_path(key: &Key, value: String) -> Result<String, String> {
    let path = value.trim();
    match path.starts_with('/') {
        true => Ok(path.to_owned()),
        false => Err(must_be(key, &key.quoted(path))),
    }
}

/// The `AUTHORIZATION` value: not empty, and printable ASCII so that it is a
/// valid header value.
pub(super) fn user(key: &Key, value: String) -> Result<String, String> {
    let user = value.trim();
    if user.is_empty() {
        return Err("must not be empty".to_owned());
    }
    match user.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
        true => Ok(user.to_owned()),
        false => Err(must_be(key, &key.quoted(user))),
    }
}

/// A file path, not checked for existence here (the RPC client reads the CA
/// bundle and says what is wrong with it), but not empty.
pub(super) fn file(key: &Key, path: PathBuf) -> Result<PathBuf, String> {
    match path.as_os_str().is_empty() {
        true => Err(must_be(key, "\"\"")),
        false => Ok(path),
    }
}

/// An IP address and a port (no name resolution, so the loopback check of
/// [`Config::warnings`](super::Config::warnings) is about the address
/// actually bound).
pub(super) fn socket_addr(key: &Key, value: String) -> Result<SocketAddr, String> {
    value
        .trim()
        .parse()
        .map_err(|_| must_be(key, &key.quoted(&value)))
}

/// Whether `url` carries a password.
pub(super) fn has_password(url: &str) -> bool {
    redact_url(url) != url
}

/// Whether users other than the owner and group may read `path` (mode
/// `o+r`); `false` when it cannot be known.
#[cfg(unix)]
pub(super) fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|metadata| metadata.permissions().mode() & 0o004 != 0)
}

/// Whether users other than the owner may read `path`: not known off Unix.
#[cfg(not(unix))]
pub(super) fn readable_by_others(_path: &Path) -> bool {
    false
}
