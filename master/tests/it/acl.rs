//! Upstream mode's user and access control (§11), on every backend: the
//! `AUTHORIZATION` user is created on first use, and saving a changed host
//! status needs access to the host. Shard 1 has hosts 1 to 3 (label 1);
//! ACL group 3 holds host 1 and the users `chromeos-test` (4) and `root`
//! (5, a superuser); hosts 2 and 3 are in group 6, of user `other` (7).

use crate::common::*;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use shard_master::{Fault, Mode};
use shard_model::{AclGroup, Host, User};
use shard_store::schema::entity::{afe_acl_groups_users, afe_users};
use shard_store::testing::TestDb;

shard_store::backend_tests!(
    upstream_user_is_created_on_first_use_and_joins_everyone,
    upstream_user_is_created_without_a_group_when_there_is_no_everyone,
    strict_mode_creates_no_user,
    upstream_status_change_without_access_fails_after_saving_those_before,
    upstream_unchanged_status_needs_no_access,
    upstream_invalid_host_needs_no_access,
    upstream_superuser_changes_any_status,
    strict_mode_checks_no_access,
);

async fn setup(db: &TestDb) {
    add_shard(db, 1, &[1]).await;
    let root = User {
        access_level: Some(100),
        ..user(5, "root")
    };
    let mine = |id, groups: Vec<AclGroup>| Host {
        aclgroup_set: Some(groups),
        ..assigned_host(id, 1, 1)
    };
    let ours = group(3, vec![user(4, "chromeos-test"), root]);
    let theirs = group(6, vec![user(7, "other")]);
    seed(
        db,
        vec![
            mine(1, vec![ours]),
            mine(2, vec![theirs.clone()]),
            mine(3, vec![theirs]),
        ],
        vec![],
        vec![],
    )
    .await;
}

/// Shard 1's heartbeat in `mode` as `login`, reporting `statuses` of hosts
/// 1, 2, 3: its result, or the refusal.
async fn report(db: &TestDb, mode: Mode, login: &str, statuses: [&str; 3]) -> Result<Value, Fault> {
    let kwargs = json!({
        "shard_hostname": "shard1",
        "known_host_ids": [1, 2, 3],
        "known_host_statuses": statuses,
    });
    rpc(db, mode, Some(login), "shard_heartbeat", kwargs).await
}

/// Reports hosts 1, 2 and 3 Running in `mode` as `login`, which must
/// succeed: the statuses saved then.
async fn report_all_running(db: &TestDb, mode: Mode, login: &str) -> Vec<Option<String>> {
    report(db, mode, login, ["Running"; 3]).await.unwrap();
    statuses(db).await
}

async fn user_row(db: &TestDb, login: &str) -> Option<afe_users::Model> {
    afe_users::Entity::find()
        .filter(afe_users::Column::Login.eq(login))
        .one(db.store.connection())
        .await
        .unwrap()
}

async fn groups_of(db: &TestDb, user_id: i32) -> Vec<Option<i32>> {
    afe_acl_groups_users::Entity::find()
        .filter(afe_acl_groups_users::Column::UserId.eq(user_id))
        .all(db.store.connection())
        .await
        .unwrap()
        .into_iter()
        .map(|link| link.aclgroup_id)
        .collect()
}

async fn statuses(db: &TestDb) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for id in 1..=3 {
        out.push(host_row(db, id).await.status);
    }
    out
}

fn all(status: &str) -> Vec<Option<String>> {
    vec![Some(status.to_owned()); 3]
}

async fn upstream_user_is_created_on_first_use_and_joins_everyone(db: TestDb) {
    add_shard(&db, 1, &[1]).await;
    let everyone = AclGroup {
        name: Some("Everyone".to_owned()),
        ..group(8, vec![])
    };
    let h = Host {
        aclgroup_set: Some(vec![everyone]),
        ..host(1, &[1])
    };
    seed(&db, vec![h], vec![], vec![]).await;

    for _ in 0..2 {
        rpc(
            &db,
            Mode::Upstream,
            Some("newcomer"),
            "get_hosts",
            json!({}),
        )
        .await
        .unwrap();
    }

    let created = user_row(&db, "newcomer").await.expect("user created");
    assert_eq!(
        (
            created.access_level,
            created.reboot_before,
            created.reboot_after
        ),
        (Some(0), 1, 0)
    );
    assert_eq!(groups_of(&db, created.id).await, vec![Some(8)], "once");
}

async fn upstream_user_is_created_without_a_group_when_there_is_no_everyone(db: TestDb) {
    setup(&db).await;

    rpc(
        &db,
        Mode::Upstream,
        None,
        "shard_heartbeat",
        json!({"shard_hostname": "shard1"}),
    )
    .await
    .unwrap();

    // A request naming no user is the real master's debug user.
    let created = user_row(&db, "debug_user").await.expect("user created");
    assert_eq!(created.access_level, Some(0));
    assert_eq!(created.id, 8, "the next id after the seeded users");
    assert_eq!(groups_of(&db, created.id).await, Vec::<Option<i32>>::new());
}

async fn strict_mode_creates_no_user(db: TestDb) {
    setup(&db).await;

    rpc(&db, Mode::Strict, Some("newcomer"), "get_hosts", json!({}))
        .await
        .unwrap();

    assert_eq!(user_row(&db, "newcomer").await, None);
}

async fn upstream_status_change_without_access_fails_after_saving_those_before(db: TestDb) {
    setup(&db).await;

    let fault = report(&db, Mode::Upstream, "chromeos-test", ["Running"; 3])
        .await
        .unwrap_err();

    assert_eq!(
        (fault.name.as_str(), fault.message.as_str()),
        (
            "AclAccessViolation",
            "chromeos-test does not have access to host2"
        )
    );
    assert_eq!(
        statuses(&db).await,
        vec![
            Some("Running".to_owned()),
            Some("Ready".to_owned()),
            Some("Ready".to_owned())
        ]
    );
}

async fn upstream_unchanged_status_needs_no_access(db: TestDb) {
    setup(&db).await;

    report(
        &db,
        Mode::Upstream,
        "chromeos-test",
        ["Running", "Ready", "Ready"],
    )
    .await
    .unwrap();

    assert_eq!(host_row(&db, 1).await.status.as_deref(), Some("Running"));
}

async fn upstream_invalid_host_needs_no_access(db: TestDb) {
    setup(&db).await;
    let invalid = |id| Host {
        invalid: Some(Some(true)),
        aclgroup_set: Some(vec![group(6, vec![user(7, "other")])]),
        ..assigned_host(id, 1, 1)
    };
    seed(&db, vec![invalid(2), invalid(3)], vec![], vec![]).await;

    let saved = report_all_running(&db, Mode::Upstream, "chromeos-test").await;

    assert_eq!(saved, all("Running"));
}

async fn upstream_superuser_changes_any_status(db: TestDb) {
    setup(&db).await;

    let saved = report_all_running(&db, Mode::Upstream, "root").await;

    assert_eq!(saved, all("Running"));
}

async fn strict_mode_checks_no_access(db: TestDb) {
    setup(&db).await;

    let saved = report_all_running(&db, Mode::Strict, "chromeos-test").await;

    assert_eq!(saved, all("Running"));
}
