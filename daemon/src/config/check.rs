//! From the merged raw values to a [`Config`](super::Config): every range
//! and shape check, one function per kind of value.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Turns the merged raw values into a [`Config`], refusing the first value
/// that is out of range.
pub(super) fn check(
    figment: &Figment,
    raw: Raw,
    file_holds_password: bool,
) -> Result<Config, ConfigError> {
    let global_afe_hostname = hostname(figment, "global_afe_hostname", raw.global_afe_hostname)?;
    let shard_hostname = hostname(figment, "shard_hostname", raw.shard_hostname)?;
    let database_url = database_url(figment, &raw.database_url)?;
    let database_time_zone = time_zone(figment, "database_time_zone", &raw.database_time_zone)?;
    let heartbeat_pause = duration(
        figment,
        "heartbeat_pause_sec",
        raw.heartbeat_pause_sec,
        Unit::Seconds,
    )?;
    let rpc = RpcConfig {
        server: global_afe_hostname.clone(),
        path: rpc_path(figment, &raw.rpc_path)?,
        user: rpc_user(figment, &raw.rpc_user)?,
        delay: duration(figment, "rpc_delay_sec", raw.rpc_delay_sec, Unit::Seconds)?,
        budget: duration(
            figment,
            "rpc_timeout_min",
            raw.rpc_timeout_min,
            Unit::Minutes,
        )?,
        request_timeout: duration(
            figment,
            "rpc_request_timeout_sec",
            raw.rpc_request_timeout_sec,
            Unit::Seconds,
        )?,
        max_response_bytes: positive(figment, "max_response_bytes", raw.max_response_bytes)?,
        extra_ca_file: raw
            .rpc_ca_file
            .map(|path| ca_file(figment, path))
            .transpose()?,
        // Set by `load_from`, from the environment.
        proxy: ProxyConfig::none(),
    };
    Ok(Config {
        global_afe_hostname,
        shard_hostname,
        database_url,
        database_time_zone,
        heartbeat_pause,
        rpc,
        max_upload_jobs: positive(figment, "max_upload_jobs", raw.max_upload_jobs)?,
        lifetime: raw
            .lifetime_hours
            .map(|hours| duration(figment, "lifetime_hours", hours, Unit::Hours))
            .transpose()?,
        metrics_addr: metrics_addr(figment, &raw.metrics_addr)?,
        file_holds_password,
        unknown_variables: Vec::new(),
        origins: Vec::new(),
    })
}

/// A required host name, trimmed: the master looks the shard up by it, so
/// `" s1"` and `"s1"` must not differ.
pub(super) fn hostname(
    figment: &Figment,
    key: &str,
    value: Option<String>,
) -> Result<String, ConfigError> {
    let value = value.ok_or_else(|| required(key))?;
    match value.trim() {
        "" => Err(invalid(figment, key, "must not be empty".to_owned())),
        trimmed => Ok(trimmed.to_owned()),
    }
}

/// A time zone name, trimmed. Only its shape is checked here (PostgreSQL,
/// the one backend that uses it, refuses an unknown zone at connect, naming
/// it); quotes, spaces and control characters never belong in one.
pub(super) fn time_zone(figment: &Figment, key: &str, value: &str) -> Result<String, ConfigError> {
    let zone = value.trim();
    if zone.is_empty() {
        return Err(invalid(figment, key, "must not be empty".to_owned()));
    }
    if let Some(c) = zone
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/_+-:.".contains(*c)))
    {
        return Err(invalid(
            figment,
            key,
            format!(
                "must be a time zone name such as UTC or America/Los_Angeles, not {zone:?} (it holds {c:?})"
            ),
        ));
    }
    Ok(zone.to_owned())
}

/// The unit of a duration key.
#[derive(Debug, Clone, Copy)]
pub(super) enum Unit {
    Seconds,
    Minutes,
    Hours,
}

impl Unit {
    /// Seconds in one unit.
    fn seconds(self) -> f64 {
        match self {
            Unit::Seconds => 1.0,
            Unit::Minutes => 60.0,
            Unit::Hours => 3600.0,
        }
    }
}

