//! `get_hosts` (what a shard client's self-healing asks), in both modes,
//! on every backend. Host 1 (shard 1's) has labels 1 and a platform label,
//! ACL group 3, an attribute and a lock; host 2 is unassigned; host 3 is
//! invalid (deleted on the master, as Autotest deletes hosts).

use crate::common::*;
use serde_json::{Value, json};
use shard_model::{Host, Label, ToOne};
use shard_store::testing::TestDb;

shard_store::backend_tests!(
    hosts_are_listed_with_their_labels_acls_attributes_and_platform,
    valid_only_defaults_to_true_and_false_lists_invalid_hosts_too,
    ids_the_master_lacks_are_simply_absent,
    unknown_filter_keywords_are_refused_naming_them,
);

async fn setup(db: &TestDb) {
    add_shard(db, 1, &[1]).await;
    let platform = Label {
        platform: Some(true),
        name: Some("lumpy".to_owned()),
        ..label(9)
    };
    let first = Host {
        locked: Some(true),
        lock_time: Some(at("2015-01-02T03:04:05.678901")),
        lock_reason: Some("repair".to_owned()),
        protection: 3,
        labels: Some(vec![label(1), platform]),
        aclgroup_set: Some(vec![group(3, vec![user(4, "alice")])]),
        hostattribute_set: Some(vec![attribute("serial", "123")]),
        shard: ToOne::Set(shard(1)),
        ..host(1, &[])
    };
    let deleted = Host {
        invalid: Some(Some(true)),
        ..host(3, &[1])
    };
    seed(db, vec![first, host(2, &[1]), deleted], vec![], vec![]).await;
}

async fn get_hosts(db: &TestDb, mode: shard_master::Mode, kwargs: Value) -> Value {
    rpc(db, mode, Some("chromeos-test"), "get_hosts", kwargs)
        .await
        .unwrap()
}

fn ids(hosts: &Value) -> Vec<i64> {
    hosts
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_i64().unwrap())
        .collect()
}

async fn hosts_are_listed_with_their_labels_acls_attributes_and_platform(db: TestDb) {
    setup(&db).await;
    let lock_time = if db.store.backend() == sea_orm::DbBackend::MySql {
        // MySQL's datetime column keeps no fraction.
        "2015-01-02T03:04:05"
    } else {
        "2015-01-02T03:04:05.678"
    };

    for mode in MODES {
        let hosts = get_hosts(&db, mode, json!({"id__in": [1], "valid_only": false})).await;

        assert_eq!(
            hosts,
            json!([{
                "id": 1,
                "hostname": "host1",
                "locked": true,
                "synch_id": null,
                "status": "Ready",
                "invalid": false,
                "protection": "Do not repair",
                "locked_by": null,
                "lock_time": lock_time,
                "dirty": false,
                "leased": false,
                "shard": "shard1",
                "lock_reason": "repair",
                "labels": ["board:b1", "lumpy"],
                "acls": ["group3"],
                "attributes": {"serial": "123"},
                "platform": "lumpy",
            }]),
            "{mode:?}"
        );
    }
}

async fn valid_only_defaults_to_true_and_false_lists_invalid_hosts_too(db: TestDb) {
    setup(&db).await;

    for mode in MODES {
        let valid = get_hosts(&db, mode, json!({"id__in": [1, 2, 3]})).await;
        let all = get_hosts(&db, mode, json!({"id__in": [1, 2, 3], "valid_only": false})).await;

        assert_eq!(ids(&valid), vec![1, 2], "{mode:?}");
        assert_eq!(ids(&all), vec![1, 2, 3], "{mode:?}");
        assert_eq!(all[2]["invalid"], true, "{mode:?}");
    }
}

async fn ids_the_master_lacks_are_simply_absent(db: TestDb) {
    setup(&db).await;

    for mode in MODES {
        let hosts = get_hosts(
            &db,
            mode,
            json!({"id__in": [77, 2, "1"], "valid_only": false}),
        )
        .await;
        let none = get_hosts(&db, mode, json!({"id__in": [], "valid_only": false})).await;

        assert_eq!(ids(&hosts), vec![1, 2], "{mode:?}");
        assert_eq!(none, json!([]), "{mode:?}");
    }
}

async fn unknown_filter_keywords_are_refused_naming_them(db: TestDb) {
    setup(&db).await;

    for mode in MODES {
        let fault = rpc(
            &db,
            mode,
            None,
            "get_hosts",
            json!({"id__in": [1], "labels__name": "board:b1", "hostnme": "host1"}),
        )
        .await
        .unwrap_err();

        assert_eq!(fault.name, "TypeError", "{mode:?}");
        assert!(
            fault.message.contains("`hostnme`") && fault.message.contains("`labels__name`"),
            "{mode:?}: {fault}"
        );
    }
}
