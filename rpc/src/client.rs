//! [`AfeClient`]: one pooled keep-alive HTTP(S) client per master, and
//! [`AfeClient::call`], one JSON-RPC call with retries, limits and
//! cancellation.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::Full;
use hyper::body::Body;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::body::{self, Encoding, ReadError};
use crate::config::RpcConfig;
use crate::envelope::{self, Outcome};
use crate::error::{RpcError, excerpt};
use crate::proxy::Route;
use crate::retry::Schedule;
use crate::tls;
use crate::transport::Transport;

/// Counter: attempts of AFE calls, by `method`, retries included.
pub const ATTEMPTS: &str = "shard_client_rpc_attempts_total";

/// Counter: attempts of AFE calls that failed and were retried, by `method`.
pub const RETRIES: &str = "shard_client_rpc_retries_total";

/// How much of a non-2xx body is read for the error's excerpt.
const ERROR_BODY_LIMIT: u64 = 4096;

/// A client of one master's JSON-RPC endpoint. Cloning is cheap and shares
/// the connection pool.
#[derive(Clone)]
pub struct AfeClient {
    http: Transport,
    endpoint: String,
    /// The proxy the calls go through, without credentials.
    proxy: Option<String>,
    authorization: HeaderValue,
    delay: Duration,
    budget: Duration,
    request_timeout: Duration,
    max_response_bytes: u64,
}

/// A successful call: the decoded `result` and what the call cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<R> {
    /// The `result` of the response, deserialized.
    pub result: R,
    /// The size of the request body in bytes.
    pub request_bytes: u64,
    /// The size of the response body in bytes, after gzip decoding.
    pub response_bytes: u64,
    /// The number of attempts made, the successful one included.
    pub attempts: u32,
}

impl AfeClient {
    /// A client for `config`; fails when the endpoint is not an http(s) URL,
    /// a duration or the size limit is zero, the user is not a valid header
    /// value, the extra CA file is unusable, or the proxy setting for the
    /// endpoint's scheme is not an http:// proxy URL.
    pub fn new(config: RpcConfig) -> Result<Self, RpcError> {
        let endpoint = config.endpoint();
        let uri = check_endpoint(&endpoint)?;
        check_limits(&config)?;
        let authorization =
            HeaderValue::from_str(&config.user).map_err(|error| RpcError::Config {
                // The value itself stays out of the message: it is a credential.
                what: "rpc_user is not a valid AUTHORIZATION header value".to_owned(),
                source: Some(Box::new(error)),
            })?;
        let tls = tls::client_config(config.extra_ca_file.as_deref())?;
        let route = config.proxy.route(&uri)?;
        let proxy = match &route {
            Route::Direct => None,
            Route::Proxy { uri, .. } => Some(uri.to_string()),
        };
        let is_https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let http = Transport::new(route, is_https, tls);
        Ok(AfeClient {
            http,
            endpoint,
            proxy,
            authorization,
            delay: config.delay,
            budget: config.budget,
            request_timeout: config.request_timeout,
            max_response_bytes: config.max_response_bytes,
        })
    }

    /// `<server><path>`, the URL of every call without its query.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The proxy the calls go through (without its credentials), if any.
    pub fn proxy(&self) -> Option<&str> {
        self.proxy.as_deref()
    }

