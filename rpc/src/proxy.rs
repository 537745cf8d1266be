//! [`ProxyConfig`]: whether the calls to the master go through an HTTP proxy,
//! from the conventional `http_proxy`, `https_proxy`, `all_proxy` and
//! `no_proxy` variables, as the original client (Python's urllib) honoured
//! them.
//!
//! The master is one endpoint, so the route is decided once, when the client
//! is built: straight to the master, or through the proxy that the endpoint's
//! scheme selects (`http://` masters are sent absolute-form requests, as
//! urllib sends them; `https://` masters are reached through a `CONNECT`
//! tunnel, and TLS runs end to end inside it).

use std::fmt;

use http::{HeaderValue, Uri};
use hyper_util::client::proxy::matcher::Matcher;

use crate::error::RpcError;

/// The proxy settings, each as its variable spells it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// The proxy of `http://` masters (`http_proxy`).
    pub http: Option<String>,
    /// The proxy of `https://` masters (`https_proxy`).
    pub https: Option<String>,
    /// The proxy of both when the scheme's own is unset (`all_proxy`).
    pub all: Option<String>,
    /// Hosts, domains and CIDR blocks reached directly (`no_proxy`).
    pub no_proxy: Option<String>,
}

impl ProxyConfig {
    /// No proxy at all, whatever the environment says.
    pub fn none() -> Self {
        ProxyConfig::default()
    }

    /// The settings of the process environment. The lower-case variable
    /// wins over the upper-case one, as in curl and Python; an empty
    /// variable counts as unset.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`ProxyConfig::from_env`] over any variable lookup.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let read = |name: &str| {
            [name.to_owned(), name.to_ascii_uppercase()]
                .iter()
                .filter_map(|name| lookup(name))
                .find(|value| !value.trim().is_empty())
        };
        ProxyConfig {
            http: read("http_proxy"),
            https: read("https_proxy"),
            all: read("all_proxy"),
            no_proxy: read("no_proxy"),
        }
    }

    /// Whether any proxy is set.
    pub fn is_set(&self) -> bool {
        self.http.is_some() || self.https.is_some() || self.all.is_some()
    }

    /// How calls to `endpoint` travel; an unusable proxy setting for its
    /// scheme is a configuration error naming the variable.
    pub(crate) fn route(&self, endpoint: &Uri) -> Result<Route, RpcError> {
        let (name, value) = match endpoint.scheme_str() {
            Some("https") if self.https.is_some() => ("https_proxy", &self.https),
            Some("http") if self.http.is_some() => ("http_proxy", &self.http),
            _ => ("all_proxy", &self.all),
        };
        let Some(value) = value.as_deref() else {
            return Ok(Route::Direct);
        };
        check_scheme(name, value)?;
        let mut matcher = Matcher::builder().all(value.to_owned());
        if let Some(no_proxy) = &self.no_proxy {
            matcher = matcher.no(no_proxy.clone());
        }
        let Some(intercept) = matcher.build().intercept(endpoint) else {
            // Either no_proxy names the master, or the value is no URL.
            return if self.bypasses(endpoint) {
                Ok(Route::Direct)
            } else {
                Err(unusable(name, "it is not a proxy URL"))
            };
        };
        Ok(Route::Proxy {
            // The matcher keeps the credentials out of the URI.
            uri: intercept.uri().clone(),
            authorization: intercept.basic_auth().cloned(),
        })
    }

    /// Whether `no_proxy` sends `endpoint` straight to the master.
    fn bypasses(&self, endpoint: &Uri) -> bool {
        let Some(no_proxy) = &self.no_proxy else {
            return false;
        };
        let probe = Matcher::builder()
            .all("http://probe.invalid:1".to_owned())
            .no(no_proxy.clone())
            .build();
        probe.intercept(endpoint).is_none()
    }
}

/// Only plain-HTTP proxies are supported: a TLS or SOCKS proxy is refused by
/// name rather than silently bypassed.
fn check_scheme(name: &str, value: &str) -> Result<(), RpcError> {
    match value.split_once("://") {
        None => Ok(()),
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("http") => Ok(()),
        Some((scheme, _)) => Err(unusable(
            name,
            &format!("{scheme}:// proxies are not supported, only http://"),
        )),
    }
}

fn unusable(name: &str, why: &str) -> RpcError {
    RpcError::Config {
        // The value stays out: it may carry a password.
        what: format!("{name} is unusable: {why}"),
        source: None,
    }
}

/// Leaves the proxies' credentials out: configs get logged.
impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |value: &Option<String>| value.as_deref().map(without_credentials);
        f.debug_struct("ProxyConfig")
            .field("http", &shown(&self.http))
            .field("https", &shown(&self.https))
            .field("all", &shown(&self.all))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// `value` with any `user:password@` replaced by `***@`.
pub fn without_credentials(value: &str) -> String {
    let (scheme, rest) = match value.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, value),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => format!("***{}", &rest[at..]),
        None => rest.to_owned(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{rest}"),
        None => rest,
    }
}

