//! Issue 13, "also for the packet": the statements that build a heartbeat
//! packet (`known_job_ids`, `known_hosts`, `jobs_to_upload`, and the request
//! the engine makes of them) proven equal to a plain query-per-row reading
//! of §3 and §7 step 1 (`packet_oracle/plain.rs`) on random shard databases
//! (`packet_oracle/generate.rs`).
//!
//! One database per backend; each case empties it, writes a random lab as
//! rows, and compares, for the caps 1, 2, 3 and 1000: the known jobs, the
//! known hosts and their statuses, the jobs uploaded (every field, oldest
//! first), their entries (every field, by id), the jobs held back, the jobs
//! whose entries are followed once marked, and the request's JSON. A
//! failure shrinks to a minimal database, printed as its rows.
//!
//! `SHARD_ORACLE_CASES` sets the number of databases per backend (defaults
//! below: some 20 s on SQLite in a debug build, less on the servers),
//! `SHARD_ORACLE_SEED` the seed (default 1, so CI runs the same cases every
//! time; the same seed and case count replays a run). Nothing is written to
//! disk but the test databases. The same property runs on the schemas
//! found in deployments (§9), with each database bent to what the schema
//! can hold (`generate::fit`).
//!
//! The divergences it found, fixed in the store, are kept as plain tests
//! (`mod regressions`).

mod generate;
mod plain;

use std::time::Instant;

use proptest::test_runner::{TestCaseError, TestError};
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, IntoActiveModel, ModelTrait};
use serde_json::{Value, json};
use shard_model::HeartbeatRequest;
use shard_store::schema::entity::{hosts, hqes, jobs, labels, shards};
use shard_store::testing::{Adopted, Backend, TestDb};
use shard_store::{KnownHosts, Running, jobs_to_upload, known_hosts, known_job_ids};

use crate::oracle::budget;
use generate::{LABEL_IDS, Lab, SHARD_IDS};
use plain::Plain;

/// §5's status vocabularies, written out here so that the plain reading
/// does not borrow the model's.
mod spec {
    /// "HQE status values".
    pub const HQE_STATUSES: [&str; 15] = [
        "Queued",
        "Starting",
        "Resetting",
        "Verifying",
        "Provisioning",
        "Pending",
        "Running",
        "Gathering",
        "Parsing",
        "Aborted",
        "Completed",
        "Failed",
        "Stopped",
        "Cleaning",
        "Template",
    ];
    /// "Complete statuses".
    pub const COMPLETE_STATUSES: [&str; 5] =
        ["Aborted", "Completed", "Failed", "Stopped", "Template"];
    /// "Host status values".
    pub const HOST_STATUSES: [&str; 9] = [
        "Verifying",
        "Running",
        "Ready",
        "Repairing",
        "Repair Failed",
        "Cleaning",
        "Pending",
        "Resetting",
        "Provisioning",
    ];
}

/// Databases per backend when `SHARD_ORACLE_CASES` is not set.
const DEFAULT_CASES_SQLITE: u32 = 1400;
/// As [`DEFAULT_CASES_SQLITE`], on MariaDB/MySQL.
const DEFAULT_CASES_MYSQL: u32 = 150;
/// As [`DEFAULT_CASES_SQLITE`], on PostgreSQL.
const DEFAULT_CASES_POSTGRES: u32 = 150;
/// As [`DEFAULT_CASES_SQLITE`], on each schema found in deployments.
const DEFAULT_CASES_ADOPTED: u32 = 60;

/// The caps every database is read with: small ones so that the cap
/// matters, and the original's `MAX_UPLOAD_JOBS`.
const LIMITS: [u64; 4] = [1, 2, 3, 1000];

/// The schema a property runs on.
#[derive(Debug, Clone, Copy)]
enum Schema {
    Ours(Backend),
    Adopted(Adopted),
}

// ---------------------------------------------------------------------------
// The property.

/// Runs the property on `schema` (skipped when its server is not
/// configured).
fn property(schema: Schema, default_cases: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let Some(db) = rt.block_on(async {
        let db = match schema {
            Schema::Ours(backend) => TestDb::migrated(backend).await?,
            Schema::Adopted(adopted) => TestDb::adopted(adopted).await?,
        };
        prepare(db.store.connection()).await;
        Some(db)
    }) else {
        return;
    };
    let (mut runner, cases, seed) = budget::runner(default_cases);
    let unique_job_host = matches!(schema, Schema::Adopted(Adopted::MySqlAutotest));
    let layout = db.store.layout();
    let started = Instant::now();
    let result = runner.run(&generate::lab(), |lab| {
        let lab = generate::fit(&lab, &layout, unique_job_host);
        rt.block_on(check(&db, &lab))
            .map_err(|e| TestCaseError::fail(format!("{e}\ndatabase:\n{}", show(&lab))))
    });
    let took = started.elapsed();
    rt.block_on(async move { drop(db) });
    match result {
        Ok(()) => eprintln!(
            "packet oracle on {schema:?}: {cases} databases, the packet equal to the \
             plain reading (seed {seed}, {took:.1?})"
        ),
        Err(TestError::Fail(reason, _)) => panic!(
            "packet oracle on {schema:?}: the packet differs from the plain reading \
             (seed {seed}, {cases} cases; replay with SHARD_ORACLE_SEED={seed} \
             SHARD_ORACLE_CASES={cases})\nminimal case: {reason}"
        ),
        Err(TestError::Abort(why)) => panic!("packet oracle on {schema:?}: aborted: {why}"),
    }
}

