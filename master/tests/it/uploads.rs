//! §8 step 2: the jobs and entries a shard uploads, on every backend, in
//! both modes where they agree and in each where they differ.
//!
//! The master starts with shard 1 (label 1) running job 5 (entry 50, on
//! host 1) and job 8 (entry 80), and shard 2 (label 2) running job 6
//! (entry 60); job 9 (entry 90) was unassigned on the master (aborted
//! there after shard 1 fetched it).

use crate::common::*;
use serde_json::json;
use shard_master::Mode;
use shard_model::{HeartbeatRequest, Hqe, Job, ToOne};
use shard_store::schema::entity::{afe_host_queue_entries, afe_jobs};
use shard_store::testing::TestDb;

shard_store::backend_tests!(
    strict_unknown_job_is_refused_and_nothing_is_written,
    strict_unknown_hqe_is_refused_and_nothing_is_written,
    job_of_another_shard_is_skipped_and_the_others_are_persisted,
    hqe_of_a_job_of_another_shard_is_skipped,
    hqe_whose_job_is_not_uploaded_is_skipped,
    accepted_job_gets_every_local_field_overwritten,
    accepted_hqe_gets_every_local_field_overwritten,
    job_unassigned_on_the_master_is_accepted,
    uploaded_job_is_not_handed_back,
    job_carrying_a_relation_key_is_refused,
    hqe_carrying_a_meta_host_is_refused,
    record_with_some_keys_overwrites_exactly_those_and_ignores_unknown_ones,
    values_are_read_with_the_quirks_of_real_shards,
    shard_id_key_overwrites_the_jobs_shard,
    unreadable_value_refuses_the_call_naming_the_record_and_the_key,
    records_are_checked_one_after_the_other_in_the_originals_order,
    strict_unknown_record_is_named_as_on_master,
    upstream_unknown_job_fails_after_saving_the_jobs_before_it,
    upstream_unknown_hqe_fails_after_saving_the_jobs_and_the_entries_before_it,
);

async fn setup(db: &TestDb) {
    add_shard(db, 1, &[1]).await;
    add_shard(db, 2, &[2]).await;
    let running = |id, host_id| Hqe {
        status: Some("Running".to_owned()),
        active: Some(true),
        ..hqe_on(id, host_id)
    };
    let assigned = |id, shard_id, hqes| Job {
        parent_job_id: Some(1000),
        shard: ToOne::Set(shard(shard_id)),
        ..job(id, hqes)
    };
    seed(
        db,
        vec![
            assigned_host(1, 1, 1),
            assigned_host(2, 1, 1),
            assigned_host(3, 2, 2),
        ],
        vec![
            assigned(5, 1, vec![running(50, 1)]),
            assigned(6, 2, vec![running(60, 3)]),
            assigned(8, 1, vec![running(80, 2)]),
            Job {
                shard: ToOne::Null,
                ..job(
                    9,
                    vec![Hqe {
                        aborted: Some(true),
                        ..running(90, 2)
                    }],
                )
            },
        ],
        vec![],
    )
    .await;
}

/// Job `id` as shard 1 uploads it when finished: local fields only, every
/// one of them different from what the master holds.
fn finished_job(id: i32) -> Job {
    Job {
        id,
        owner: Some("someone-else".to_owned()),
        name: Some(format!("job{id}-renamed")),
        priority: Some(10),
        control_file: Some("job.run_test('dummy_Fail')".to_owned()),
        control_type: Some(1),
        created_on: Some(at("2015-01-02T03:04:05")),
        synch_count: 2,
        timeout: 12,
        timeout_mins: 720,
        max_runtime_hrs: 36,
        max_runtime_mins: 2160,
        test_retry: 3,
        run_verify: Some(true),
        run_reset: false,
        parse_failed_repair: false,
        email_list: "dev@example.com".to_owned(),
        reboot_before: 2,
        reboot_after: 1,
        require_ssp: Some(true),
        parent_job_id: None,
        dependency_labels: None,
        hostqueueentry_set: None,
        jobkeyval_set: None,
        shard: ToOne::Absent,
    }
}

/// Entry `id` as shard 1 uploads it when finished (moved to host 2).
fn finished_hqe(id: i32) -> Hqe {
    Hqe {
        id,
        status: Some("Aborted".to_owned()),
        active: Some(false),
        complete: Some(true),
        deleted: true,
        aborted: Some(true),
        execution_subdir: "host2".to_owned(),
        started_on: Some(at("2015-01-02T03:05:00")),
        finished_on: Some(at("2015-01-02T03:15:00")),
        host_id: Some(2),
        meta_host: ToOne::Absent,
    }
}

