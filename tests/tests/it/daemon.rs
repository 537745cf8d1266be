//! The `run` loop (§7): it stops on SIGTERM, even in the middle of a call
//! the master never answers, and at the end of its lifetime, exiting 0
//! each time, on every backend; and the client starts beside variables a
//! container platform injects with our prefix.

use std::time::{Duration, Instant};

use crate::common::*;
use shard_store::testing::TestDb;
use shard_tests::{Output, Reply, Running, Script, ScriptedMaster, ShardClient};

empty_db_tests!(
    run_stops_on_sigterm_and_exits_0,
    run_stops_on_sigterm_during_a_call_the_master_never_answers,
    run_stops_at_its_lifetime_and_exits_0,
);

/// How soon after SIGTERM the process must be gone: the 2 s plus
/// 1 s for a loaded machine. A client that waited for its call instead
/// would take the whole retry budget (a minute in the hung-call test).
const SIGTERM_BOUND: Duration = Duration::from_secs(3);

/// How long a test waits for the process at most; past the bounds it
/// asserts, so that a slow exit fails with the output rather than a kill.
const EXIT_TIMEOUT: Duration = Duration::from_secs(90);

/// How long the first heartbeats may take to arrive.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends SIGTERM to `running` and waits for its end: its output, and how
/// long it took to exit after the signal.
async fn sigterm(running: Running) -> (Output, Duration) {
    let signalled = Instant::now();
    running.terminate();
    let output = running.wait(EXIT_TIMEOUT).await;
    (output, signalled.elapsed())
}

/// Sends SIGTERM to `running` and asserts that it exits with `code` within
/// [`SIGTERM_BOUND`].
async fn assert_sigterm_ends(running: Running, code: i32) {
    let (output, took) = sigterm(running).await;
    assert_eq!(output.code, Some(code), "{output}");
    assert!(
        took < SIGTERM_BOUND,
        "exited {took:?} after SIGTERM:\n{output}"
    );
}

/// How many warnings of `output` name `name`.
fn warnings_naming(output: &Output, name: &str) -> usize {
    output
        .stderr
        .lines()
        .filter(|line| line.contains("WARN") && line.contains(name))
        .count()
}

async fn run_stops_on_sigterm_and_exits_0(db: TestDb) {
    let master = ScriptedMaster::start(Script::default()).await;
    let running = ShardClient::spawn(args("run", &master, &db), &ENV);
    master
        .wait_for_requests(2, START_TIMEOUT)
        .await
        .expect("the loop runs");

    assert_sigterm_ends(running, 0).await;

    master.assert_no_violations();
}

async fn run_stops_on_sigterm_during_a_call_the_master_never_answers(db: TestDb) {
    let master = ScriptedMaster::start([Reply::Hang]).await;
    // A call that may last a minute, retries included.
    let args = set(args("run", &master, &db), "--rpc-timeout-min", "1");
    let args = set(args, "--rpc-request-timeout-sec", "60");
    let running = ShardClient::spawn(args, &ENV);
    master
        .wait_for_requests(1, START_TIMEOUT)
        .await
        .expect("the call is made");

    assert_sigterm_ends(running, 0).await;

    assert_eq!(master.requests().len(), 1);
    master.assert_no_violations();
}

async fn run_stops_at_its_lifetime_and_exits_0(db: TestDb) {
    let master = ScriptedMaster::start(Script::default()).await;
    // 0.0003 h = 1.08 s.
    let args = set(args("run", &master, &db), "--lifetime-hours", "0.0003");

    let started = Instant::now();
    let output = ShardClient::spawn(args, &ENV).wait(START_TIMEOUT).await;
    let took = started.elapsed();

    assert_eq!(output.code, Some(0), "{output}");
    assert!(
        took >= Duration::from_millis(1080),
        "stopped {took:?} after start, before its lifetime:\n{output}"
    );
    assert!(output.stderr.contains("lifetime reached"), "{output}");
    assert!(
        master.heartbeats().len() >= 2,
        "the loop ran until then:\n{output}"
    );
    master.assert_no_violations();
}

