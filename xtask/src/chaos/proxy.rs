//! A fault-injecting TCP proxy between a shard client and the master.
//!
//! `cargo xtask chaos` puts one [`Proxy`] in front of the master for each
//! shard client and switches its [`Mode`] as the fault schedule says: added
//! latency, connections reset, responses truncated mid-body, hangs, answers
//! dropped, or answers held until the fault releases them.
//!
//! The proxy relays bytes. The only HTTP it knows is where a message's
//! headers end and what its `Content-Length` says, to cut a response's body
//! in half and to hand out a held request's body.
//! The mode is read once per exchange, when the first bytes of a request
//! arrive from the client, so a switch reaches keep-alive connections opened
//! before it at their next request. This relies on the clients not
//! pipelining: whatever the master sends after a request is its response.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// How much the proxy reads from one side before forwarding it to the other.
const CHUNK: usize = 16 * 1024;

/// Response headers longer than this are cut in half without looking further.
const MAX_HEAD: usize = 64 * 1024;

/// What the proxy does to each exchange that starts while the mode is in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Relay both ways untouched.
    #[default]
    Pass,
    /// Hold each request this long before relaying it, so its response
    /// arrives at least this late.
    Latency(Duration),
    /// Close the client's connection with a RST as soon as a request
    /// arrives; the master never sees the request.
    Reset,
    /// Relay the request, then only the response's headers and half its
    /// body, then close both connections.
    Truncate,
    /// Read the request and never answer; the connection stays open (a real
    /// hang never heals) until the client gives up or the proxy shuts down.
    Hang,
    /// Relay the request, then drop the response: the master has done the
    /// work (taken the upload, assigned jobs), the client never hears of
    /// it. The connection stays open like a hang.
    Swallow,
    /// Relay the request, then keep the response back until
    /// [`Proxy::release_held`]: the master has done the work (taken the
    /// upload), the client is still waiting for its answer, and the fault
    /// decides when it gets it. Meanwhile [`Proxy::held`] shows the
    /// request.
    Hold,
}

/// What a proxy has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Client connections accepted.
    pub connections: u64,
    /// Bytes relayed from clients to the upstream.
    pub bytes_to_upstream: u64,
    /// Bytes relayed from the upstream to clients.
    pub bytes_to_client: u64,
    /// Exchanges delayed by [`Mode::Latency`].
    pub delayed: u64,
    /// Connections reset by [`Mode::Reset`].
    pub resets: u64,
    /// Responses cut short by [`Mode::Truncate`].
    pub truncations: u64,
    /// Connections left hanging by [`Mode::Hang`].
    pub hangs: u64,
    /// Responses dropped by [`Mode::Swallow`].
    pub swallowed: u64,
    /// Exchanges held by [`Mode::Hold`].
    pub held: u64,
}

/// An exchange [`Mode::Hold`] is holding: its request went to the master,
/// its response has not gone to the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldExchange {
    /// Exchanges are numbered in the order they started, from 0.
    pub id: u64,
    /// The request as received so far (headers and body), up to
    /// [`MAX_RECORDED`] bytes.
    pub request: Vec<u8>,
    /// Whether the master's response has started to arrive (and is held).
    pub answered: bool,
}

impl HeldExchange {
    /// The request's body, once all of it (as its `Content-Length` says)
    /// has arrived.
    pub fn body(&self) -> Option<&[u8]> {
        let end = header_end(&self.request)?;
        let length = content_length(&self.request[..end]).unwrap_or(0);
        self.request.get(end..end.checked_add(length)?)
    }
}

/// How much of a held request [`HeldExchange::request`] keeps: a heartbeat
/// request of the chaos lab is a few kilobytes.
pub const MAX_RECORDED: usize = 4 * 1024 * 1024;

