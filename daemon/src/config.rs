//! [`Config`]: the configuration of `shard-client` (spec §10), parsed and
//! checked once, before anything else runs; and [`load`], which layers
//! defaults < TOML file (`--config`) < environment (`SHARD_CLIENT_<KEY>`) <
//! flags.
//!
//! A `Config` that exists is valid: every duration is positive and finite,
//! the hostnames are not empty, the database URL names a backend we speak.
//! Anything else is a [`ConfigError`] whose one-line message names the key and
//! where its value came from (the file, the variable or the flag), so that the
//! process can exit 2 without having sent anything to the master.
//!
//! Secrets: the database password and the `rpc_user` value (the
//! `AUTHORIZATION` header) appear neither in the `Display`/`Debug` of a
//! `Config` nor in any error message.

use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::error::{Actual, Kind};
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};
use shard_rpc::RpcConfig;
use shard_store::redact_url;

use crate::cli::Settings;

/// The prefix of the environment variables that set configuration keys.
pub const ENV_PREFIX: &str = "SHARD_CLIENT_";
/// The database when none is configured: a SQLite file in the working
/// directory, created when missing, so that a first run needs no setup.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://shard-client.db?mode=rwc";
/// The pause between two heartbeats when none is configured (60 s, §10).
pub const DEFAULT_HEARTBEAT_PAUSE: Duration = Duration::from_secs(60);
/// The most jobs one heartbeat uploads (`MAX_UPLOAD_JOBS` of later clients, §7).
pub const DEFAULT_MAX_UPLOAD_JOBS: u64 = 1000;
/// Where metrics are served when nothing is configured: loopback only, so a
/// shard does not expose them to the network unless told to.
pub const DEFAULT_METRICS_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9464);

/// The checked configuration of the daemon.
///
/// Only [`load`] and [`load_from`] make one (a private field sees to it), so
/// holding a `Config` means every value was checked.
#[derive(Clone, PartialEq)]
pub struct Config {
    /// The master (`global_afe_hostname`), trimmed and not empty.
    pub global_afe_hostname: String,
    /// This shard's name as the master knows it (`shard_hostname`), trimmed
    /// and not empty.
    pub shard_hostname: String,
    /// The shard database (`database_url`), with a scheme the store speaks.
    pub database_url: String,
    /// The pause between two heartbeats, before jitter (`heartbeat_pause_sec`).
    pub heartbeat_pause: Duration,
    /// How to call the master: `server` is `global_afe_hostname`, the rest
    /// comes from the `rpc_*` keys and `max_response_bytes`.
    pub rpc: RpcConfig,
    /// The most finished jobs uploaded by one heartbeat (`max_upload_jobs`).
    pub max_upload_jobs: u64,
    /// How long `run` runs before exiting 0 (`lifetime_hours`); `None`: forever.
    pub lifetime: Option<Duration>,
    /// Where the Prometheus endpoint listens (`metrics_addr`).
    pub metrics_addr: SocketAddr,
    /// Whether the `--config` file itself holds a database password (whatever
    /// a later layer overrode), for [`Config::warnings`].
    file_holds_password: bool,
}

/// Why the configuration was refused. Every message is one line and names
/// the culprit: the file, or the key and where its value came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file given by `--config` cannot be read (missing, unreadable, not
    /// UTF-8).
    #[error("cannot read configuration file {}: {source}", path.display())]
    File {
        /// The file as given on the command line.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// A source could not be parsed at all (a TOML syntax error), so no key
    /// can be named.
    #[error("invalid configuration {origin}: {message}")]
    Syntax {
        /// Where: `in <file>`.
        origin: String,
        /// The parser's message, on one line.
        message: String,
    },
    /// One key is missing, unknown, of the wrong type or out of range.
    #[error(
        "invalid configuration: `{key}` {reason}{}",
        origin.as_ref().map(|origin| format!(" ({origin})")).unwrap_or_default()
    )]
    Key {
        /// The configuration key (as in the file; the variable and the flag
        /// derive from it).
        key: String,
        /// What is wrong, e.g. "must not be empty".
        reason: String,
        /// Where the value came from, e.g. `from environment variable
        /// SHARD_CLIENT_SHARD_HOSTNAME`; `None` when the key has no value.
        origin: Option<String>,
    },
}

// Tests assert which key an error names; the daemon only prints errors.
#[cfg(test)]
impl ConfigError {
    /// The key at fault, when the error is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Key { key, .. } => Some(key),
            ConfigError::File { .. } | ConfigError::Syntax { .. } => None,
        }
    }
}

/// Reads the configuration: defaults < the TOML file `config_file` (when
/// given) < `SHARD_CLIENT_<KEY>` variables of the process < `settings` (the
/// flags that were given), and checks it.
pub fn load(config_file: Option<&Path>, settings: &Settings) -> Result<Config, ConfigError> {
    load_from(config_file, std::env::vars_os(), settings)
}

/// [`load`] with the environment given as `vars` instead of read from the
/// process, so that tests never change the process environment.
pub fn load_from(
    config_file: Option<&Path>,
    vars: impl IntoIterator<Item = (OsString, OsString)>,
    settings: &Settings,
) -> Result<Config, ConfigError> {
    let file = config_file.map(read_file).transpose()?;
    let file_holds_password = file.as_ref().is_some_and(holds_password);
    let mut figment = Figment::from(defaults());
    if let Some(file) = file {
        figment = figment.merge(file);
    }
    let figment = figment.merge(EnvLayer::new(vars)).merge(flags(settings));
    let raw: Raw = figment
        .extract()
        .map_err(|error| from_figment(&figment, error))?;
    check(&figment, raw, file_holds_password)
}