    /// Calls `method` with keyword arguments `params` and decodes its
    /// `result`, retrying transport failures within the budget.
    ///
    /// Cancelling `cancel` ends the attempt in flight or the back-off sleep
    /// at once with [`RpcError::Cancelled`].
    pub async fn call<P, R>(
        &self,
        method: &str,
        params: &P,
        cancel: &CancellationToken,
    ) -> Result<Reply<R>, RpcError>
    where
        P: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let url = format!("{}?method={}", self.endpoint, percent_encode(method));
        let encode_error = |source: Box<dyn std::error::Error + Send + Sync>| RpcError::Encode {
            method: method.to_owned(),
            source,
        };
        let uri = Uri::try_from(url.as_str()).map_err(|error| encode_error(Box::new(error)))?;
        let body = Bytes::from(
            envelope::request_body(method, params)
                .map_err(|error| encode_error(Box::new(error)))?,
        );
        let mut schedule = Schedule::new(Instant::now(), self.budget, self.delay);
        let mut attempts = 0u32;
        loop {
            attempts = attempts.saturating_add(1);
            metrics::counter!(ATTEMPTS, "method" => method.to_owned()).increment(1);
            let timeout = schedule.attempt_timeout(Instant::now(), self.request_timeout);
            let attempt = tokio::time::timeout(timeout, self.attempt(&url, &uri, &body));
            let outcome = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(RpcError::Cancelled { url }),
                outcome = attempt => outcome,
            };
            let error = match outcome {
                Ok(Ok((result, response_bytes))) => {
                    tracing::debug!(method, attempts, response_bytes, "AFE call succeeded");
                    return Ok(Reply {
                        result,
                        request_bytes: body.len() as u64,
                        response_bytes,
                        attempts,
                    });
                }
                Ok(Err(error)) => error,
                Err(_elapsed) => RpcError::Timeout {
                    url: url.clone(),
                    after: timeout,
                },
            };
            if let RpcError::JsonRpc {
                name, traceback, ..
            } = &error
            {
                tracing::debug!(method, name, traceback, "AFE JSON-RPC error traceback");
            }
            if !error.is_retryable() {
                return Err(error);
            }
            let Some(sleep) = schedule.next_sleep(Instant::now()) else {
                return Err(error);
            };
            // A master that says when to come back is heeded, within the
            // budget: waiting past it would only end the call later.
            let sleep = match &error {
                RpcError::HttpStatus {
                    retry_after: Some(asked),
                    ..
                } => (*asked).max(sleep).min(schedule.remaining(Instant::now())),
                _ => sleep,
            };
            tracing::warn!(
                method,
                attempt = attempts,
                failure_type = error.kind().as_str(),
                retry_in = ?sleep,
                error = %error,
                "AFE call failed; retrying"
            );
            metrics::counter!(RETRIES, "method" => method.to_owned()).increment(1);
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(RpcError::Cancelled { url }),
                () = tokio::time::sleep(sleep) => {}
            }
            if schedule.is_spent(Instant::now()) {
                return Err(error);
            }
        }
    }

    /// One POST and its response: the decoded result and the body's size.
    async fn attempt<R: DeserializeOwned>(
        &self,
        url: &str,
        uri: &Uri,
        body: &Bytes,
    ) -> Result<(R, u64), RpcError> {
        let mut request = Request::new(Full::new(body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        headers.insert(AUTHORIZATION, self.authorization.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));

        let response = self.http.request(request).await.map_err(|error| {
            let mut error = RpcError::connection(url, Box::new(error));
            // The operator must know which hop to check.
            if let (Some(proxy), RpcError::Connection { detail, .. }) = (&self.proxy, &mut error) {
                *detail = format!("{detail} (through proxy {proxy})");
            }
            error
        })?;
        let (parts, body) = response.into_parts();
        let encoding = Encoding::from_headers(&parts.headers);

        if !parts.status.is_success() {
            // The body only serves the excerpt: a broken one leaves it empty.
            let readable = encoding.unwrap_or(Encoding::Identity);
            let start = body::collect(body, readable, ERROR_BODY_LIMIT)
                .await
                .map(|collected| collected.bytes)
                .unwrap_or_default();
            return Err(RpcError::HttpStatus {
                url: url.to_owned(),
                status: parts.status,
                excerpt: excerpt(&start),
                retry_after: retry_after(parts.status, &parts.headers, SystemTime::now()),
            });
        }

        let encoding = encoding.map_err(|what| RpcError::invalid(url, what, b""))?;
        // A declared length over the limit fails before reading anything.
        if body.size_hint().lower() > self.max_response_bytes {
            return Err(self.over_limit(url, b""));
        }
        let collected = body::collect(body, encoding, self.max_response_bytes)
            .await
            .map_err(|error| match error {
                ReadError::Transport(source) => RpcError::connection(url, source),
                ReadError::Gzip(error, start) => {
                    RpcError::invalid(url, format!("bad gzip body: {error}"), &start)
                }
            })?;
        if collected.over_limit {
            return Err(self.over_limit(url, &collected.bytes));
        }
        let bytes = collected.bytes;
        let raw = match envelope::parse(&bytes) {
            Ok(Outcome::Result(raw)) => raw,
            Ok(Outcome::Error(error)) => {
                return Err(RpcError::JsonRpc {
                    url: url.to_owned(),
                    name: error.name,
                    message: error.message,
                    traceback: error.traceback,
                });
            }
            Err(what) => return Err(RpcError::invalid(url, what, &bytes)),
        };
        let result =
            envelope::decode_result(raw).map_err(|what| RpcError::invalid(url, what, &bytes))?;
        Ok((result, bytes.len() as u64))
    }

    /// The error for a body longer than `max_response_bytes`.
    fn over_limit(&self, url: &str, start: &[u8]) -> RpcError {
        let what = format!(
            "body over max_response_bytes ({} bytes)",
            self.max_response_bytes
        );
        RpcError::invalid(url, what, start)
    }
}

