//! `shard-client status` (§10): the packet the next heartbeat would send,
//! for people and as JSON, read from the database without contacting the
//! master, and without writing to it. On every backend.

use crate::common::*;
use serde_json::{Value, json};
use shard_store::testing::TestDb;
use shard_tests::scheduler::set_host_status;
use shard_tests::{Script, ScriptedMaster};

empty_db_tests!(
    status_prints_the_known_job_ids_without_contacting_the_master,
    status_json_prints_the_packet_as_json_without_contacting_the_master,
    status_on_a_database_without_the_tables_says_so_and_creates_nothing,
);

/// Host 1 running job 10; jobs 11 queued and 12 finished on host 2.
async fn fill_shard(db: &TestDb) {
    migrate(db).await;
    fill(
        db,
        &response(
            vec![host(1), host(2)],
            vec![job_on(10, 1), job(11), job_on(12, 2)],
            vec![],
        ),
    )
    .await;
    set_host_status(db.store.connection(), 1, "Running")
        .await
        .unwrap();
    complete_jobs_in_nine_minutes(db, &[12]).await;
}

async fn status_prints_the_known_job_ids_without_contacting_the_master(db: TestDb) {
    fill_shard(&db).await;
    let master = ScriptedMaster::start(Script::default()).await;

    let output = run_to_end(args("status", &master, &db)).await;

    assert_eq!(output.code, Some(0), "{output}");
    let expected = [
        "shard shard1",
        "",
        "known jobs: 2",
        "  10 11",
        "",
        "known hosts: 2",
        "          ID  STATUS",
        "           1  Running",
        "           2  Ready",
        "",
        "jobs to upload: 1 (with 1 entries)",
        "          ID  NAME",
        "          12  job12",
        "",
    ];
    assert_eq!(output.stdout, expected.join("\n"));
    assert_eq!(master.requests().len(), 0);
    master.assert_no_violations();
}

async fn status_json_prints_the_packet_as_json_without_contacting_the_master(db: TestDb) {
    fill_shard(&db).await;
    let master = ScriptedMaster::start(Script::default()).await;

    let output = run_to_end(with_flag(args("status", &master, &db), "--json")).await;

    assert_eq!(output.code, Some(0), "{output}");
    let packet: Value = serde_json::from_str(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{output}"));
    assert_eq!(
        packet,
        json!({
            "shard_hostname": "shard1",
            "known_job_ids": [10, 11],
            "known_host_ids": [1, 2],
            "known_host_statuses": ["Running", "Ready"],
            "jobs": [uploaded_job(12)],
            "hqes": [uploaded_hqe(120, 2)],
        })
    );
    assert_eq!(master.requests().len(), 0);
    master.assert_no_violations();
}

async fn status_on_a_database_without_the_tables_says_so_and_creates_nothing(db: TestDb) {
    let master = ScriptedMaster::start(Script::default()).await;

    let output = run_to_end(args("status", &master, &db)).await;

    assert_eq!(output.code, Some(1), "{output}");
    assert!(
        output
            .stderr
            .contains("lacks the AFE tables afe_shards, afe_labels"),
        "{output}"
    );
    assert!(
        output
            .stderr
            .contains("`shard-client migrate` creates them"),
        "{output}"
    );
    let layout = db.store.refresh_layout().await.unwrap();
    assert_eq!(layout.tables.len(), 0, "status created {:?}", layout.tables);
    assert_eq!(master.requests().len(), 0);
}

/// A mistyped SQLite path is reported, not created as an empty database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_on_a_mistyped_sqlite_path_creates_no_file() {
    let Some(db) = TestDb::empty(shard_store::testing::Backend::Sqlite).await else {
        return;
    };
    let master = ScriptedMaster::start(Script::default()).await;
    let path = std::env::temp_dir().join(format!("shard-client-typo-{}.db", std::process::id()));
    let url = format!("sqlite://{}?mode=rwc", path.display());

    let output = run_to_end(set(args("status", &master, &db), "--database-url", &url)).await;

    assert_eq!(output.code, Some(1), "{output}");
    assert!(output.stderr.contains(&url), "{output}");
    assert!(
        output.stderr.contains("unable to open database file"),
        "{output}"
    );
    assert!(!path.exists(), "status created {}", path.display());
}
