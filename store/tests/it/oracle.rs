//! The differential oracle of issue 13: the bulk apply (`shard_store::apply`
//! with the engine's last two steps, `remove_incorrect_hosts` and
//! `resync_completed_jobs`) proven equal to the record-at-a-time reading of
//! §6 (`shard_store::testing::reference`) on random heartbeat sequences.
//!
//! Two fresh databases of one backend; each sequence (1–4 responses and
//! scheduler writes, `oracle/generate.rs`) runs from empty tables, the bulk path
//! on one and the reference on the other. After every step, every `afe_`
//! table must hold the same rows (ids included, except those the database
//! numbers itself), and each side must have refused the same records (kind
//! and id), removed the same incorrect hosts and re-synced the same jobs.
//! A failure shrinks to a minimal sequence, printed as JSON.
//!
//! `SHARD_ORACLE_CASES` sets the number of sequences per backend (defaults
//! below: about a minute on SQLite in a debug build on the project's 2-core
//! machine, less on the servers), `SHARD_ORACLE_SEED` the seed (default 1,
//! so CI runs the same cases every time; another seed explores others, the
//! same seed and case count replays a run). Nothing is written to disk but
//! the test databases.
//!
//! The minimal cases of the divergences it found, each fixed in the bulk
//! apply, are kept as tests (below, `mod divergences`).

// Shared with `packet_oracle`.
pub(crate) mod budget;
mod compare;
mod generate;

use std::time::Instant;

use proptest::test_runner::{TestCaseError, TestError};
use serde_json::Value;
use shard_store::testing::{Backend, TestDb};

use compare::Pair;
use generate::{Features, Step};

/// Sequences per backend when `SHARD_ORACLE_CASES` is not set.
const DEFAULT_CASES_SQLITE: u32 = 1200;
/// As [`DEFAULT_CASES_SQLITE`], on MariaDB/MySQL.
const DEFAULT_CASES_MYSQL: u32 = 150;
/// As [`DEFAULT_CASES_SQLITE`], on PostgreSQL.
const DEFAULT_CASES_POSTGRES: u32 = 150;

/// The generator features the property runs with: everything. (Each
/// divergence the oracle found was kept behind a feature switch until the
/// bulk apply was fixed; `mod divergences` keeps their minimal cases.)
fn features(_backend: Backend) -> Features {
    Features {
        floats: true,
        bad_unwritten_fields: true,
        absent_whitelisted: true,
        null_lists: true,
        case_variants: true,
        nul: true,
    }
}

/// A sequence as JSON, long strings abbreviated.
fn show(steps: &[Step]) -> String {
    fn shorten(v: &mut Value) {
        match v {
            Value::String(s) if s.chars().count() > 100 => {
                let n = s.chars().count();
                let head: String = s.chars().take(10).collect();
                *s = format!("<{n} chars: {head}…>");
            }
            Value::Array(items) => items.iter_mut().for_each(shorten),
            Value::Object(map) => map.values_mut().for_each(shorten),
            _ => {}
        }
    }
    let mut json = Value::Array(steps.iter().map(Step::to_json).collect());
    shorten(&mut json);
    serde_json::to_string_pretty(&json).unwrap_or_default()
}

/// Runs the property on `backend` (skipped when it is not configured).
fn property(backend: Backend, default_cases: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let pair = rt.block_on(async {
        let bulk = TestDb::migrated(backend).await?;
        let reference = TestDb::migrated(backend).await?;
        Some(
            Pair::new(bulk, reference)
                .await
                .expect("reading the catalog"),
        )
    });
    let Some(pair) = pair else {
        return;
    };
    let (mut runner, cases, seed) = budget::runner(default_cases);
    let started = Instant::now();
    let result = runner.run(&generate::sequence(features(backend)), |steps| {
        rt.block_on(pair.check(&steps)).map_err(TestCaseError::fail)
    });
    let took = started.elapsed();
    rt.block_on(async move { drop(pair) });
    match result {
        Ok(()) => eprintln!(
            "oracle on {backend:?}: {cases} sequences, bulk equal to reference \
             (seed {seed}, {took:.1?})"
        ),
        Err(TestError::Fail(reason, steps)) => panic!(
            "oracle on {backend:?}: the bulk apply differs from the reference \
             (seed {seed}, {cases} cases; replay with SHARD_ORACLE_SEED={seed} \
             SHARD_ORACLE_CASES={cases})\nminimal sequence:\n{}\n{reason}",
            show(&steps)
        ),
        Err(TestError::Abort(why)) => panic!("oracle on {backend:?}: aborted: {why}"),
    }
}

