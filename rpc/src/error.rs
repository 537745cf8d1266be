//! The one error type of the crate, [`RpcError`], and its [`FailureKind`]:
//! the `failure_type` label of `shard_client_heartbeat_failures_total`.
//!
//! Every variant says what failed and with what: the URL (which names the
//! method), the HTTP status, the master's error name and message, or a short
//! excerpt of the body. The master's traceback is kept in the error but is
//! not part of its `Display`; the client logs it at debug level only.

use std::error::Error as StdError;
use std::time::Duration;

/// A boxed error from a lower layer (hyper, rustls, I/O), kept as `source`.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The longest body excerpt an error carries, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// Why an AFE call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The client could not be built from its configuration (only from
    /// [`AfeClient::new`](crate::AfeClient::new)).
    #[error("invalid AFE client configuration: {what}")]
    Config {
        /// What was wrong, naming the setting.
        what: String,
        /// The underlying error, when there is one (e.g. reading the CA file).
        #[source]
        source: Option<BoxError>,
    },
    /// The call could not be encoded (params that do not serialize to JSON,
    /// a method name that does not fit in a URL).
    #[error("cannot encode the call of {method}: {source}")]
    Encode {
        /// The JSON-RPC method.
        method: String,
        /// Why it could not be encoded.
        #[source]
        source: BoxError,
    },
    /// No usable connection: refused, reset, DNS, TLS handshake, or the
    /// connection broke while the response was being read.
    #[error("connection to {url} failed: {detail}")]
    Connection {
        /// The URL of the call.
        url: String,
        /// The innermost cause, for one-line logs.
        detail: String,
        /// The error of the HTTP client.
        #[source]
        source: BoxError,
    },
    /// One attempt took longer than its timeout (`rpc_request_timeout_sec`,
    /// or what was left of the retry budget).
    #[error("{url} did not answer within {after:?}")]
    Timeout {
        /// The URL of the call.
        url: String,
        /// The timeout of the attempt that expired.
        after: Duration,
    },
    /// The master answered with a status other than 2xx.
    #[error("{url} answered HTTP {status}: {excerpt:?}")]
    HttpStatus {
        /// The URL of the call.
        url: String,
        /// The status of the answer.
        status: http::StatusCode,
        /// The start of the body, at most [`EXCERPT_CHARS`] characters.
        excerpt: String,
        /// How long the master asked to wait before the next attempt
        /// (`Retry-After` on a 429 or 503), if it said.
        retry_after: Option<Duration>,
    },
    /// The master answered with a JSON-RPC error object: a definitive answer,
    /// never retried.
    #[error("{url} answered with JSON-RPC error {name}: {message}")]
    JsonRpc {
        /// The URL of the call.
        url: String,
        /// The exception class on the master (`error.name`).
        name: String,
        /// The exception text (`error.message`).
        message: String,
        /// The master's traceback (`error.traceback`); logged at debug level only.
        traceback: String,
    },
    /// The answer was not a usable JSON-RPC response: not JSON, not the
    /// envelope, a `result` of the wrong shape, or a body over the limit.
    #[error("invalid response from {url}: {what}; body starts {excerpt:?}")]
    InvalidResponse {
        /// The URL of the call.
        url: String,
        /// What was wrong with it.
        what: String,
        /// The start of the (decoded) body, at most [`EXCERPT_CHARS`] characters.
        excerpt: String,
    },
    /// The caller cancelled the call (e.g. on SIGTERM). Not a failure of the
    /// master: callers should not count it as a heartbeat failure.
    #[error("call to {url} cancelled")]
    Cancelled {
        /// The URL of the call.
        url: String,
    },
}

/// The class of an [`RpcError`], as used for metric labels and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FailureKind {
    /// See [`RpcError::Config`]; never produced by a call.
    Config,
    /// See [`RpcError::Encode`]; a bug of the caller, not of the master.
    Encode,
    /// See [`RpcError::Connection`].
    Connection,
    /// See [`RpcError::Timeout`].
    Timeout,
    /// See [`RpcError::HttpStatus`].
    HttpStatus,
    /// See [`RpcError::JsonRpc`].
    JsonRpc,
    /// See [`RpcError::InvalidResponse`].
    InvalidResponse,
    /// See [`RpcError::Cancelled`]; not a failure of the master.
    Cancelled,
}

