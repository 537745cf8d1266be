//! End to end: a reference master, two `shard-client` processes and a
//! scheduler simulator per shard converge, on every backend, and leave every
//! database consistent, against the master's strict rules and against its
//! imitation of the real master (`--upstream`, §11). The simulator writes
//! like the real scheduler (§1), so jobs with two entries go up once per
//! finishing entry; at the end every entry a shard finished is finished on
//! the master with the same status.

use crate::common::{make_superuser, serve_reference_master};

use std::collections::HashSet;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use shard_master::Mode;
use shard_master::seed::{LabSpec, seed};
use shard_store::schema::entity::{
    group_hosts, host_labels, hosts, hqes, job_labels, jobs, labels,
};
use shard_store::testing::{Backend, TestDb};
use shard_tests::ShardClient;
use shard_tests::scheduler::{Scheduler, SchedulerConfig};
use tokio_util::sync::CancellationToken;

/// How long the lab may take to converge on a loaded 2-core machine.
const CONVERGE_WITHIN: Duration = Duration::from_secs(120);

/// The clients' `rpc_user`: a superuser on the master, as a real lab's
/// shard clients must be (§11: saving a host status checks its ACLs).
const RPC_USER: &str = "shard-lab";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_lab_converges() {
    converge(Backend::Sqlite, Mode::Strict).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_lab_converges() {
    converge(Backend::MySql, Mode::Strict).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_lab_converges() {
    converge(Backend::Postgres, Mode::Strict).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_lab_converges_against_an_upstream_master() {
    converge(Backend::Sqlite, Mode::Upstream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_lab_converges_against_an_upstream_master() {
    converge(Backend::MySql, Mode::Upstream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_lab_converges_against_an_upstream_master() {
    converge(Backend::Postgres, Mode::Upstream).await;
}

async fn converge(backend: Backend, mode: Mode) {
    let Some(master) = TestDb::migrated(backend).await else {
        return;
    };
    let spec = LabSpec {
        shards: 2,
        boards_per_shard: 2,
        hosts_per_board: 3,
        suites_per_board: 1,
        jobs_per_suite: 4,
        hqes_per_job: 2,
        ..LabSpec::default()
    };
    let seeded = seed(master.store.connection(), &spec).await.unwrap();
    make_superuser(master.store.connection(), RPC_USER).await;
    let stop = CancellationToken::new();
    let url = serve_reference_master(master.store.connection(), mode, &stop).await;

    let mut shards = Vec::new();
    let mut clients = Vec::new();
    for n in 1..=2u64 {
        let db = TestDb::migrated(backend).await.unwrap();
        let args = [
            "run",
            "--global-afe-hostname",
            &url,
            "--shard-hostname",
            &format!("shard{n}"),
            "--database-url",
            db.url(),
            "--rpc-user",
            RPC_USER,
            "--heartbeat-pause-sec",
            "0.2",
            "--rpc-timeout-min",
            "0.5",
            "--metrics-addr",
            "127.0.0.1:0",
        ];
        clients.push(ShardClient::spawn(args, &[]));
        let scheduler = Scheduler::new(
            db.store.connection().clone(),
            SchedulerConfig {
                failure_ratio: 0.2,
                run_ticks: 1..=3,
                seed: n,
            },
        );
        tokio::spawn(scheduler.run(Duration::from_millis(100), stop.clone()));
        shards.push(db);
    }

    let started = Instant::now();
    loop {
        shard_master::suites::complete_finished_suites(master.store.connection())
            .await
            .unwrap();
        // Checked all along, not only at the end: no job is ever on two
        // shards at once.
        let on_first = job_ids(&shards[0]).await;
        let on_second = job_ids(&shards[1]).await;
        let both: Vec<_> = on_first.intersection(&on_second).collect();
        assert!(both.is_empty(), "jobs on both shards: {both:?}");
        if incomplete_entries(master.store.connection()).await == 0 {
            break;
        }
        assert!(
            started.elapsed() < CONVERGE_WITHIN,
            "the lab did not converge: {} entries still incomplete on the master",
            incomplete_entries(master.store.connection()).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for client in &clients {
        client.terminate();
    }
    for client in clients {
        let out = client.wait(Duration::from_secs(10)).await;
        assert_eq!(out.code, Some(0), "{out}");
    }
    stop.cancel();

    // Every child job went to the shard of its board and finished there.
    let master_conn = master.store.connection();
    let children: Vec<(i32, Option<i32>)> = jobs::Entity::find()
        .select_only()
        .columns([jobs::Column::Id, jobs::Column::ShardId])
        .filter(jobs::Column::ParentJobId.is_not_null())
        .into_tuple()
        .all(master_conn)
        .await
        .unwrap();
    assert_eq!(children.len() as u64, seeded.child_jobs);
    for (n, shard) in shards.iter().enumerate() {
        let shard_id = i32::try_from(n + 1).unwrap();
        let expected: HashSet<i32> = children
            .iter()
            .filter(|(_, owner)| *owner == Some(shard_id))
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(
            job_ids(shard).await,
            expected,
            "shard{shard_id} holds exactly its jobs"
        );
        assert_consistent(shard.store.connection()).await;
    }
    assert!(
        children.iter().all(|(_, owner)| owner.is_some()),
        "every child job was assigned"
    );
    // No completion lost between a shard and the master (§1, §7 step 3).
    let on_master = finished_entries(master_conn).await;
    for shard in &shards {
        for (id, status) in finished_entries(shard.store.connection()).await {
            assert_eq!(
                on_master.get(&id),
                Some(&status),
                "entry {id}, {status} on its shard, is not so on the master"
            );
        }
    }
}

/// Every complete entry and its status.
async fn finished_entries(conn: &impl ConnectionTrait) -> BTreeMap<i32, String> {
    hqes::Entity::find()
        .filter(hqes::Column::Complete.eq(true))
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|q| (q.id, q.status.unwrap_or_default()))
        .collect()
}

async fn job_ids(db: &TestDb) -> HashSet<i32> {
    jobs::Entity::find()
        .select_only()
        .column(jobs::Column::Id)
        .into_tuple::<i32>()
        .all(db.store.connection())
        .await
        .unwrap()
        .into_iter()
        .collect()
}

async fn incomplete_entries(conn: &impl ConnectionTrait) -> usize {
    hqes::Entity::find()
        .filter(
            Condition::any()
                .add(hqes::Column::Complete.eq(false))
                .add(hqes::Column::Complete.is_null()),
        )
        .all(conn)
        .await
        .unwrap()
        .len()
}

/// A shard database after the run: no job without entries, no entry
/// without its job, no link row pointing at nothing.
async fn assert_consistent(conn: &impl ConnectionTrait) {
    let job_set: HashSet<i32> = jobs::Entity::find()
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    let host_set: HashSet<i32> = hosts::Entity::find()
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    let label_set: HashSet<i32> = labels::Entity::find()
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    let entries = hqes::Entity::find().all(conn).await.unwrap();
    let with_entries: HashSet<i32> = entries.iter().filter_map(|q| q.job_id).collect();
    assert_eq!(
        with_entries, job_set,
        "every job has entries and every entry a job"
    );
    assert!(
        entries.iter().all(|q| q.complete == Some(true)),
        "every entry finished"
    );
    for link in host_labels::Entity::find().all(conn).await.unwrap() {
        assert!(
            link.host_id.is_some_and(|h| host_set.contains(&h)),
            "{link:?}"
        );
        assert!(
            link.label_id.is_some_and(|l| label_set.contains(&l)),
            "{link:?}"
        );
    }
    for link in group_hosts::Entity::find().all(conn).await.unwrap() {
        assert!(
            link.host_id.is_some_and(|h| host_set.contains(&h)),
            "{link:?}"
        );
    }
    for link in job_labels::Entity::find().all(conn).await.unwrap() {
        assert!(
            job_set.contains(&link.job_id) && label_set.contains(&link.label_id),
            "{link:?}"
        );
    }
}
