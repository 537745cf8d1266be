//! [`RecordingProxy`]: an HTTP proxy on 127.0.0.1 that records what each
//! connection asked for and then relays it, as squid would: `CONNECT`
//! tunnels for `https://` targets, absolute-form requests for `http://` ones.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The longest request head the proxy reads.
const MAX_HEAD: usize = 64 * 1024;

/// The first request of one connection to the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    /// The request line, e.g. `CONNECT 127.0.0.1:443 HTTP/1.1`.
    pub line: String,
    /// The `Proxy-Authorization` header, if sent.
    pub proxy_authorization: Option<String>,
}

/// A relaying HTTP proxy that records the first request of each connection
/// (later requests of a kept-alive connection go through unseen).
#[derive(Debug)]
pub struct RecordingProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<ProxyRequest>>>,
    task: JoinHandle<()>,
}

impl RecordingProxy {
    /// Starts the proxy on a free port.
    pub async fn start() -> io::Result<RecordingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let recorder = Arc::clone(&recorder);
                tokio::spawn(async move {
                    // A failed relay just closes the connection, as a proxy does.
                    let _ = relay(client, &recorder).await;
                });
            }
        });
        Ok(RecordingProxy { addr, seen, task })
    }

    /// `http://127.0.0.1:<port>`, for `http_proxy` and friends.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What each connection asked for first, in order of arrival.
    pub fn requests(&self) -> Vec<ProxyRequest> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads the head, records it, connects to the target and relays both ways.
async fn relay(mut client: TcpStream, seen: &Mutex<Vec<ProxyRequest>>) -> io::Result<()> {
    let mut head = Vec::new();
    let end = loop {
        let mut chunk = [0u8; 4096];
        let n = client.read(&mut chunk).await?;
        if n == 0 || head.len() > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default().to_owned();
    let proxy_authorization = lines.find_map(|header| {
        let (name, value) = header.split_once(':')?;
        name.eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_owned())
    });
    seen.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(ProxyRequest {
            line: line.clone(),
            proxy_authorization,
        });

    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let mut upstream = if method == "CONNECT" {
        let upstream = TcpStream::connect(target).await?;
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        // Whatever the client sent after the head belongs to the tunnel.
        let mut upstream = upstream;
        upstream.write_all(&head[end..]).await?;
        upstream
    } else {
        let authority = target
            .strip_prefix("http://")
            .and_then(|rest| rest.split('/').next())
            .ok_or_else(|| io::Error::other(format!("not absolute-form: {line}")))?;
        let mut upstream = TcpStream::connect(authority).await?;
        // Servers accept absolute-form targets, so the head goes on as is.
        upstream.write_all(&head).await?;
        upstream
    };
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
