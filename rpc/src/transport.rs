//! [`Transport`]: the pooled HTTP(S) client of one master, built for its
//! [`Route`] — straight to the master, a `CONNECT` tunnel through a proxy
//! for an `https://` master, or absolute-form requests to a proxy for an
//! `http://` master.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::PROXY_AUTHORIZATION;
use http::{HeaderValue, Request, Uri};
use http_body_util::Full;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::ClientConfig;
use tokio::net::TcpStream;

use crate::proxy::Route;

/// How long an idle keep-alive connection stays in the pool; longer than the
/// default heartbeat pause (60 s) so consecutive heartbeats share one.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

type Body = Full<Bytes>;

/// One master's connection pool, whichever way its connections go.
#[derive(Clone)]
pub(crate) enum Transport {
    /// Straight to the master, TLS for `https://`.
    Direct(Client<HttpsConnector<HttpConnector>, Body>),
    /// TLS to the master inside a `CONNECT` tunnel through the proxy.
    Tunnel(Client<HttpsConnector<Tunnel<HttpConnector>>, Body>),
    /// Plain HTTP to the proxy, which forwards absolute-form requests.
    Forward {
        client: Client<ForwardConnector, Body>,
        authorization: Option<HeaderValue>,
    },
}

impl Transport {
    /// The transport of `route`; `tls` serves `https://` masters.
    pub(crate) fn new(route: Route, endpoint_is_https: bool, tls: ClientConfig) -> Transport {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        match route {
            Route::Direct => Transport::Direct(pool(with_tls(tls, tcp))),
            Route::Proxy { uri, authorization } if endpoint_is_https => {
                let mut tunnel = Tunnel::new(uri, tcp);
                if let Some(authorization) = authorization {
                    tunnel = tunnel.with_auth(authorization);
                }
                Transport::Tunnel(pool(with_tls(tls, tunnel)))
            }
            Route::Proxy { uri, authorization } => Transport::Forward {
                client: pool(ForwardConnector { proxy: uri, tcp }),
                authorization,
            },
        }
    }

    /// Sends `request` the way of the route.
    pub(crate) fn request(&self, mut request: Request<Body>) -> ResponseFuture {
        match self {
            Transport::Direct(client) => client.request(request),
            Transport::Tunnel(client) => client.request(request),
            Transport::Forward {
                client,
                authorization,
            } => {
                // Through a tunnel the proxy sees credentials on CONNECT;
                // forwarded, it sees them on every request.
                if let Some(authorization) = authorization {
                    request
                        .headers_mut()
                        .insert(PROXY_AUTHORIZATION, authorization.clone());
                }
                client.request(request)
            }
        }
    }
}

/// `connector` with TLS on top for `https://` masters.
fn with_tls<C>(tls: ClientConfig, connector: C) -> HttpsConnector<C> {
    HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector)
}

fn pool<C>(connector: C) -> Client<C, Body>
where
    C: hyper_util::client::legacy::connect::Connect + Clone,
{
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(connector)
}

/// Connects every request to the proxy and marks the connection proxied, so
/// that hyper-util writes absolute-form request targets on it.
#[derive(Clone)]
pub(crate) struct ForwardConnector {
    proxy: Uri,
    tcp: HttpConnector,
}

type Connecting = Pin<
    Box<
        dyn Future<Output = Result<ProxiedStream, Box<dyn std::error::Error + Send + Sync>>> + Send,
    >,
>;

impl tower_service::Service<Uri> for ForwardConnector {
    type Response = ProxiedStream;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower_service::Service::<Uri>::poll_ready(&mut self.tcp, cx).map_err(Into::into)
    }

    fn call(&mut self, _master: Uri) -> Self::Future {
        let connecting = tower_service::Service::call(&mut self.tcp, self.proxy.clone());
        Box::pin(async move {
            let stream = connecting.await?;
            Ok(ProxiedStream(stream))
        })
    }
}

/// A TCP connection to the proxy.
pub(crate) struct ProxiedStream(TokioIo<TcpStream>);

impl Connection for ProxiedStream {
    fn connected(&self) -> Connected {
        self.0.connected().proxy(true)
    }
}

impl Read for ProxiedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl Write for ProxiedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }
}
