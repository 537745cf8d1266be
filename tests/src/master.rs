//! The scripted master: a local HTTP/1.1 server on `127.0.0.1` that plays the
//! global AFE for one test. It records every request, checks it against the
//! dialect (§2 and §3 of the protocol), and answers the well-formed ones from a
//! [`Script`], in arrival order.
//!
//! Answers travel as the real master's do (§11): HTTP 200 with
//! `Content-Type: text/html; charset=utf-8` and a session cookie, so a
//! client that insisted on a JSON content type or on cookies would fail here.
//!
//! A request that breaks the dialect is recorded as a violation, answered
//! with HTTP 400 and does not use up a step of the script; tests assert that
//! [`ScriptedMaster::violations`] is empty. Connections are kept alive as
//! long as the client wants, so a pooling client works.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use shard_model::{GetHostsRequest, HeartbeatRequest};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::dialect::{self, Call};
use crate::script::{AfterEnd, Reply, Script};

/// A request as the master received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The HTTP method.
    pub method: http::Method,
    /// The request target, e.g. `/afe/server/noauth/rpc/?method=shard_heartbeat`.
    pub path_and_query: String,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body parsed as JSON (the whole JSON-RPC call); `null` when it is
    /// not JSON.
    pub body: Value,
    /// The body as it came.
    pub raw_body: Bytes,
}

impl Received {
    /// A header as text, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// [`ScriptedMaster::wait_for_requests`] gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitTimeout {
    /// The number of requests waited for.
    pub wanted: usize,
    /// The number received when it gave up.
    pub received: usize,
    /// How long it waited.
    pub waited: Duration,
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "scripted master: {} of {} requests received after {:?}",
            self.received, self.wanted, self.waited
        )
    }
}

impl std::error::Error for WaitTimeout {}

/// A local master answering from a script; see the module documentation.
///
/// Dropping it stops it too; [`ScriptedMaster::shutdown`] also waits until
/// every connection is closed.
pub struct ScriptedMaster {
    addr: SocketAddr,
    state: Arc<State>,
    stop: CancellationToken,
    accept_loop: Mutex<Option<JoinHandle<()>>>,
}

/// What the server tasks and the test share.
struct State {
    log: Mutex<Log>,
    /// The number of requests received.
    received: watch::Sender<usize>,
    /// The number of steps in the script, pushed ones included.
    steps: watch::Sender<usize>,
    connections: AtomicUsize,
}

struct Log {
    requests: Vec<Received>,
    heartbeats: Vec<HeartbeatRequest>,
    get_hosts: Vec<GetHostsRequest>,
    violations: Vec<String>,
    /// Every step ever scripted; `next_step` is the first one not yet used.
    steps: Vec<Reply>,
    next_step: usize,
    after_end: AfterEnd,
}

/// How a request will be answered, decided when it arrives.
enum Decision {
    /// HTTP 400 naming the problems.
    Reject(String),
    /// This reply.
    Reply(Reply),
    /// The step with this index, once it is pushed.
    Await(usize),
}

impl ScriptedMaster {
    /// Starts a master on a free port of 127.0.0.1, answering from `script`.
    ///
    /// # Panics
    /// When it cannot listen.
    pub async fn start(script: impl Into<Script>) -> ScriptedMaster {
        let script = script.into();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("scripted master: could not bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("scripted master: no local address: {e}"));
        let state = Arc::new(State {
            received: watch::Sender::new(0),
            steps: watch::Sender::new(script.steps.len()),
            log: Mutex::new(Log {
                requests: Vec::new(),
                heartbeats: Vec::new(),
                get_hosts: Vec::new(),
                violations: Vec::new(),
                steps: script.steps,
                next_step: 0,
                after_end: script.after_end,
            }),
            connections: AtomicUsize::new(0),
        });
        let stop = CancellationToken::new();
        let accept_loop = tokio::spawn(accept(listener, state.clone(), stop.clone()));
        ScriptedMaster {
            addr,
            state,
            stop,
            accept_loop: Mutex::new(Some(accept_loop)),
        }
    }

    /// `http://127.0.0.1:<port>`, for `global_afe_hostname`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, violations included, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        self.state.log().requests.clone()
    }

