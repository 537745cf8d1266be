//! [`RpcConfig`]: where the master is, who we say we are, and the time and
//! size limits of one call (spec §10: `rpc_path`, `rpc_user`,
//! `rpc_timeout_min`, `rpc_delay_sec`, `rpc_request_timeout_sec`,
//! `max_response_bytes`).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::proxy::ProxyConfig;

/// The AFE's JSON-RPC path when none is configured.
pub const DEFAULT_PATH: &str = "/afe/server/noauth/rpc/";
/// The first back-off delay (`rpc_delay_sec` = 5).
pub const DEFAULT_DELAY: Duration = Duration::from_secs(5);
/// The total retry budget of one call (`rpc_timeout_min` = 5).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(5 * 60);
/// The timeout of one attempt (`rpc_request_timeout_sec` = 120).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest response body accepted, before and after gzip (256 MiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 256 * 1024 * 1024;
/// The user sent when neither the configuration nor the environment names one.
pub const FALLBACK_USER: &str = "autotest";

/// How to reach the master and the limits of one call.
///
/// Build it with [`RpcConfig::new`] and override fields; the durations are
/// plain [`Duration`]s, so fractional seconds from the configuration file
/// convert with `Duration::try_from_secs_f64`.
#[derive(Clone, PartialEq, Eq)]
pub struct RpcConfig {
    /// The master (`global_afe_hostname`): `host`, `host:port` or a URL with
    /// `http://` or `https://`; `http://` is prepended when there is no scheme.
    pub server: String,
    /// The JSON-RPC path on the master (`rpc_path`).
    pub path: String,
    /// The value of the `AUTHORIZATION` header (`rpc_user`).
    pub user: String,
    /// The first back-off delay; each next one doubles (`rpc_delay_sec`).
    pub delay: Duration,
    /// The total time one call may take, retries included (`rpc_timeout_min`).
    pub budget: Duration,
    /// The timeout of one attempt (`rpc_request_timeout_sec`).
    pub request_timeout: Duration,
    /// The largest body accepted, on the wire and after gzip decoding.
    pub max_response_bytes: u64,
    /// A PEM file of extra CA certificates trusted besides the system's.
    pub extra_ca_file: Option<PathBuf>,
    /// The HTTP proxies and their exceptions; none unless set (the daemon
    /// reads them from the environment, [`ProxyConfig::from_env`]).
    pub proxy: ProxyConfig,
}

impl RpcConfig {
    /// A configuration for `server` with the defaults of spec §10 and the OS
    /// user name as `user`.
    pub fn new(server: impl Into<String>) -> Self {
        RpcConfig {
            server: server.into(),
            path: DEFAULT_PATH.to_owned(),
            user: default_user(),
            delay: DEFAULT_DELAY,
            budget: DEFAULT_BUDGET,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            extra_ca_file: None,
            proxy: ProxyConfig::none(),
        }
    }

    /// `<server><path>`, with `http://` prepended when `server` has no scheme
    /// (a trailing `/` of `server` is dropped when `path` starts with one).
    pub fn endpoint(&self) -> String {
        let server = if has_scheme(&self.server) {
            self.server.clone()
        } else {
            format!("http://{}", self.server)
        };
        // `host/` + `/afe/...` would give an empty path segment.
        match (server.strip_suffix('/'), self.path.starts_with('/')) {
            (Some(trimmed), true) => format!("{trimmed}{}", self.path),
            _ => format!("{server}{}", self.path),
        }
    }
}

/// Leaves the user out: it is the `AUTHORIZATION` value, and configs get logged.
impl fmt::Debug for RpcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcConfig")
            .field("server", &self.server)
            .field("path", &self.path)
            .field("user", &"<redacted>")
            .field("delay", &self.delay)
            .field("budget", &self.budget)
            .field("request_timeout", &self.request_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("extra_ca_file", &self.extra_ca_file)
            .field("proxy", &self.proxy)
            .finish()
    }
}

/// The OS user name, as the original client sends it: `$USER`, else
/// `$LOGNAME`, else [`FALLBACK_USER`].
pub fn default_user() -> String {
    user_from(|key| std::env::var(key).ok())
}

/// [`default_user`] over any environment lookup.
fn user_from(lookup: impl Fn(&str) -> Option<String>) -> String {
    ["USER", "LOGNAME"]
        .into_iter()
        .filter_map(lookup)
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| FALLBACK_USER.to_owned())
}

/// Whether `server` names a scheme. Only `http` and `https` are usable; any
/// other is kept, so that the client refuses it rather than calling
/// `http://ftp://…`.
fn has_scheme(server: &str) -> bool {
    server.contains("://")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(server: &str, path: &str) -> String {
        RpcConfig {
            path: path.to_owned(),
            ..RpcConfig::new(server)
        }
        .endpoint()
    }

    #[test]
    fn prepends_http_without_scheme() {
        assert_eq!(
            endpoint("cautotest", DEFAULT_PATH),
            "http://cautotest/afe/server/noauth/rpc/"
        );
        assert_eq!(
            endpoint("10.0.0.1:8080", "/rpc/"),
            "http://10.0.0.1:8080/rpc/"
        );
    }

    #[test]
    fn keeps_an_explicit_scheme() {
        assert_eq!(
            endpoint("https://afe.example", "/rpc/"),
            "https://afe.example/rpc/"
        );
        assert_eq!(
            endpoint("HTTP://afe.example", "/rpc/"),
            "HTTP://afe.example/rpc/"
        );
    }

    #[test]
    fn joins_a_trailing_slash_once() {
        assert_eq!(
            endpoint("http://afe.example/", "/rpc/"),
            "http://afe.example/rpc/"
        );
    }

    #[test]
    fn user_comes_from_user_then_logname_then_fallback() {
        fn env(
            user: Option<&'static str>,
            logname: Option<&'static str>,
        ) -> impl Fn(&str) -> Option<String> {
            move |key| match key {
                "USER" => user.map(str::to_owned),
                "LOGNAME" => logname.map(str::to_owned),
                _ => None,
            }
        }
        assert_eq!(user_from(env(Some("alice"), Some("bob"))), "alice");
        assert_eq!(user_from(env(None, Some("bob"))), "bob");
        assert_eq!(user_from(env(Some(""), Some("bob"))), "bob");
        assert_eq!(user_from(env(None, None)), "autotest");
    }

    #[test]
    fn debug_hides_the_user() {
        let config = RpcConfig {
            user: "secret-user".to_owned(),
            ..RpcConfig::new("afe")
        };
        assert!(!format!("{config:?}").contains("secret-user"));
    }
}
