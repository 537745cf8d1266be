//! A database outage on demand: a plain TCP relay between a shard client
//! and its MariaDB or PostgreSQL server that, while down, cuts every open
//! connection and refuses new ones (accepts, then resets), as a crashed or
//! firewalled server would look to the client.
//!
//! Unlike [`super::proxy`], it knows nothing of the protocol it carries:
//! MySQL servers speak first, so the relay connects upstream at once.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A relay that can be taken down and brought back.
pub struct DbProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: CancellationToken,
}

/// Whether the relay is up, and the token every open relay dies with.
struct State {
    up: bool,
    cut: CancellationToken,
    refused: u64,
}

impl DbProxy {
    /// Listens on a free loopback port and relays every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> io::Result<DbProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            up: true,
            cut: CancellationToken::new(),
            refused: 0,
        }));
        let stop = CancellationToken::new();
        tokio::spawn(accept(listener, upstream, Arc::clone(&state), stop.clone()));
        Ok(DbProxy { addr, state, stop })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Takes the database away (every open connection is cut at once) or
    /// brings it back.
    pub fn set_up(&self, up: bool) {
        let mut state = self.state();
        state.up = up;
        if !up {
            state.cut.cancel();
            state.cut = CancellationToken::new();
        }
    }

    /// Connections refused while down, so far.
    pub fn refused(&self) -> u64 {
        self.state().refused
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.state().cut.cancel();
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let client = match accepted {
            Ok((client, _)) => client,
            Err(e) => {
                eprintln!("chaos db proxy: accepting a connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let cut = {
            let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
            if s.up {
                Some(s.cut.clone())
            } else {
                s.refused += 1;
                None
            }
        };
        match cut {
            // A reset rather than a clean close: what a client sees from a
            // server that is gone.
            None => {
                let _ = client.set_zero_linger();
            }
            Some(cut) => {
                tokio::spawn(relay(client, upstream, cut));
            }
        }
    }
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, cut: CancellationToken) {
    let mut server = match TcpStream::connect(upstream).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("chaos db proxy: connecting to {upstream}: {e}");
            let _ = client.set_zero_linger();
            return;
        }
    };
    tokio::select! {
        // The outage first: bytes that arrive with it do not get through.
        biased;
        () = cut.cancelled() => {
            let _ = client.set_zero_linger();
        }
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An echo server standing in for the database.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream) -> io::Result<Vec<u8>> {
        s.write_all(b"ping").await?;
        let mut buf = [0; 4];
        s.read_exact(&mut buf).await?;
        Ok(buf.to_vec())
    }

    #[tokio::test]
    async fn relays_while_up_cuts_and_refuses_while_down_and_heals() {
        let proxy = DbProxy::start(echo().await).await.unwrap();
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut open).await.unwrap(), b"ping");

        proxy.set_up(false);
        assert!(
            round_trip(&mut open).await.is_err(),
            "an open connection survived the outage"
        );
        let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(
            round_trip(&mut refused).await.is_err(),
            "a new connection got through while down"
        );
        assert_eq!(proxy.refused(), 1);

        proxy.set_up(true);
        let mut healed = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut healed).await.unwrap(), b"ping");
    }
}