/// Variables a container platform injects beside ours (Kubernetes, for a
/// Service named `shard-client`) do not stop the client: each gets one
/// warning and is ignored, and the heartbeat runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stray_shard_client_variables_are_warned_about_and_ignored() {
    let Some(db) = TestDb::empty(shard_store::testing::Backend::Sqlite).await else {
        return;
    };
    let master = ScriptedMaster::start([Reply::empty()]).await;
    let env = [
        ("RUST_LOG", "info"),
        ("SHARD_CLIENT_PORT", "tcp://10.0.0.7:9464"),
        ("SHARD_CLIENT_PORT_9464_TCP_ADDR", "10.0.0.7"),
        ("SHARD_CLIENT_SERVICE_HOST", "10.0.0.7"),
    ];

    let output = ShardClient::run_to_end(args("once", &master, &db), &env, EXIT_TIMEOUT).await;

    assert_eq!(output.code, Some(0), "{output}");
    for name in [
        "SHARD_CLIENT_PORT ",
        "SHARD_CLIENT_PORT_9464_TCP_ADDR",
        "SHARD_CLIENT_SERVICE_HOST",
    ] {
        assert_eq!(warnings_naming(&output, name), 1, "{name}:\n{output}");
    }
    assert_eq!(master.heartbeats().len(), 1, "the heartbeat ran");
}

/// `shard-client config`, which an operator runs to check a setup, warns of
/// the same stray variables, near misses with a suggestion.
#[tokio::test]
async fn config_warns_of_stray_variables_with_a_suggestion() {
    let Some(db) = TestDb::empty(shard_store::testing::Backend::Sqlite).await else {
        return;
    };
    let env = [
        ("RUST_LOG", "info"),
        ("SHARD_CLIENT_PORT", "tcp://10.0.0.7:9464"),
        ("SHARD_CLIENT_SHARD_HOSTNAM", "s2"),
    ];
    let args = args_to("config", "http://127.0.0.1:9", &db);

    let output = ShardClient::run_to_end(args, &env, EXIT_TIMEOUT).await;

    assert_eq!(output.code, Some(0), "{output}");
    assert_eq!(
        warnings_naming(&output, "SHARD_CLIENT_PORT "),
        1,
        "{output}"
    );
    assert_eq!(
        warnings_naming(&output, "SHARD_CLIENT_SHARD_HOSTNAM "),
        1,
        "{output}"
    );
    assert!(output.stderr.contains("did you mean"), "{output}");
    assert!(
        output
            .stdout
            .contains(&format!("shard_hostname = \"{SHARD}\"")),
        "{output}"
    );
}

/// A SQLite URL in a folder that does not exist yet: the database cannot be
/// opened until the folder is made, as a database server that is down
/// cannot be reached until it is up.
fn database_not_there_yet(name: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("shard-client-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("sqlite://{}/shard.db?mode=rwc", dir.display());
    (dir, url)
}

/// `run` started before its database is reachable waits for it, saying why
/// it cannot reach it (the real cause, not the pool's timeout), and sends
/// heartbeats once it can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_waits_for_a_database_that_is_down_at_start() {
    let Some(db) = TestDb::empty(shard_store::testing::Backend::Sqlite).await else {
        return;
    };
    let (dir, url) = database_not_there_yet("waits");
    let master = ScriptedMaster::start(Script::default()).await;
    let args = set(args("run", &master, &db), "--database-url", &url);
    let running = ShardClient::spawn(args, &ENV);

    let waiting = running
        .wait_for_stderr_line(|line| line.contains("not reachable yet"), START_TIMEOUT)
        .await;
    let Some(waiting) = waiting else {
        panic!("no waiting line:\n{}", running.stderr_so_far())
    };
    assert!(
        waiting.contains("unable to open database file"),
        "{waiting}"
    );
    assert!(!waiting.contains("pool timed out"), "{waiting}");
    assert_eq!(
        master.requests().len(),
        0,
        "no heartbeat without a database"
    );

    std::fs::create_dir_all(&dir).unwrap();
    master.wait_for_requests(1, START_TIMEOUT).await.unwrap();
    let (output, _) = sigterm(running).await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(output.code, Some(0), "{output}");
    master.assert_no_violations();
}

/// SIGTERM ends a `run` that is still waiting for its database at once,
/// with exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_stops_on_sigterm_while_waiting_for_the_database() {
    let Some(db) = TestDb::empty(shard_store::testing::Backend::Sqlite).await else {
        return;
    };
    let (_dir, url) = database_not_there_yet("sigterm");
    let master = ScriptedMaster::start(Script::default()).await;
    let args = set(args("run", &master, &db), "--database-url", &url);
    let running = ShardClient::spawn(args, &ENV);
    running
        .wait_for_stderr_line(|line| line.contains("not reachable yet"), START_TIMEOUT)
        .await
        .unwrap_or_else(|| panic!("no waiting line:\n{}", running.stderr_so_far()));

    assert_sigterm_ends(running, 0).await;

    assert_eq!(master.requests().len(), 0);
}

