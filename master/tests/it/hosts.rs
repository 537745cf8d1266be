//! §8 step 4: which hosts go to a shard, and which known hosts are
//! incorrect, on every backend. Shard 1 owns label 1, shard 2 label 2;
//! label 7 belongs to no shard.

use crate::common::*;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use shard_master::{Mode, assign};
use shard_model::{AclGroup, HeartbeatRequest, Host, HostAttribute, ToOne};
use shard_store::schema::entity::{afe_hosts, afe_shards_labels};
use shard_store::testing::TestDb;

shard_store::backend_tests!(
    host_with_a_shard_label_is_assigned_and_returned_with_its_dependencies,
    leased_host_is_not_assigned,
    host_without_a_shard_label_is_not_assigned,
    host_of_another_shards_label_is_not_assigned,
    known_host_is_not_returned_again,
    assigned_host_the_shard_does_not_know_is_resent,
    incorrect_host_ids_are_known_hosts_not_assigned_to_the_shard,
    label_removed_between_candidates_and_assignment_leaves_the_host_unassigned,
    host_leased_between_candidates_and_assignment_is_not_assigned,
    strict_host_follows_its_board_to_another_shard_and_the_old_shard_is_told,
    upstream_host_follows_its_board_to_another_shard_and_the_old_shard_is_told,
);

async fn two_shards(db: &TestDb) {
    add_shard(db, 1, &[1]).await;
    add_shard(db, 2, &[2]).await;
}

fn knowing(hosts: &[i32]) -> HeartbeatRequest {
    HeartbeatRequest {
        known_host_ids: hosts.to_vec(),
        known_host_statuses: hosts.iter().map(|_| Some("Ready".to_owned())).collect(),
        ..request(1)
    }
}

/// The hosts shard 1's first heartbeat gets, and the shard host 1 is
/// assigned to after it.
async fn first_heartbeat(db: &TestDb) -> (Vec<i32>, Option<i32>) {
    let response = heartbeat(db, &request(1)).await;
    (host_ids(&response), host_shard(db, 1).await)
}

async fn host_with_a_shard_label_is_assigned_and_returned_with_its_dependencies(db: TestDb) {
    two_shards(&db).await;
    let h = Host {
        aclgroup_set: Some(vec![group(3, vec![user(4, "alice"), user(5, "bob")])]),
        hostattribute_set: Some(vec![attribute("serial", "123")]),
        ..host(1, &[1, 7])
    };
    seed(&db, vec![h], vec![], vec![]).await;

    let response = heartbeat(&db, &request(1)).await;

    assert_eq!(host_shard(&db, 1).await, Some(1));
    assert_eq!(
        response.hosts,
        vec![Host {
            aclgroup_set: Some(vec![AclGroup {
                id: 3,
                name: Some("group3".to_owned()),
                description: Some(String::new()),
                users: Some(vec![user(4, "alice"), user(5, "bob")]),
            }]),
            hostattribute_set: Some(vec![HostAttribute {
                id: Some(1),
                attribute: "serial".to_owned(),
                value: Some("123".to_owned()),
                host_id: Some(1),
            }]),
            labels: Some(vec![label(1), label(7)]),
            shard: ToOne::Set(shard(1)),
            ..host(1, &[])
        }]
    );
    assert_eq!(response.incorrect_host_ids, Vec::<i32>::new());
}

async fn leased_host_is_not_assigned(db: TestDb) {
    two_shards(&db).await;
    let leased = Host {
        leased: true,
        ..host(1, &[1])
    };
    seed(&db, vec![leased], vec![], vec![]).await;

    assert_eq!(first_heartbeat(&db).await, (vec![], None));
}

async fn host_without_a_shard_label_is_not_assigned(db: TestDb) {
    two_shards(&db).await;
    seed(&db, vec![host(1, &[7])], vec![], vec![]).await;

    assert_eq!(first_heartbeat(&db).await, (vec![], None));
}

async fn host_of_another_shards_label_is_not_assigned(db: TestDb) {
    two_shards(&db).await;
    seed(&db, vec![host(1, &[2])], vec![], vec![]).await;

    assert_eq!(first_heartbeat(&db).await, (vec![], None));
}