    /// `params[0]` of every well-formed heartbeat received so far (those
    /// answered from the script), in arrival order.
    pub fn heartbeats(&self) -> Vec<HeartbeatRequest> {
        self.state.log().heartbeats.clone()
    }

    /// `params[0]` of every well-formed `get_hosts` call received so far, in
    /// arrival order. Each was answered from the script like a heartbeat.
    pub fn get_hosts_calls(&self) -> Vec<GetHostsRequest> {
        self.state.log().get_hosts.clone()
    }

    /// How each rejected request broke the dialect, one line per problem,
    /// plus mistakes of the script itself (an invalid status code).
    pub fn violations(&self) -> Vec<String> {
        self.state.log().violations.clone()
    }

    /// Panics listing the violations, if there are any.
    pub fn assert_no_violations(&self) {
        let violations = self.violations();
        assert!(
            violations.is_empty(),
            "scripted master: {} dialect violation(s):\n{}",
            violations.len(),
            violations.join("\n")
        );
    }

    /// The number of TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Appends a step to the script; it answers the first request that has
    /// no step yet (one already waiting, with
    /// [`Script::then_wait_for_push`]).
    pub fn push(&self, reply: Reply) {
        let count = {
            let mut log = self.state.log();
            log.steps.push(reply);
            log.steps.len()
        };
        self.state.steps.send_replace(count);
    }

    /// Waits until at least `n` requests have arrived (violations included)
    /// and returns all of them.
    pub async fn wait_for_requests(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Received>, WaitTimeout> {
        let mut received = self.state.received.subscribe();
        match tokio::time::timeout(timeout, received.wait_for(|count| *count >= n)).await {
            // The sender lives in `self.state`: it cannot be dropped here.
            Ok(_) => Ok(self.requests()),
            Err(_) => Err(WaitTimeout {
                wanted: n,
                received: self.state.log().requests.len(),
                waited: timeout,
            }),
        }
    }

    /// Stops listening, closes every connection (hanging requests end
    /// unanswered) and waits until that is done. What was recorded stays
    /// readable.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let accept_loop = self
            .accept_loop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(accept_loop) = accept_loop {
            // The loop only ends by itself; a panic in it would already have
            // failed the answer of a request.
            let _ = accept_loop.await;
        }
    }
}

