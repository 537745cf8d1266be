//! Local servers for the client's tests, each on its own 127.0.0.1 port: a
//! plain hyper server that records every request and answers through
//! a handler (TLS is tested in `tests/tests/it/network.rs`), and a server that accepts and never answers.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use shard_rpc::RpcConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// What tests return: `?` instead of `unwrap`.
pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// The user the tests configure.
pub const USER: &str = "tester";

/// A configuration for tests: short delays and budgets.
pub fn config(server: &str) -> RpcConfig {
    RpcConfig {
        user: USER.to_owned(),
        delay: Duration::from_millis(50),
        budget: Duration::from_secs(2),
        request_timeout: Duration::from_secs(1),
        ..RpcConfig::new(server)
    }
}

/// The path of a fixture of the spec (`shared/spec/fixtures`, found
/// wherever the clone sits).
pub fn fixture(name: &str) -> std::path::PathBuf {
    shard_model::testing::fixtures_dir().join(name)
}

/// A fixture, parsed.
pub fn fixture_json(name: &str) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    Ok(serde_json::from_slice(&std::fs::read(fixture(name))?)?)
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The HTTP method.
    pub method: Method,
    /// The request target (path and query).
    pub uri: Uri,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Captured {
    /// The body, parsed.
    pub fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// A header as text ("" when absent or not text).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }
}

/// A response body: whole (with `Content-Length`) or in chunks (chunked
/// transfer encoding, length unknown to the client).
pub enum TestBody {
    /// One frame of known length.
    Whole(Option<Bytes>),
    /// Frames of unknown total length.
    Chunks(VecDeque<Bytes>),
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = match &mut *self {
            TestBody::Whole(data) => data.take(),
            TestBody::Chunks(chunks) => chunks.pop_front(),
        };
        Poll::Ready(next.map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            TestBody::Whole(data) => data.is_none(),
            TestBody::Chunks(chunks) => chunks.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            TestBody::Whole(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            TestBody::Chunks(_) => SizeHint::default(),
        }
    }
}

/// A response with `status` and a whole `body`.
pub fn respond(status: u16, body: impl Into<Bytes>) -> Response<TestBody> {
    let mut response = Response::new(TestBody::Whole(Some(body.into())));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
    response
}

/// A 200 response with the JSON-RPC envelope of a successful call.
pub fn success(result: &Value) -> Response<TestBody> {
    respond(200, envelope(result).to_string())
}

/// The envelope of a successful call.
pub fn envelope(result: &Value) -> Value {
    json!({"result": result, "id": "jsonrpc", "error": null})
}

/// A 200 response sent in chunks of `chunk` bytes, without `Content-Length`.
pub fn chunked(body: &[u8], chunk: usize) -> Response<TestBody> {
    let chunks = body.chunks(chunk).map(Bytes::copy_from_slice).collect();
    Response::new(TestBody::Chunks(chunks))
}

/// A 200 response with `body` gzip-compressed and `Content-Encoding: gzip`.
pub fn gzipped(body: &[u8]) -> std::io::Result<Response<TestBody>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body)?;
    let mut response = respond(200, encoder.finish()?);
    response.headers_mut().insert(
        http::header::CONTENT_ENCODING,
        http::HeaderValue::from_static("gzip"),
    );
    Ok(response)
}

/// The handler of a [`Server`]: the index of the request (from 0) and the
/// request give the response.
pub type Handler = dyn Fn(usize, &Captured) -> Response<TestBody> + Send + Sync;

/// A local HTTP(S) server that records what it receives.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Captured>>>,
    connections: Arc<AtomicUsize>,
    accept_loop: JoinHandle<()>,
}

impl Server {
    /// A plain HTTP server answering with `handler`.
    pub async fn start(
        handler: impl Fn(usize, &Captured) -> Response<TestBody> + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let handler: Arc<Handler> = Arc::new(handler);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let state = (requests.clone(), connections.clone());
        let accept_loop = tokio::spawn(async move {
            let (requests, connections) = state;
            while let Ok((stream, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let (requests, handler) = (requests.clone(), handler.clone());
                tokio::spawn(serve_connection(stream, requests, handler));
            }
        });
        Ok(Server {
            addr,
            requests,
            connections,
            accept_loop,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Captured> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The number of requests received so far.
    pub fn request_count(&self) -> usize {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The number of TCP connections accepted so far.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn serve_connection<S>(stream: S, requests: Arc<Mutex<Vec<Captured>>>, handler: Arc<Handler>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: Request<Incoming>| {
        let (requests, handler) = (requests.clone(), handler.clone());
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            let captured = Captured {
                method: parts.method,
                uri: parts.uri,
                headers: parts.headers,
                body,
            };
            let index = {
                let mut requests = requests.lock().unwrap_or_else(PoisonError::into_inner);
                requests.push(captured.clone());
                requests.len() - 1
            };
            Ok::<_, hyper::Error>(handler(index, &captured))
        }
    });
    // A connection the client drops ends here with an error; nothing to do.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// A server that accepts connections, reads what comes and never answers.
pub struct Silent {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Notified each time a connection has sent its first bytes.
    pub request_seen: Arc<Notify>,
    connections: Arc<AtomicUsize>,
    accept_loop: JoinHandle<()>,
}

impl Silent {
    /// Starts listening.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let request_seen = Arc::new(Notify::new());
        let connections = Arc::new(AtomicUsize::new(0));
        let state = (request_seen.clone(), connections.clone());
        let accept_loop = tokio::spawn(async move {
            let (request_seen, connections) = state;
            while let Ok((stream, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let request_seen = request_seen.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    let mut notified = false;
                    // Read until the client hangs up; never write.
                    while stream.readable().await.is_ok() {
                        match stream.try_read(&mut buffer) {
                            Ok(0) => break,
                            Ok(_) if !notified => {
                                request_seen.notify_one();
                                notified = true;
                            }
                            Ok(_) => {}
                            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                            Err(_) => break,
                        }
                    }
                });
            }
        });
        Ok(Silent {
            addr,
            request_seen,
            connections,
            accept_loop,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The number of TCP connections accepted so far.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}
