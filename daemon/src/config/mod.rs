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
//!
//! Every key is declared once, in `keys.rs` (what a key is: `key.rs`); the
//! flags, the layers (`layers.rs`), the checks (`check.rs`), the messages
//! (`messages.rs`) and `--help` read that table.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::{Figment, Profile};
use shard_rpc::{ProxyConfig, RpcConfig, without_credentials};
use shard_store::redact_url;

mod check;
mod key;
mod keys;
mod layers;
mod messages;

use check::readable_by_others;
use keys::{Checked, KEYS};
use layers::{DEFAULTS, EnvLayer, defaults, flags, holds_password, read_file, unknown_variable};
use messages::from_figment;

pub use keys::Settings;

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
    /// The zone naive lab-local times are stored in (`database_time_zone`,
    /// the AFE's `TIME_ZONE`); PostgreSQL sessions use it.
    pub database_time_zone: String,
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
    /// `SHARD_CLIENT_` variables that name no key, ignored, for
    /// [`Config::warnings`].
    unknown_variables: Vec<String>,
    /// Every key's value as given (secrets hidden) and where it came from,
    /// for [`Config::effective`].
    origins: Vec<Origin>,
}

/// One key of the effective configuration, for `shard-client config`.
#[derive(Debug, Clone, PartialEq)]
struct Origin {
    key: &'static str,
    /// The value as TOML writes it, secrets hidden; `None` when not set.
    value: Option<String>,
    /// `default`, `TOML file <path>`, `environment variable <NAME>` or
    /// `flag --<name>`.
    from: String,
}

/// Where each key's value comes from, in the order of [`KEYS`].
fn origins(figment: &Figment) -> Vec<Origin> {
    KEYS.iter()
        .map(|key| {
            let value = figment
                .find_value(key.name)
                .ok()
                .map(|value| key.shown(&value));
            let from = match figment.find_metadata(key.name) {
                None => "not set".to_owned(),
                Some(meta) => match &meta.source {
                    Some(figment::Source::File(path)) => {
                        format!("{} {}", meta.name, path.display())
                    }
                    _ if meta.name == DEFAULTS => DEFAULTS.to_owned(),
                    _ => format!(
                        "{} {}",
                        meta.name,
                        meta.interpolate(&Profile::Default, &[key.name])
                    ),
                },
            };
            Origin {
                key: key.name,
                value,
                from,
            }
        })
        .collect()
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
    let vars: Vec<(OsString, OsString)> = vars.into_iter().collect();
    let file = config_file.map(read_file).transpose()?;
    let file_holds_password = file.as_ref().is_some_and(holds_password);
    let mut figment = Figment::from(defaults());
    if let Some(file) = file {
        figment = figment.merge(file);
    }
    let proxy = ProxyConfig::from_lookup(|name| {
        vars.iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.to_str().map(str::to_owned))
    });
    let env = EnvLayer::new(vars);
    let unknown_variables = env.unknown.clone();
    let figment = figment.merge(env).merge(flags(settings));
    let settings: Settings = figment
        .extract()
        .map_err(|error| from_figment(&figment, error))?;
    let checked = Checked::new(&figment, settings)?;
    Ok(Config {
        rpc: RpcConfig {
            server: checked.global_afe_hostname.clone(),
            path: checked.rpc_path,
            user: checked.rpc_user,
            delay: checked.rpc_delay_sec,
            budget: checked.rpc_timeout_min,
            request_timeout: checked.rpc_request_timeout_sec,
            max_response_bytes: checked.max_response_bytes,
            extra_ca_file: checked.rpc_ca_file,
            // The proxies are the environment's, as for the original
            // client; they are not keys, so a file cannot set them.
            proxy,
        },
        global_afe_hostname: checked.global_afe_hostname,
        shard_hostname: checked.shard_hostname,
        database_url: checked.database_url,
        database_time_zone: checked.database_time_zone,
        heartbeat_pause: checked.heartbeat_pause_sec,
        max_upload_jobs: checked.max_upload_jobs,
        lifetime: checked.lifetime_hours,
        metrics_addr: checked.metrics_addr,
        file_holds_password,
        unknown_variables,
        origins: origins(&figment),
    })
}

impl Config {
    /// The effective configuration as a TOML file would set it, secrets
    /// hidden, each key with where its value came from; keys that are not
    /// set are commented out.
    pub fn effective(&self) -> String {
        let width = self
            .origins
            .iter()
            .map(|o| o.key.len() + o.value.as_ref().map_or(0, String::len))
            .max()
            .unwrap_or(0)
            + 3;
        let mut out = String::new();
        for o in &self.origins {
            let line = match &o.value {
                Some(value) => format!("{} = {value}", o.key),
                None => format!("# {}", o.key),
            };
            out.push_str(&format!("{line:width$}  # {}\n", o.from));
        }
        if let Some(proxies) = proxies(&self.rpc.proxy) {
            out.push_str(&format!("# from the environment, not keys: {proxies}\n"));
        }
        out
    }

    /// Things an operator should fix that do not stop the daemon: the
    /// `--config` file `file` readable by other users while it holds the
    /// database password, metrics served beyond loopback, and `SHARD_CLIENT_`
    /// variables that name no key (one warning each, ignored).
    pub fn warnings(&self, file: Option<&Path>) -> Vec<String> {
        let mut warnings: Vec<String> = self
            .unknown_variables
            .iter()
            .map(|name| unknown_variable(name))
            .collect();
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

/// The proxy variables that are set, credentials hidden, on one line.
fn proxies(proxy: &ProxyConfig) -> Option<String> {
    let set: Vec<String> = [
        ("http_proxy", &proxy.http),
        ("https_proxy", &proxy.https),
        ("all_proxy", &proxy.all),
        ("no_proxy", &proxy.no_proxy),
    ]
    .into_iter()
    .filter_map(|(name, value)| {
        value
            .as_deref()
            .map(|value| format!("{name}={}", without_credentials(value)))
    })
    .collect();
    (!set.is_empty()).then(|| set.join(" "))
}

/// One line for the startup log: every value, with the database password
/// masked and the `rpc_user` value left out.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "global_afe_hostname={} shard_hostname={} database_url={} database_time_zone={} heartbeat_pause={:?} \
             rpc_endpoint={} rpc_user=<set> rpc_budget={:?} rpc_delay={:?} rpc_request_timeout={:?} \
             max_response_bytes={} rpc_ca_file={} max_upload_jobs={} lifetime={} metrics_addr={} proxy={}",
            self.global_afe_hostname,
            self.shard_hostname,
            redact_url(&self.database_url),
            self.database_time_zone,
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
            proxies(&self.rpc.proxy).unwrap_or_else(|| "none".to_owned()),
        )
    }
}

/// Masks the database password; `RpcConfig`'s own `Debug` hides the user.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("global_afe_hostname", &self.global_afe_hostname)
            .field("shard_hostname", &self.shard_hostname)
            .field("database_url", &redact_url(&self.database_url))
            .field("database_time_zone", &self.database_time_zone)
            .field("heartbeat_pause", &self.heartbeat_pause)
            .field("rpc", &self.rpc)
            .field("max_upload_jobs", &self.max_upload_jobs)
            .field("lifetime", &self.lifetime)
            .field("metrics_addr", &self.metrics_addr)
            .field("file_holds_password", &self.file_holds_password)
            .finish()
    }
}

#[cfg(test)]
mod tests;