/// Writes `lab` into the database and compares the packet with the plain
/// reading of it.
async fn check(db: &TestDb, lab: &Lab) -> Result<(), String> {
    let conn = db.store.connection();
    write(conn, lab).await?;
    let plain = plain::read(conn).await?;
    let layout = db.store.layout();

    let known_jobs = known_job_ids(conn).await.map_err(|e| e.to_string())?;
    same("known_job_ids", &known_jobs, &plain.known_job_ids)?;
    let hosts = known_hosts(conn).await.map_err(|e| e.to_string())?;
    let expected = KnownHosts {
        ids: plain.known_host_ids.clone(),
        statuses: plain.known_host_statuses.clone(),
    };
    same("known_hosts", &hosts, &expected)?;

    for limit in LIMITS {
        let upload = jobs_to_upload(conn, &layout, limit)
            .await
            .map_err(|e| e.to_string())?;
        let want = plain.upload(limit);
        let at = |what: &str| format!("jobs_to_upload(limit {limit}): {what}");
        same(&at("deferred"), &upload.deferred, &want.deferred)?;
        same(&at("job ids"), &upload.job_ids(), &ids(&want.jobs))?;
        for (got, want) in upload.jobs.iter().zip(&want.jobs) {
            same(&at(&format!("job {}", got.id)), got, &want.to_model())?;
        }
        let got_entries: Vec<i32> = upload.hqes.iter().map(|e| e.id).collect();
        let want_entries: Vec<i32> = want.hqes.iter().map(|e| e.id).collect();
        same(&at("entry ids"), &got_entries, &want_entries)?;
        for (got, want) in upload.hqes.iter().zip(&want.hqes) {
            same(&at(&format!("entry {}", got.id)), got, &want.to_model())?;
        }

        // Each entry belongs to its own job: once the jobs are marked, the
        // entries followed are those not complete, by job.
        let mut running = Running::default();
        running.follow(&upload, &upload.job_ids());
        let unfinished: Vec<i32> = want
            .jobs
            .iter()
            .filter(|j| j.entries.iter().any(|e| e.complete != Some(true)))
            .map(|j| j.id)
            .collect();
        same(
            &at("jobs followed once marked"),
            &running.jobs(),
            &unfinished,
        )?;

        // The request as the engine builds it (§7 step 1), on the wire.
        let request = HeartbeatRequest {
            shard_hostname: "shard1".to_owned(),
            known_job_ids: known_jobs.clone(),
            known_host_ids: hosts.ids.clone(),
            known_host_statuses: hosts.statuses.clone(),
            jobs: upload.jobs.clone(),
            hqes: upload.hqes.clone(),
        };
        let wire = serde_json::to_value(&request).map_err(|e| e.to_string())?;
        same(&at("the request"), &wire, &plain_request(&plain, limit))?;
    }
    Ok(())
}

/// §3's request from the plain reading, key by key.
fn plain_request(plain: &Plain, limit: u64) -> Value {
    let upload = plain.upload(limit);
    json!({
        "shard_hostname": "shard1",
        "known_job_ids": plain.known_job_ids,
        "known_host_ids": plain.known_host_ids,
        "known_host_statuses": plain.known_host_statuses,
        "jobs": upload.jobs.iter().map(|j| j.to_json()).collect::<Vec<_>>(),
        "hqes": upload.hqes.iter().map(|e| e.to_json()).collect::<Vec<_>>(),
    })
}

fn ids(jobs: &[&plain::PlainJob]) -> Vec<i32> {
    jobs.iter().map(|j| j.id).collect()
}

fn same<T: PartialEq + std::fmt::Debug>(what: &str, store: &T, plain: &T) -> Result<(), String> {
    if store == plain {
        Ok(())
    } else {
        Err(format!(
            "{what} differs\n  store: {store:?}\n  plain: {plain:?}"
        ))
    }
}

// ---------------------------------------------------------------------------
// Databases.

/// The rows every lab refers to: shards and labels.
async fn prepare(conn: &DatabaseConnection) {
    for id in SHARD_IDS {
        shards::Model {
            id,
            hostname: format!("shard{id}"),
        }
        .into_active_model()
        .insert(conn)
        .await
        .unwrap();
    }
    for id in LABEL_IDS {
        labels::Model::plain(id, format!("board:b{id}"))
            .into_active_model()
            .insert(conn)
            .await
            .unwrap();
    }
}

