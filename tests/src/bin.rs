//! The real `shard-client` binary, for tests of this crate: where it is, and
//! a runner that captures its output, stops it with a signal and never leaves
//! it behind.
//!
//! Cargo only builds a package's own binaries for its tests
//! (`CARGO_BIN_EXE_*`), so the binary of `shard-daemon` is built here, once
//! per test process, by `cargo build -p shard-daemon --bin shard-client` in
//! the profile of the running test. An up-to-date binary costs a no-op
//! build; a stale one (the daemon was edited since) is rebuilt rather than
//! tested. `SHARD_TESTS_CLIENT_BIN=<path>` skips the build and uses that
//! binary; without a `cargo` to run, the binary beside the test executable
//! (`target/<profile>/shard-client`) is used if there is one.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The environment variable naming a prebuilt `shard-client` to test.
pub const BIN_ENV: &str = "SHARD_TESTS_CLIENT_BIN";

/// The binary's name (`[[bin]]` of `shard-daemon`).
const BIN: &str = "shard-client";

/// The prefix of the client's configuration variables; inherited ones are
/// removed so the developer's environment cannot change a test.
const CONFIG_ENV_PREFIX: &str = "SHARD_CLIENT_";

/// Variables of the test's own environment that change where the client's
/// connections go or whom they trust (lower case; both cases are removed).
const INHERITED_NOT: [&str; 6] = [
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "ssl_cert_file",
    "ssl_cert_dir",
];

/// The variables, besides `CARGO_PKG_*`, that cargo sets for the package
/// of a running test.
const PACKAGE_ENV: [&str; 8] = [
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "OUT_DIR",
];

/// How long the output of a finished child may take to drain.
const DRAIN: Duration = Duration::from_secs(5);

/// The path of an up-to-date `shard-client`, built on first use.
///
/// # Panics
/// When it cannot be built (the message carries cargo's errors) or
/// [`BIN_ENV`] names no file.
pub fn shard_client_path() -> &'static Path {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PATH.get_or_init(locate) {
        Ok(path) => path,
        Err(problem) => panic!("{problem}"),
    }
}

fn locate() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(BIN_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{BIN_ENV}={} is not a file", path.display()))
        };
    }
    let profile_dir = profile_dir();
    match build(profile_dir.as_deref()) {
        Ok(path) => Ok(path),
        Err(Build::NoCargo(problem)) => {
            let beside = profile_dir.map(|dir| dir.join(BIN));
            match beside {
                Some(path) if path.is_file() => Ok(path),
                _ => Err(format!(
                    "cannot build {BIN} ({problem}) and there is none beside the test executable; \
                     build it with `cargo build -p shard-daemon` or set {BIN_ENV}"
                )),
            }
        }
        Err(Build::Failed(problem)) => Err(problem),
    }
}

/// `target/<profile>`, the directory of the test executable's `deps/`.
fn profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    match dir.file_name().and_then(OsStr::to_str) {
        Some("deps" | "examples") => dir.parent().map(Path::to_path_buf),
        _ => Some(dir.to_path_buf()),
    }
}

/// Why [`build`] gave no binary.
enum Build {
    /// Cargo could not be started.
    NoCargo(String),
    /// The build failed or named no binary.
    Failed(String),
}

