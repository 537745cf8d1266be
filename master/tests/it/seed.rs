//! `shard-master seed`: the lab it writes, row by row, and what a shard's
//! first heartbeat gets from it, on every backend.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{ActiveModelTrait, DbBackend, EntityTrait, PaginatorTrait, QueryOrder};
use shard_master::seed::{LabSpec, LabSummary, SeedError, seed};
use shard_model::HeartbeatRequest;
use shard_store::schema::entity::prelude::*;
use shard_store::schema::entity::{
    afe_host_queue_entries, afe_hosts, afe_jobs, afe_labels, afe_shards,
};
use shard_store::testing::TestDb;

shard_store::backend_tests!(
    rows_per_table_match_the_spec,
    child_entries_ask_for_their_board_and_suites_are_hostless,
    every_nth_host_is_leased_or_locked,
    shards_own_exactly_their_boards,
    seeding_twice_is_refused,
    first_heartbeat_of_shard1_gets_its_unleased_hosts_and_child_jobs,
    rows_added_after_a_seed_get_fresh_ids,
    a_demo_lab_costs_a_fixed_number_of_statements,
    a_ten_times_larger_lab_costs_the_same_number_of_statements,
);

/// A lab where every count differs from the others, so a mix-up shows.
fn odd_lab() -> LabSpec {
    LabSpec {
        shards: 2,
        boards_per_shard: 2,
        hosts_per_board: 3,
        suites_per_board: 2,
        jobs_per_suite: 3,
        hqes_per_job: 2,
        extra_labels_per_host: 2,
        acl_groups: 2,
        users_per_group: 2,
        attributes_per_host: 3,
        keyvals_per_job: 2,
        keyvals_per_suite: 4,
        leased_every: 4,
        locked_every: 5,
        seed: 9,
    }
}

async fn rows<E: EntityTrait>(db: &TestDb) -> u64
where
    E::Model: Sync,
{
    E::find().count(db.store.connection()).await.unwrap()
}

async fn rows_per_table(db: &TestDb) -> BTreeMap<&'static str, u64> {
    BTreeMap::from([
        ("afe_shards", rows::<Shards>(db).await),
        ("afe_labels", rows::<Labels>(db).await),
        ("afe_shards_labels", rows::<ShardsLabels>(db).await),
        ("afe_users", rows::<Users>(db).await),
        ("afe_acl_groups", rows::<AclGroups>(db).await),
        ("afe_acl_groups_users", rows::<AclGroupsUsers>(db).await),
        ("afe_hosts", rows::<Hosts>(db).await),
        ("afe_acl_groups_hosts", rows::<AclGroupsHosts>(db).await),
        ("afe_hosts_labels", rows::<HostsLabels>(db).await),
        ("afe_host_attributes", rows::<HostAttributes>(db).await),
        ("afe_jobs", rows::<Jobs>(db).await),
        (
            "afe_jobs_dependency_labels",
            rows::<JobsDependencyLabels>(db).await,
        ),
        ("afe_host_queue_entries", rows::<HostQueueEntries>(db).await),
        ("afe_job_keyvals", rows::<JobKeyvals>(db).await),
    ])
}

async fn rows_per_table_match_the_spec(db: TestDb) {
    let summary = seed(db.store.connection(), &odd_lab()).await.unwrap();

    assert_eq!(
        summary,
        LabSummary {
            shards: 2,
            boards: 4,
            labels: 6,
            hosts: 12,
            leased: 3,
            locked: 2,
            users: 4,
            groups: 2,
            attributes: 36,
            suite_jobs: 8,
            child_jobs: 24,
            hqes: 56,
            keyvals: 80,
        }
    );
    assert_eq!(
        rows_per_table(&db).await,
        BTreeMap::from([
            ("afe_shards", 2),
            ("afe_labels", 4 + 2),
            ("afe_shards_labels", 4),
            ("afe_users", 2 * 2),
            ("afe_acl_groups", 2),
            ("afe_acl_groups_users", 2 * 2),
            ("afe_hosts", 4 * 3),
            ("afe_acl_groups_hosts", 12 * 2),
            ("afe_hosts_labels", 12 * (1 + 2)),
            ("afe_host_attributes", 12 * 3),
            ("afe_jobs", 8 + 8 * 3),
            ("afe_jobs_dependency_labels", 24 * 2),
            ("afe_host_queue_entries", 8 + 24 * 2),
            ("afe_job_keyvals", 8 * 4 + 24 * 2),
        ])
    );
}

