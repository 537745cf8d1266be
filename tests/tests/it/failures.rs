//! Heartbeats that fail, and a client that refuses to start (§2, §7, §10),
//! with `once` and `run` on every backend.

use std::time::{Duration, Instant};

use crate::common::*;
use sea_orm::ConnectionTrait;
use shard_store::testing::TestDb;
use shard_tests::{Reply, Script, ScriptedMaster, ShardClient};

empty_db_tests!(
    run_without_a_shard_hostname_exits_2_without_a_request,
    once_with_an_empty_shard_hostname_exits_2_without_a_request,
    a_json_rpc_error_is_not_retried_and_fails_the_heartbeat,
    server_errors_are_retried_until_the_master_answers,
    a_master_that_is_down_fails_the_heartbeat_within_the_retry_budget,
    a_database_that_refuses_writes_fails_the_heartbeat_as_database,
);

/// How long a heartbeat against a master that is down may take: its retry
/// budget is 1.2 s (`--rpc-timeout-min 0.02`); the rest is slack for a
/// loaded machine, still far below the 5 minutes of the default budget.
const DOWN_BOUND: Duration = Duration::from_secs(10);

async fn run_without_a_shard_hostname_exits_2_without_a_request(db: TestDb) {
    let master = ScriptedMaster::start(Script::default()).await;

    let output = run_to_end(without(args("run", &master, &db), "--shard-hostname")).await;

    assert_eq!(output.code, Some(2), "{output}");
    assert!(output.stderr.contains("`shard_hostname`"), "{output}");
    assert_eq!(master.requests().len(), 0);
    master.assert_no_violations();
}

async fn once_with_an_empty_shard_hostname_exits_2_without_a_request(db: TestDb) {
    let master = ScriptedMaster::start(Script::default()).await;

    let output = run_to_end(set(args("once", &master, &db), "--shard-hostname", "")).await;

    assert_eq!(output.code, Some(2), "{output}");
    assert!(output.stderr.contains("`shard_hostname`"), "{output}");
    assert_eq!(master.requests().len(), 0);
    master.assert_no_violations();
}

async fn a_json_rpc_error_is_not_retried_and_fails_the_heartbeat(db: TestDb) {
    // Were the error retried, the next request would get an empty result
    // and succeed.
    let master = ScriptedMaster::start([Reply::error(
        "DoesNotExist",
        "Shard matching query does not exist.",
    )])
    .await;

    let output = once(&master, &db).await;

    assert_eq!(output.code, Some(1), "{output}");
    assert!(
        output.stderr.contains(&failed_because("json_rpc")),
        "{output}"
    );
    assert_eq!(master.requests().len(), 1);
    master.assert_no_violations();
}

async fn server_errors_are_retried_until_the_master_answers(db: TestDb) {
    let master = ScriptedMaster::start([
        Reply::Status(503),
        Reply::Status(500),
        Reply::Response(response(vec![host(1)], vec![], vec![])),
    ])
    .await;

    let output = once(&master, &db).await;

    assert_eq!(output.code, Some(0), "{output}");
    assert_eq!(master.requests().len(), 3);
    assert_eq!(host_ids(db.store.connection()).await, [1]);
    master.assert_no_violations();
}

async fn a_master_that_is_down_fails_the_heartbeat_within_the_retry_budget(db: TestDb) {
    // A port that was free a moment ago: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);

    let started = Instant::now();
    let output = run_to_end(args_to("once", &down, &db)).await;
    let took = started.elapsed();

    assert_eq!(output.code, Some(1), "{output}");
    assert!(
        output.stderr.contains(&failed_because("connection")),
        "{output}"
    );
    assert!(
        output.stderr.contains("AFE call failed; retrying"),
        "connection failures are retried:\n{output}"
    );
    assert!(took < DOWN_BOUND, "took {took:?}:\n{output}");
}

async fn a_database_that_refuses_writes_fails_the_heartbeat_as_database(db: TestDb) {
    migrate(&db).await;
    let Some(read_only) = ReadOnly::for_db(&db).await else {
        return;
    };
    let master = ScriptedMaster::start([Reply::Response(response(
        vec![host(1)],
        vec![job_on(10, 1)],
        vec![],
    ))])
    .await;

    let args = set(args("once", &master, &db), "--database-url", &read_only.url);
    let output = run_to_end(args).await;

    assert_eq!(output.code, Some(1), "{output}");
    assert!(
        output.stderr.contains(&failed_because("database")),
        "{output}"
    );
    assert_eq!(
        master.requests().len(),
        1,
        "the database failed after the call"
    );
    assert!(
        host_ids(db.store.connection()).await.is_empty(),
        "nothing was applied"
    );
    master.assert_no_violations();
}

/// A URL of the test database on which every write fails, for a reason
/// that is the database's, not a record's.
struct ReadOnly {
    url: String,
    _user: Option<CreatedUser>,
}

impl ReadOnly {
    async fn for_db(db: &TestDb) -> Option<ReadOnly> {
        let url = db.url().to_owned();
        let (scheme, rest) = url.split_once("://")?;
        match scheme {
            "sqlite" => Some(ReadOnly {
                url: url.replace("mode=rwc", "mode=ro"),
                _user: None,
            }),
            "postgres" | "postgresql" => {
                let (_, database) = rest.rsplit_once('/')?;
                let sql =
                    format!("ALTER DATABASE {database} SET default_transaction_read_only = on");
                db.store
                    .connection()
                    .execute_unprepared(&sql)
                    .await
                    .unwrap();
                Some(ReadOnly { url, _user: None })
            }
            _ => {
                let (userinfo, host_and_db) = rest.split_once('@')?;
                let (server, database) = host_and_db.rsplit_once('/')?;
                let user = unique_user();
                let created = CreatedUser::mysql(
                    &format!("{scheme}://{userinfo}@{server}/"),
                    &user,
                    "readOnly-1",
                    "SELECT",
                    database,
                )
                .await?;
                Some(ReadOnly {
                    url: format!("{scheme}://{user}:readOnly-1@{server}/{database}"),
                    _user: Some(created),
                })
            }
        }
    }
}

/// `shard-client config` prints the effective configuration with where each
/// value came from, and exits 2 on an invalid one, naming the key.
#[tokio::test]
async fn config_prints_the_effective_configuration_and_refuses_an_invalid_one() {
    let base = [
        "config",
        "--global-afe-hostname",
        "afe",
        "--shard-hostname",
        "s1",
    ];
    let env = [("RUST_LOG", "info"), ("SHARD_CLIENT_MAX_UPLOAD_JOBS", "7")];
    let output = ShardClient::run_to_end(base, &env, Duration::from_secs(30)).await;
    assert_eq!(output.code, Some(0), "{output}");
    assert!(
        output
            .stdout
            .lines()
            .any(|l| l.starts_with("max_upload_jobs = 7 ")
                && l.ends_with("# environment variable SHARD_CLIENT_MAX_UPLOAD_JOBS")),
        "{output}"
    );

    let invalid = base.iter().copied().chain(["--max-upload-jobs", "0"]);
    let output = ShardClient::run_to_end(invalid, &env, Duration::from_secs(30)).await;
    assert_eq!(output.code, Some(2), "{output}");
    assert!(output.stderr.contains("`max_upload_jobs`"), "{output}");
    assert!(output.stdout.is_empty(), "{output}");
}
