//! Secrets stay out of the logs: neither the database password nor the
//! `AUTHORIZATION` value (`rpc_user`) appears anywhere in what a run
//! prints, through successes, retries and failures. On every backend.

use std::time::Duration;

use crate::common::*;
use sea_orm::Database;
use shard_store::testing::TestDb;
use shard_tests::{Reply, Script, ScriptedMaster, ShardClient};

empty_db_tests!(no_output_of_a_run_shows_the_database_password_or_the_rpc_user);

/// The `rpc_user`, distinctive enough that it cannot appear by chance.
const RPC_USER_SECRET: &str = "rpc-user-Qx7Zk2Wm";

/// The password given to the database when the test sets one.
const DB_PASSWORD: &str = "dbPw-Vq9Lm4Tz";

/// A password given in the query string of a PostgreSQL URL, as libpq
/// allows; distinctive enough that it cannot appear by chance.
const QUERY_PASSWORD: &str = "queryPw-Hn3Rt8Ks";

/// How long the run may take to start and to stop.
const TIMEOUT: Duration = Duration::from_secs(30);

async fn no_output_of_a_run_shows_the_database_password_or_the_rpc_user(db: TestDb) {
    let login = PasswordLogin::for_db(&db).await;
    let database_url = login.as_ref().map_or(db.url(), |login| &login.url);
    // A success, a retried server error, a JSON-RPC error, a record that
    // does not parse: every kind of line the client writes.
    let master = ScriptedMaster::start(Script::new([
        Reply::Response(response(vec![host(1)], vec![job_on(10, 1)], vec![])),
        Reply::Status(503),
        Reply::error("DoesNotExist", "Shard matching query does not exist."),
        Reply::Result(serde_json::json!({
            "hosts": [{"id": 2}], "jobs": [], "suite_keyvals": [],
        })),
    ]))
    .await;
    let args = set(args("run", &master, &db), "--database-url", database_url);
    let args = set(args, "--rpc-user", RPC_USER_SECRET);
    // At trace level even the libraries are chatty (sea-orm traces its
    // connect options, URL included); nothing may leak at any level.
    let running = ShardClient::spawn(args, &[("RUST_LOG", "trace")]);
    let requests = master.wait_for_requests(6, TIMEOUT).await.unwrap();
    running.terminate();
    let output = running.wait(TIMEOUT).await;

    assert_eq!(output.code, Some(0), "{output}");
    assert_eq!(
        requests[0].header("authorization"),
        Some(RPC_USER_SECRET),
        "the run used the secret user"
    );
    let printed = format!("{}{}", output.stdout, output.stderr);
    assert!(
        !printed.contains(RPC_USER_SECRET),
        "the rpc_user is printed:\n{output}"
    );
    if let Some(login) = &login {
        assert!(
            !printed.contains(&login.password),
            "the database password is printed:\n{output}"
        );
    }
    master.assert_no_violations();
}

/// A URL of the test database that carries a password, for the servers
/// that accept one (never SQLite), and the user made for it, if any.
struct PasswordLogin {
    url: String,
    password: String,
    /// A user created for the test, dropped with this value.
    _created: Option<CreatedUser>,
}

impl PasswordLogin {
    /// The URL of `db` with a password, or `None` (with a note) when the
    /// backend has no passwords or the server accepts none.
    async fn for_db(db: &TestDb) -> Option<PasswordLogin> {
        let url = db.url();
        let (scheme, rest) = url.split_once("://")?;
        if scheme == "sqlite" {
            eprintln!("note: a SQLite URL has no password; only the rpc_user is checked");
            return None;
        }
        let (userinfo, host_and_db) = match rest.split_once('@') {
            Some((userinfo, host_and_db)) => (userinfo, host_and_db),
            None => {
                eprintln!("note: {scheme} test URL has no user; the password is not checked");
                return None;
            }
        };
        let (server_path, database) = host_and_db.rsplit_once('/')?;
        if let Some((_, password)) = userinfo.split_once(':') {
            // The server's own URL has one already: that is the secret.
            return Some(PasswordLogin {
                url: url.to_owned(),
                password: password.to_owned(),
                _created: None,
            });
        }
        let login = match scheme {
            "mysql" | "mariadb" => {
                // Root has no password here: a user with one is made for
                // the test database.
                let admin_url = format!("{scheme}://{userinfo}@{server_path}/");
                let user = unique_user();
                let created =
                    CreatedUser::mysql(&admin_url, &user, DB_PASSWORD, "ALL PRIVILEGES", database)
                        .await?;
                PasswordLogin {
                    url: format!("{scheme}://{user}:{DB_PASSWORD}@{server_path}/{database}"),
                    password: DB_PASSWORD.to_owned(),
                    _created: Some(created),
                }
            }
            _ => PasswordLogin {
                url: format!("{scheme}://{userinfo}:{DB_PASSWORD}@{host_and_db}"),
                password: DB_PASSWORD.to_owned(),
                _created: None,
            },
        };
        match Database::connect(&login.url).await {
            Ok(connection) => {
                let _ = connection.close().await;
                Some(login)
            }
            Err(e) => {
                eprintln!(
                    "note: the {scheme} server refuses a URL with a password ({e}); \
                     the password is not checked"
                );
                None
            }
        }
    }
}

/// A database that cannot be reached fails `once`; its error names the URL,
/// with every secret of its query string hidden, in the log line and in the
/// message on stderr alike, at every log level.
#[tokio::test]
async fn a_password_in_the_query_string_never_reaches_the_output() {
    let master = ScriptedMaster::start(Script::default()).await;
    let url = format!(
        "postgres://afe@127.0.0.1:1/afe?sslmode=disable&password={QUERY_PASSWORD}&sslpassword={QUERY_PASSWORD}"
    );
    let args = [
        "once",
        "--global-afe-hostname",
        &master.url(),
        "--shard-hostname",
        SHARD,
        "--database-url",
        &url,
    ];
    let output = ShardClient::run_to_end(args, &[("RUST_LOG", "trace")], TIMEOUT).await;

    assert_eq!(output.code, Some(1), "{output}");
    let printed = format!("{}{}", output.stdout, output.stderr);
    assert!(
        printed.contains("postgres://afe@127.0.0.1:1/afe?sslmode=disable&password=***"),
        "the URL is named, redacted:\n{output}"
    );
    assert!(
        !printed.contains(QUERY_PASSWORD),
        "the password is printed:\n{output}"
    );
    assert_eq!(master.requests().len(), 0);
}