fn upload(jobs: Vec<Job>, hqes: Vec<Hqe>) -> HeartbeatRequest {
    HeartbeatRequest {
        jobs,
        hqes,
        ..request(1)
    }
}

/// Shard 1 uploads `jobs` and `hqes` in `mode`, which must succeed.
async fn upload_in(db: &TestDb, mode: Mode, jobs: Vec<Job>, hqes: Vec<Hqe>) {
    heartbeat_in(db, &upload(jobs, hqes), mode).await.unwrap();
}

async fn strict_unknown_job_is_refused_and_nothing_is_written(db: TestDb) {
    setup(&db).await;
    // A host the heartbeat would assign if it went through.
    seed(&db, vec![host(4, &[1])], vec![], vec![]).await;
    let job_before = job_row(&db, 5).await;
    let hqe_before = hqe_row(&db, 50).await;

    let fault = refused(
        &db,
        &upload(
            vec![finished_job(5), finished_job(99)],
            vec![finished_hqe(50)],
        ),
    )
    .await;

    assert_eq!(fault.name, "UnallowedRecordsSentToMaster");
    assert_eq!(job_row(&db, 5).await, job_before);
    assert_eq!(hqe_row(&db, 50).await, hqe_before);
    assert_eq!(host_shard(&db, 4).await, None);
}

async fn strict_unknown_hqe_is_refused_and_nothing_is_written(db: TestDb) {
    setup(&db).await;
    let job_before = job_row(&db, 5).await;
    let hqe_before = hqe_row(&db, 50).await;

    let fault = refused(
        &db,
        &upload(
            vec![finished_job(5)],
            vec![finished_hqe(50), finished_hqe(999)],
        ),
    )
    .await;

    assert_eq!(fault.name, "UnallowedRecordsSentToMaster");
    assert_eq!(job_row(&db, 5).await, job_before);
    assert_eq!(hqe_row(&db, 50).await, hqe_before);
}

async fn job_of_another_shard_is_skipped_and_the_others_are_persisted(db: TestDb) {
    setup(&db).await;
    let other_before = job_row(&db, 6).await;

    for mode in MODES {
        upload_in(&db, mode, vec![finished_job(6), finished_job(5)], vec![]).await;

        assert_eq!(job_row(&db, 6).await, other_before, "{mode:?}");
        assert_eq!(
            job_row(&db, 5).await.name.as_deref(),
            Some("job5-renamed"),
            "{mode:?}"
        );
    }
}

async fn hqe_of_a_job_of_another_shard_is_skipped(db: TestDb) {
    setup(&db).await;
    let before = hqe_row(&db, 60).await;

    for mode in MODES {
        upload_in(&db, mode, vec![finished_job(6)], vec![finished_hqe(60)]).await;

        assert_eq!(hqe_row(&db, 60).await, before, "{mode:?}");
    }
}

async fn hqe_whose_job_is_not_uploaded_is_skipped(db: TestDb) {
    setup(&db).await;
    let job_before = job_row(&db, 8).await;
    let hqe_before = hqe_row(&db, 80).await;

    for mode in MODES {
        upload_in(
            &db,
            mode,
            vec![finished_job(5)],
            vec![finished_hqe(50), finished_hqe(80)],
        )
        .await;

        assert_eq!(hqe_row(&db, 80).await, hqe_before, "{mode:?}");
        assert_eq!(job_row(&db, 8).await, job_before, "{mode:?}");
        assert_eq!(
            hqe_row(&db, 50).await.status.as_deref(),
            Some("Aborted"),
            "{mode:?}"
        );
    }
}

async fn accepted_job_gets_every_local_field_overwritten(db: TestDb) {
    setup(&db).await;

    heartbeat(&db, &upload(vec![finished_job(5)], vec![])).await;

    assert_eq!(
        job_row(&db, 5).await,
        afe_jobs::Model {
            id: 5,
            owner: Some("someone-else".to_owned()),
            name: Some("job5-renamed".to_owned()),
            priority: Some(10),
            control_file: Some("job.run_test('dummy_Fail')".to_owned()),
            control_type: Some(1),
            created_on: Some(at("2015-01-02T03:04:05")),
            synch_count: 2,
            timeout: 12,
            run_verify: Some(true),
            email_list: "dev@example.com".to_owned(),
            reboot_before: 2,
            reboot_after: 1,
            parse_failed_repair: false,
            max_runtime_hrs: 36,
            drone_set_id: None,
            parameterized_job_id: None,
            max_runtime_mins: 2160,
            // Not part of an upload: the master keeps its own.
            parent_job_id: Some(1000),
            test_retry: 3,
            run_reset: false,
            timeout_mins: 720,
            shard_id: Some(1),
            require_ssp: Some(true),
        }
    );
}

