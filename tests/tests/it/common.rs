//! Shared by the acceptance tests: one test per backend, minimal records, the
//! command lines of the real binary and readers of the rows it wrote.
//!
//! Every test gets an empty database ([`TestDb::empty`]): the binary creates
//! the schema itself, as `run`, `once` and `status` do (§10). A test that
//! fills the database first runs [`migrate`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, Database, DatabaseConnection, EntityTrait, QueryFilter,
};
use serde_json::{Value, json};
use shard_master::Mode;
use shard_master::server::ServeOptions;
use shard_model::{HeartbeatResponse, Job, JobKeyval};
use shard_store::schema::entity::afe_users;
use shard_store::testing::TestDb;
use shard_tests::scheduler::complete_jobs;
use shard_tests::{Output, Running, ScriptedMaster, ShardClient};
use tokio_util::sync::CancellationToken;

/// The shard's hostname; [`shard`]`(1)` carries it, so the row the master
/// sends with the first host or job is this shard's.
pub const SHARD: &str = "shard1";

/// The `rpc_user` of every run but the one that looks for secrets.
pub const RPC_USER: &str = "tester";

/// How long one `once`, `status` or `migrate` may take, on a loaded machine.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Generates one `#[tokio::test]` per backend for each listed
/// `async fn name(db: TestDb)`, in modules `sqlite`, `mysql` and `postgres`
/// so the backend shows in the test's name. The database is empty; a backend
/// that is not configured prints a note and the test passes without running
/// (unless `SHARD_TEST_REQUIRE_BACKENDS=1`, which makes it fail).
macro_rules! empty_db_tests {
    ($($name:ident),* $(,)?) => {
        empty_db_tests!(@backend sqlite, Sqlite, $($name),*);
        empty_db_tests!(@backend mysql, MySql, $($name),*);
        empty_db_tests!(@backend postgres, Postgres, $($name),*);
    };
    (@backend $module:ident, $backend:ident, $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let backend = shard_store::testing::Backend::$backend;
                    if let Some(db) = shard_store::testing::TestDb::empty(backend).await {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}
pub(crate) use empty_db_tests;

/// [`empty_db_tests!`] and `shard_store::adopted_schema_tests!` at once: each
/// listed test runs on every backend from an empty database, and on every
/// schema found in deployments (§9), adopted as the client finds it.
macro_rules! empty_or_adopted_db_tests {
    ($($name:ident),* $(,)?) => {
        empty_db_tests!($($name),*);
        shard_store::adopted_schema_tests!($($name),*);
    };
}
pub(crate) use empty_or_adopted_db_tests;

// ---------------------------------------------------------------------------
// Command lines.

/// The arguments of `command` against `master_url` on `db`, with the fast
/// settings every test uses: a 0.1 s pause, a 0.05 s first back-off, a
/// 1.2 s retry budget, 1 s per attempt, metrics on a free port.
pub fn args_to(command: &str, master_url: &str, db: &TestDb) -> Vec<String> {
    [
        command,
        "--global-afe-hostname",
        master_url,
        "--shard-hostname",
        SHARD,
        "--database-url",
        db.url(),
        "--rpc-user",
        RPC_USER,
        "--heartbeat-pause-sec",
        "0.1",
        "--rpc-delay-sec",
        "0.05",
        "--rpc-timeout-min",
        "0.02",
        "--rpc-request-timeout-sec",
        "1",
        "--metrics-addr",
        "127.0.0.1:0",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// [`args_to`] the scripted master.
pub fn args(command: &str, master: &ScriptedMaster, db: &TestDb) -> Vec<String> {
    args_to(command, &master.url(), db)
}

/// `args` with `flag` set to `value`: replaced where it is, else appended.
pub fn set(mut args: Vec<String>, flag: &str, value: &str) -> Vec<String> {
    match args.iter().position(|arg| arg == flag) {
        Some(at) => args[at + 1] = value.to_owned(),
        None => args.extend([flag.to_owned(), value.to_owned()]),
    }
    args
}

/// `args` with `flag`, which takes no value, appended.
pub fn with_flag(mut args: Vec<String>, flag: &str) -> Vec<String> {
    args.push(flag.to_owned());
    args
}

/// `args` without `flag` and its value.
pub fn without(mut args: Vec<String>, flag: &str) -> Vec<String> {
    if let Some(at) = args.iter().position(|arg| arg == flag) {
        args.drain(at..at + 2);
    }
    args
}

/// The environment of every run: info logs whatever the caller's
/// `RUST_LOG` says, since tests read log lines.
pub const ENV: [(&str, &str); 1] = [("RUST_LOG", "info")];

/// Starts `args` (a `run`) with JSON logs and `env`; the client and the
/// base URL of its endpoint (`http://IP:PORT`), read from its log line
/// `metrics endpoint listening`.
pub async fn run_with_endpoint(args: Vec<String>, env: &[(&str, &str)]) -> (Running, String) {
    let running = ShardClient::spawn(set(args, "--log-format", "json"), env);
    let line = running
        .wait_for_stderr_line(
            |line| line.contains("metrics endpoint listening"),
            Duration::from_secs(30),
        )
        .await;
    let Some(line) = line else {
        panic!(
            "no `metrics endpoint listening` line:\n{}",
            running.stderr_so_far()
        )
    };
    let fields: serde_json::Value = serde_json::from_str(&line).unwrap();
    let metrics = fields["metrics"]
        .as_str()
        .unwrap_or_else(|| panic!("no metrics URL in {line}"));
    let base = metrics
        .strip_suffix("/metrics")
        .unwrap_or_else(|| panic!("{metrics} is not a /metrics URL"))
        .to_owned();
    (running, base)
}

/// Runs `args` to its end.
pub async fn run_to_end(args: Vec<String>) -> Output {
    ShardClient::run_to_end(args, &ENV, RUN_TIMEOUT).await
}

/// One heartbeat (`once`) against `master`.
pub async fn once(master: &ScriptedMaster, db: &TestDb) -> Output {
    run_to_end(args("once", master, db)).await
}

/// One heartbeat that must succeed: a step of a scenario, not what it tests.
pub async fn once_ok(master: &ScriptedMaster, db: &TestDb) {
    let output = once(master, db).await;
    assert_eq!(output.code, Some(0), "a setup heartbeat failed:\n{output}");
}

/// The stderr line of `once` when a heartbeat failed for `failure_type`.
pub fn failed_because(failure_type: &str) -> String {
    format!("shard-client: heartbeat failed ({failure_type})")
}

/// Two heartbeats against `master`: the first fails as an invalid
/// response, the second succeeds and knows nothing, since nothing of the
/// first was applied.
pub async fn assert_invalid_then_nothing_known(master: &ScriptedMaster, db: &TestDb) {
    let invalid = once(master, db).await;
    let next = once(master, db).await;

    assert_eq!(invalid.code, Some(1), "{invalid}");
    assert!(
        invalid.stderr.contains(&failed_because("invalid_response")),
        "{invalid}"
    );
    assert_eq!(next.code, Some(0), "{next}");
    let heartbeats = master.heartbeats();
    assert_eq!(heartbeats.len(), 2);
    assert_eq!(heartbeats[1].known_job_ids, Vec::<i32>::new());
    assert_eq!(heartbeats[1].known_host_ids, Vec::<i32>::new());
}

/// Creates the schema with `shard-client migrate`, for tests that fill the
/// database before the first heartbeat. Contacts no master.
pub async fn migrate(db: &TestDb) {
    let output = run_to_end(args_to("migrate", "http://127.0.0.1:9", db)).await;
    assert_eq!(output.code, Some(0), "migrate failed:\n{output}");
}

/// Writes `response` as the client would apply it, checking that every
/// record landed.
pub async fn fill(db: &TestDb, response: &HeartbeatResponse) {
    let report = shard_store::apply(db.store.connection(), &db.store.layout(), response)
        .await
        .unwrap();
    assert_eq!(report.rejected, vec![], "setup records refused");
}

// ---------------------------------------------------------------------------
// Records, as the master sends them.

pub use shard_model::testing::records::{
    at, attribute, group, host, hqe, keyval, label, response, uploaded_job, user,
};

/// A job of suite 1000, assigned to [`SHARD`], with one queued entry
/// (id `id * 10`) on any host of label 1 and one keyval `build=R80`.
pub fn job(id: i32) -> Job {
    Job {
        jobkeyval_set: Some(vec![keyval(id, "build", "R80")]),
        ..shard_model::testing::records::job(id)
    }
}

/// Three keyvals of suite 2000, which lives on the master: the master sends
/// them with every heartbeat (§8), and a schema with a foreign key on
/// `afe_job_keyvals.job_id` (Django's) cannot store them.
pub fn keyvals_of_suite_2000() -> Vec<JobKeyval> {
    vec![
        keyval(2000, "suite", "bvt"),
        keyval(2000, "build", "R80"),
        keyval(2000, "board", "lumpy"),
    ]
}

/// [`job`] with its entry on `host_id`.
pub fn job_on(id: i32, host_id: i32) -> Job {
    Job {
        hostqueueentry_set: Some(vec![hqe(id * 10, Some(host_id))]),
        ..job(id)
    }
}

// ---------------------------------------------------------------------------
// Uploads, as the master receives them.

/// Completes `jobs` on the shard as the scheduler does, their entries
/// running from 16:01:02 to 16:09:45 (see [`uploaded_hqe`]).
pub async fn complete_jobs_in_nine_minutes(db: &TestDb, jobs: &[i32]) {
    complete_jobs(
        db.store.connection(),
        jobs,
        at("2014-09-23T16:01:02"),
        at("2014-09-23T16:09:45"),
    )
    .await
    .unwrap();
}

/// Entry `id` on `host_id` as the client uploads it once
/// [`complete_jobs_in_nine_minutes`] completed its job.
pub fn uploaded_hqe(id: i32, host_id: i32) -> Value {
    json!({
        "id": id,
        "status": "Completed",
        "active": false,
        "complete": true,
        "deleted": false,
        "aborted": false,
        "execution_subdir": "",
        "started_on": "2014-09-23T16:01:02",
        "finished_on": "2014-09-23T16:09:45",
        "host_id": host_id,
    })
}

// ---------------------------------------------------------------------------
// Rows.

pub use shard_store::testing::rows::*;

// ---------------------------------------------------------------------------
// Database users made for one test.

/// A user name no other test uses.
pub fn unique_user() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "shard_pw_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A MySQL user made for one test, dropped with this value.
pub struct CreatedUser {
    admin_url: String,
    user: String,
}

impl CreatedUser {
    /// Creates `user` with `password` and `privileges` (`ALL PRIVILEGES`,
    /// `SELECT`, ...) on `database`; `None` (with a note) when the server
    /// does not let the test do so.
    pub async fn mysql(
        admin_url: &str,
        user: &str,
        password: &str,
        privileges: &str,
        database: &str,
    ) -> Option<CreatedUser> {
        let admin = Database::connect(admin_url).await.ok()?;
        let statements = [
            format!("CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"),
            format!("GRANT {privileges} ON `{database}`.* TO '{user}'@'%'"),
        ];
        for statement in statements {
            if let Err(e) = admin.execute_unprepared(&statement).await {
                eprintln!("note: cannot create a user with a password ({e})");
                let _ = admin.close().await;
                return None;
            }
        }
        let _ = admin.close().await;
        Some(CreatedUser {
            admin_url: admin_url.to_owned(),
            user: user.to_owned(),
        })
    }
}

impl Drop for CreatedUser {
    fn drop(&mut self) {
        let sql = format!("DROP USER IF EXISTS '{}'@'%'", self.user);
        let what = format!("test user {}", self.user);
        shard_store::testing::run_as_admin(&self.admin_url, sql, None, &what);
    }
}

// ---------------------------------------------------------------------------
// The reference master, in process.

/// Serves the reference master on `db` in `mode` on a free loopback port
/// until `stop`; its URL.
pub async fn serve_reference_master(
    db: &DatabaseConnection,
    mode: Mode,
    stop: &CancellationToken,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let options = ServeOptions {
        rpc_path: "/afe/server/noauth/rpc/".to_owned(),
        mode,
        fault_file: None,
    };
    tokio::spawn(shard_master::server::serve_with(
        listener,
        db.clone(),
        options,
        stop.clone(),
    ));
    url
}

/// Creates `login` on the master as a superuser (access level 100), as a
/// real lab's shard clients must be (§11: saving a host status checks the
/// user's ACL groups).
pub async fn make_superuser(conn: &impl ConnectionTrait, login: &str) {
    shard_master::acl::user_by_login(conn, login).await.unwrap();
    afe_users::Entity::update_many()
        .col_expr(
            afe_users::Column::AccessLevel,
            Expr::value(shard_master::acl::SUPERUSER_ACCESS_LEVEL),
        )
        .filter(afe_users::Column::Login.eq(login))
        .exec(conn)
        .await
        .unwrap();
}