async fn child_entries_ask_for_their_board_and_suites_are_hostless(db: TestDb) {
    seed(db.store.connection(), &odd_lab()).await.unwrap();
    let conn = db.store.connection();
    let label_ids: BTreeMap<String, i32> = Labels::find()
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.name.unwrap(), l.id))
        .collect();
    let mut entries: BTreeMap<i32, Vec<afe_host_queue_entries::Model>> = BTreeMap::new();
    for e in HostQueueEntries::find().all(conn).await.unwrap() {
        entries.entry(e.job_id.unwrap()).or_default().push(e);
    }
    let mut dependencies: BTreeMap<i32, BTreeSet<i32>> = BTreeMap::new();
    for d in JobsDependencyLabels::find().all(conn).await.unwrap() {
        dependencies.entry(d.job_id).or_default().insert(d.label_id);
    }
    let jobs: BTreeMap<i32, afe_jobs::Model> = Jobs::find()
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|j| (j.id, j))
        .collect();

    for job in jobs.values() {
        let name = job.name.as_deref().unwrap();
        let (board, _) = name.split_once("-release/").unwrap();
        let board_label = label_ids[&format!("board:{board}")];
        let queued = |e: &afe_host_queue_entries::Model| {
            e.host_id.is_none()
                && e.status.as_deref() == Some("Queued")
                && e.active == Some(false)
                && e.complete == Some(false)
                && !e.aborted
                && !e.deleted
        };
        let mine = &entries[&job.id];
        match job.parent_job_id {
            Some(parent) => {
                let suite = jobs[&parent].name.as_deref().unwrap();
                assert!(
                    name.starts_with(&format!("{suite}/")),
                    "{name} under {suite}"
                );
                assert_eq!(mine.len(), 2, "hqes_per_job entries of {name}");
                for e in mine {
                    assert!(queued(e), "{e:?}");
                    assert_eq!(e.meta_host, Some(board_label), "{e:?}");
                }
                assert_eq!(
                    dependencies[&job.id],
                    BTreeSet::from([board_label, label_ids["pool:suites"]]),
                    "dependencies of {name}"
                );
            }
            None => {
                assert_eq!(mine.len(), 1, "one hostless entry for suite {name}");
                assert!(queued(&mine[0]), "{:?}", mine[0]);
                assert_eq!(mine[0].meta_host, None);
                assert!(!dependencies.contains_key(&job.id), "suite {name}");
            }
        }
    }
}

async fn every_nth_host_is_leased_or_locked(db: TestDb) {
    seed(db.store.connection(), &LabSpec::default())
        .await
        .unwrap();
    let hosts = Hosts::find()
        .order_by_asc(afe_hosts::Column::Id)
        .all(db.store.connection())
        .await
        .unwrap();
    let ids = |keep: fn(&afe_hosts::Model) -> bool| -> Vec<i32> {
        hosts.iter().filter(|h| keep(h)).map(|h| h.id).collect()
    };

    assert_eq!(ids(|h| h.leased), [7, 14, 21]);
    assert_eq!(ids(|h| h.locked == Some(true)), [5, 10, 15, 20]);
    assert_eq!(
        ids(|h| h.locked_by_id == Some(1) && h.lock_time.is_some()),
        [5, 10, 15, 20],
        "locked by user1, with a lock time"
    );
    assert_eq!(
        hosts[0].hostname.as_deref(),
        Some("chromeos1-row1-rack1-host1")
    );
    assert_eq!(
        hosts[23].hostname.as_deref(),
        Some("chromeos3-row2-rack1-host4")
    );
    assert!(
        hosts
            .iter()
            .all(|h| h.shard_id.is_none() && h.status.as_deref() == Some("Ready"))
    );
}

async fn shards_own_exactly_their_boards(db: TestDb) {
    seed(db.store.connection(), &LabSpec::default())
        .await
        .unwrap();
    let conn = db.store.connection();
    let shards: BTreeMap<i32, String> = Shards::find()
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.id, s.hostname))
        .collect();
    let labels: BTreeMap<i32, afe_labels::Model> = Labels::find()
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.id, l))
        .collect();
    let mut owned: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for link in ShardsLabels::find().all(conn).await.unwrap() {
        owned
            .entry(shards[&link.shard_id].clone())
            .or_default()
            .insert(labels[&link.label_id].name.clone().unwrap());
    }

    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        owned,
        BTreeMap::from([
            ("shard1".to_owned(), set(&["board:lumpy", "board:link"])),
            ("shard2".to_owned(), set(&["board:peppy", "board:falco"])),
            ("shard3".to_owned(), set(&["board:samus", "board:nyan_big"])),
        ])
    );
    let unowned: BTreeSet<String> = labels
        .values()
        .filter(|l| !l.name.as_deref().unwrap().starts_with("board:"))
        .map(|l| l.name.clone().unwrap())
        .collect();
    assert_eq!(unowned, set(&["pool:suites", "sku:standard_4GB"]));
}

