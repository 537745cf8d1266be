//! §8 step 2: the jobs and entries a shard uploads, on every backend.
//!
//! The master starts with shard 1 (label 1) running job 5 (entry 50, on
//! host 1) and job 8 (entry 80), and shard 2 (label 2) running job 6
//! (entry 60); job 9 (entry 90) was unassigned on the master (aborted
//! there after shard 1 fetched it).

// A panic is how a test fails; unwrapping here is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use shard_model::{HeartbeatRequest, Host, Hqe, Job, ToOne};
use shard_store::entity::{afe_host_queue_entries, afe_jobs};
use shard_store::testing::TestDb;

shard_store::backend_tests!(
    unknown_job_is_refused_and_nothing_is_written,
    unknown_hqe_is_refused_and_nothing_is_written,
    job_of_another_shard_is_skipped_and_the_others_are_persisted,
    hqe_of_a_job_of_another_shard_is_skipped,
    hqe_whose_job_is_not_uploaded_is_skipped,
    accepted_job_gets_every_local_field_overwritten,
    accepted_hqe_gets_every_local_field_overwritten,
    job_unassigned_on_the_master_is_accepted,
    uploaded_job_is_not_handed_back,
    job_carrying_a_relation_key_is_refused,
    hqe_carrying_a_meta_host_is_refused,
);

async fn setup(db: &TestDb) {
    add_shard(db, 1, &[1]).await;
    add_shard(db, 2, &[2]).await;
    let on = |id, label, shard_id| Host {
        shard: ToOne::Set(shard(shard_id)),
        ..host(id, &[label])
    };
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
        vec![on(1, 1, 1), on(2, 1, 1), on(3, 2, 2)],
        vec![
            assigned(5, 1, vec![running(50, 1)]),
            assigned(6, 2, vec![running(60, 3)]),
            assigned(8, 1, vec![running(80, 2)]),
            Job {
                shard: ToOne::Null,
                ..job(
                    9,
                    vec![Hqe {
                        aborted: true,
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
        aborted: true,
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

async fn unknown_job_is_refused_and_nothing_is_written(db: TestDb) {
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

async fn unknown_hqe_is_refused_and_nothing_is_written(db: TestDb) {
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

    heartbeat(&db, &upload(vec![finished_job(6), finished_job(5)], vec![])).await;

    assert_eq!(job_row(&db, 6).await, other_before);
    assert_eq!(job_row(&db, 5).await.name.as_deref(), Some("job5-renamed"));
}

async fn hqe_of_a_job_of_another_shard_is_skipped(db: TestDb) {
    setup(&db).await;
    let before = hqe_row(&db, 60).await;

    heartbeat(&db, &upload(vec![finished_job(6)], vec![finished_hqe(60)])).await;

    assert_eq!(hqe_row(&db, 60).await, before);
}

async fn hqe_whose_job_is_not_uploaded_is_skipped(db: TestDb) {
    setup(&db).await;
    let job_before = job_row(&db, 8).await;
    let hqe_before = hqe_row(&db, 80).await;

    heartbeat(
        &db,
        &upload(
            vec![finished_job(5)],
            vec![finished_hqe(50), finished_hqe(80)],
        ),
    )
    .await;

    assert_eq!(hqe_row(&db, 80).await, hqe_before);
    assert_eq!(job_row(&db, 8).await, job_before);
    assert_eq!(hqe_row(&db, 50).await.status.as_deref(), Some("Aborted"));
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

    for (key, job) in with_relation {
        let fault = refused(&db, &upload(vec![job], vec![])).await;

        assert_eq!(fault.name, "ValueError", "a job carrying `{key}`");
        assert_eq!(job_row(&db, 5).await, before, "a job carrying `{key}`");
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
    let fault = refused(&db, &upload(vec![finished_job(5)], vec![hqe])).await;

    assert_eq!(fault.name, "ValueError");
    assert_eq!(job_row(&db, 5).await, job_before);
    assert_eq!(hqe_row(&db, 50).await, hqe_before);
}