impl FailureKind {
    /// The label value (`failure_type`), e.g. `"http_status"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Config => "config",
            FailureKind::Encode => "encode",
            FailureKind::Connection => "connection",
            FailureKind::Timeout => "timeout",
            FailureKind::HttpStatus => "http_status",
            FailureKind::JsonRpc => "json_rpc",
            FailureKind::InvalidResponse => "invalid_response",
            FailureKind::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RpcError {
    /// The class of this error (the `failure_type` label).
    pub fn kind(&self) -> FailureKind {
        match self {
            RpcError::Config { .. } => FailureKind::Config,
            RpcError::Encode { .. } => FailureKind::Encode,
            RpcError::Connection { .. } => FailureKind::Connection,
            RpcError::Timeout { .. } => FailureKind::Timeout,
            RpcError::HttpStatus { .. } => FailureKind::HttpStatus,
            RpcError::JsonRpc { .. } => FailureKind::JsonRpc,
            RpcError::InvalidResponse { .. } => FailureKind::InvalidResponse,
            RpcError::Cancelled { .. } => FailureKind::Cancelled,
        }
    }

    /// Whether another attempt may succeed: connection failures, timeouts,
    /// HTTP 5xx and 429. Everything else is a definitive answer.
    pub fn is_retryable(&self) -> bool {
        match self {
            RpcError::Connection { .. } | RpcError::Timeout { .. } => true,
            RpcError::HttpStatus { status, .. } => {
                status.is_server_error() || *status == http::StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }

    /// A connection error from the HTTP client's error, naming its root cause.
    pub(crate) fn connection(url: &str, source: BoxError) -> Self {
        RpcError::Connection {
            url: url.to_owned(),
            detail: root_cause(source.as_ref()),
            source,
        }
    }

    /// An invalid response, with an excerpt of the body it was found in.
    pub(crate) fn invalid(url: &str, what: impl Into<String>, body: &[u8]) -> Self {
        RpcError::InvalidResponse {
            url: url.to_owned(),
            what: what.into(),
            excerpt: excerpt(body),
        }
    }
}

/// The message of the innermost error of a chain.
fn root_cause(error: &(dyn StdError + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// The start of a body as text: at most [`EXCERPT_CHARS`] characters, with
/// invalid UTF-8 replaced and `…` marking a cut.
pub(crate) fn excerpt(body: &[u8]) -> String {
    // Four bytes per character at most: never decode more than needed.
    let head = &body[..body.len().min(EXCERPT_CHARS * 4)];
    let text = String::from_utf8_lossy(head);
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(EXCERPT_CHARS - 1).collect();
    match (chars.next(), chars.next()) {
        (None, _) if head.len() == body.len() => {}
        (Some(last), None) if head.len() == body.len() => out.push(last),
        _ => out.push('…'),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_metric_values() {
        let labels: Vec<_> = [
            FailureKind::Connection,
            FailureKind::Timeout,
            FailureKind::HttpStatus,
            FailureKind::JsonRpc,
            FailureKind::InvalidResponse,
            FailureKind::Cancelled,
        ]
        .into_iter()
        .map(FailureKind::as_str)
        .collect();
        assert_eq!(
            labels,
            [
                "connection",
                "timeout",
                "http_status",
                "json_rpc",
                "invalid_response",
                "cancelled"
            ]
        );
    }

    #[test]
    fn retries_5xx_and_429_only() {
        let status = |code: u16| RpcError::HttpStatus {
            url: String::new(),
            status: http::StatusCode::from_u16(code).unwrap_or_default(),
            excerpt: String::new(),
            retry_after: None,
        };
        assert!(status(500).is_retryable());
        assert!(status(503).is_retryable());
        assert!(status(429).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(!status(404).is_retryable());
        assert!(!status(301).is_retryable());
    }

    #[test]
    fn excerpt_keeps_short_bodies_whole() {
        assert_eq!(excerpt(b"short"), "short");
        assert_eq!(excerpt(&[b'a'; 200]), "a".repeat(200));
    }

    #[test]
    fn excerpt_cuts_long_bodies_at_200_chars() {
        let cut = excerpt(&[b'a'; 201]);
        assert_eq!(cut.chars().count(), 200);
        assert!(cut.ends_with("a…"));
        let cut = excerpt("é".repeat(1000).as_bytes());
        assert_eq!(cut.chars().count(), 200);
    }

    #[test]
    fn excerpt_replaces_invalid_utf8() {
        assert_eq!(excerpt(b"a\xffb"), "a\u{fffd}b");
    }
}