/// How the calls to the master travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// Straight to the master.
    Direct,
    /// Through the proxy at `uri`, with its `Proxy-Authorization`, if any.
    Proxy {
        /// The proxy, without credentials.
        uri: Uri,
        /// `Basic …` from the proxy URL's user-info.
        authorization: Option<HeaderValue>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> Uri {
        Uri::try_from(text).unwrap_or_default()
    }

    fn proxied(config: &ProxyConfig, endpoint: &str) -> Option<String> {
        match config.route(&uri(endpoint)) {
            Ok(Route::Proxy { uri, .. }) => Some(uri.to_string()),
            Ok(Route::Direct) => None,
            Err(error) => Some(format!("error: {error}")),
        }
    }

    #[test]
    fn the_scheme_of_the_master_picks_the_proxy() {
        let config = ProxyConfig {
            http: Some("http://plain:3128".to_owned()),
            https: Some("http://secure:3128".to_owned()),
            ..ProxyConfig::none()
        };
        assert_eq!(
            proxied(&config, "http://afe/rpc/").as_deref(),
            Some("http://plain:3128/")
        );
        assert_eq!(
            proxied(&config, "https://afe/rpc/").as_deref(),
            Some("http://secure:3128/")
        );
    }

    #[test]
    fn all_proxy_serves_a_scheme_without_its_own() {
        let config = ProxyConfig {
            https: Some("http://secure:3128".to_owned()),
            all: Some("http://every:3128".to_owned()),
            ..ProxyConfig::none()
        };
        assert_eq!(
            proxied(&config, "http://afe/rpc/").as_deref(),
            Some("http://every:3128/")
        );
    }

    #[test]
    fn a_proxy_without_a_scheme_is_plain_http() {
        let config = ProxyConfig {
            http: Some("squid.lab:3128".to_owned()),
            ..ProxyConfig::none()
        };
        assert_eq!(
            proxied(&config, "http://afe/rpc/").as_deref(),
            Some("http://squid.lab:3128/")
        );
    }

    #[test]
    fn no_proxy_names_hosts_domains_and_networks() {
        for no_proxy in ["afe.lab", ".lab", "lab", "10.0.0.0/8", "*"] {
            let config = ProxyConfig {
                all: Some("http://squid:3128".to_owned()),
                no_proxy: Some(format!("other, {no_proxy}")),
                ..ProxyConfig::none()
            };
            let endpoint = if no_proxy.starts_with("10.") {
                "http://10.1.2.3/rpc/"
            } else {
                "http://afe.lab/rpc/"
            };
            assert_eq!(proxied(&config, endpoint), None, "no_proxy={no_proxy}");
        }
    }

    #[test]
    fn no_setting_is_direct() {
        assert_eq!(proxied(&ProxyConfig::none(), "https://afe/rpc/"), None);
    }

    #[test]
    fn credentials_become_proxy_authorization_and_leave_the_uri() -> Result<(), String> {
        let config = ProxyConfig {
            http: Some("http://alice:s%3Acret@squid:3128".to_owned()),
            ..ProxyConfig::none()
        };
        match config.route(&uri("http://afe/rpc/")) {
            Ok(Route::Proxy { uri, authorization }) => {
                assert_eq!(uri.to_string(), "http://squid:3128/");
                // base64("alice:s:cret")
                assert_eq!(
                    authorization.as_ref().and_then(|value| value.to_str().ok()),
                    Some("Basic YWxpY2U6czpjcmV0")
                );
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn tls_and_socks_proxies_are_refused_by_variable_name() {
        for value in ["https://squid:3128", "socks5://squid:1080"] {
            let config = ProxyConfig {
                https: Some(value.to_owned()),
                ..ProxyConfig::none()
            };
            let message = proxied(&config, "https://afe/rpc/").unwrap_or_default();
            assert!(message.contains("https_proxy is unusable"), "{message}");
            assert!(
                !message.contains("squid"),
                "the value may hold a password: {message}"
            );
        }
    }

    #[test]
    fn a_value_that_is_no_url_is_refused() {
        let config = ProxyConfig {
            http: Some("http://".to_owned()),
            ..ProxyConfig::none()
        };
        let message = proxied(&config, "http://afe/rpc/").unwrap_or_default();
        assert!(message.contains("http_proxy is unusable"), "{message}");
    }

    #[test]
    fn lower_case_variables_win_and_empty_ones_are_unset() {
        let env = |name: &str| match name {
            "http_proxy" => Some("http://lower:1".to_owned()),
            "HTTP_PROXY" => Some("http://upper:1".to_owned()),
            "https_proxy" => Some(" ".to_owned()),
            "HTTPS_PROXY" => Some("http://upper:2".to_owned()),
            "NO_PROXY" => Some("afe".to_owned()),
            _ => None,
        };
        let config = ProxyConfig::from_lookup(env);
        assert_eq!(config.http.as_deref(), Some("http://lower:1"));
        assert_eq!(config.https.as_deref(), Some("http://upper:2"));
        assert_eq!(config.all, None);
        assert_eq!(config.no_proxy.as_deref(), Some("afe"));
    }

    #[test]
    fn debug_and_display_hide_credentials() {
        let config = ProxyConfig {
            http: Some("http://alice:hunter2@squid:3128".to_owned()),
            ..ProxyConfig::none()
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("alice"),
            "{shown}"
        );
        assert_eq!(without_credentials("alice:pw@squid:3128"), "***@squid:3128");
        assert_eq!(
            without_credentials("http://squid:3128/"),
            "http://squid:3128/"
        );
    }
}
