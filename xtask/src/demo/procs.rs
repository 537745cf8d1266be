//! The demo's child processes: started with their output in a log file,
//! stopped with SIGTERM, killed if they linger or if the demo dies.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::process::Command;

/// A running child process.
pub struct Child {
    name: String,
    inner: tokio::process::Child,
}

impl Child {
    /// Starts `program` with `args`, stdout and stderr appended to `log`.
    pub fn spawn(program: &Path, args: &[&str], log: &Path) -> Result<Child> {
        let out =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out
            .try_clone()
            .with_context(|| format!("opening {} twice", log.display()))?;
        let inner = Command::new(program)
            .args(args)
            // Every peer of the local lab is on loopback: a developer's
            // http_proxy must not carry its traffic.
            .env("no_proxy", "127.0.0.1,localhost,::1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Child {
            name: program.file_name().map_or_else(
                || program.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            inner,
        })
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.inner.id()
    }

    /// Whether the process has exited (on its own, or killed).
    pub fn exited(&mut self) -> bool {
        !matches!(self.inner.try_wait(), Ok(None))
    }

    /// Asks the process to stop (SIGTERM), as an operator would.
    pub fn terminate(&mut self) {
        if let Some(pid) = self.inner.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }

    /// Kills the process at once (SIGKILL): no cleanup, no goodbye, as a
    /// power cut or the OOM killer would.
    pub async fn kill(&mut self) {
        let _ = self.inner.kill().await;
    }

    /// Waits for the process to exit, killing it after `grace`.
    pub async fn wait(&mut self, grace: Duration) {
        match tokio::time::timeout(grace, self.inner.wait()).await {
            Ok(Ok(status)) if !status.success() => {
                eprintln!("{} exited with {status}", self.name);
            }
            Ok(_) => {}
            Err(_) => {
                eprintln!("{} did not stop within {grace:?}; killing it", self.name);
                let _ = self.inner.kill().await;
            }
        }
    }
}

/// A TCP port free on loopback right now.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr().context("reading a free port")?.port())
}

/// Waits until something accepts connections on `port`.
pub async fn wait_for_port(port: u16, within: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("nothing listens on 127.0.0.1:{port} after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
