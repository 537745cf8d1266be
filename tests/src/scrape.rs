//! Reading the client's metrics endpoint (§10): a plain HTTP/1.1 GET over a
//! TCP stream, and the value of one series in Prometheus' text format.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An answer of the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

/// Why [`get`] got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetError(String);

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GetError {}

/// GETs `url` (`http://HOST:PORT/PATH`), giving up after `timeout`.
pub async fn get(url: &str, timeout: Duration) -> Result<Answer, GetError> {
    let fail = |what: String| GetError(format!("GET {url}: {what}"));
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| fail("not an http:// URL".to_owned()))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let exchange = async {
        let mut stream = TcpStream::connect(authority)
            .await
            .map_err(|e| fail(format!("cannot connect: {e}")))?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| fail(format!("cannot send: {e}")))?;
        let mut bytes = Vec::new();
        stream
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| fail(format!("cannot read: {e}")))?;
        Ok(bytes)
    };
    let bytes = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| fail(format!("no answer within {timeout:?}")))??;
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| fail(format!("no end of headers in {text:?}")))?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err(fail("chunked bodies are not supported here".to_owned()));
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| fail(format!("no status in {head:?}")))?;
    Ok(Answer {
        status,
        body: body.to_owned(),
    })
}

/// The value of `series` (a metric name with its labels as the exporter
/// writes them, e.g. `shard_client_heartbeat_failures_total{failure_type="json_rpc"}`)
/// in a Prometheus text exposition, if it is there.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::sample;

    #[test]
    fn sample_reads_a_series_and_not_its_prefixes() {
        let text = "# TYPE a counter\na 1\na_total 7\na{k=\"v\"} 2.5\n";
        assert_eq!(sample(text, "a"), Some(1.0));
        assert_eq!(sample(text, "a_total"), Some(7.0));
        assert_eq!(sample(text, "a{k=\"v\"}"), Some(2.5));
        assert_eq!(sample(text, "b"), None);
    }
}
