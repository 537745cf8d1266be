//! The layers of the configuration: defaults, the TOML file, the
//! `SHARD_CLIENT_` variables and the flags, each named so that errors can
//! say where a value came from.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Every key of §10 plus `rpc_ca_file`, as the file, the variables and the
/// flags spell it, before checking. Unknown keys are refused, so that a typo
/// names itself instead of being ignored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) global_afe_hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) shard_hostname: Option<String>,
    pub(super) database_url: String,
    pub(super) database_time_zone: String,
    pub(super) heartbeat_pause_sec: f64,
    pub(super) rpc_path: String,
    pub(super) rpc_user: String,
    pub(super) rpc_timeout_min: f64,
    pub(super) rpc_delay_sec: f64,
    pub(super) rpc_request_timeout_sec: f64,
    pub(super) max_upload_jobs: u64,
    pub(super) max_response_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) lifetime_hours: Option<f64>,
    pub(super) metrics_addr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) rpc_ca_file: Option<PathBuf>,
}

/// How a key's value is read from a `SHARD_CLIENT_` variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Type {
    /// Kept as written: `007` stays `007`.
    Text,
    /// Read as a number when it looks like one (`60`, `0.05`, `-1`, `NaN`).
    Number,
}

/// Every key, how a variable sets it, and what it must be (the words of the
/// error messages).
pub(super) const KEYS: [(&str, Type, &str); 15] = [
    ("global_afe_hostname", Type::Text, "a host name or URL"),
    ("shard_hostname", Type::Text, "a host name"),
    (
        "database_url",
        Type::Text,
        "a sqlite://, mysql://, mariadb://, postgres:// or postgresql:// URL",
    ),
    (
        "database_time_zone",
        Type::Text,
        "a time zone name such as UTC or America/Los_Angeles",
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
pub(super) fn defaults() -> Layer<Serialized<Raw>> {
    let raw = Raw {
        global_afe_hostname: None,
        shard_hostname: None,
        database_url: DEFAULT_DATABASE_URL.to_owned(),
        database_time_zone: DEFAULT_DATABASE_TIME_ZONE.to_owned(),
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
pub(super) const DEFAULTS: &str = "default";

/// The top layer: the flags that were given, named `--kebab-case` in errors.
pub(super) fn flags(settings: &Settings) -> Layer<Serialized<&Settings>> {
    Layer {
        provider: Serialized::defaults(settings),
        metadata: Metadata::named("flag").interpolater(|_: &Profile, keys: &[&str]| {
            format!("--{}", keys.join(".").replace('_', "-"))
        }),
    }
}

/// Reads the `--config` file; a missing or unreadable file is an error rather
/// than an empty layer, because the operator asked for it.
pub(super) fn read_file(path: &Path) -> Result<Layer<figment::providers::Data<Toml>>, ConfigError> {
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
pub(super) fn holds_password(file: &Layer<figment::providers::Data<Toml>>) -> bool {
    Figment::from(&file.provider)
        .extract_inner::<String>("database_url")
        .is_ok_and(|url| has_password(&url))
}

/// A provider under a name of our choosing, so that errors say "flag
/// --shard-hostname" rather than a Rust type name.
pub(super) struct Layer<P> {
    pub(super) provider: P,
    pub(super) metadata: Metadata,
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
pub(super) struct EnvLayer {
    /// Key and value; `None` when the value is not UTF-8.
    vars: Vec<(String, Option<String>)>,
    /// Variables with the prefix that name no key, in name order. They are
    /// ignored with a warning, not refused: the environment is shared, and
    /// Kubernetes alone injects `SHARD_CLIENT_PORT`, `SHARD_CLIENT_SERVICE_HOST`
    /// and more for a Service named `shard-client`.
    pub(super) unknown: Vec<String>,
}

impl EnvLayer {
    /// The variables of `vars` that carry the prefix.
    pub(super) fn new(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        let mut layer = EnvLayer {
            vars: Vec::new(),
            unknown: Vec::new(),
        };
        for (name, value) in vars {
            let Some(name) = name.to_str() else { continue };
            let Some(key) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            if key.is_empty() {
                continue;
            }
            if key_type(&key).is_some() {
                layer.vars.push((key, value.into_string().ok()));
            } else {
                layer.unknown.push(name.to_owned());
            }
        }
        layer.unknown.sort();
        layer
    }
}

/// The warning for a `SHARD_CLIENT_` variable that names no key, with the
/// key it most likely meant when it is a near miss.
pub(super) fn unknown_variable(name: &str) -> String {
    let key = name
        .strip_prefix(ENV_PREFIX)
        .unwrap_or(name)
        .to_ascii_lowercase();
    // A near miss: a typo or two, or a key without its unit
    // (`heartbeat_pause` for `heartbeat_pause_sec`).
    let nearest = KEYS
        .iter()
        .map(|(known, ..)| (edit_distance(&key, known), *known))
        .filter(|(distance, known)| *distance <= 2 || (key.len() >= 4 && known.starts_with(&key)))
        .min();
    match nearest {
        Some((_, known)) => format!(
            "environment variable {name} is not a configuration key and is ignored; \
             did you mean {ENV_PREFIX}{}?",
            known.to_ascii_uppercase()
        ),
        _ => format!("environment variable {name} is not a configuration key and is ignored"),
    }
}

/// Levenshtein distance between `a` and `b`, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
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
pub(super) fn env_value(key: &str, text: &str) -> Value {
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
pub(super) fn key_type(key: &str) -> Option<Type> {
    KEYS.iter()
        .find(|(name, ..)| *name == key)
        .map(|(_, t, _)| *t)
}

/// What `key` must be, for messages.
pub(super) fn expected(key: &str) -> &'static str {
    KEYS.iter()
        .find(|(name, ..)| *name == key)
        .map_or("a valid value", |(.., expected)| expected)
}