/// Replaces the hosts, jobs and entries of the database with `lab`'s.
async fn write(conn: &DatabaseConnection, lab: &Lab) -> Result<(), String> {
    let err = |e: sea_orm::DbErr| e.to_string();
    hqes::Entity::delete_many().exec(conn).await.map_err(err)?;
    jobs::Entity::delete_many().exec(conn).await.map_err(err)?;
    hosts::Entity::delete_many().exec(conn).await.map_err(err)?;
    insert_all(conn, &lab.hosts, "hosts").await?;
    insert_all(conn, &lab.jobs, "jobs").await?;
    insert_all(conn, &lab.entries, "entries").await?;
    Ok(())
}

/// Inserts `rows` in one statement (none for no rows: an insert needs at
/// least one).
async fn insert_all<M>(conn: &DatabaseConnection, rows: &[M], what: &str) -> Result<(), String>
where
    M: ModelTrait + Clone + IntoActiveModel<<M::Entity as EntityTrait>::ActiveModel>,
{
    if rows.is_empty() {
        return Ok(());
    }
    <M::Entity as EntityTrait>::insert_many(
        rows.iter().cloned().map(IntoActiveModel::into_active_model),
    )
    .exec(conn)
    .await
    .map_err(|e| format!("writing {what}: {e}"))?;
    Ok(())
}

/// A lab's rows, one a line.
fn show(lab: &Lab) -> String {
    let mut out = String::new();
    for h in &lab.hosts {
        out.push_str(&format!("  {h:?}\n"));
    }
    for j in &lab.jobs {
        out.push_str(&format!("  {j:?}\n"));
    }
    for e in &lab.entries {
        out.push_str(&format!("  {e:?}\n"));
    }
    out
}

mod regressions {
    //! Minimal cases the property found, fixed in the store.

    use chrono::NaiveDate;

    use super::*;

    /// Job 1, waiting for upload (`shard_id` NULL), with entries `(id,
    /// status, complete)`.
    fn job_1_with(entries: &[(i32, &str, Option<bool>)]) -> Lab {
        let created_on =
            NaiveDate::from_ymd_opt(2014, 9, 23).and_then(|d| d.and_hms_opt(15, 56, 10));
        Lab {
            hosts: vec![],
            jobs: vec![jobs::Model {
                owner: Some("owner".to_owned()),
                name: Some("job".to_owned()),
                priority: Some(0),
                control_file: Some(String::new()),
                control_type: Some(0),
                created_on,
                reboot_before: 0,
                ..jobs::Model::with_defaults(1)
            }],
            entries: entries
                .iter()
                .map(|&(id, status, complete)| hqes::Model {
                    status: Some(status.to_owned()),
                    complete,
                    ..hqes::Model::queued(id, 1)
                })
                .collect(),
        }
    }

    /// §7 step 1 holds a job back for "a complete status with `complete =
    /// 0`"; `half_written` held it back for a complete status with
    /// `complete` NULL too. Neither the scheduler (it writes 0 or 1) nor the
    /// client ever rewrites that flag, so the job never went up.
    #[tokio::test]
    async fn a_complete_status_with_a_null_flag_does_not_hold_its_job_back() {
        let db = TestDb::migrated(Backend::Sqlite).await.unwrap();
        prepare(db.store.connection()).await;
        let lab = job_1_with(&[(10, "Completed", Some(true)), (11, "Failed", None)]);
        write(db.store.connection(), &lab).await.unwrap();

        let upload = jobs_to_upload(db.store.connection(), &db.store.layout(), 1000)
            .await
            .unwrap();

        assert_eq!((upload.job_ids(), upload.deferred), (vec![1], vec![]));
        check(&db, &lab).await.unwrap();
    }
}

mod packet_equals_plain_reading {
    use super::*;

    #[test]
    fn sqlite() {
        property(Schema::Ours(Backend::Sqlite), DEFAULT_CASES_SQLITE);
    }

    #[test]
    fn mysql() {
        property(Schema::Ours(Backend::MySql), DEFAULT_CASES_MYSQL);
    }

    #[test]
    fn postgres() {
        property(Schema::Ours(Backend::Postgres), DEFAULT_CASES_POSTGRES);
    }

    #[test]
    fn mysql_autotest() {
        property(
            Schema::Adopted(Adopted::MySqlAutotest),
            DEFAULT_CASES_ADOPTED,
        );
    }

    #[test]
    fn mysql_django() {
        property(Schema::Adopted(Adopted::MySqlDjango), DEFAULT_CASES_ADOPTED);
    }

    #[test]
    fn postgres_django() {
        property(
            Schema::Adopted(Adopted::PostgresDjango),
            DEFAULT_CASES_ADOPTED,
        );
    }
}