impl Config {
    /// Things an operator should fix that do not stop the daemon: the
    /// `--config` file `file` readable by other users while it holds the
    /// database password, and metrics served beyond loopback.
    pub fn warnings(&self, file: Option<&Path>) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(file) = file
            && self.file_holds_password
            && readable_by_others(file)
        {
            warnings.push(format!(
                "configuration file {} holds the database password and is readable by other users; \
                 make it readable by its owner only (chmod o-r)",
                file.display()
            ));
        }
        if !self.metrics_addr.ip().is_loopback() {
            warnings.push(format!(
                "metrics_addr {} is not a loopback address: metrics are served to other hosts",
                self.metrics_addr
            ));
        }
        warnings
    }
}

/// One line for the startup log: every value, with the database password
/// masked and the `rpc_user` value left out.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "global_afe_hostname={} shard_hostname={} database_url={} heartbeat_pause={:?} \
             rpc_endpoint={} rpc_user=<set> rpc_budget={:?} rpc_delay={:?} rpc_request_timeout={:?} \
             max_response_bytes={} rpc_ca_file={} max_upload_jobs={} lifetime={} metrics_addr={}",
            self.global_afe_hostname,
            self.shard_hostname,
            redacted_url(&self.database_url),
            self.heartbeat_pause,
            self.rpc.endpoint(),
            self.rpc.budget,
            self.rpc.delay,
            self.rpc.request_timeout,
            self.rpc.max_response_bytes,
            self.rpc
                .extra_ca_file
                .as_ref()
                .map_or_else(|| "none".to_owned(), |path| path.display().to_string()),
            self.max_upload_jobs,
            self.lifetime
                .map_or_else(|| "none".to_owned(), |lifetime| format!("{lifetime:?}")),
            self.metrics_addr,
        )
    }
}

/// Masks the database password; `RpcConfig`'s own `Debug` hides the user.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("global_afe_hostname", &self.global_afe_hostname)
            .field("shard_hostname", &self.shard_hostname)
            .field("database_url", &redacted_url(&self.database_url))
            .field("heartbeat_pause", &self.heartbeat_pause)
            .field("rpc", &self.rpc)
            .field("max_upload_jobs", &self.max_upload_jobs)
            .field("lifetime", &self.lifetime)
            .field("metrics_addr", &self.metrics_addr)
            .field("file_holds_password", &self.file_holds_password)
            .finish()
    }
}

/// Every key of §10 plus `rpc_ca_file`, as the file, the variables and the
/// flags spell it, before checking. Unknown keys are refused, so that a typo
/// names itself instead of being ignored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(skip_serializing_if = "Option::is_none")]
    global_afe_hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard_hostname: Option<String>,
    database_url: String,
    heartbeat_pause_sec: f64,
    rpc_path: String,
    rpc_user: String,
    rpc_timeout_min: f64,
    rpc_delay_sec: f64,
    rpc_request_timeout_sec: f64,
    max_upload_jobs: u64,
    max_response_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    lifetime_hours: Option<f64>,
    metrics_addr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rpc_ca_file: Option<PathBuf>,
}

/// How a key's value is read from a `SHARD_CLIENT_` variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    /// Kept as written: `007` stays `007`.
    Text,
    /// Read as a number when it looks like one (`60`, `0.05`, `-1`, `NaN`).
    Number,
}

/// Every key, how a variable sets it, and what it must be (the words of the
/// error messages).
const KEYS: [(&str, Type, &str); 14] = [
    ("global_afe_hostname", Type::Text, "a host name or URL"),
    ("shard_hostname", Type::Text, "a host name"),
    (
        "database_url",
        Type::Text,
        "a sqlite://, mysql://, mariadb://, postgres:// or postgresql:// URL",
    ),
    (
        "heartbeat_pause_sec",
        Type::Number,
        "a positive number of seconds",
    ),
    ("rpc_path", Type::Text, "a URL path starting with /"),
    ("rpc_user", Type::Text, "a user name of printable ASCII"),
    (
        "rpc_timeout_min",
        Type::Number,
        "a positive number of minutes",
    ),
    (
        "rpc_delay_sec",
        Type::Number,
        "a positive number of seconds",
    ),
    (
        "rpc_request_timeout_sec",
        Type::Number,
        "a positive number of seconds",
    ),
    ("max_upload_jobs", Type::Number, "a positive whole number"),
    (
        "max_response_bytes",
        Type::Number,
        "a positive whole number of bytes",
    ),
    ("lifetime_hours", Type::Number, "a positive number of hours"),
    (
        "metrics_addr",
        Type::Text,
        "an IP address and port such as 127.0.0.1:9464",
    ),
    ("rpc_ca_file", Type::Text, "a file path"),
];