async fn accepted_hqe_gets_every_local_field_overwritten(db: TestDb) {
    setup(&db).await;

    heartbeat(&db, &upload(vec![finished_job(5)], vec![finished_hqe(50)])).await;

    assert_eq!(
        hqe_row(&db, 50).await,
        afe_host_queue_entries::Model {
            id: 50,
            job_id: Some(5),
            host_id: Some(2),
            status: Some("Aborted".to_owned()),
            meta_host: None,
            active: Some(false),
            complete: Some(true),
            deleted: true,
            execution_subdir: "host2".to_owned(),
            atomic_group_id: None,
            aborted: true,
            started_on: Some(at("2015-01-02T03:05:00")),
            finished_on: Some(at("2015-01-02T03:15:00")),
        }
    );
}

async fn job_unassigned_on_the_master_is_accepted(db: TestDb) {
    setup(&db).await;

    heartbeat(&db, &upload(vec![finished_job(9)], vec![finished_hqe(90)])).await;

    assert_eq!(job_row(&db, 9).await.name.as_deref(), Some("job9-renamed"));
    assert_eq!(hqe_row(&db, 90).await.status.as_deref(), Some("Aborted"));
    assert_eq!(job_shard(&db, 9).await, None);
}

async fn uploaded_job_is_not_handed_back(db: TestDb) {
    setup(&db).await;
    // Job 11 is shard 1's and still queued on the master: were the upload
    // persisted after assignment, it would be handed back as unknown.
    let queued = Job {
        shard: ToOne::Set(shard(1)),
        ..job(11, vec![hqe_meta(110, 1)])
    };
    seed(&db, vec![], vec![queued], vec![]).await;

    let response = heartbeat(
        &db,
        &upload(vec![finished_job(11)], vec![finished_hqe(110)]),
    )
    .await;

    assert_eq!(job_ids(&response), Vec::<i32>::new());
    assert_eq!(hqe_row(&db, 110).await.complete, Some(true));
}

async fn job_carrying_a_relation_key_is_refused(db: TestDb) {
    setup(&db).await;
    let before = job_row(&db, 5).await;
    let with_relation = [
        (
            "dependency_labels",
            Job {
                dependency_labels: Some(vec![]),
                ..finished_job(5)
            },
        ),
        (
            "hostqueueentry_set",
            Job {
                hostqueueentry_set: Some(vec![]),
                ..finished_job(5)
            },
        ),
        (
            "jobkeyval_set",
            Job {
                jobkeyval_set: Some(vec![]),
                ..finished_job(5)
            },
        ),
        (
            "shard",
            Job {
                shard: ToOne::Null,
                ..finished_job(5)
            },
        ),
    ];

    for mode in MODES {
        for (key, job) in &with_relation {
            let fault = heartbeat_in(&db, &upload(vec![job.clone()], vec![]), mode)
                .await
                .unwrap_err();

            assert_eq!(fault.name, "ValueError", "{mode:?}: a job carrying `{key}`");
            assert_eq!(
                fault.message,
                format!("Serialized must not contain foreign objects: job 5 carries `{key}`"),
                "{mode:?}"
            );
            assert_eq!(
                job_row(&db, 5).await,
                before,
                "{mode:?}: a job carrying `{key}`"
            );
        }
    }
}

async fn hqe_carrying_a_meta_host_is_refused(db: TestDb) {
    setup(&db).await;
    let job_before = job_row(&db, 5).await;
    let hqe_before = hqe_row(&db, 50).await;
    let hqe = Hqe {
        meta_host: ToOne::Set(label(1)),
        ..finished_hqe(50)
    };

    // `meta_host` is a relation of the entry (the original's
    // SERIALIZATION_LINKS_TO_FOLLOW): `update_from_serialized` raises
    // ValueError for it as for a job's relations, and §2 names it.
    let fault = refused(&db, &upload(vec![finished_job(5)], vec![hqe.clone()])).await;

    assert_eq!(fault.name, "ValueError");
    assert_eq!(job_row(&db, 5).await, job_before);
    assert_eq!(hqe_row(&db, 50).await, hqe_before);

    // Upstream, the job before it is saved; the entry is not.
    let fault = heartbeat_in(
        &db,
        &upload(vec![finished_job(5)], vec![hqe]),
        Mode::Upstream,
    )
    .await
    .unwrap_err();

    assert_eq!(fault.name, "ValueError");
    assert_eq!(job_row(&db, 5).await.name.as_deref(), Some("job5-renamed"));
    assert_eq!(hqe_row(&db, 50).await, hqe_before);
}

