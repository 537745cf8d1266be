//! A shard that heals itself (§11): a host deleted on the master fails every
//! heartbeat with `DoesNotExist` until the shard forgets it. The client asks
//! the master which of its known hosts exist (`get_hosts`), forgets the
//! others as incorrect hosts (§7 step 5), and the next heartbeat succeeds.
//! With `once` on every backend.

use crate::common::*;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::json;
use shard_master::Mode;
use shard_master::seed::{LabSpec, seed};
use shard_model::GetHostsRequest;
use shard_store::schema::entity::{
    afe_acl_groups_hosts as group_hosts, afe_host_attributes as host_attributes,
    afe_hosts as hosts, afe_hosts_labels as host_labels_table,
};
use shard_store::testing::{Backend, TestDb};
use shard_tests::{Reply, Script, ScriptedMaster};
use tokio_util::sync::CancellationToken;

empty_db_tests!(
    a_host_the_master_deleted_is_forgotten_and_the_next_heartbeat_succeeds,
    a_host_the_master_lists_as_invalid_is_kept,
    a_failed_host_query_forgets_nothing,
    another_does_not_exist_asks_no_host_query,
    an_acl_violation_says_the_rpc_user_needs_access_to_the_hosts,
    a_shard_heals_itself_against_the_strict_reference_master,
    a_shard_heals_itself_against_an_upstream_master,
);

/// The master's answer when a known host id is one it does not have.
fn unknown_host() -> Reply {
    Reply::error("DoesNotExist", "Host matching query does not exist.")
}

/// `get_hosts`' answer: a host object (as the real AFE writes it) per id.
fn listed(ids: &[i32]) -> Reply {
    let hosts: Vec<_> = ids
        .iter()
        .map(|id| {
            json!({"id": id, "hostname": format!("host{id}"), "status": "Ready",
                   "invalid": false, "labels": ["board:x"], "acls": ["Everyone"],
                   "attributes": {}, "platform": null, "shard": "shard1"})
        })
        .collect();
    Reply::Result(json!(hosts))
}

/// Hosts 2 and 3, both with label 1, and job 10 running on host 3.
async fn fill_two_hosts(db: &TestDb) {
    migrate(db).await;
    fill(
        db,
        &response(vec![host(2), host(3)], vec![job_on(10, 3)], vec![]),
    )
    .await;
}

/// (invalid, labels, incomplete entries aborted) of host `id`.
async fn host_state(db: &TestDb, id: i32) -> (Option<bool>, usize) {
    let conn = db.store.connection();
    let labels = host_labels(conn)
        .await
        .iter()
        .filter(|(h, _)| *h == id)
        .count();
    (host_row(conn, id).await.invalid, labels)
}

async fn a_host_the_master_deleted_is_forgotten_and_the_next_heartbeat_succeeds(db: TestDb) {
    fill_two_hosts(&db).await;
    let master = ScriptedMaster::start([unknown_host(), listed(&[2])]).await;

    let failed = once(&master, &db).await;

    assert_eq!(
        failed.code,
        Some(1),
        "the refused heartbeat still failed:\n{failed}"
    );
    assert_eq!(
        master.get_hosts_calls(),
        vec![GetHostsRequest::ids(vec![2, 3])]
    );
    assert_eq!(
        host_state(&db, 3).await,
        (Some(true), 0),
        "host 3 forgotten"
    );
    assert_eq!(host_state(&db, 2).await, (Some(false), 1), "host 2 kept");
    let conn = db.store.connection();
    assert!(
        hqe_row(conn, 100).await.aborted,
        "its unfinished entry aborted"
    );
    let warnings: Vec<&str> = failed
        .stderr
        .lines()
        .filter(|l| l.contains("forgot hosts the master no longer has"))
        .collect();
    assert_eq!(warnings.len(), 1, "{failed}");
    assert!(warnings[0].contains("[3]"), "{failed}");

    let next = once(&master, &db).await;

    assert_eq!(next.code, Some(0), "{next}");
    let heartbeats = master.heartbeats();
    assert_eq!(heartbeats.len(), 2);
    assert_eq!(heartbeats[1].known_host_ids, vec![2]);
    master.assert_no_violations();
}

async fn a_host_the_master_lists_as_invalid_is_kept(db: TestDb) {
    // `valid_only: false`: a host the master made invalid still exists
    // there, so it is the master's to take away (incorrect_host_ids), not
    // this query's.
    fill_two_hosts(&db).await;
    let master = ScriptedMaster::start([unknown_host(), listed(&[3, 2])]).await;

    let failed = once(&master, &db).await;

    assert_eq!(failed.code, Some(1), "{failed}");
    assert_eq!(master.get_hosts_calls().len(), 1);
    assert_eq!(host_state(&db, 2).await, (Some(false), 1));
    assert_eq!(host_state(&db, 3).await, (Some(false), 1));
    assert!(failed.stderr.contains("nothing forgotten"), "{failed}");
    master.assert_no_violations();
}

