//! systemd's notification protocol (`Type=notify`, `WatchdogSec=`), spoken
//! directly: one datagram per message to the socket systemd names in
//! `NOTIFY_SOCKET`. Outside systemd (no such variable) every call is a
//! no-op.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// Where systemd listens, if it does.
#[derive(Debug)]
pub struct Notifier {
    target: Option<Target>,
}

#[derive(Debug)]
enum Target {
    Path(PathBuf),
    /// A Linux abstract socket (`@name` in the variable).
    Abstract(Vec<u8>),
}

impl Notifier {
    /// The notifier systemd's environment asks for.
    pub fn from_env() -> Self {
        use std::os::unix::ffi::OsStringExt;
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|socket| {
            let bytes = socket.into_vec();
            match bytes.split_first() {
                Some((b'@', name)) => Some(Target::Abstract(name.to_vec())),
                Some((b'/', _)) => Some(Target::Path(PathBuf::from(std::ffi::OsString::from_vec(
                    bytes,
                )))),
                _ => None,
            }
        });
        Notifier { target }
    }

    /// `READY=1`: the service has started (the database is reachable).
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// `STATUS=`: what the service is doing, for `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }

    /// `STOPPING=1`: the service is shutting down.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// `WATCHDOG=1`: the service is alive.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// How often to send `WATCHDOG=1` when systemd's watchdog is on for
    /// this process: half its timeout, as sd_watchdog_enabled(3) advises.
    pub fn watchdog_interval() -> Option<Duration> {
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        if let Ok(pid) = std::env::var("WATCHDOG_PID")
            && pid.parse::<u32>().ok() != Some(std::process::id())
        {
            return None;
        }
        (usec > 0).then(|| Duration::from_micros(usec / 2))
    }

    /// Sends one message; a failure is logged, never fatal (systemd may be
    /// restarting, and the service must go on).
    fn send(&self, message: &str) {
        let Some(target) = &self.target else {
            return;
        };
        let sent = UnixDatagram::unbound().and_then(|socket| match target {
            Target::Path(path) => socket.send_to(message.as_bytes(), path),
            #[cfg(target_os = "linux")]
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.send_to_addr(message.as_bytes(), &addr)
            }
            #[cfg(not(target_os = "linux"))]
            Target::Abstract(_) => Err(std::io::Error::other(
                "abstract sockets exist only on Linux",
            )),
        });
        if let Err(error) = sent {
            tracing::warn!(%error, "cannot notify systemd");
        }
    }
}