/// `once` does not wait: it fails at once with the real cause, said once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_fails_fast_on_a_database_that_is_down_naming_the_cause_once() {
    let Some(db) = TestDb::empty(shard_store::testing::Backend::Sqlite).await else {
        return;
    };
    let (_dir, url) = database_not_there_yet("once");
    let master = ScriptedMaster::start(Script::default()).await;

    let output = run_to_end(set(args("once", &master, &db), "--database-url", &url)).await;

    assert_eq!(output.code, Some(1), "{output}");
    let cause = "unable to open database file";
    assert_eq!(output.stderr.matches(cause).count(), 1, "{output}");
    assert!(!output.stderr.contains("pool timed out"), "{output}");
    assert_eq!(master.requests().len(), 0);
}

/// A first SIGTERM lets the heartbeat in progress finish (here its write
/// waits for a lock another writer holds); a second one ends the process
/// at once, with 143 (128 + SIGTERM).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_exits_at_once() {
    let Some(db) = TestDb::empty(shard_store::testing::Backend::Sqlite).await else {
        return;
    };
    migrate(&db).await;
    let master = ScriptedMaster::start(Script::new([Reply::Response(response(
        vec![host(1)],
        vec![],
        vec![],
    ))]))
    .await;
    // Another writer holds the database until the test ends.
    let lock = shard_store::begin_write(db.store.connection())
        .await
        .unwrap();
    let running = ShardClient::spawn(args("run", &master, &db), &ENV);
    master.wait_for_requests(1, START_TIMEOUT).await.unwrap();
    // The answer is in; the client now waits for the write lock (for up to
    // its 10 s busy timeout).
    tokio::time::sleep(Duration::from_secs(1)).await;

    running.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        running.stderr_so_far().contains("shutdown requested"),
        "{}",
        running.stderr_so_far()
    );
    assert_sigterm_ends(running, 143).await;

    drop(lock);
}

/// Every line a heartbeat logs carries its tick number, one span per
/// heartbeat, so that an operator can follow one heartbeat through the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_of_a_heartbeat_carries_its_tick() {
    let Some(db) = TestDb::empty(shard_store::testing::Backend::Sqlite).await else {
        return;
    };
    let master = ScriptedMaster::start(Script::default()).await;
    let running = ShardClient::spawn(args("run", &master, &db), &ENV);
    master.wait_for_requests(3, START_TIMEOUT).await.unwrap();
    let (output, _) = sigterm(running).await;

    assert_eq!(output.code, Some(0), "{output}");
    let done: Vec<&str> = output
        .stderr
        .lines()
        .filter(|line| line.contains("heartbeat done"))
        .collect();
    assert!(done.len() >= 2, "{output}");
    for (i, line) in done.iter().enumerate() {
        assert!(
            line.contains(&format!("heartbeat{{tick={}}}", i + 1)),
            "line {i}: {line}"
        );
    }
}

/// Under systemd (`Type=notify`, `WatchdogSec=`), `run` says READY=1 once
/// its database is reachable, pings the watchdog while its loop is alive,
/// and says STOPPING=1 on SIGTERM: the datagrams systemd would receive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_notifies_systemd_of_readiness_the_watchdog_and_stopping() {
    use std::os::unix::net::UnixDatagram;

    let Some(db) = TestDb::empty(shard_store::testing::Backend::Sqlite).await else {
        return;
    };
    let path =
        std::env::temp_dir().join(format!("shard-client-notify-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let systemd = UnixDatagram::bind(&path).unwrap();
    systemd
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let socket = path.to_string_lossy().into_owned();
    let env = [
        ("RUST_LOG", "info"),
        ("NOTIFY_SOCKET", socket.as_str()),
        // 0.2 s: a ping every 0.1 s.
        ("WATCHDOG_USEC", "200000"),
    ];
    let master = ScriptedMaster::start(Script::default()).await;
    let running = ShardClient::spawn(args("run", &master, &db), &env);
    master.wait_for_requests(2, START_TIMEOUT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (output, _) = sigterm(running).await;
    assert_eq!(output.code, Some(0), "{output}");

    let mut messages = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = systemd.recv(&mut buf) {
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let _ = std::fs::remove_file(&path);
    let ready = messages.iter().position(|m| m.starts_with("READY=1"));
    let stopping = messages.iter().position(|m| m == "STOPPING=1");
    let pings = messages.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!(ready.is_some(), "{messages:?}");
    assert!(stopping > ready, "stopping after ready: {messages:?}");
    assert!(pings >= 3, "{messages:?}");
}
