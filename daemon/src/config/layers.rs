//! The layers of the configuration: defaults, the TOML file, the
//! `SHARD_CLIENT_` variables and the flags, each named so that errors can
//! say where a value came from.

use std::ffi::OsString;
use std::path::Path;

use figment::error::Kind;
use figment::providers::{Data, Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::check::has_password;
use super::key::{ENV_PREFIX, Key, Secret, ValueType, find};
use super::keys::KEYS;
use super::{ConfigError, Settings};

/// The lowest layer: every key's default, from the table.
pub(super) fn defaults() -> Layer<Serialized<Dict>> {
    let values = KEYS
        .iter()
        .filter_map(|key| Some((key.name.to_owned(), key.default.value()?)))
        .collect();
    Layer {
        provider: Serialized::defaults(values),
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
            let name = keys.join(".");
            format!("--{}", find(&name).map_or(name.as_str(), |key| key.flag))
        }),
    }
}

/// Reads the `--config` file; a missing or unreadable file is an error rather
/// than an empty layer, because the operator asked for it.
pub(super) fn read_file(path: &Path) -> Result<Layer<Data<Toml>>, ConfigError> {
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

/// Whether the file's own value of a key with a password (`database_url`)
/// carries one.
pub(super) fn holds_password(file: &Layer<Data<Toml>>) -> bool {
    let file = Figment::from(&file.provider);
    KEYS.iter()
        .filter(|key| key.secret == Secret::Password)
        .any(|key| {
            file.extract_inner::<String>(key.name)
                .is_ok_and(|url| has_password(&url))
        })
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
    vars: Vec<(&'static Key, Option<String>)>,
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
            if key.is_empty() {
                continue;
            }
            match find(&key.to_ascii_lowercase()) {
                Some(key) => layer.vars.push((key, value.into_string().ok())),
                None => layer.unknown.push(name.to_owned()),
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
        .map(|known| (edit_distance(&key, known.name), known))
        .filter(|(distance, known)| {
            *distance <= 2 || (key.len() >= 4 && known.name.starts_with(&key))
        })
        .min_by_key(|(distance, known)| (*distance, known.name));
    match nearest {
        Some((_, known)) => format!(
            "environment variable {name} is not a configuration key and is ignored; \
             did you mean {}?",
            known.variable()
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
                        .with_path(key.name),
                );
            };
            dict.insert(key.name.to_owned(), env_value(key, value));
        }
        Ok(Map::from([(Profile::Default, dict)]))
    }
}

/// A variable's value as the key's type wants it; a value that is no number
/// stays a string, for the type error to quote.
fn env_value(key: &Key, text: &str) -> Value {
    if let ValueType::Text | ValueType::Path = key.value {
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