/// A running proxy: a loopback listener relaying each connection to one upstream.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and relays every connection to `upstream`, in [`Mode::Pass`].
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the chaos proxy to loopback")?;
        let addr = listener
            .local_addr()
            .context("reading the chaos proxy's address")?;
        let shared = Arc::new(Shared {
            upstream,
            mode: watch::Sender::new(Mode::Pass),
            stats: Mutex::default(),
            holds: Mutex::default(),
            released: watch::Sender::new(0),
        });
        let stop = CancellationToken::new();
        let accept = tokio::spawn(accept(listener, Arc::clone(&shared), stop.clone()));
        Ok(Proxy {
            addr,
            shared,
            stop,
            accept,
        })
    }

    /// The address clients connect to in place of the upstream's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Applies `mode` to every exchange that starts from now on, on open connections too.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.send_replace(mode);
    }

    /// What the proxy has done so far.
    pub fn stats(&self) -> Stats {
        *self.shared.stats()
    }

    /// The exchanges held now, oldest first.
    pub fn held(&self) -> Vec<HeldExchange> {
        self.shared.holds().held.values().cloned().collect()
    }

    /// Lets every exchange held so far deliver its response (and the rest
    /// of it as it arrives). Exchanges that start later are held again
    /// while [`Mode::Hold`] is in force.
    pub fn release_held(&self) {
        let next = self.shared.holds().next_id;
        self.shared.released.send_replace(next);
    }

    /// Stops accepting, closes every connection (hanging ones too) and waits for every task to end.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Err(e) = (&mut self.accept).await {
            eprintln!("chaos proxy {}: the accept task failed: {e}", self.addr);
        }
    }
}

impl Drop for Proxy {
    /// A proxy dropped without [`Proxy::shutdown`] still stops its tasks, without waiting for them.
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What the accept task and every relay share with the [`Proxy`] handle.
struct Shared {
    upstream: SocketAddr,
    mode: watch::Sender<Mode>,
    stats: Mutex<Stats>,
    holds: Mutex<Holds>,
    /// Exchanges whose id is below this are released.
    released: watch::Sender<u64>,
}

/// The exchanges [`Mode::Hold`] holds.
#[derive(Debug, Default)]
struct Holds {
    /// The id of the next exchange to be held.
    next_id: u64,
    /// Held now, by id.
    held: BTreeMap<u64, HeldExchange>,
}

impl Shared {
    fn mode(&self) -> Mode {
        *self.mode.borrow()
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        // The counters stay meaningful even if a relay panicked holding them.
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn holds(&self) -> std::sync::MutexGuard<'_, Holds> {
        self.holds.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts holding a new exchange; it is forgotten when the guard drops.
    fn hold(&self) -> Hold<'_> {
        self.stats().held += 1;
        let mut holds = self.holds();
        let id = holds.next_id;
        holds.next_id += 1;
        holds.held.insert(
            id,
            HeldExchange {
                id,
                ..HeldExchange::default()
            },
        );
        Hold {
            shared: self,
            id,
            response: Vec::new(),
        }
    }
}

/// One exchange being held by a relay: its id and the response kept back.
struct Hold<'a> {
    shared: &'a Shared,
    id: u64,
    response: Vec<u8>,
}

impl Hold<'_> {
    /// Records request bytes relayed to the master.
    fn request(&self, bytes: &[u8]) {
        if let Some(held) = self.shared.holds().held.get_mut(&self.id) {
            let room = MAX_RECORDED.saturating_sub(held.request.len());
            held.request
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }

    /// Keeps response bytes back.
    fn response(&mut self, bytes: &[u8]) {
        self.response.extend_from_slice(bytes);
        if let Some(held) = self.shared.holds().held.get_mut(&self.id) {
            held.answered = true;
        }
    }

    /// Whether [`Proxy::release_held`] released this exchange.
    fn released(&self, released: &watch::Receiver<u64>) -> bool {
        *released.borrow() > self.id
    }
}

impl Drop for Hold<'_> {
    /// Released, or the connection ended: no longer held.
    fn drop(&mut self) {
        self.shared.holds().held.remove(&self.id);
    }
}