async fn known_host_is_not_returned_again(db: TestDb) {
    two_shards(&db).await;
    seed(&db, vec![host(1, &[1]), host(2, &[1])], vec![], vec![]).await;
    let first = heartbeat(&db, &request(1)).await;
    assert_eq!(host_ids(&first), vec![1, 2]);

    let second = heartbeat(&db, &knowing(&[1])).await;

    assert_eq!(host_ids(&second), vec![2]);
    assert_eq!(second.incorrect_host_ids, Vec::<i32>::new());
}

async fn assigned_host_the_shard_does_not_know_is_resent(db: TestDb) {
    two_shards(&db).await;
    seed(&db, vec![host(1, &[1])], vec![], vec![]).await;
    // The shard lost the response that carried host 1.
    heartbeat(&db, &request(1)).await;

    let again = heartbeat(&db, &request(1)).await;

    assert_eq!(host_ids(&again), vec![1]);
    assert_eq!(host_shard(&db, 1).await, Some(1));
}

async fn incorrect_host_ids_are_known_hosts_not_assigned_to_the_shard(db: TestDb) {
    two_shards(&db).await;
    // 1 is shard 1's, 2 shard 2's, 3 nobody's.
    seed(
        &db,
        vec![
            assigned_host(1, 1, 1),
            assigned_host(2, 2, 2),
            host(3, &[7]),
        ],
        vec![],
        vec![],
    )
    .await;

    let response = heartbeat(&db, &knowing(&[1, 2, 3])).await;

    assert_eq!(response.incorrect_host_ids, vec![2, 3]);
    assert_eq!(host_ids(&response), Vec::<i32>::new());
    assert_eq!(host_shard(&db, 2).await, Some(2), "not taken from shard 2");
    assert_eq!(host_shard(&db, 3).await, None);
}

async fn label_removed_between_candidates_and_assignment_leaves_the_host_unassigned(db: TestDb) {
    two_shards(&db).await;
    seed(&db, vec![host(1, &[1])], vec![], vec![]).await;
    let conn = db.store.connection();

    let candidates = assign::host_candidates(conn, 1, &[]).await.unwrap();
    assert_eq!(candidates, vec![1]);
    afe_shards_labels::Entity::delete_many()
        .filter(afe_shards_labels::Column::LabelId.eq(1))
        .exec(conn)
        .await
        .unwrap();
    let assigned = assign::assign_hosts(conn, 1, &candidates).await.unwrap();

    assert_eq!(assigned, Vec::<i32>::new());
    assert_eq!(host_shard(&db, 1).await, None);
}

async fn host_leased_between_candidates_and_assignment_is_not_assigned(db: TestDb) {
    two_shards(&db).await;
    seed(&db, vec![host(1, &[1])], vec![], vec![]).await;
    let conn = db.store.connection();

    let candidates = assign::host_candidates(conn, 1, &[]).await.unwrap();
    assert_eq!(candidates, vec![1]);
    afe_hosts::ActiveModel {
        id: Set(1),
        leased: Set(true),
        ..Default::default()
    }
    .update(conn)
    .await
    .unwrap();
    let assigned = assign::assign_hosts(conn, 1, &candidates).await.unwrap();

    assert_eq!(assigned, Vec::<i32>::new());
    assert_eq!(host_shard(&db, 1).await, None);
}

/// Host 1 is shard 1's when its board (label 1) moves to shard 2: in either
/// mode, shard 2 gets it and shard 1, which still reports it, is told to
/// remove it.
async fn host_follows_its_board(db: TestDb, mode: Mode) {
    two_shards(&db).await;
    let mine = assigned_host(1, 1, 1);
    seed(&db, vec![mine], vec![], vec![]).await;
    move_label(&db, 1, 2).await;

    let new_shard = heartbeat_in(&db, &request(2), mode).await.unwrap();
    let old_shard = heartbeat_in(&db, &knowing(&[1]), mode).await.unwrap();

    assert_eq!(host_ids(&new_shard), vec![1]);
    assert_eq!(host_shard(&db, 1).await, Some(2));
    assert_eq!(old_shard.incorrect_host_ids, vec![1]);
    assert_eq!(host_ids(&old_shard), Vec::<i32>::new());
}

async fn strict_host_follows_its_board_to_another_shard_and_the_old_shard_is_told(db: TestDb) {
    host_follows_its_board(db, Mode::Strict).await;
}

async fn upstream_host_follows_its_board_to_another_shard_and_the_old_shard_is_told(db: TestDb) {
    host_follows_its_board(db, Mode::Upstream).await;
}