async fn a_failed_host_query_forgets_nothing(db: TestDb) {
    fill_two_hosts(&db).await;
    let master = ScriptedMaster::start([
        unknown_host(),
        Reply::error("AttributeError", "no such RPC method: \"get_hosts\""),
    ])
    .await;

    let failed = once(&master, &db).await;

    assert_eq!(failed.code, Some(1), "{failed}");
    assert_eq!(host_state(&db, 3).await, (Some(false), 1));
    assert!(
        failed
            .stderr
            .contains("could not find out which known hosts the master lacks"),
        "{failed}"
    );
    master.assert_no_violations();
}

async fn another_does_not_exist_asks_no_host_query(db: TestDb) {
    fill_two_hosts(&db).await;
    let master = ScriptedMaster::start(Script::new([Reply::error(
        "DoesNotExist",
        "Shard matching query does not exist.",
    )]))
    .await;

    let failed = once(&master, &db).await;

    assert_eq!(failed.code, Some(1), "{failed}");
    assert_eq!(master.requests().len(), 1);
    assert_eq!(master.get_hosts_calls(), vec![]);
    assert_eq!(host_state(&db, 3).await, (Some(false), 1));
    master.assert_no_violations();
}

async fn an_acl_violation_says_the_rpc_user_needs_access_to_the_hosts(db: TestDb) {
    fill_two_hosts(&db).await;
    let master = ScriptedMaster::start([Reply::error(
        "AclAccessViolation",
        "tester does not have access to host3",
    )])
    .await;

    let failed = once(&master, &db).await;

    assert_eq!(failed.code, Some(1), "{failed}");
    let line = failed
        .stderr
        .lines()
        .find(|l| l.contains("heartbeat failed") && l.contains("AclAccessViolation"))
        .unwrap_or_else(|| panic!("no failure line:\n{failed}"));
    assert!(line.contains("must have access"), "{line}");
    assert!(line.contains("superuser"), "{line}");
    assert_eq!(master.get_hosts_calls(), vec![]);
    master.assert_no_violations();
}

// ---------------------------------------------------------------------------
// Against the reference master, both of its modes.

async fn a_shard_heals_itself_against_the_strict_reference_master(db: TestDb) {
    heals_itself_against(db, Mode::Strict).await;
}

async fn a_shard_heals_itself_against_an_upstream_master(db: TestDb) {
    heals_itself_against(db, Mode::Upstream).await;
}

/// A one-shard lab of three hosts on a reference master in `mode`; the
/// shard takes them, the master then deletes one.
async fn heals_itself_against(db: TestDb, mode: Mode) {
    let master = TestDb::migrated(Backend::Sqlite).await.unwrap();
    let conn = master.store.connection();
    let spec = LabSpec {
        shards: 1,
        boards_per_shard: 1,
        hosts_per_board: 3,
        suites_per_board: 1,
        jobs_per_suite: 1,
        leased_every: 0,
        locked_every: 0,
        ..LabSpec::default()
    };
    seed(conn, &spec).await.unwrap();
    make_superuser(conn, RPC_USER).await;
    let stop = CancellationToken::new();
    let url = serve_reference_master(conn, mode, &stop).await;
    let first = run_to_end(args_to("once", &url, &db)).await;
    assert_eq!(first.code, Some(0), "{first}");
    let known = host_ids(db.store.connection()).await;
    assert_eq!(known.len(), 3, "the shard took its hosts");
    let deleted = known[1];
    delete_host(conn, deleted).await;

    let refused = run_to_end(args_to("once", &url, &db)).await;

    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(
        refused
            .stderr
            .contains("Host matching query does not exist"),
        "{refused}"
    );
    let invalid = host_row(db.store.connection(), deleted).await.invalid;
    assert_eq!(invalid, Some(true), "{refused}");
    let healed = run_to_end(args_to("once", &url, &db)).await;
    assert_eq!(healed.code, Some(0), "{healed}");
    stop.cancel();
}

/// Deletes host `id` and its links on the master, as an operator removing
/// a device from the lab does.
async fn delete_host(conn: &impl ConnectionTrait, id: i32) {
    host_labels_table::Entity::delete_many()
        .filter(host_labels_table::Column::HostId.eq(id))
        .exec(conn)
        .await
        .unwrap();
    group_hosts::Entity::delete_many()
        .filter(group_hosts::Column::HostId.eq(id))
        .exec(conn)
        .await
        .unwrap();
    host_attributes::Entity::delete_many()
        .filter(host_attributes::Column::HostId.eq(id))
        .exec(conn)
        .await
        .unwrap();
    hosts::Entity::delete_many()
        .filter(hosts::Column::Id.eq(id))
        .exec(conn)
        .await
        .unwrap();
}