/// Accepts connections and relays each in its own task until `stop`, then ends them all.
async fn accept(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    let mut relays = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(joined) = relays.join_next(), if !relays.is_empty() => {
                if let Err(e) = joined {
                    eprintln!("chaos proxy: a relay task failed: {e}");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    shared.stats().connections += 1;
                    relays.spawn(serve(client, peer, Arc::clone(&shared)));
                }
                Err(e) => {
                    // Out of descriptors, most likely: give the relays time to close some.
                    eprintln!("chaos proxy: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    relays.shutdown().await;
}

/// Relays one client connection, logging why it ended if that was an error.
async fn serve(client: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    if let Err(e) = relay(client, &shared).await {
        eprintln!("chaos proxy: connection from {peer}: {e:#}");
    }
}

/// Relays one client connection until either side closes or a fault ends it.
async fn relay(mut client: TcpStream, shared: &Shared) -> anyhow::Result<()> {
    let mut upstream: Option<TcpStream> = None;
    let mut from_client = vec![0; CHUNK];
    let mut from_upstream = vec![0; CHUNK];
    // The next bytes from the client start a new exchange: the first on the
    // connection, or the first after a response.
    let mut exchange_starts = true;
    let mut cut: Option<Cut> = None;
    // The response of this exchange is dropped, not relayed.
    let mut swallow = false;
    // The exchange being held, if any, and whether the master has closed
    // its side meanwhile (the response is complete then).
    let mut hold: Option<Hold<'_>> = None;
    let mut upstream_done = false;
    let mut released = shared.released.subscribe();
    loop {
        tokio::select! {
            changed = released.changed(), if hold.is_some() => {
                if changed.is_err() {
                    // The proxy is going away.
                    return Ok(());
                }
                let Some(held) = hold.take_if(|h| h.released(&released)) else {
                    continue;
                };
                client
                    .write_all(&held.response)
                    .await
                    .context("relaying a held response")?;
                shared.stats().bytes_to_client += held.response.len() as u64;
                if upstream_done {
                    return Ok(());
                }
            }
            read = client.read(&mut from_client) => {
                let n = read.context("reading a request")?;
                if n == 0 {
                    return Ok(());
                }
                if exchange_starts {
                    exchange_starts = false;
                    match shared.mode() {
                        Mode::Pass => {}
                        Mode::Latency(delay) => {
                            shared.stats().delayed += 1;
                            tokio::time::sleep(delay).await;
                        }
                        Mode::Reset => {
                            client.set_zero_linger().context("setting SO_LINGER to 0 for a reset")?;
                            shared.stats().resets += 1;
                            return Ok(());
                        }
                        Mode::Truncate => cut = Some(Cut::default()),
                        Mode::Swallow => swallow = true,
                        Mode::Hold => hold = Some(shared.hold()),
                        Mode::Hang => {
                            shared.stats().hangs += 1;
                            drop(upstream);
                            hang(client).await;
                            return Ok(());
                        }
                    }
                }
                let master = match &mut upstream {
                    Some(master) => master,
                    None => upstream.insert(
                        TcpStream::connect(shared.upstream)
                            .await
                            .with_context(|| format!("connecting to {}", shared.upstream))?,
                    ),
                };
                master
                    .write_all(&from_client[..n])
                    .await
                    .context("relaying a request")?;
                shared.stats().bytes_to_upstream += n as u64;
                if let Some(held) = &hold {
                    held.request(&from_client[..n]);
                }
            }
            read = read_upstream(upstream.as_mut(), &mut from_upstream), if !upstream_done => {
                let n = read.context("reading a response")?;
                if n == 0 {
                    if hold.is_none() {
                        return Ok(());
                    }
                    // The response is complete; it goes out on release.
                    upstream_done = true;
                    continue;
                }
                if let Some(held) = hold.as_mut() {
                    held.response(&from_upstream[..n]);
                    exchange_starts = true;
                    continue;
                }
                if swallow {
                    if !exchange_starts {
                        shared.stats().swallowed += 1;
                    }
                    // Everything after the request is this exchange's
                    // response; the client never gets to send another.
                    exchange_starts = true;
                    continue;
                }
                exchange_starts = true;
                let (part, done) = match cut.as_mut() {
                    None => (&from_upstream[..n], false),
                    Some(cut) => match cut.feed(&from_upstream[..n]) {
                        Feed::More(part) => (part, false),
                        Feed::Cut(part) => (part, true),
                    },
                };
                client.write_all(part).await.context("relaying a response")?;
                shared.stats().bytes_to_client += part.len() as u64;
                if done {
                    shared.stats().truncations += 1;
                    client.shutdown().await.context("closing a truncated response")?;
                    return Ok(());
                }
            }
        }
    }
}

/// Reads from the upstream connection, or waits forever while there is none yet.
async fn read_upstream(upstream: Option<&mut TcpStream>, buf: &mut [u8]) -> std::io::Result<usize> {
    match upstream {
        Some(upstream) => upstream.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Reads and discards whatever the client sends, never answering, until it closes.
async fn hang(mut client: TcpStream) {
    let mut sink = vec![0; CHUNK];
    while let Ok(n) = client.read(&mut sink).await {
        if n == 0 {
            return;
        }
    }
}

/// Where one response is cut: after its headers and half its body.
#[derive(Debug, Default)]
struct Cut {
    /// The response so far, while its headers are incomplete.
    head: Vec<u8>,
    /// Bytes still to relay once the cut is known.
    left: Option<usize>,
}

/// What to relay of a chunk of a response being cut.
#[derive(Debug, PartialEq, Eq)]
enum Feed<'a> {
    /// Relay these bytes and keep reading.
    More(&'a [u8]),
    /// Relay these bytes, then close both connections.
    Cut(&'a [u8]),
}

impl Cut {
    /// Takes the next chunk of the response and says how much of what arrived so far to relay.
    ///
    /// Without a body to halve (no `Content-Length`, or 0), the headers
    /// themselves are cut in half, so the client never sees a whole response.
    fn feed<'a>(&'a mut self, chunk: &'a [u8]) -> Feed<'a> {
        if let Some(left) = self.left {
            let n = left.min(chunk.len());
            self.left = Some(left - n);
            return if n == left {
                Feed::Cut(&chunk[..n])
            } else {
                Feed::More(&chunk[..n])
            };
        }
        self.head.extend_from_slice(chunk);
        let Some(end) = header_end(&self.head) else {
            return if self.head.len() >= MAX_HEAD {
                Feed::Cut(&self.head[..self.head.len() / 2])
            } else {
                Feed::More(&[])
            };
        };
        let cut = match content_length(&self.head[..end]) {
            Some(length) if length > 0 => end + length / 2,
            _ => end / 2,
        };
        if self.head.len() >= cut {
            return Feed::Cut(&self.head[..cut]);
        }
        self.left = Some(cut - self.head.len());
        Feed::More(&self.head)
    }
}

/// Where the headers of `response` end (after their blank line), once they have.
fn header_end(response: &[u8]) -> Option<usize> {
    response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// The `Content-Length` in `head`, if there is one and it is a number.
fn content_length(head: &[u8]) -> Option<usize> {
    head.split(|&byte| byte == b'\n').find_map(|line| {
        let colon = line.iter().position(|&byte| byte == b':')?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if !name.eq_ignore_ascii_case(b"content-length") {
            return None;
        }
        std::str::from_utf8(value).ok()?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::time::Instant;

    use super::*;

    /// A master stand-in: answers each request on a keep-alive connection
    /// with its body, `Content-Length` framed.
    async fn echo_master() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    while let Some(body) = read_message(&mut stream).await {
                        if stream.write_all(&response(&body)).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    /// Reads one `Content-Length` framed message and returns its body, or
    /// `None` at EOF or on an error.
    async fn read_message(stream: &mut TcpStream) -> Option<Vec<u8>> {
        let mut message = Vec::new();
        let mut buf = [0; 1024];
        loop {
            if let Some(end) = header_end(&message) {
                let length = content_length(&message[..end]).unwrap_or(0);
                if message.len() >= end + length {
                    return Some(message[end..end + length].to_vec());
                }
            }
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            message.extend_from_slice(&buf[..n]);
        }
    }

    fn request(body: &str) -> Vec<u8> {
        format!(
            "POST /rpc HTTP/1.1\r\nHost: master\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn response(body: &[u8]) -> Vec<u8> {
        let mut response =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        response.extend_from_slice(body);
        response
    }

    /// Sends one request and reads exactly the bytes of its expected response.
    async fn exchange(client: &mut TcpStream, body: &str) -> Vec<u8> {
        client.write_all(&request(body)).await.unwrap();
        let mut received = vec![0; response(body.as_bytes()).len()];
        client.read_exact(&mut received).await.unwrap();
        received
    }

    async fn proxy_in(mode: Mode) -> (Proxy, TcpStream) {
        let proxy = Proxy::start(echo_master().await).await.unwrap();
        proxy.set_mode(mode);
        let client = TcpStream::connect(proxy.addr()).await.unwrap();
        (proxy, client)
    }

    /// Asserts that nothing arrives on `client` within 300 ms, and that it
    /// is not closed either.
    async fn assert_silent(client: &mut TcpStream) {
        let mut buf = [0; 64];
        let read = tokio::time::timeout(Duration::from_millis(300), client.read(&mut buf)).await;
        assert!(
            read.is_err(),
            "expected nothing within 300 ms, got {read:?}"
        );
    }

    #[tokio::test]
    async fn pass_relays_two_exchanges_on_one_connection_byte_exactly() {
        let (proxy, mut client) = proxy_in(Mode::Pass).await;

        assert_eq!(
            exchange(&mut client, r#"{"method":"heartbeat"}"#).await,
            b"HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\n{\"method\":\"heartbeat\"}"
        );
        assert_eq!(
            exchange(&mut client, "[]").await,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]"
        );

        let sent = request(r#"{"method":"heartbeat"}"#).len() + request("[]").len();
        assert_eq!(
            proxy.stats(),
            Stats {
                connections: 1,
                bytes_to_upstream: sent as u64,
                bytes_to_client: 61 + 40,
                ..Stats::default()
            }
        );
    }

    #[tokio::test]
    async fn latency_delays_the_response_by_at_least_the_delay() {
        let delay = Duration::from_millis(200);
        let (proxy, mut client) = proxy_in(Mode::Latency(delay)).await;

        let started = Instant::now();
        let received = exchange(&mut client, "{}").await;

        assert!(
            started.elapsed() >= delay,
            "answered after {:?}",
            started.elapsed()
        );
        assert_eq!(received, response(b"{}"));
        assert_eq!(proxy.stats().delayed, 1);
    }

    #[tokio::test]
    async fn reset_closes_the_connection_without_a_response() {
        let (proxy, mut client) = proxy_in(Mode::Reset).await;

        client.write_all(&request("{}")).await.unwrap();
        let mut received = Vec::new();
        let read = client.read_to_end(&mut received).await;

        // A RST reads as ECONNRESET, or as EOF if it raced the read.
        assert!(
            matches!(&read, Err(e) if e.kind() == ErrorKind::ConnectionReset) || read.is_ok(),
            "{read:?}"
        );
        assert_eq!(received, b"");
        assert_eq!(
            proxy.stats(),
            Stats {
                connections: 1,
                resets: 1,
                ..Stats::default()
            }
        );
    }

    #[tokio::test]
    async fn truncate_relays_the_headers_and_half_the_body_then_closes() {
        let (proxy, mut client) = proxy_in(Mode::Truncate).await;
        let body = "x".repeat(1000);

        client.write_all(&request(&body)).await.unwrap();
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.unwrap();

        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
        assert_eq!(received, [&head[..], &[b'x'; 500]].concat());
        assert_eq!(
            proxy.stats(),
            Stats {
                connections: 1,
                bytes_to_upstream: request(&body).len() as u64,
                bytes_to_client: (head.len() + 500) as u64,
                truncations: 1,
                ..Stats::default()
            }
        );
    }

    #[tokio::test]
    async fn hang_never_answers_even_after_the_mode_changes_back() {
        let (proxy, mut client) = proxy_in(Mode::Hang).await;

        client.write_all(&request("{}")).await.unwrap();
        assert_silent(&mut client).await;
        proxy.set_mode(Mode::Pass);
        client.write_all(&request("{}")).await.unwrap();
        assert_silent(&mut client).await;

        assert_eq!(
            proxy.stats(),
            Stats {
                connections: 1,
                hangs: 1,
                ..Stats::default()
            }
        );
    }

    #[tokio::test]
    async fn swallow_delivers_the_request_and_drops_the_answer() {
        let (proxy, mut client) = proxy_in(Mode::Swallow).await;

        let sent = request(r#"{"method":"heartbeat"}"#);
        client.write_all(&sent).await.unwrap();
        assert_silent(&mut client).await;

        let stats = proxy.stats();
        assert_eq!(
            stats.bytes_to_upstream,
            sent.len() as u64,
            "the master got the request"
        );
        assert_eq!(stats.bytes_to_client, 0, "the client got nothing");
        assert_eq!(stats.swallowed, 1);
    }

    /// Waits until the proxy holds an answered exchange, and returns it.
    async fn answered_hold(proxy: &Proxy) -> HeldExchange {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(held) = proxy.held().into_iter().find(|h| h.answered) {
                return held;
            }
            assert!(Instant::now() < deadline, "no answered exchange held");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn hold_delivers_the_request_and_the_answer_only_once_released() {
        let (proxy, mut client) = proxy_in(Mode::Hold).await;
        let sent = request(r#"{"jobs":[7]}"#);

        client.write_all(&sent).await.unwrap();
        let held = answered_hold(&proxy).await;
        assert_silent(&mut client).await;

        assert_eq!((held.id, &held.request), (0, &sent));
        assert_eq!(held.body(), Some(&br#"{"jobs":[7]}"#[..]));
        proxy.release_held();
        let mut received = vec![0; response(br#"{"jobs":[7]}"#).len()];
        client.read_exact(&mut received).await.unwrap();
        assert_eq!(received, response(br#"{"jobs":[7]}"#));
        assert_eq!(proxy.held(), vec![], "no longer held");
        assert_eq!(proxy.stats().held, 1);
    }

    #[tokio::test]
    async fn hold_holds_again_an_exchange_that_starts_after_a_release() {
        let (proxy, mut client) = proxy_in(Mode::Hold).await;
        client.write_all(&request("{}")).await.unwrap();
        answered_hold(&proxy).await;
        proxy.release_held();
        let mut first = vec![0; response(b"{}").len()];
        client.read_exact(&mut first).await.unwrap();

        client.write_all(&request("[]")).await.unwrap();
        let second = answered_hold(&proxy).await;
        assert_silent(&mut client).await;

        assert_eq!((second.id, second.body()), (1, Some(&b"[]"[..])));
        // Back to Pass: what is held stays held until released.
        proxy.set_mode(Mode::Pass);
        assert_silent(&mut client).await;
        proxy.release_held();
        assert_eq!(
            {
                let mut received = vec![0; response(b"[]").len()];
                client.read_exact(&mut received).await.unwrap();
                received
            },
            response(b"[]")
        );
        assert_eq!(exchange(&mut client, "{}").await, response(b"{}"));
        assert_eq!(proxy.stats().held, 2);
    }

    #[test]
    fn a_held_request_has_a_body_once_all_of_it_arrived() {
        let whole = request("[1,2]");
        let partial = HeldExchange {
            request: whole[..whole.len() - 1].to_vec(),
            ..HeldExchange::default()
        };
        let complete = HeldExchange {
            request: whole,
            ..HeldExchange::default()
        };

        assert_eq!(partial.body(), None);
        assert_eq!(complete.body(), Some(&b"[1,2]"[..]));
    }

    #[tokio::test]
    async fn shutdown_closes_hanging_connections_and_the_listener() {
        let (proxy, mut client) = proxy_in(Mode::Hang).await;
        let addr = proxy.addr();
        client.write_all(&request("{}")).await.unwrap();
        assert_silent(&mut client).await;

        proxy.shutdown().await;

        let mut received = Vec::new();
        // EOF, or a reset: either way the connection is gone, with no answer.
        let _ = client.read_to_end(&mut received).await;
        assert_eq!(received, b"");
        let refused = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn a_mode_switch_reaches_a_keep_alive_connection_opened_before_it() {
        let (proxy, mut client) = proxy_in(Mode::Pass).await;
        assert_eq!(exchange(&mut client, "{}").await, response(b"{}"));

        proxy.set_mode(Mode::Truncate);
        client.write_all(&request("[1,2]")).await.unwrap();
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.unwrap();

        assert_eq!(received, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n[1");
        assert_eq!(proxy.stats().connections, 1);
        assert_eq!(proxy.stats().truncations, 1);
    }

    #[test]
    fn a_cut_waits_for_the_headers_then_stops_at_half_the_body() {
        let mut cut = Cut::default();

        assert_eq!(cut.feed(b"HTTP/1.1 200 OK\r\nContent-"), Feed::More(b""));
        assert_eq!(
            cut.feed(b"Length: 6\r\n\r\nab"),
            Feed::More(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nab")
        );
        assert_eq!(cut.feed(b"cdef"), Feed::Cut(b"c"));
    }

    #[test]
    fn a_cut_of_a_response_without_a_body_halves_its_headers() {
        let mut cut = Cut::default();

        assert_eq!(
            cut.feed(b"HTTP/1.1 204 No Content\r\n\r\n"),
            Feed::Cut(b"HTTP/1.1 204 ")
        );
    }

    #[test]
    fn content_length_is_found_whatever_its_case() {
        assert_eq!(
            content_length(b"HTTP/1.1 200 OK\r\ncontent-length:  42 \r\n\r\n"),
            Some(42)
        );
        assert_eq!(
            content_length(b"HTTP/1.1 200 OK\r\nX-Length: 42\r\n\r\n"),
            None
        );
    }
}