/// Shows where the client goes, never the `AUTHORIZATION` value.
impl std::fmt::Debug for AfeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfeClient")
            .field("endpoint", &self.endpoint)
            .field("proxy", &self.proxy)
            .field("delay", &self.delay)
            .field("budget", &self.budget)
            .field("request_timeout", &self.request_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

/// Checks that calls to `endpoint` will have an http(s) URL with a host.
fn check_endpoint(endpoint: &str) -> Result<Uri, RpcError> {
    let invalid = |why: String| RpcError::Config {
        what: format!("AFE endpoint {endpoint:?} {why}"),
        source: None,
    };
    let uri = Uri::try_from(endpoint).map_err(|error| invalid(format!("is not a URL: {error}")))?;
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("http" | "https") => {}
        _ => return Err(invalid("is not an http:// or https:// URL".to_owned())),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("has no host".to_owned()));
    }
    if uri.query().is_some() {
        return Err(invalid("has a query; the method goes there".to_owned()));
    }
    Ok(uri)
}

/// Checks that every duration and the size limit is positive: a zero delay
/// would retry in a busy loop, a zero budget or limit could never succeed.
fn check_limits(config: &RpcConfig) -> Result<(), RpcError> {
    let zero = [
        ("rpc_delay_sec", config.delay.is_zero()),
        ("rpc_timeout_min", config.budget.is_zero()),
        ("rpc_request_timeout_sec", config.request_timeout.is_zero()),
        ("max_response_bytes", config.max_response_bytes == 0),
    ];
    match zero.into_iter().find(|(_, is_zero)| *is_zero) {
        Some((key, _)) => Err(RpcError::Config {
            what: format!("{key} must be positive"),
            source: None,
        }),
        None => Ok(()),
    }
}

/// `method` for a query string: RFC 3986 unreserved characters pass, every
/// other byte is percent-encoded.
fn percent_encode(method: &str) -> String {
    let mut out = String::with_capacity(method.len());
    for byte in method.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_pass_unchanged() {
        assert_eq!(percent_encode("shard_heartbeat"), "shard_heartbeat");
        assert_eq!(percent_encode("a b&c=é"), "a%20b%26c%3D%C3%A9");
    }

    #[test]
    fn endpoints_must_be_http_urls_with_a_host() {
        assert!(check_endpoint("http://afe/afe/server/noauth/rpc/").is_ok());
        assert!(check_endpoint("https://afe:8443/rpc/").is_ok());
        assert!(check_endpoint("ftp://afe/rpc/").is_err());
        assert!(check_endpoint("http:///rpc/").is_err());
        assert!(check_endpoint("http://afe/rpc/?x=1").is_err());
        assert!(check_endpoint("http://a fe/rpc/").is_err());
    }

    #[tokio::test]
    async fn new_rejects_a_user_that_is_no_header_value() {
        let config = RpcConfig {
            user: "line\nbreak".to_owned(),
            ..RpcConfig::new("afe")
        };
        let error = AfeClient::new(config).err();
        assert!(
            error.is_some_and(|error| !error.to_string().contains("line")),
            "the error must not quote the user"
        );
    }

    #[tokio::test]
    async fn new_rejects_zero_limits_naming_the_key() {
        let config = RpcConfig {
            budget: Duration::ZERO,
            ..RpcConfig::new("afe")
        };
        let error = AfeClient::new(config).err();
        assert!(error.is_some_and(|error| error.to_string().contains("rpc_timeout_min")));
        let config = RpcConfig {
            delay: Duration::from_millis(50),
            max_response_bytes: 0,
            ..RpcConfig::new("afe")
        };
        let error = AfeClient::new(config).err();
        assert!(error.is_some_and(|error| error.to_string().contains("max_response_bytes")));
    }

    #[tokio::test]
    async fn new_rejects_a_server_that_is_no_url() {
        let error = AfeClient::new(RpcConfig::new("ftp://afe")).err();
        assert!(error.is_some_and(|error| error.to_string().contains("ftp://afe")));
    }
}

/// The wait a 429 or 503 answer asks for in `Retry-After`: a number of
/// seconds, or an HTTP date (counted from `now`). Other statuses, and a
/// value that is neither, ask for nothing.
fn retry_after(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    now: SystemTime,
) -> Option<Duration> {
    if status != http::StatusCode::TOO_MANY_REQUESTS
        && status != http::StatusCode::SERVICE_UNAVAILABLE
    {
        return None;
    }
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod retry_after_tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn headers(value: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        if let Ok(value) = http::HeaderValue::from_str(value) {
            headers.insert(http::header::RETRY_AFTER, value);
        }
        headers
    }

    #[test]
    fn seconds_and_dates_on_429_and_503_only() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let busy = http::StatusCode::SERVICE_UNAVAILABLE;
        assert_eq!(
            retry_after(busy, &headers("7"), now),
            Some(Duration::from_secs(7))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            retry_after(http::StatusCode::TOO_MANY_REQUESTS, &headers(&later), now),
            Some(Duration::from_secs(90))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(
            retry_after(busy, &headers(&past), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(busy, &headers("soon"), now), None);
        assert_eq!(
            retry_after(http::StatusCode::BAD_GATEWAY, &headers("7"), now),
            None
        );
    }
}