/// The lowest layer: the defaults of §10.
fn defaults() -> Layer<Serialized<Raw>> {
    let raw = Raw {
        global_afe_hostname: None,
        shard_hostname: None,
        database_url: DEFAULT_DATABASE_URL.to_owned(),
        heartbeat_pause_sec: DEFAULT_HEARTBEAT_PAUSE.as_secs_f64(),
        rpc_path: shard_rpc::DEFAULT_PATH.to_owned(),
        rpc_user: shard_rpc::default_user(),
        rpc_timeout_min: shard_rpc::DEFAULT_BUDGET.as_secs_f64() / 60.0,
        rpc_delay_sec: shard_rpc::DEFAULT_DELAY.as_secs_f64(),
        rpc_request_timeout_sec: shard_rpc::DEFAULT_REQUEST_TIMEOUT.as_secs_f64(),
        max_upload_jobs: DEFAULT_MAX_UPLOAD_JOBS,
        max_response_bytes: shard_rpc::DEFAULT_MAX_RESPONSE_BYTES,
        lifetime_hours: None,
        metrics_addr: DEFAULT_METRICS_ADDR.to_string(),
        rpc_ca_file: None,
    };
    Layer {
        provider: Serialized::defaults(raw),
        metadata: Metadata::named(DEFAULTS),
    }
}

/// The name of the defaults layer; values from it have no origin worth
/// printing.
const DEFAULTS: &str = "default";

/// The top layer: the flags that were given, named `--kebab-case` in errors.
fn flags(settings: &Settings) -> Layer<Serialized<&Settings>> {
    Layer {
        provider: Serialized::defaults(settings),
        metadata: Metadata::named("flag").interpolater(|_: &Profile, keys: &[&str]| {
            format!("--{}", keys.join(".").replace('_', "-"))
        }),
    }
}

/// Reads the `--config` file; a missing or unreadable file is an error rather
/// than an empty layer, because the operator asked for it.
fn read_file(path: &Path) -> Result<Layer<figment::providers::Data<Toml>>, ConfigError> {
    // Read here rather than with `Toml::file`, which treats a missing file as
    // empty and searches parent directories for a relative one.
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::File {
        path: path.to_owned(),
        source,
    })?;
    Ok(Layer {
        provider: Toml::string(&text),
        metadata: Metadata::from("TOML file", path),
    })
}

/// Whether the file's own `database_url` carries a password.
fn holds_password(file: &Layer<figment::providers::Data<Toml>>) -> bool {
    Figment::from(&file.provider)
        .extract_inner::<String>("database_url")
        .is_ok_and(|url| has_password(&url))
}

/// A provider under a name of our choosing, so that errors say "flag
/// --shard-hostname" rather than a Rust type name.
struct Layer<P> {
    provider: P,
    metadata: Metadata,
}

impl<P: Provider> Provider for Layer<P> {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.provider.data()
    }
}

/// The `SHARD_CLIENT_<KEY>` variables: the prefix (in upper case, as §10
/// writes it) stripped, the rest lowercased and kept whole (keys contain
/// underscores, so nothing is split into nested keys).
///
/// Not figment's `Env`: it reads the process environment, which tests must
/// not touch, and it guesses every value's type, so `SHARD_CLIENT_RPC_USER=007`
/// would become the number 7. Here only numeric keys are read as numbers.
struct EnvLayer {
    /// Key and value; `None` when the value is not UTF-8.
    vars: Vec<(String, Option<String>)>,
}

impl EnvLayer {
    /// The variables of `vars` that carry the prefix.
    fn new(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        let vars = vars
            .into_iter()
            .filter_map(|(name, value)| {
                let key = name
                    .to_str()?
                    .strip_prefix(ENV_PREFIX)?
                    .to_ascii_lowercase();
                (!key.is_empty()).then(|| (key, value.into_string().ok()))
            })
            .collect();
        EnvLayer { vars }
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable").interpolater(|_: &Profile, keys: &[&str]| {
            format!("{ENV_PREFIX}{}", keys.join(".").to_ascii_uppercase())
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, value) in &self.vars {
            let Some(value) = value else {
                return Err(
                    figment::Error::from(Kind::Message("is not valid UTF-8".to_owned()))
                        .with_path(key),
                );
            };
            dict.insert(key.clone(), env_value(key, value));
        }
        Ok(Map::from([(Profile::Default, dict)]))
    }
}

/// A variable's value as the key's type wants it; a value that is no number
/// stays a string, for the type error to quote.
fn env_value(key: &str, text: &str) -> Value {
    if key_type(key) != Some(Type::Number) {
        return Value::from(text.to_owned());
    }
    let trimmed = text.trim();
    trimmed
        .parse::<u64>()
        .map(Value::from)
        .or_else(|_| trimmed.parse::<i64>().map(Value::from))
        .or_else(|_| trimmed.parse::<f64>().map(Value::from))
        .unwrap_or_else(|_| Value::from(text.to_owned()))
}

/// How a variable sets `key`; `None` for an unknown key.
fn key_type(key: &str) -> Option<Type> {
    KEYS.iter()
        .find(|(name, ..)| *name == key)
        .map(|(_, t, _)| *t)
}

/// What `key` must be, for messages.
fn expected(key: &str) -> &'static str {
    KEYS.iter()
        .find(|(name, ..)| *name == key)
        .map_or("a valid value", |(.., expected)| expected)
}