mod apply_equals_reference {
    use super::*;

    #[test]
    fn sqlite() {
        property(Backend::Sqlite, DEFAULT_CASES_SQLITE);
    }

    #[test]
    fn mysql() {
        property(Backend::MySql, DEFAULT_CASES_MYSQL);
    }

    #[test]
    fn postgres() {
        property(Backend::Postgres, DEFAULT_CASES_POSTGRES);
    }
}

/// Checks one sequence, written as the JSON the property prints, on
/// `backend` (nothing when the backend is not configured here).
async fn check_sequence(backend: Backend, sequence: Value) -> Result<(), String> {
    let Some(bulk) = TestDb::migrated(backend).await else {
        return Ok(());
    };
    let Some(reference) = TestDb::migrated(backend).await else {
        return Ok(());
    };
    let pair = Pair::new(bulk, reference).await?;
    let steps: Vec<Step> = sequence
        .as_array()
        .expect("a list of steps")
        .iter()
        .map(|s| match (s.get("response"), s.get("shard")) {
            (Some(r), _) => Step::Response(r.clone()),
            (_, Some(Value::String(sql))) => Step::Shard(sql.clone()),
            _ => panic!("not a step: {s}"),
        })
        .collect();
    pair.check(&steps).await
}

/// The minimal cases of the divergences the oracle found, each fixed in
/// the bulk apply: each fails on the code before its fix.
mod divergences {
    use serde_json::{Value, json};

    use super::*;

    /// A host as a master sends it, with `fields` changed.
    fn host(id: i64, fields: Value) -> Value {
        let mut h = json!({
            "id": id, "hostname": format!("h{id}"), "locked": false, "leased": false,
            "synch_id": null, "status": "Ready", "invalid": false, "protection": 0,
            "lock_time": null, "dirty": false, "lock_reason": null,
        });
        merge(&mut h, fields);
        h
    }

    /// A job as a master sends it, with `fields` changed.
    fn job(id: i64, fields: Value) -> Value {
        let mut j = json!({
            "id": id, "owner": "alice", "name": "j", "priority": 0, "control_file": "x",
            "control_type": 1, "created_on": "2014-09-23T10:20:30", "synch_count": 1,
            "timeout": 0, "timeout_mins": 0, "max_runtime_hrs": 0, "max_runtime_mins": 0,
            "test_retry": 0, "run_verify": false, "run_reset": true,
            "parse_failed_repair": true, "email_list": "", "reboot_before": 0,
            "reboot_after": 0, "require_ssp": null,
        });
        merge(&mut j, fields);
        j
    }

    fn hqe(id: i64, fields: Value) -> Value {
        let mut q = json!({
            "id": id, "status": "Queued", "active": false, "complete": false,
            "deleted": false, "aborted": false, "execution_subdir": "",
            "started_on": null, "finished_on": null, "host_id": null,
        });
        merge(&mut q, fields);
        q
    }

    /// An ACL group list of one group, whose one user has `login`.
    fn group(login: &str) -> Value {
        json!([{"id": 1, "name": "lab", "description": "",
                "users": [{"id": 1, "login": login, "access_level": 0,
                           "reboot_before": 0, "reboot_after": 0}]}])
    }

    fn merge(into: &mut Value, fields: Value) {
        if let (Some(into), Value::Object(fields)) = (into.as_object_mut(), fields) {
            for (k, v) in fields {
                match v {
                    Value::String(s) if s == "<absent>" => into.remove(&k),
                    v => into.insert(k, v),
                };
            }
        }
    }

    fn response(hosts: Vec<Value>, jobs: Vec<Value>, suite_keyvals: Vec<Value>) -> Value {
        json!({ "response": { "hosts": hosts, "jobs": jobs, "suite_keyvals": suite_keyvals } })
    }

    /// §6: an existing record's non-whitelisted fields are left untouched,
    /// so the original never reads them (`_filter_update_allowed_fields`);
    /// ours refuses the resend, and with it the `invalid` the master sent.
    #[tokio::test]
    async fn existing_host_with_a_bad_unwritten_field_still_takes_invalid() {
        let sequence = json!([
            response(vec![host(1, json!({}))], vec![], vec![]),
            response(
                vec![host(1, json!({"protection": "x1", "invalid": true}))],
                vec![],
                vec![]
            ),
        ]);
        check_sequence(Backend::Sqlite, sequence).await.unwrap();
    }