/// A positive, finite, possibly fractional number of `unit`s as a duration.
/// Zero is refused too, and so is a value too small to last a nanosecond: a
/// zero pause or delay would spin.
pub(super) fn duration(
    figment: &Figment,
    key: &str,
    value: f64,
    unit: Unit,
) -> Result<Duration, ConfigError> {
    // NaN compares false with everything, so it needs its own test.
    if value.is_nan() || value <= 0.0 {
        return Err(invalid(figment, key, must_be(key, &number(value))));
    }
    match Duration::try_from_secs_f64(value * unit.seconds()) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err(invalid(figment, key, must_be(key, &number(value)))),
        Err(_) => Err(invalid(
            figment,
            key,
            format!("is too large, got {}", number(value)),
        )),
    }
}

/// A count that must not be zero.
pub(super) fn positive(figment: &Figment, key: &str, value: u64) -> Result<u64, ConfigError> {
    match value {
        0 => Err(invalid(figment, key, must_be(key, "0"))),
        n => Ok(n),
    }
}

/// A URL whose scheme the store speaks, with something after it. Deeper
/// checks are the driver's: MySQL and PostgreSQL URLs may legitimately omit
/// the host (a Unix socket in the query), so only the shape is checked here.
pub(super) fn database_url(figment: &Figment, value: &str) -> Result<String, ConfigError> {
    const KEY: &str = "database_url";
    let url = value.trim();
    let shown = format!("{:?}", redact_url(url));
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err(invalid(figment, KEY, must_be(KEY, &shown)));
    };
    let ok = match scheme {
        // sqlx also takes `sqlite:PATH` and `sqlite::memory:`.
        "sqlite" => !rest.trim_start_matches('/').is_empty(),
        "mysql" | "mariadb" | "postgres" | "postgresql" => rest.len() > 2 && rest.starts_with("//"),
        _ => false,
    };
    match ok {
        true => Ok(url.to_owned()),
        false => Err(invalid(figment, KEY, must_be(KEY, &shown))),
    }
}

/// The JSON-RPC path: it is appended to the server as is, so without a
/// leading `/` it would run into the host name.
pub(super) fn rpc_path(figment: &Figment, value: &str) -> Result<String, ConfigError> {
    let path = value.trim();
    match path.starts_with('/') {
        true => Ok(path.to_owned()),
        false => Err(invalid(
            figment,
            "rpc_path",
            must_be("rpc_path", &format!("{path:?}")),
        )),
    }
}

/// The `AUTHORIZATION` value: not empty, and printable ASCII so that it is a
/// valid header value. Never quoted in an error.
pub(super) fn rpc_user(figment: &Figment, value: &str) -> Result<String, ConfigError> {
    let user = value.trim();
    if user.is_empty() {
        return Err(invalid(figment, "rpc_user", "must not be empty".to_owned()));
    }
    match user.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
        true => Ok(user.to_owned()),
        false => Err(invalid(figment, "rpc_user", must_be("rpc_user", ""))),
    }
}

/// The extra CA bundle: a path, not checked for existence here (the RPC
/// client reads it and says what is wrong with it), but not empty.
pub(super) fn ca_file(figment: &Figment, path: PathBuf) -> Result<PathBuf, ConfigError> {
    match path.as_os_str().is_empty() {
        true => Err(invalid(
            figment,
            "rpc_ca_file",
            must_be("rpc_ca_file", "\"\""),
        )),
        false => Ok(path),
    }
}

/// The metrics listener: an IP address and a port (no name resolution, so the
/// loopback check of [`Config::warnings`] is about the address actually bound).
pub(super) fn metrics_addr(figment: &Figment, value: &str) -> Result<SocketAddr, ConfigError> {
    value.trim().parse().map_err(|_| {
        invalid(
            figment,
            "metrics_addr",
            must_be("metrics_addr", &format!("{value:?}")),
        )
    })
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