/// Where the value of `key` came from: the layer that set it last, else the
/// layer the error came from; nothing for a fixed default.
fn origin(figment: &Figment, key: &str, fallback: Option<&Metadata>) -> Option<String> {
    let metadata = figment.find_metadata(key).or(fallback)?;
    if metadata.name == DEFAULTS {
        // The one default that is not ours: a login name that is no valid
        // header value must point at where it came from.
        return (key == "rpc_user").then(|| "from $USER or $LOGNAME, the default".to_owned());
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
fn invalid(figment: &Figment, key: &str, reason: String) -> ConfigError {
    ConfigError::Key {
        key: key.to_owned(),
        reason,
        origin: origin(figment, key, None),
    }
}

/// "must be <what key must be>, got <value>"; the value is left out for
/// `rpc_user`, which is the `AUTHORIZATION` header.
fn must_be(key: &str, got: &str) -> String {
    match key {
        "rpc_user" => format!("must be {}", expected(key)),
        _ => format!("must be {}, got {got}", expected(key)),
    }
}

/// `key` is required and no layer set it.
fn required(key: &str) -> ConfigError {
    ConfigError::Key {
        key: key.to_owned(),
        reason: format!(
            "is required: set it in the --config file, as {ENV_PREFIX}{} or with --{}",
            key.to_ascii_uppercase(),
            key.replace('_', "-")
        ),
        origin: None,
    }
}

/// A figment error (unknown key, wrong type, TOML syntax) as a
/// [`ConfigError`] that names the key in our words rather than serde's.
fn from_figment(figment: &Figment, error: figment::Error) -> ConfigError {
    let metadata = error.metadata.as_ref();
    let key = match &error.kind {
        Kind::UnknownField(key, _) => {
            return ConfigError::Key {
                key: key.clone(),
                reason: "is not a configuration key".to_owned(),
                origin: origin(figment, key, metadata),
            };
        }
        Kind::MissingField(key) => return required(key),
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
    let reason = match &error.kind {
        Kind::InvalidType(actual, _) | Kind::InvalidValue(actual, _) => {
            must_be(&key, &shown(&key, actual))
        }
        kind => one_line(&kind.to_string()),
    };
    ConfigError::Key {
        origin: origin(figment, &key, metadata),
        key,
        reason,
    }
}

/// A value as the operator wrote it, not as serde names its type.
fn shown(key: &str, actual: &Actual) -> String {
    match actual {
        Actual::Str(text) if key == "database_url" => format!("{:?}", redacted_url(text)),
        Actual::Str(text) => format!("{text:?}"),
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
fn number(x: f64) -> String {
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

/// Turns the merged raw values into a [`Config`], refusing the first value
/// that is out of range.
fn check(figment: &Figment, raw: Raw, file_holds_password: bool) -> Result<Config, ConfigError> {
    let global_afe_hostname = hostname(figment, "global_afe_hostname", raw.global_afe_hostname)?;
    let shard_hostname = hostname(figment, "shard_hostname", raw.shard_hostname)?;
    let database_url = database_url(figment, &raw.database_url)?;
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
    };
    Ok(Config {
        global_afe_hostname,
        shard_hostname,
        database_url,
        heartbeat_pause,
        rpc,
        max_upload_jobs: positive(figment, "max_upload_jobs", raw.max_upload_jobs)?,
        lifetime: raw
            .lifetime_hours
            .map(|hours| duration(figment, "lifetime_hours", hours, Unit::Hours))
            .transpose()?,
        metrics_addr: metrics_addr(figment, &raw.metrics_addr)?,
        file_holds_password,
    })
}

/// A required host name, trimmed: the master looks the shard up by it, so
/// `" s1"` and `"s1"` must not differ.
fn hostname(figment: &Figment, key: &str, value: Option<String>) -> Result<String, ConfigError> {
    let value = value.ok_or_else(|| required(key))?;
    match value.trim() {
        "" => Err(invalid(figment, key, "must not be empty".to_owned())),
        trimmed => Ok(trimmed.to_owned()),
    }
}

/// The unit of a duration key.
#[derive(Debug, Clone, Copy)]
enum Unit {
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
fn duration(figment: &Figment, key: &str, value: f64, unit: Unit) -> Result<Duration, ConfigError> {
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
fn positive(figment: &Figment, key: &str, value: u64) -> Result<u64, ConfigError> {
    match value {
        0 => Err(invalid(figment, key, must_be(key, "0"))),
        n => Ok(n),
    }
}

/// A URL whose scheme the store speaks, with something after it. Deeper
/// checks are the driver's: MySQL and PostgreSQL URLs may legitimately omit
/// the host (a Unix socket in the query), so only the shape is checked here.
fn database_url(figment: &Figment, value: &str) -> Result<String, ConfigError> {
    const KEY: &str = "database_url";
    let url = value.trim();
    let shown = format!("{:?}", redacted_url(url));
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
fn rpc_path(figment: &Figment, value: &str) -> Result<String, ConfigError> {
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
fn rpc_user(figment: &Figment, value: &str) -> Result<String, ConfigError> {
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
fn ca_file(figment: &Figment, path: PathBuf) -> Result<PathBuf, ConfigError> {
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
fn metrics_addr(figment: &Figment, value: &str) -> Result<SocketAddr, ConfigError> {
    value.trim().parse().map_err(|_| {
        invalid(
            figment,
            "metrics_addr",
            must_be("metrics_addr", &format!("{value:?}")),
        )
    })
}

/// `url` with its password masked: the `user:password@` of the authority
/// (by the store's `redact_url`) and a `password=` query parameter, which
/// PostgreSQL URLs may carry too.
fn redacted_url(url: &str) -> String {
    let url = redact_url(url);
    let Some((base, query)) = url.split_once('?') else {
        return url;
    };
    let query = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{base}?{query}")
}

/// Whether `url` carries a password.
fn has_password(url: &str) -> bool {
    redacted_url(url) != url
}

/// Whether users other than the owner and group may read `path` (mode
/// `o+r`); `false` when it cannot be known.
#[cfg(unix)]
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|metadata| metadata.permissions().mode() & 0o004 != 0)
}

/// Whether users other than the owner may read `path`: not known off Unix.
#[cfg(not(unix))]
fn readable_by_others(_path: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TOML file under the temporary directory, removed when dropped.
    struct TempToml(PathBuf);

    impl TempToml {
        fn new(name: &str, contents: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "shard-client-config-{}-{name}.toml",
                std::process::id()
            ));
            std::fs::write(&path, contents).unwrap();
            // Umasks differ between machines; start from owner-only.
            #[cfg(unix)]
            set_mode(&path, 0o600);
            TempToml(path)
        }
    }

    impl Drop for TempToml {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[cfg(unix)]
    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(name, value)| (OsString::from(name), OsString::from(value)))
            .collect()
    }

    /// The two required keys, as variables, followed by `extra`.
    fn required_and(extra: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        let mut all = vars(&[
            ("SHARD_CLIENT_GLOBAL_AFE_HOSTNAME", "cautotest"),
            ("SHARD_CLIENT_SHARD_HOSTNAME", "s1"),
        ]);
        all.extend(vars(extra));
        all
    }

    /// Loads with the required keys and the variables `extra`, no file, no flags.
    fn with_env(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
        load_from(None, required_and(extra), &Settings::default())
    }

    fn error_with_env(extra: &[(&str, &str)]) -> String {
        with_env(extra).unwrap_err().to_string()
    }

    fn flags_with_required() -> Settings {
        Settings {
            global_afe_hostname: Some("cautotest".to_owned()),
            shard_hostname: Some("s1".to_owned()),
            ..Settings::default()
        }
    }

    #[test]
    fn defaults_of_section_10() {
        let config = with_env(&[]).unwrap();
        assert_eq!(config.global_afe_hostname, "cautotest");
        assert_eq!(config.shard_hostname, "s1");
        assert_eq!(config.database_url, "sqlite://shard-client.db?mode=rwc");
        assert_eq!(config.heartbeat_pause, Duration::from_secs(60));
        assert_eq!(
            config.rpc,
            RpcConfig {
                server: "cautotest".to_owned(),
                path: "/afe/server/noauth/rpc/".to_owned(),
                user: shard_rpc::default_user(),
                delay: Duration::from_secs(5),
                budget: Duration::from_secs(300),
                request_timeout: Duration::from_secs(120),
                max_response_bytes: 256 * 1024 * 1024,
                extra_ca_file: None,
            }
        );
        assert_eq!(config.max_upload_jobs, 1000);
        assert_eq!(config.lifetime, None);
        assert_eq!(config.metrics_addr, "127.0.0.1:9464".parse().unwrap());
    }

    #[test]
    fn file_overrides_defaults() {
        let file = TempToml::new(
            "file-over-defaults",
            "global_afe_hostname = \"afe\"\nshard_hostname = \"s1\"\nheartbeat_pause_sec = 7\n",
        );
        let config = load_from(Some(&file.0), vars(&[]), &Settings::default()).unwrap();
        assert_eq!(config.heartbeat_pause, Duration::from_secs(7));
        assert_eq!(config.global_afe_hostname, "afe");
    }

    #[test]
    fn env_overrides_file() {
        let file = TempToml::new("env-over-file", "heartbeat_pause_sec = 7\n");
        let env = required_and(&[("SHARD_CLIENT_HEARTBEAT_PAUSE_SEC", "8")]);
        let config = load_from(Some(&file.0), env, &Settings::default()).unwrap();
        assert_eq!(config.heartbeat_pause, Duration::from_secs(8));
    }

    #[test]
    fn flag_overrides_env() {
        let flags = Settings {
            heartbeat_pause_sec: Some(9.0),
            ..Settings::default()
        };
        let env = required_and(&[("SHARD_CLIENT_HEARTBEAT_PAUSE_SEC", "8")]);
        let config = load_from(None, env, &flags).unwrap();
        assert_eq!(config.heartbeat_pause, Duration::from_secs(9));
    }

    #[test]
    fn a_flag_not_given_overrides_nothing() {
        let file = TempToml::new(
            "absent-flag",
            "global_afe_hostname = \"afe\"\nshard_hostname = \"from-file\"\n",
        );
        let flags = Settings {
            max_upload_jobs: Some(5),
            ..Settings::default()
        };
        let config = load_from(Some(&file.0), vars(&[]), &flags).unwrap();
        assert_eq!(config.shard_hostname, "from-file");
        assert_eq!(config.max_upload_jobs, 5);
    }

    #[test]
    fn every_key_from_flags() {
        let flags = Settings {
            global_afe_hostname: Some("https://afe.example".to_owned()),
            shard_hostname: Some("s1".to_owned()),
            database_url: Some("mysql://afe:pw@db/afe".to_owned()),
            heartbeat_pause_sec: Some(0.5),
            rpc_path: Some("/rpc/".to_owned()),
            rpc_user: Some("bob".to_owned()),
            rpc_timeout_min: Some(2.0),
            rpc_delay_sec: Some(3.0),
            rpc_request_timeout_sec: Some(4.0),
            max_upload_jobs: Some(5),
            max_response_bytes: Some(6),
            lifetime_hours: Some(7.0),
            metrics_addr: Some("[::1]:8".to_owned()),
            rpc_ca_file: Some(PathBuf::from("ca.pem")),
        };
        let config = load_from(None, vars(&[]), &flags).unwrap();
        assert_eq!(config.database_url, "mysql://afe:pw@db/afe");
        assert_eq!(config.heartbeat_pause, Duration::from_millis(500));
        assert_eq!(
            config.rpc,
            RpcConfig {
                server: "https://afe.example".to_owned(),
                path: "/rpc/".to_owned(),
                user: "bob".to_owned(),
                delay: Duration::from_secs(3),
                budget: Duration::from_secs(120),
                request_timeout: Duration::from_secs(4),
                max_response_bytes: 6,
                extra_ca_file: Some(PathBuf::from("ca.pem")),
            }
        );
        assert_eq!(config.max_upload_jobs, 5);
        assert_eq!(config.lifetime, Some(Duration::from_secs(7 * 3600)));
        assert_eq!(config.metrics_addr, "[::1]:8".parse().unwrap());
    }

    #[test]
    fn fractional_durations() {
        let config = with_env(&[
            ("SHARD_CLIENT_HEARTBEAT_PAUSE_SEC", "0.05"),
            ("SHARD_CLIENT_RPC_TIMEOUT_MIN", "0.02"),
            ("SHARD_CLIENT_LIFETIME_HOURS", "0.0003"),
        ])
        .unwrap();
        assert_eq!(config.heartbeat_pause, Duration::from_millis(50));
        assert_eq!(config.rpc.budget, Duration::from_millis(1200));
        assert_eq!(config.lifetime, Some(Duration::from_millis(1080)));
    }

    #[test]
    fn fractional_durations_in_toml() {
        let file = TempToml::new(
            "fractional",
            "global_afe_hostname = \"afe\"\nshard_hostname = \"s1\"\n\
             heartbeat_pause_sec = 0.05\nrpc_timeout_min = 0.02\nlifetime_hours = 0.0003\n",
        );
        let config = load_from(Some(&file.0), vars(&[]), &Settings::default()).unwrap();
        assert_eq!(config.heartbeat_pause, Duration::from_millis(50));
        assert_eq!(config.rpc.budget, Duration::from_millis(1200));
        assert_eq!(config.lifetime, Some(Duration::from_millis(1080)));
    }

    #[test]
    fn hostnames_are_trimmed() {
        let config = with_env(&[("SHARD_CLIENT_SHARD_HOSTNAME", " s2 \n")]).unwrap();
        assert_eq!(config.shard_hostname, "s2");
    }

    #[test]
    fn text_variables_are_not_read_as_numbers() {
        let config = with_env(&[
            ("SHARD_CLIENT_SHARD_HOSTNAME", "007"),
            ("SHARD_CLIENT_RPC_USER", "true"),
        ])
        .unwrap();
        assert_eq!(config.shard_hostname, "007");
        assert_eq!(config.rpc.user, "true");
    }

    #[test]
    fn sqlite_forms_sqlx_accepts() {
        for url in [
            "sqlite::memory:",
            "sqlite:shard.db",
            "sqlite:///var/lib/shard.db",
        ] {
            let config = with_env(&[("SHARD_CLIENT_DATABASE_URL", url)]).unwrap();
            assert_eq!(config.database_url, url);
        }
        let config = with_env(&[("SHARD_CLIENT_DATABASE_URL", "postgresql://u@db/afe")]).unwrap();
        assert_eq!(config.database_url, "postgresql://u@db/afe");
    }

    #[test]
    fn empty_shard_hostname() {
        assert_eq!(
            error_with_env(&[("SHARD_CLIENT_SHARD_HOSTNAME", "  ")]),
            "invalid configuration: `shard_hostname` must not be empty \
             (from environment variable SHARD_CLIENT_SHARD_HOSTNAME)"
        );
    }

    #[test]
    fn missing_global_afe_hostname() {
        let err = load_from(
            None,
            vars(&[]),
            &Settings {
                shard_hostname: Some("s1".to_owned()),
                ..Settings::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.key(), Some("global_afe_hostname"));
        assert_eq!(
            err.to_string(),
            "invalid configuration: `global_afe_hostname` is required: set it in the --config \
             file, as SHARD_CLIENT_GLOBAL_AFE_HOSTNAME or with --global-afe-hostname"
        );
    }

    #[test]
    fn database_url_with_unknown_scheme() {
        let err = load_from(
            None,
            vars(&[]),
            &Settings {
                database_url: Some("ftp://u:secret@h/db".to_owned()),
                ..flags_with_required()
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: `database_url` must be a sqlite://, mysql://, mariadb://, \
             postgres:// or postgresql:// URL, got \"ftp://u:***@h/db\" (from flag --database-url)"
        );
    }

    #[test]
    fn database_url_without_anything_after_the_scheme() {
        for url in ["mysql:", "postgres:db", "sqlite://", "no-scheme"] {
            let err = with_env(&[("SHARD_CLIENT_DATABASE_URL", url)]).unwrap_err();
            assert_eq!(err.key(), Some("database_url"), "{url}");
        }
    }

    #[test]
    fn zero_pause() {
        assert_eq!(
            error_with_env(&[("SHARD_CLIENT_HEARTBEAT_PAUSE_SEC", "0")]),
            "invalid configuration: `heartbeat_pause_sec` must be a positive number of seconds, \
             got 0 (from environment variable SHARD_CLIENT_HEARTBEAT_PAUSE_SEC)"
        );
    }

    #[test]
    fn negative_pause() {
        let err = load_from(
            None,
            vars(&[]),
            &Settings {
                heartbeat_pause_sec: Some(-1.0),
                ..flags_with_required()
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: `heartbeat_pause_sec` must be a positive number of seconds, \
             got -1 (from flag --heartbeat-pause-sec)"
        );
    }

    #[test]
    fn nan_pause() {
        assert_eq!(
            error_with_env(&[("SHARD_CLIENT_HEARTBEAT_PAUSE_SEC", "NaN")]),
            "invalid configuration: `heartbeat_pause_sec` must be a positive number of seconds, \
             got NaN (from environment variable SHARD_CLIENT_HEARTBEAT_PAUSE_SEC)"
        );
    }

    #[test]
    fn pause_that_is_not_a_number() {
        assert_eq!(
            error_with_env(&[("SHARD_CLIENT_HEARTBEAT_PAUSE_SEC", "soon")]),
            "invalid configuration: `heartbeat_pause_sec` must be a positive number of seconds, \
             got \"soon\" (from environment variable SHARD_CLIENT_HEARTBEAT_PAUSE_SEC)"
        );
    }

    #[test]
    fn pause_too_short_to_last_a_nanosecond() {
        let err = with_env(&[("SHARD_CLIENT_HEARTBEAT_PAUSE_SEC", "1e-12")]).unwrap_err();
        assert_eq!(err.key(), Some("heartbeat_pause_sec"));
    }

    #[test]
    fn infinite_and_huge_durations() {
        assert_eq!(
            error_with_env(&[("SHARD_CLIENT_RPC_TIMEOUT_MIN", "1e300")]),
            "invalid configuration: `rpc_timeout_min` is too large, got 1e300 \
             (from environment variable SHARD_CLIENT_RPC_TIMEOUT_MIN)"
        );
        let err = with_env(&[("SHARD_CLIENT_LIFETIME_HOURS", "inf")]).unwrap_err();
        assert_eq!(err.key(), Some("lifetime_hours"));
    }

    #[test]
    fn zero_lifetime() {
        let err = with_env(&[("SHARD_CLIENT_LIFETIME_HOURS", "0")]).unwrap_err();
        assert_eq!(err.key(), Some("lifetime_hours"));
    }

    #[test]
    fn zero_max_upload_jobs() {
        assert_eq!(
            error_with_env(&[("SHARD_CLIENT_MAX_UPLOAD_JOBS", "0")]),
            "invalid configuration: `max_upload_jobs` must be a positive whole number, got 0 \
             (from environment variable SHARD_CLIENT_MAX_UPLOAD_JOBS)"
        );
    }

    #[test]
    fn negative_max_response_bytes() {
        assert_eq!(
            error_with_env(&[("SHARD_CLIENT_MAX_RESPONSE_BYTES", "-1")]),
            "invalid configuration: `max_response_bytes` must be a positive whole number of \
             bytes, got -1 (from environment variable SHARD_CLIENT_MAX_RESPONSE_BYTES)"
        );
    }

    #[test]
    fn bad_metrics_addr() {
        assert_eq!(
            error_with_env(&[("SHARD_CLIENT_METRICS_ADDR", "localhost:9464")]),
            "invalid configuration: `metrics_addr` must be an IP address and port such as \
             127.0.0.1:9464, got \"localhost:9464\" \
             (from environment variable SHARD_CLIENT_METRICS_ADDR)"
        );
    }

    #[test]
    fn rpc_path_without_leading_slash() {
        let err = with_env(&[("SHARD_CLIENT_RPC_PATH", "rpc/")]).unwrap_err();
        assert_eq!(err.key(), Some("rpc_path"));
    }

    #[test]
    fn rpc_user_errors_never_quote_the_user() {
        let err = with_env(&[("SHARD_CLIENT_RPC_USER", "se\ncret")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: `rpc_user` must be a user name of printable ASCII \
             (from environment variable SHARD_CLIENT_RPC_USER)"
        );
    }

    #[test]
    fn a_bad_default_user_points_at_the_environment() {
        let defaults = Figment::from(defaults());
        assert_eq!(
            origin(&defaults, "rpc_user", None).as_deref(),
            Some("from $USER or $LOGNAME, the default")
        );
        assert_eq!(origin(&defaults, "rpc_path", None), None);
    }

    #[test]
    fn empty_rpc_ca_file() {
        let err = with_env(&[("SHARD_CLIENT_RPC_CA_FILE", "")]).unwrap_err();
        assert_eq!(err.key(), Some("rpc_ca_file"));
    }

    #[test]
    fn unknown_key_in_toml() {
        let file = TempToml::new("unknown-key", "shard_hostnme = \"s1\"\n");
        let err = load_from(Some(&file.0), required_and(&[]), &Settings::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid configuration: `shard_hostnme` is not a configuration key (in {})",
                file.0.display()
            )
        );
    }

    #[test]
    fn unknown_variable() {
        assert_eq!(
            error_with_env(&[("SHARD_CLIENT_HEARTBEAT_PAUSE", "5")]),
            "invalid configuration: `heartbeat_pause` is not a configuration key \
             (from environment variable SHARD_CLIENT_HEARTBEAT_PAUSE)"
        );
    }

    #[test]
    fn variables_without_the_prefix_are_ignored() {
        assert!(with_env(&[("SHARD_CLIENTX", "1"), ("shard_client_foo", "1")]).is_ok());
    }

    #[test]
    fn wrong_type_in_toml() {
        let file = TempToml::new("wrong-type", "shard_hostname = 5\n");
        let err = load_from(Some(&file.0), vars(&[]), &Settings::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid configuration: `shard_hostname` must be a host name, got 5 (in {})",
                file.0.display()
            )
        );
    }

    #[test]
    fn table_in_toml() {
        let file = TempToml::new("table", "[max_upload_jobs]\nn = 5\n");
        let err = load_from(Some(&file.0), required_and(&[]), &Settings::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid configuration: `max_upload_jobs` must be a positive whole number, \
                 got a table (in {})",
                file.0.display()
            )
        );
    }

    #[test]
    fn toml_syntax_error_names_the_file_on_one_line() {
        let file = TempToml::new("syntax", "shard_hostname = \n");
        let err = load_from(Some(&file.0), required_and(&[]), &Settings::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid configuration in {}: TOML parse error at line 1, column 18: \
                 invalid string: expected `\"`, `'`",
                file.0.display()
            )
        );
    }

    #[test]
    fn missing_file_names_the_file() {
        let path = std::env::temp_dir().join("shard-client-config-does-not-exist.toml");
        let err = load_from(Some(&path), required_and(&[]), &Settings::default()).unwrap_err();
        assert!(matches!(err, ConfigError::File { .. }));
        assert!(
            err.to_string().starts_with(&format!(
                "cannot read configuration file {}: ",
                path.display()
            )),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_variable() {
        use std::os::unix::ffi::OsStringExt;
        let mut env = required_and(&[]);
        env.push((
            OsString::from("SHARD_CLIENT_RPC_PATH"),
            OsString::from_vec(vec![b'/', 0xff]),
        ));
        let err = load_from(None, env, &Settings::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: `rpc_path` is not valid UTF-8 \
             (from environment variable SHARD_CLIENT_RPC_PATH)"
        );
    }

    #[test]
    fn display_and_debug_hide_the_secrets() {
        let config = load_from(
            None,
            vars(&[]),
            &Settings {
                database_url: Some("mysql://afe:hunter2@db/afe?password=hunter3".to_owned()),
                rpc_user: Some("alice-the-user".to_owned()),
                ..flags_with_required()
            },
        )
        .unwrap();
        let display = config.to_string();
        let debug = format!("{config:?}");
        for shown in [&display, &debug] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!shown.contains("hunter3"), "{shown}");
            assert!(!shown.contains("alice-the-user"), "{shown}");
        }
        assert_eq!(
            display,
            "global_afe_hostname=cautotest shard_hostname=s1 \
             database_url=mysql://afe:***@db/afe?password=*** heartbeat_pause=60s \
             rpc_endpoint=http://cautotest/afe/server/noauth/rpc/ rpc_user=<set> rpc_budget=300s \
             rpc_delay=5s rpc_request_timeout=120s max_response_bytes=268435456 \
             rpc_ca_file=none max_upload_jobs=1000 lifetime=none metrics_addr=127.0.0.1:9464"
        );
    }

    #[test]
    fn redaction_covers_the_query() {
        assert_eq!(
            redacted_url("postgres://u@h/db?sslmode=require&password=p"),
            "postgres://u@h/db?sslmode=require&password=***"
        );
        assert!(has_password("mysql://u:p@h/db"));
        assert!(!has_password("mysql://u@h/db"));
        assert!(!has_password("sqlite://shard.db?mode=rwc"));
    }

    #[test]
    fn no_warnings_by_default() {
        assert_eq!(with_env(&[]).unwrap().warnings(None), Vec::<String>::new());
    }

    #[test]
    fn warns_when_metrics_leave_loopback() {
        let config = with_env(&[("SHARD_CLIENT_METRICS_ADDR", "0.0.0.0:9464")]).unwrap();
        assert_eq!(
            config.warnings(None),
            [
                "metrics_addr 0.0.0.0:9464 is not a loopback address: metrics are served to other hosts"
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn warns_when_a_readable_file_holds_the_password() {
        let file = TempToml::new(
            "readable-password",
            "global_afe_hostname = \"afe\"\nshard_hostname = \"s1\"\n\
             database_url = \"mysql://afe:pw@db/afe\"\n",
        );
        let config = load_from(Some(&file.0), vars(&[]), &Settings::default()).unwrap();
        assert_eq!(config.warnings(Some(&file.0)), Vec::<String>::new());
        set_mode(&file.0, 0o644);
        assert_eq!(
            config.warnings(Some(&file.0)),
            [format!(
                "configuration file {} holds the database password and is readable by other \
                 users; make it readable by its owner only (chmod o-r)",
                file.0.display()
            )]
        );
    }

    #[cfg(unix)]
    #[test]
    fn no_password_warning_when_the_password_is_not_in_the_file() {
        let file = TempToml::new(
            "readable-no-password",
            "global_afe_hostname = \"afe\"\nshard_hostname = \"s1\"\n",
        );
        set_mode(&file.0, 0o644);
        let env = vars(&[("SHARD_CLIENT_DATABASE_URL", "mysql://afe:pw@db/afe")]);
        let config = load_from(Some(&file.0), env, &Settings::default()).unwrap();
        assert_eq!(config.warnings(Some(&file.0)), Vec::<String>::new());
    }

    #[test]
    fn every_key_is_in_the_table() {
        let defaults = Figment::from(defaults());
        let flags = Settings {
            global_afe_hostname: Some(String::new()),
            shard_hostname: Some(String::new()),
            lifetime_hours: Some(1.0),
            rpc_ca_file: Some(PathBuf::new()),
            ..Settings::default()
        };
        let all = defaults.merge(super::flags(&flags));
        let keys: Vec<String> = all
            .data()
            .unwrap()
            .remove(&Profile::Default)
            .unwrap()
            .into_keys()
            .collect();
        let mut table: Vec<String> = KEYS.iter().map(|(key, ..)| (*key).to_owned()).collect();
        table.sort();
        assert_eq!(keys, table);
    }
}