/// A heartbeat of shard 1 uploading the JSON records `jobs` and `hqes`.
fn upload_json(jobs: serde_json::Value, hqes: serde_json::Value) -> serde_json::Value {
    json!({
        "shard_hostname": "shard1",
        "jobs": jobs,
        "hqes": hqes,
    })
}

async fn record_with_some_keys_overwrites_exactly_those_and_ignores_unknown_ones(db: TestDb) {
    setup(&db).await;

    for mode in MODES {
        let job_before = job_row(&db, 5).await;
        let hqe_before = hqe_row(&db, 50).await;
        let name = format!("renamed in {mode:?}");

        heartbeat_json(
            &db,
            upload_json(
                json!([{"id": 5, "name": name, "no_such_column": 3}]),
                json!([{"id": 50, "status": "Completed", "complete": true, "active": false}]),
            ),
            mode,
        )
        .await
        .unwrap();

        assert_eq!(
            job_row(&db, 5).await,
            afe_jobs::Model {
                name: Some(name),
                ..job_before
            },
            "{mode:?}"
        );
        assert_eq!(
            hqe_row(&db, 50).await,
            afe_host_queue_entries::Model {
                status: Some("Completed".to_owned()),
                complete: Some(true),
                active: Some(false),
                ..hqe_before
            },
            "{mode:?}"
        );
    }
}

async fn values_are_read_with_the_quirks_of_real_shards(db: TestDb) {
    setup(&db).await;

    for mode in MODES {
        heartbeat_json(
            &db,
            upload_json(
                json!([{"id": "5", "synch_count": "3", "run_verify": 1, "run_reset": 0,
                        "created_on": "2015-01-02 03:04:05.250"}]),
                json!([{"id": 50, "host_id": "2", "aborted": 1, "deleted": 0,
                        "started_on": "2015-01-02T03:05:00", "finished_on": null}]),
            ),
            mode,
        )
        .await
        .unwrap();

        let job = job_row(&db, 5).await;
        assert_eq!(
            (job.synch_count, job.run_verify, job.run_reset),
            (3, Some(true), false),
            "{mode:?}"
        );
        // MySQL's datetime column has no fraction: the master truncates.
        let created = job.created_on.unwrap();
        assert!(
            created == at("2015-01-02T03:04:05.250") || created == at("2015-01-02T03:04:05"),
            "{mode:?}: {created}"
        );
        let hqe = hqe_row(&db, 50).await;
        assert_eq!(
            (
                hqe.host_id,
                hqe.aborted,
                hqe.deleted,
                hqe.started_on,
                hqe.finished_on
            ),
            (Some(2), true, false, Some(at("2015-01-02T03:05:00")), None),
            "{mode:?}"
        );
    }
}

async fn shard_id_key_overwrites_the_jobs_shard(db: TestDb) {
    setup(&db).await;

    for mode in MODES {
        // Shard 1 hands job 5 back to the master (the real master obeys).
        heartbeat_json(
            &db,
            upload_json(json!([{"id": 5, "shard_id": null}]), json!([])),
            mode,
        )
        .await
        .unwrap();

        assert_eq!(job_shard(&db, 5).await, None, "{mode:?}");

        // And takes it again (no other shard's job, so it is accepted).
        heartbeat_json(
            &db,
            upload_json(json!([{"id": 5, "shard_id": 1}]), json!([])),
            mode,
        )
        .await
        .unwrap();

        assert_eq!(job_shard(&db, 5).await, Some(1), "{mode:?}");
    }
}

async fn unreadable_value_refuses_the_call_naming_the_record_and_the_key(db: TestDb) {
    setup(&db).await;
    let job_before = job_row(&db, 5).await;
    let hqe_before = hqe_row(&db, 50).await;
    let cases = [
        (
            upload_json(json!([{"id": 5, "synch_count": "many"}]), json!([])),
            "job 5: `synch_count` must be an integer",
        ),
        (
            upload_json(json!([{"id": 5, "email_list": null}]), json!([])),
            "job 5: `email_list` must be a string (its column is NOT NULL)",
        ),
        (
            upload_json(json!([{"id": 5}]), json!([{"id": 50, "aborted": 2}])),
            "host queue entry 50: `aborted` must be a boolean",
        ),
        (
            upload_json(
                json!([{"id": 5}]),
                json!([{"id": 50, "started_on": "yesterday"}]),
            ),
            "host queue entry 50: `started_on` must be a datetime",
        ),
        (
            upload_json(json!([{"name": "no id"}]), json!([])),
            "jobs[0] has no `id`",
        ),
    ];

    for mode in MODES {
        for (kwargs, culprit) in &cases {
            let fault = heartbeat_json(&db, kwargs.clone(), mode).await.unwrap_err();

            assert!(
                fault.message.starts_with(culprit),
                "{mode:?}: {fault} should start with {culprit:?}"
            );
            assert_eq!(job_row(&db, 5).await, job_before, "{mode:?}: {culprit}");
            assert_eq!(hqe_row(&db, 50).await, hqe_before, "{mode:?}: {culprit}");
        }
    }
}