/// Runs cargo once; the binary's path as cargo reports it.
fn build(profile_dir: Option<&Path>) -> Result<PathBuf, Build> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(&cargo);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "-p", "shard-daemon", "--bin", BIN])
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null());
    // Cargo sets these for the running test. Build scripts that track one
    // (ring tracks `CARGO_MANIFEST_DIR`) would see it change between this
    // build and a plain `cargo build`, and each would rebuild half the tree.
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("CARGO_PKG_") || PACKAGE_ENV.contains(&key_text.as_ref()) {
            command.env_remove(&key);
        }
    }
    // The profile of the running test: `target/debug` is the dev profile.
    match profile_dir
        .and_then(Path::file_name)
        .and_then(OsStr::to_str)
    {
        None | Some("debug") => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    let shown = format!(
        "{} build -p shard-daemon --bin {BIN}",
        cargo.to_string_lossy()
    );
    let output = command
        .output()
        .map_err(|e| Build::NoCargo(format!("cannot run `{shown}`: {e}")))?;
    if !output.status.success() {
        return Err(Build::Failed(format!(
            "`{shown}` failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == BIN
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| Build::Failed(format!("`{shown}` reported no executable")))
}

/// Runs the real `shard-client`.
#[derive(Debug, Clone, Copy)]
pub struct ShardClient;

impl ShardClient {
    /// The binary (see [`shard_client_path`]).
    pub fn path() -> &'static Path {
        shard_client_path()
    }

    /// A command running the binary with `args`: no stdin, no inherited
    /// `SHARD_CLIENT_*`, proxy or CA-store variables (a developer's proxy
    /// must not carry the tests' 127.0.0.1 traffic), killed when dropped.
    /// Output is inherited unless the caller pipes it.
    pub fn command(args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Command {
        let mut command = Command::new(shard_client_path());
        command.args(args).stdin(Stdio::null()).kill_on_drop(true);
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy().to_ascii_lowercase();
            if name.starts_with(&CONFIG_ENV_PREFIX.to_ascii_lowercase())
                || INHERITED_NOT.contains(&name.as_str())
            {
                command.env_remove(key);
            }
        }
        command
    }

    /// Runs the binary to its end and returns what it printed.
    ///
    /// # Panics
    /// When it cannot be started, or has not exited after `timeout` (it is
    /// killed first; the message shows what it printed).
    pub async fn run_to_end(
        args: impl IntoIterator<Item = impl AsRef<OsStr>>,
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> Output {
        ShardClient::spawn(args, env).wait(timeout).await
    }

    /// Starts the binary in the background with extra environment variables,
    /// capturing its output.
    ///
    /// # Panics
    /// When it cannot be started.
    pub fn spawn(
        args: impl IntoIterator<Item = impl AsRef<OsStr>>,
        env: &[(&str, &str)],
    ) -> Running {
        let args: Vec<_> = args
            .into_iter()
            .map(|arg| arg.as_ref().to_os_string())
            .collect();
        let shown = std::iter::once(BIN.into())
            .chain(args.iter().map(|arg| arg.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ");
        let mut command = ShardClient::command(&args);
        command
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{shown}`: {e}"));
        let stdout = Capture::new();
        let stderr = Capture::new();
        let stdout_task = child
            .stdout
            .take()
            .map(|pipe| drain(pipe, Arc::clone(&stdout)));
        let stderr_task = child
            .stderr
            .take()
            .map(|pipe| drain(pipe, Arc::clone(&stderr)));
        Running {
            child,
            stdout: Piped {
                capture: stdout,
                task: stdout_task,
            },
            stderr: Piped {
                capture: stderr,
                task: stderr_task,
            },
            shown,
        }
    }
}

/// What a pipe delivered so far, readable while the child runs.
#[derive(Debug)]
struct Capture {
    bytes: Mutex<Vec<u8>>,
    /// The number of bytes read, and whether the pipe is closed.
    progress: watch::Sender<(usize, bool)>,
}

impl Capture {
    fn new() -> Arc<Capture> {
        Arc::new(Capture {
            bytes: Mutex::new(Vec::new()),
            progress: watch::Sender::new((0, false)),
        })
    }

    fn text(&self) -> String {
        let bytes = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The first complete line that `matches`, if any.
    fn find_line(&self, matches: &impl Fn(&str) -> bool) -> Option<String> {
        let bytes = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        let complete = match bytes.iter().rposition(|b| *b == b'\n') {
            Some(end) => &bytes[..end],
            None => return None,
        };
        String::from_utf8_lossy(complete)
            .lines()
            .find(|line| matches(line))
            .map(str::to_owned)
    }
}

/// A pipe of the child and the task reading it.
#[derive(Debug)]
struct Piped {
    capture: Arc<Capture>,
    task: Option<JoinHandle<()>>,
}

/// Reads a pipe to its end in the background, into `capture`.
fn drain(
    mut pipe: impl AsyncRead + Unpin + Send + 'static,
    capture: Arc<Capture>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buffer = vec![0; 8192];
        loop {
            // A read error ends the capture; what was read is kept.
            let read = match pipe.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            let len = {
                let mut bytes = capture.bytes.lock().unwrap_or_else(PoisonError::into_inner);
                bytes.extend_from_slice(&buffer[..read]);
                bytes.len()
            };
            capture.progress.send_replace((len, false));
        }
        capture.progress.send_modify(|(_, closed)| *closed = true);
    })
}

/// A `shard-client` running in the background; killed when dropped.
#[derive(Debug)]
pub struct Running {
    child: Child,
    stdout: Piped,
    stderr: Piped,
    /// The command line, for messages.
    shown: String,
}

impl Running {
    /// The process id, while it has not been waited for.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Sends SIGTERM, asking for a clean shutdown.
    ///
    /// # Panics
    /// When `kill` cannot be run.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends SIGINT, as Ctrl-C does.
    ///
    /// # Panics
    /// When `kill` cannot be run.
    pub fn interrupt(&self) {
        self.signal("INT");
    }

    fn signal(&self, name: &str) {
        // Until it is waited for, the process keeps its id even if it has
        // exited, so the signal cannot reach another process.
        let Some(pid) = self.child.id() else {
            return;
        };
        // `kill` fails when the process has just exited: nothing to stop.
        let _ = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run `kill -{name} {pid}` for `{}`: {e}", self.shown)
            });
    }

    /// Whether it has exited (without waiting).
    ///
    /// # Panics
    /// When its status cannot be read.
    pub fn has_exited(&mut self) -> bool {
        match self.child.try_wait() {
            Ok(status) => status.is_some(),
            Err(e) => panic!("cannot read the status of `{}`: {e}", self.shown),
        }
    }

    /// What it has written to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        self.stderr.capture.text()
    }

    /// Waits until it has written a whole line to stderr that `matches`,
    /// and returns that line; `None` when stderr closed or `timeout` passed
    /// first.
    pub async fn wait_for_stderr_line(
        &self,
        matches: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let capture = &self.stderr.capture;
        let mut progress = capture.progress.subscribe();
        let search = async {
            loop {
                if let Some(line) = capture.find_line(&matches) {
                    return Some(line);
                }
                if progress.borrow_and_update().1 {
                    return None;
                }
                // The sender lives in `capture`: it cannot be dropped here.
                if progress.changed().await.is_err() {
                    return None;
                }
            }
        };
        tokio::time::timeout(timeout, search).await.ok().flatten()
    }

    /// Waits for it to exit and returns what it printed.
    ///
    /// # Panics
    /// When it has not exited after `timeout` (it is killed first; the
    /// message shows what it printed), or cannot be waited for.
    pub async fn wait(mut self, timeout: Duration) -> Output {
        let waited = tokio::time::timeout(timeout, self.child.wait()).await;
        match waited {
            Ok(Ok(status)) => {
                let (stdout, stderr) = self.output().await;
                Output {
                    code: status.code(),
                    stdout,
                    stderr,
                }
            }
            Ok(Err(e)) => panic!("cannot wait for `{}`: {e}", self.shown),
            Err(_) => {
                // Kill errors mean it exited meanwhile; the wait reaps it.
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                let (stdout, stderr) = self.output().await;
                let output = Output {
                    code: None,
                    stdout,
                    stderr,
                };
                panic!(
                    "`{}` did not exit within {timeout:?}; killed it.\n{output}",
                    self.shown
                )
            }
        }
    }

    /// What it printed, once it has exited.
    async fn output(&mut self) -> (String, String) {
        let stdout = collect(&mut self.stdout).await;
        let stderr = collect(&mut self.stderr).await;
        (stdout, stderr)
    }
}

/// The text a [`drain`] task read, once the pipe is closed.
async fn collect(piped: &mut Piped) -> String {
    let Some(task) = piped.task.take() else {
        return piped.capture.text();
    };
    match tokio::time::timeout(DRAIN, task).await {
        Ok(Ok(())) => piped.capture.text(),
        Ok(Err(e)) => format!("{}<output lost: {e}>", piped.capture.text()),
        Err(_) => format!(
            "{}<output still open {DRAIN:?} after exit>",
            piped.capture.text()
        ),
    }
}

/// How a `shard-client` run ended and what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl fmt::Display for Output {
    /// The exit code and both streams, for assertion messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => writeln!(f, "exit code {code}")?,
            None => writeln!(f, "ended by a signal")?,
        }
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}