impl Drop for ScriptedMaster {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl fmt::Debug for ScriptedMaster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedMaster")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl State {
    fn log(&self) -> MutexGuard<'_, Log> {
        // A test that panicked while holding the lock left a usable log.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Accepts connections until `stop`, then closes them all.
async fn accept(listener: TcpListener, state: Arc<State>, stop: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => {
                // An accept error (a connection reset before it was
                // accepted, no file descriptors left) concerns that
                // connection only.
                if let Ok((stream, _)) = accepted {
                    state.connections.fetch_add(1, Ordering::SeqCst);
                    connections.spawn(serve(stream, state.clone()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

/// Serves one keep-alive connection.
async fn serve(stream: TcpStream, state: Arc<State>) {
    let service = service_fn(move |request| answer(state.clone(), request));
    // A connection the client drops or resets ends here with an error:
    // nothing to record.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Records one request and answers it.
async fn answer(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = request.into_parts();
    let raw_body = body.collect().await?.to_bytes();
    let parsed = serde_json::from_slice::<Value>(&raw_body).map_err(|e| e.to_string());
    let checked = dialect::check(&parts.method, &parts.uri, &parts.headers, &parsed);
    let body = parsed.unwrap_or(Value::Null);
    // The original master echoes the call's id.
    let id = body.get("id").cloned().unwrap_or_else(|| json!("jsonrpc"));
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.to_string(), ToString::to_string);

    let (decision, count) = {
        let mut log = state.log();
        let index = log.requests.len();
        let decision = match checked {
            Ok(Call::Heartbeat(heartbeat)) => {
                log.heartbeats.push(heartbeat);
                next_step(&mut log)
            }
            Ok(Call::GetHosts(query)) => {
                log.get_hosts.push(query);
                next_step(&mut log)
            }
            Err(problems) => {
                for problem in &problems {
                    log.violations.push(format!(
                        "request #{index} ({} {path_and_query}): {problem}",
                        parts.method
                    ));
                }
                Decision::Reject(problems.join("\n"))
            }
        };
        log.requests.push(Received {
            method: parts.method,
            path_and_query,
            headers: parts.headers,
            body,
            raw_body,
        });
        (decision, log.requests.len())
    };
    state.received.send_replace(count);

    let reply = match decision {
        Decision::Reject(problems) => {
            let text = format!("scripted master: request breaks the dialect:\n{problems}\n");
            return Ok(response(StatusCode::BAD_REQUEST, "text/plain", text));
        }
        Decision::Reply(reply) => reply,
        Decision::Await(index) => {
            let mut steps = state.steps.subscribe();
            // The sender lives in `state`: it cannot be dropped here.
            let _ = steps.wait_for(|count| *count > index).await;
            state.log().steps[index].clone()
        }
    };
    Ok(render(&state, reply, id).await)
}

/// Takes the next step of the script, or what comes after its end.
fn next_step(log: &mut Log) -> Decision {
    let index = log.next_step;
    if let Some(step) = log.steps.get(index) {
        let step = step.clone();
        log.next_step += 1;
        return Decision::Reply(step);
    }
    match &log.after_end {
        AfterEnd::Always(reply) => Decision::Reply(reply.clone()),
        AfterEnd::WaitForPush => {
            log.next_step += 1;
            Decision::Await(index)
        }
    }
}

/// The HTTP response of a reply; [`Reply::Hang`] never returns.
async fn render(state: &State, reply: Reply, id: Value) -> Response<Full<Bytes>> {
    match reply {
        Reply::Result(result) => {
            let envelope = json!({"result": result, "id": id, "error": null});
            rpc_answer(envelope)
        }
        Reply::Response(heartbeat) => match serde_json::to_value(&heartbeat) {
            Ok(result) => {
                let envelope = json!({"result": result, "id": id, "error": null});
                rpc_answer(envelope)
            }
            Err(e) => script_error(
                state,
                format!("cannot serialize the scripted response: {e}"),
            ),
        },
        Reply::Error { name, message } => {
            let traceback =
                format!("Traceback (most recent call last):\n  ...\n{name}: {message}\n");
            let error = json!({"name": name, "message": message, "traceback": traceback});
            let envelope = json!({"result": null, "id": id, "error": error});
            rpc_answer(envelope)
        }
        Reply::Status(code) => match StatusCode::from_u16(code) {
            Ok(status) => response(status, "text/plain", format!("{status}\n")),
            Err(e) => script_error(state, format!("invalid status {code}: {e}")),
        },
        Reply::Raw { status, body } => match StatusCode::from_u16(status) {
            Ok(status) => {
                let mut raw = Response::new(Full::new(Bytes::from(body)));
                *raw.status_mut() = status;
                raw
            }
            Err(e) => script_error(state, format!("invalid status {status}: {e}")),
        },
        Reply::Hang => {
            // Ends when shutdown closes the connection.
            match std::future::pending::<Infallible>().await {}
        }
    }
}

/// Records a mistake of the script as a violation and answers 500.
fn script_error(state: &State, problem: String) -> Response<Full<Bytes>> {
    state.log().violations.push(format!("script: {problem}"));
    response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/plain",
        format!("scripted master: {problem}\n"),
    )
}

/// A JSON-RPC envelope as Django's AFE sends it: HTTP 200, labelled
/// `text/html`, with a session cookie the client has no use for.
fn rpc_answer(envelope: Value) -> Response<Full<Bytes>> {
    let mut answer = response(
        StatusCode::OK,
        "text/html; charset=utf-8",
        envelope.to_string(),
    );
    answer.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("sessionid=0123456789abcdef; HttpOnly; Path=/"),
    );
    answer
}

fn response(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