async fn records_are_checked_one_after_the_other_in_the_originals_order(db: TestDb) {
    setup(&db).await;
    let with_shard = json!({"id": 5, "shard": null});

    for mode in MODES {
        // The relation key of job 5 fails before job 99's absence is seen.
        let fault = heartbeat_json(
            &db,
            upload_json(json!([with_shard, {"id": 99}]), json!([])),
            mode,
        )
        .await
        .unwrap_err();
        assert_eq!(fault.name, "ValueError", "{mode:?}");

        // Another shard's job is skipped before its keys are looked at.
        heartbeat_json(
            &db,
            upload_json(
                json!([{"id": 6, "shard": null, "synch_count": "x"}]),
                json!([]),
            ),
            mode,
        )
        .await
        .unwrap();
    }
}

async fn strict_unknown_record_is_named_as_on_master(db: TestDb) {
    setup(&db).await;

    let job = refused(&db, &upload(vec![finished_job(99)], vec![])).await;
    let hqe = refused(&db, &upload(vec![finished_job(5)], vec![finished_hqe(999)])).await;

    assert_eq!(
        (job.name.as_str(), job.message.as_str()),
        (
            "UnallowedRecordsSentToMaster",
            "Object with pk 99 of type Job does not exist on master."
        )
    );
    assert_eq!(
        (hqe.name.as_str(), hqe.message.as_str()),
        (
            "UnallowedRecordsSentToMaster",
            "Object with pk 999 of type HostQueueEntry does not exist on master."
        )
    );
}

async fn upstream_unknown_job_fails_after_saving_the_jobs_before_it(db: TestDb) {
    setup(&db).await;
    // A host the heartbeat would assign if it went through.
    seed(&db, vec![host(4, &[1])], vec![], vec![]).await;
    let after_before = job_row(&db, 8).await;

    let fault = heartbeat_in(
        &db,
        &upload(
            vec![finished_job(5), finished_job(99), finished_job(8)],
            vec![finished_hqe(50)],
        ),
        Mode::Upstream,
    )
    .await
    .unwrap_err();

    assert_eq!(fault.name, "UnallowedRecordsSentToMain");
    assert_eq!(
        fault.message,
        "Object with pk 99 of type <class 'autotest_lib.frontend.afe.models.Job'> does not \
         exist on main."
    );
    assert_eq!(job_row(&db, 5).await.name.as_deref(), Some("job5-renamed"));
    assert_eq!(job_row(&db, 8).await, after_before);
    assert_eq!(
        hqe_row(&db, 50).await.status.as_deref(),
        Some("Running"),
        "entries come after every job"
    );
    assert_eq!(host_shard(&db, 4).await, None, "nothing was assigned");
}

async fn upstream_unknown_hqe_fails_after_saving_the_jobs_and_the_entries_before_it(db: TestDb) {
    setup(&db).await;

    let fault = heartbeat_in(
        &db,
        &upload(
            vec![finished_job(5), finished_job(8)],
            vec![finished_hqe(50), finished_hqe(999), finished_hqe(80)],
        ),
        Mode::Upstream,
    )
    .await
    .unwrap_err();

    assert_eq!(fault.name, "UnallowedRecordsSentToMain");
    assert_eq!(
        fault.message,
        "Object with pk 999 of type <class 'autotest_lib.frontend.afe.models.HostQueueEntry'> \
         does not exist on main."
    );
    assert_eq!(job_row(&db, 5).await.name.as_deref(), Some("job5-renamed"));
    assert_eq!(job_row(&db, 8).await.name.as_deref(), Some("job8-renamed"));
    assert_eq!(hqe_row(&db, 50).await.status.as_deref(), Some("Aborted"));
    assert_eq!(hqe_row(&db, 80).await.status.as_deref(), Some("Running"));
}