async fn seeding_twice_is_refused(db: TestDb) {
    seed(db.store.connection(), &LabSpec::default())
        .await
        .unwrap();
    let before = rows_per_table(&db).await;

    let err = seed(db.store.connection(), &LabSpec::default())
        .await
        .unwrap_err();

    match &err {
        SeedError::NotEmpty { tables } => assert_eq!(
            tables,
            &[
                "afe_shards",
                "afe_labels",
                "afe_users",
                "afe_acl_groups",
                "afe_hosts",
                "afe_jobs"
            ]
        ),
        other => panic!("expected NotEmpty, got {other:?}"),
    }
    assert!(err.to_string().contains("afe_hosts, afe_jobs"), "{err}");
    assert_eq!(rows_per_table(&db).await, before, "nothing was written");
}

async fn first_heartbeat_of_shard1_gets_its_unleased_hosts_and_child_jobs(db: TestDb) {
    seed(db.store.connection(), &LabSpec::default())
        .await
        .unwrap();
    let request = HeartbeatRequest {
        shard_hostname: "shard1".to_owned(),
        known_job_ids: vec![],
        known_host_ids: vec![],
        known_host_statuses: vec![],
        jobs: vec![],
        hqes: vec![],
    };

    let response = shard_master::shard_heartbeat(db.store.connection(), &request)
        .await
        .unwrap();

    // shard1 owns lumpy (hosts 1-4) and link (hosts 5-8); host 7 is leased.
    let mut hosts: Vec<i32> = response.hosts.iter().map(|h| h.id).collect();
    hosts.sort_unstable();
    assert_eq!(hosts, [1, 2, 3, 4, 5, 6, 8]);
    // Per board two suites (1, 6 on lumpy; 11, 16 on link), each followed
    // by its four children.
    let mut jobs: Vec<i32> = response.jobs.iter().map(|j| j.id).collect();
    jobs.sort_unstable();
    assert_eq!(
        jobs,
        [2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 15, 17, 18, 19, 20]
    );
    assert!(response.jobs.iter().all(|j| j.parent_job_id.is_some()));
    let mut suites: Vec<i32> = response.suite_keyvals.iter().map(|k| k.job_id).collect();
    suites.sort_unstable();
    assert_eq!(suites, [1, 1, 1, 6, 6, 6, 11, 11, 11, 16, 16, 16]);
    assert!(response.incorrect_host_ids.is_empty());
}

async fn rows_added_after_a_seed_get_fresh_ids(db: TestDb) {
    seed(db.store.connection(), &LabSpec::default())
        .await
        .unwrap();

    // PostgreSQL's sequences ignore explicit ids unless moved past them.
    let shard = afe_shards::ActiveModel {
        id: NotSet,
        hostname: Set("shard4".to_owned()),
    }
    .insert(db.store.connection())
    .await
    .unwrap();

    assert_eq!(shard.id, 4);
}

/// Statements of a seed: six emptiness checks, one insert per table, and
/// on PostgreSQL one statement that moves the id sequences past the seeded
/// ids (transaction control is not counted).
fn statements_of_a_seed(db: &TestDb) -> u64 {
    match db.store.backend() {
        DbBackend::Postgres => 6 + 14 + 1,
        _ => 6 + 14,
    }
}

async fn a_demo_lab_costs_a_fixed_number_of_statements(db: TestDb) {
    let before = db.store.statements();

    seed(db.store.connection(), &LabSpec::default())
        .await
        .unwrap();

    assert_eq!(db.store.statements() - before, statements_of_a_seed(&db));
}

async fn a_ten_times_larger_lab_costs_the_same_number_of_statements(db: TestDb) {
    let demo = LabSpec::default();
    let spec = LabSpec {
        hosts_per_board: demo.hosts_per_board * 10,
        jobs_per_suite: demo.jobs_per_suite * 10,
        ..demo
    };
    let before = db.store.statements();

    let summary = seed(db.store.connection(), &spec).await.unwrap();

    assert_eq!((summary.hosts, summary.child_jobs), (240, 480));
    assert_eq!(db.store.statements() - before, statements_of_a_seed(&db));
}