    /// §6: a suite keyval's `id` is the master's and is ignored (the
    /// original pops it unread, `JobKeyval.deserialize`); ours refuses the
    /// keyval when it is not an integer.
    #[tokio::test]
    async fn suite_keyval_with_an_unreadable_ignored_id_is_applied() {
        let kv = json!({"id": "x1", "job_id": 1, "key": "suite", "value": "a"});
        let sequence = json!([response(vec![], vec![], vec![kv])]);
        check_sequence(Backend::Sqlite, sequence).await.unwrap();
    }

    /// §5 is silent on floats; the original's Django writes `int(value)`
    /// (`IntegerField.get_prep_value`), so `1.0` is host 1; ours refused it.
    #[tokio::test]
    async fn float_in_an_integer_field_is_truncated() {
        let sequence = json!([response(
            vec![host(1, json!({"id": 1.0, "protection": 2.5}))],
            vec![],
            vec![]
        )]);
        check_sequence(Backend::Sqlite, sequence).await.unwrap();
    }

    /// The original iterates a to-many relation (`for serialized in data`),
    /// so `null` fails the record; ours took it as absent.
    #[tokio::test]
    async fn null_attribute_list_refuses_the_host() {
        let sequence = json!([response(
            vec![host(1, json!({"hostattribute_set": null}))],
            vec![],
            vec![]
        )]);
        check_sequence(Backend::Sqlite, sequence).await.unwrap();
    }

    /// §6: only whitelisted fields that are sent are overwritten (the
    /// original sets the keys present); ours reset an absent `aborted` to
    /// false, un-aborting an entry, and an absent `invalid` to NULL.
    #[tokio::test]
    async fn absent_aborted_leaves_an_aborted_entry_aborted() {
        let sequence = json!([
            response(
                vec![host(1, json!({"invalid": true}))],
                vec![job(
                    1,
                    json!({"hostqueueentry_set": [hqe(1, json!({"aborted": true}))]})
                )],
                vec![]
            ),
            response(
                vec![host(1, json!({"invalid": "<absent>"}))],
                vec![job(
                    1,
                    json!({"hostqueueentry_set": [hqe(1, json!({"aborted": "<absent>"}))]})
                )],
                vec![]
            ),
        ]);
        check_sequence(Backend::Sqlite, sequence).await.unwrap();
    }

    /// The same, found by the property: the second keyval of one name is
    /// the existing one, whose `value` is absent; ours refused the job.
    #[tokio::test]
    async fn absent_value_of_an_existing_keyval_is_left_alone() {
        let keyvals = json!([
            {"id": 1, "job_id": 1, "key": "suite", "value": "a"},
            {"id": 2, "job_id": 1, "key": "suite"},
        ]);
        let sequence = json!([response(
            vec![],
            vec![job(1, json!({"jobkeyval_set": keyvals}))],
            vec![]
        )]);
        check_sequence(Backend::Sqlite, sequence).await.unwrap();
    }

    /// §9: "Names compare as the database's collation says". On MariaDB's
    /// default collation `Serial` finds `serial`, so the second attribute
    /// of the set overwrites the first (one row); ours inserts two.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn attribute_names_equal_under_the_collation_are_one_attribute() {
        let attributes = json!([
            {"id": 1, "attribute": "Serial", "value": "1", "host_id": 1},
            {"id": 2, "attribute": "serial", "value": "2", "host_id": 1},
        ]);
        let sequence = json!([response(
            vec![host(1, json!({"hostattribute_set": attributes}))],
            vec![],
            vec![]
        )]);
        check_sequence(Backend::MySql, sequence).await.unwrap();
    }

    /// The same for users: `alice` finds the user `Alice` of the same id,
    /// which §6 leaves as it is; ours deletes it (and its memberships) and
    /// inserts `alice`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn login_equal_under_the_collation_is_the_same_user() {
        let sequence = json!([
            response(
                vec![host(1, json!({"aclgroup_set": group("Alice")}))],
                vec![],
                vec![]
            ),
            response(
                vec![host(2, json!({"aclgroup_set": group("alice")}))],
                vec![],
                vec![]
            ),
        ]);
        check_sequence(Backend::MySql, sequence).await.unwrap();
    }

    /// §6: each record in its own transaction, so a user whose login holds
    /// a NUL (which PostgreSQL refuses) fails host 1 whatever host 2 does
    /// next; ours replaces that user with host 2's in memory, never writes
    /// the NUL, and applies host 1.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nul_refused_by_postgres_refuses_its_record_even_if_replaced_later() {
        let sequence = json!([response(
            vec![
                host(1, json!({"aclgroup_set": group("a\u{0}b")})),
                host(2, json!({"aclgroup_set": group("bob")})),
            ],
            vec![],
            vec![]
        )]);
        check_sequence(Backend::Postgres, sequence).await.unwrap();
    }
}
