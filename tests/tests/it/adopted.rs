//! The client on shard databases it adopted rather than created (§9,
//! "Schemas found in deployments"): what an operator sees in its logs and
//! from `shard-client schema`.

use crate::common::*;
use serde_json::json;
use shard_store::adopted_schema_tests;
use shard_store::testing::TestDb;
use shard_tests::{Reply, ScriptedMaster};

adopted_schema_tests!(
    suite_keyvals_without_their_job_are_summed_up_in_one_line_per_heartbeat,
    schema_prints_the_adopted_columns_without_changing_anything,
);

/// The log line that sums up suite keyvals the shard cannot store.
const WITHOUT_JOB: &str = "suite keyvals not stored";

async fn suite_keyvals_without_their_job_are_summed_up_in_one_line_per_heartbeat(db: TestDb) {
    // Suite 2000 lives on the master; the master sends its keyvals with
    // every heartbeat (§8). A schema with a foreign key on
    // afe_job_keyvals.job_id (Django's) cannot store them.
    let result = json!({
        "hosts": [serde_json::to_value(host(1).with_dependencies()).unwrap()],
        "jobs": [serde_json::to_value(job_on(10, 1).with_dependencies()).unwrap()],
        "suite_keyvals": keyvals_of_suite_2000(),
        "incorrect_host_ids": [],
    });
    let master =
        ScriptedMaster::start([Reply::Result(result.clone()), Reply::Result(result)]).await;
    let has_foreign_key = db
        .store
        .layout()
        .has_foreign_key(shard_store::schema::entity::afe_job_keyvals::Column::JobId);

    for _ in 0..2 {
        let output = once(&master, &db).await;
        assert_eq!(output.code, Some(0), "{output}");
        let summaries = output.stderr.matches(WITHOUT_JOB).count();
        if has_foreign_key {
            assert_eq!(summaries, 1, "one summary line:\n{output}");
            assert!(output.stderr.contains("keyvals=3"), "{output}");
            assert!(!output.stderr.contains("record not applied"), "{output}");
        } else {
            assert_eq!(summaries, 0, "{output}");
        }
    }
    let conn = db.store.connection();
    assert_eq!(job_ids(conn).await, [10], "the job landed");
    let suite_rows = keyvals(conn)
        .await
        .into_iter()
        .filter(|(job, ..)| *job == 2000)
        .count();
    assert_eq!(suite_rows, if has_foreign_key { 0 } else { 3 });
    master.assert_no_violations();
}

async fn schema_prints_the_adopted_columns_without_changing_anything(db: TestDb) {
    let master = ScriptedMaster::start([Reply::empty()]).await;
    let layout = db.store.layout();

    let output = run_to_end(with_flag(args("schema", &master, &db), "--json")).await;

    assert_eq!(output.code, Some(0), "{output}");
    let printed: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(printed, serde_json::to_value(&*layout).unwrap());
    let created_on = &printed["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "afe_jobs")
        .unwrap()["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "created_on")
        .unwrap()
        .clone();
    assert_eq!(created_on["type"], "date_time", "{created_on}");
    assert_eq!(master.requests().len(), 0, "schema never calls the master");
    assert_eq!(
        *db.store.refresh_layout().await.unwrap(),
        *layout,
        "nothing changed"
    );

    let text = run_to_end(args("schema", &master, &db)).await;
    assert_eq!(text.code, Some(0), "{text}");
    assert!(text.stdout.contains("14 of 14 afe_ tables"), "{text}");
    assert!(text.stdout.contains("created_on"), "{text}");
}
