//! §8 step 5: which jobs go to a shard, on every backend. Shard 1 owns
//! label 1 (host 1 carries it), shard 2 label 2 (host 2 carries it);
//! label 7 belongs to no shard (host 7 carries only it).

use crate::common::*;
use sea_orm::DbBackend;
use shard_master::{Mode, assign};
use shard_model::{HeartbeatRequest, Hqe, Job, JobKeyval, ToOne};
use shard_store::testing::TestDb;

shard_store::backend_tests!(
    job_with_a_shard_dependency_label_is_assigned,
    job_with_a_shard_meta_host_is_assigned,
    job_with_an_entry_on_a_shard_host_is_assigned,
    entry_on_a_shard_host_with_a_foreign_meta_host_does_not_assign_the_job,
    job_with_a_complete_entry_is_not_assigned,
    job_with_an_active_entry_is_not_assigned,
    job_without_entries_is_not_assigned,
    hostless_job_stays_on_the_master,
    known_job_is_not_resent,
    known_job_with_an_aborted_entry_is_resent,
    job_of_another_shard_is_never_handed_out,
    assigned_job_the_shard_does_not_know_is_resent_until_known,
    assigned_job_is_returned_with_its_dependencies,
    jobs_of_two_shards_never_cross,
    job_matching_both_shards_goes_to_the_first_to_ask,
    job_matching_both_shards_goes_to_one_when_candidates_interleave,
    job_matching_both_shards_goes_to_one_across_concurrent_transactions,
    strict_job_stays_with_its_shard_when_its_board_moves,
    upstream_job_follows_its_board_to_another_shard,
    upstream_known_job_with_an_aborted_entry_is_resent_while_nothing_started,
    upstream_known_aborted_job_is_not_resent_once_an_entry_started,
    strict_known_aborted_job_of_the_shard_is_resent_even_once_an_entry_started,
    strict_known_aborted_job_of_another_shard_is_not_resent,
    unknown_job_with_an_aborted_entry_and_a_started_one_is_not_handed_out,
);

/// Two shards and their hosts; `jobs` seeded after them.
async fn setup(db: &TestDb, jobs: Vec<Job>) {
    add_shard(db, 1, &[1]).await;
    add_shard(db, 2, &[2]).await;
    seed(
        db,
        vec![host(1, &[1]), host(2, &[2]), host(7, &[7])],
        jobs,
        vec![],
    )
    .await;
}

/// The jobs shard 1's first heartbeat gets, and the shard job 5 is
/// assigned to after it.
async fn first_heartbeat(db: &TestDb) -> (Vec<i32>, Option<i32>) {
    let response = heartbeat(db, &request(1)).await;
    (job_ids(&response), job_shard(db, 5).await)
}

fn knowing(jobs: &[i32]) -> HeartbeatRequest {
    HeartbeatRequest {
        known_job_ids: jobs.to_vec(),
        ..request(1)
    }
}

fn mine(j: Job) -> Job {
    Job {
        shard: ToOne::Set(shard(1)),
        ..j
    }
}

async fn job_with_a_shard_dependency_label_is_assigned(db: TestDb) {
    // The entry asks for any host of label 7, which no shard owns.
    let j = Job {
        dependency_labels: Some(vec![label(1)]),
        ..job(5, vec![hqe_meta(50, 7)])
    };
    setup(&db, vec![j]).await;

    assert_eq!(first_heartbeat(&db).await, (vec![5], Some(1)));
}

async fn job_with_a_shard_meta_host_is_assigned(db: TestDb) {
    setup(&db, vec![job(5, vec![hqe_meta(50, 1)])]).await;

    assert_eq!(first_heartbeat(&db).await, (vec![5], Some(1)));
}

async fn job_with_an_entry_on_a_shard_host_is_assigned(db: TestDb) {
    setup(&db, vec![job(5, vec![hqe_on(50, 1)])]).await;

    assert_eq!(first_heartbeat(&db).await, (vec![5], Some(1)));
}

async fn entry_on_a_shard_host_with_a_foreign_meta_host_does_not_assign_the_job(db: TestDb) {
    // As the original's SQL: the host rule is for entries without a meta
    // host; this one's meta host (label 7) is nobody's.
    let entry = Hqe {
        meta_host: ToOne::Set(label(7)),
        ..hqe_on(50, 1)
    };
    setup(&db, vec![job(5, vec![entry])]).await;

    assert_eq!(first_heartbeat(&db).await, (vec![], None));
}

async fn job_with_a_complete_entry_is_not_assigned(db: TestDb) {
    let done = Hqe {
        status: Some("Completed".to_owned()),
        complete: Some(true),
        ..hqe_meta(51, 1)
    };
    setup(&db, vec![job(5, vec![hqe_meta(50, 1), done])]).await;

    assert_eq!(first_heartbeat(&db).await, (vec![], None));
}

async fn job_with_an_active_entry_is_not_assigned(db: TestDb) {
    let running = Hqe {
        status: Some("Running".to_owned()),
        active: Some(true),
        ..hqe_meta(51, 1)
    };
    setup(&db, vec![job(5, vec![hqe_meta(50, 1), running])]).await;

    assert_eq!(first_heartbeat(&db).await, (vec![], None));
}

async fn job_without_entries_is_not_assigned(db: TestDb) {
    let j = Job {
        dependency_labels: Some(vec![label(1)]),
        ..job(5, vec![])
    };
    setup(&db, vec![j]).await;

    assert_eq!(first_heartbeat(&db).await, (vec![], None));
}

async fn hostless_job_stays_on_the_master(db: TestDb) {
    // No host, no meta host, a dependency on a label no shard owns.
    let j = Job {
        dependency_labels: Some(vec![label(7)]),
        ..job(5, vec![hqe_hostless(50)])
    };
    setup(&db, vec![j]).await;

    let response = heartbeat(&db, &request(1)).await;
    let other = heartbeat(&db, &request(2)).await;

    assert_eq!(job_ids(&response), Vec::<i32>::new());
    assert_eq!(job_ids(&other), Vec::<i32>::new());
    assert_eq!(job_shard(&db, 5).await, None);
}

async fn known_job_is_not_resent(db: TestDb) {
    setup(&db, vec![mine(job(5, vec![hqe_meta(50, 1)]))]).await;

    let response = heartbeat(&db, &knowing(&[5])).await;

    assert_eq!(job_ids(&response), Vec::<i32>::new());
    assert_eq!(job_shard(&db, 5).await, Some(1));
}

async fn known_job_with_an_aborted_entry_is_resent(db: TestDb) {
    let aborted = Hqe {
        aborted: Some(true),
        ..hqe_meta(50, 1)
    };
    setup(&db, vec![mine(job(5, vec![aborted]))]).await;

    let response = heartbeat(&db, &knowing(&[5])).await;

    assert_eq!(job_ids(&response), vec![5]);
    let entries = response.jobs[0].hostqueueentry_set.as_ref().unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|q| (q.id, q.aborted.unwrap_or(false)))
            .collect::<Vec<_>>(),
        vec![(50, true)]
    );
}

async fn job_of_another_shard_is_never_handed_out(db: TestDb) {
    // The job matches shard 1's label but shard 2 already holds it (the
    // label moved, say): shard 1 must not get it, known or not.
    let theirs = Job {
        shard: ToOne::Set(shard(2)),
        ..job(5, vec![hqe_meta(50, 1)])
    };
    setup(&db, vec![theirs]).await;

    let response = heartbeat(&db, &request(1)).await;

    assert_eq!(job_ids(&response), Vec::<i32>::new());
    assert_eq!(job_shard(&db, 5).await, Some(2));
}

async fn assigned_job_the_shard_does_not_know_is_resent_until_known(db: TestDb) {
    setup(&db, vec![job(5, vec![hqe_meta(50, 1)])]).await;
    let first = heartbeat(&db, &request(1)).await;
    assert_eq!(job_ids(&first), vec![5]);

    // The response was lost: the shard still does not know job 5.
    let second = heartbeat(&db, &request(1)).await;
    let third = heartbeat(&db, &knowing(&[5])).await;

    assert_eq!(job_ids(&second), vec![5]);
    assert_eq!(job_ids(&third), Vec::<i32>::new());
    assert_eq!(job_shard(&db, 5).await, Some(1));
}

async fn assigned_job_is_returned_with_its_dependencies(db: TestDb) {
    let j = Job {
        parent_job_id: Some(1000),
        dependency_labels: Some(vec![label(1)]),
        jobkeyval_set: Some(vec![keyval(5, "suite", "bvt")]),
        ..job(5, vec![hqe_on(50, 1), hqe_meta(51, 1)])
    };
    setup(&db, vec![j]).await;

    let response = heartbeat(&db, &request(1)).await;

    assert_eq!(
        response.jobs,
        vec![Job {
            parent_job_id: Some(1000),
            dependency_labels: Some(vec![label(1)]),
            hostqueueentry_set: Some(vec![hqe_on(50, 1), hqe_meta(51, 1)]),
            jobkeyval_set: Some(vec![JobKeyval {
                id: Some(1),
                ..keyval(5, "suite", "bvt")
            }]),
            shard: ToOne::Set(shard(1)),
            ..job(5, vec![])
        }]
    );
}

async fn jobs_of_two_shards_never_cross(db: TestDb) {
    let by_label = |id, label_id| Job {
        dependency_labels: Some(vec![label(label_id)]),
        ..job(id, vec![hqe_hostless(id * 10)])
    };
    setup(
        &db,
        vec![
            job(5, vec![hqe_meta(50, 1)]),
            job(6, vec![hqe_meta(60, 2)]),
            by_label(7, 1),
            by_label(8, 2),
            job(9, vec![hqe_on(90, 1)]),
            job(10, vec![hqe_on(100, 2)]),
        ],
    )
    .await;

    let one = heartbeat(&db, &request(1)).await;
    let two = heartbeat(&db, &request(2)).await;
    let one_again = heartbeat(&db, &knowing(&[5, 7, 9])).await;

    assert_eq!(job_ids(&one), vec![5, 7, 9]);
    assert_eq!(job_ids(&two), vec![6, 8, 10]);
    assert_eq!(job_ids(&one_again), Vec::<i32>::new());
    let mut owners = Vec::new();
    for id in 5..=10 {
        owners.push((id, job_shard(&db, id).await));
    }
    assert_eq!(
        owners,
        vec![
            (5, Some(1)),
            (6, Some(2)),
            (7, Some(1)),
            (8, Some(2)),
            (9, Some(1)),
            (10, Some(2)),
        ]
    );
}

async fn job_matching_both_shards_goes_to_the_first_to_ask(db: TestDb) {
    let both = Job {
        dependency_labels: Some(vec![label(2)]),
        ..job(5, vec![hqe_meta(50, 1)])
    };
    setup(&db, vec![both]).await;

    let one = heartbeat(&db, &request(1)).await;
    let two = heartbeat(&db, &request(2)).await;

    assert_eq!(job_ids(&one), vec![5]);
    assert_eq!(job_ids(&two), Vec::<i32>::new());
    assert_eq!(job_shard(&db, 5).await, Some(1));
}

async fn job_matching_both_shards_goes_to_one_when_candidates_interleave(db: TestDb) {
    let both = Job {
        dependency_labels: Some(vec![label(2)]),
        ..job(5, vec![hqe_meta(50, 1)])
    };
    setup(&db, vec![both]).await;
    let conn = db.store.connection();

    let for_one = assign::job_candidates(conn, 1, &[], Mode::Strict)
        .await
        .unwrap();
    let for_two = assign::job_candidates(conn, 2, &[], Mode::Strict)
        .await
        .unwrap();
    assert_eq!((for_one.clone(), for_two.clone()), (vec![5], vec![5]));
    let to_two = assign::assign_jobs(conn, 2, &for_two, Mode::Strict)
        .await
        .unwrap();
    let to_one = assign::assign_jobs(conn, 1, &for_one, Mode::Strict)
        .await
        .unwrap();

    assert_eq!(to_two, vec![5]);
    assert_eq!(to_one, Vec::<i32>::new());
    assert_eq!(job_shard(&db, 5).await, Some(2));
}

async fn job_matching_both_shards_goes_to_one_across_concurrent_transactions(db: TestDb) {
    if db.store.backend() == DbBackend::Sqlite {
        // SQLite serializes write transactions (BEGIN IMMEDIATE): a second
        // heartbeat cannot start before the first commits, so there is no
        // interleaving to test here.
        return;
    }
    let both = Job {
        dependency_labels: Some(vec![label(2)]),
        ..job(5, vec![hqe_meta(50, 1)])
    };
    setup(&db, vec![both]).await;
    let conn = db.store.connection();

    // Both heartbeats select the job before either assigns it.
    let one = shard_store::begin_write(conn).await.unwrap();
    let two = shard_store::begin_write(conn).await.unwrap();
    let for_one = assign::job_candidates(&one, 1, &[], Mode::Strict)
        .await
        .unwrap();
    let for_two = assign::job_candidates(&two, 2, &[], Mode::Strict)
        .await
        .unwrap();
    assert_eq!((for_one.clone(), for_two.clone()), (vec![5], vec![5]));
    let to_one = assign::assign_jobs(&one, 1, &for_one, Mode::Strict)
        .await
        .unwrap();
    // Shard 2's update waits for shard 1's lock on the row (or runs after
    // the commit): either way it must see the job taken.
    let second = tokio::spawn(async move {
        let to_two = assign::assign_jobs(&two, 2, &for_two, Mode::Strict)
            .await
            .unwrap();
        two.commit().await.unwrap();
        to_two
    });
    one.commit().await.unwrap();
    let to_two = second.await.unwrap();

    assert_eq!(to_one, vec![5]);
    assert_eq!(to_two, Vec::<i32>::new());
    assert_eq!(job_shard(&db, 5).await, Some(1));
}

/// Job 5 (entry 50 queued on any host of label 1) is shard 1's; then label
/// 1 moves to shard 2.
async fn board_moved(db: &TestDb) {
    setup(db, vec![mine(job(5, vec![hqe_meta(50, 1)]))]).await;
    move_label(db, 1, 2).await;
}

async fn strict_job_stays_with_its_shard_when_its_board_moves(db: TestDb) {
    board_moved(&db).await;

    let new_shard = heartbeat_in(&db, &request(2), Mode::Strict).await.unwrap();

    assert_eq!(job_ids(&new_shard), Vec::<i32>::new());
    assert_eq!(job_shard(&db, 5).await, Some(1));
}

async fn upstream_job_follows_its_board_to_another_shard(db: TestDb) {
    board_moved(&db).await;

    let new_shard = heartbeat_in(&db, &request(2), Mode::Upstream)
        .await
        .unwrap();

    assert_eq!(job_ids(&new_shard), vec![5]);
    assert_eq!(job_shard(&db, 5).await, Some(2));
}

/// Shard 1's job 5: entry 50 aborted on the master while still queued,
/// entry 51 as given.
fn aborted_job(other: Hqe) -> Job {
    let aborted = Hqe {
        aborted: Some(true),
        ..hqe_meta(50, 1)
    };
    mine(job(5, vec![aborted, other]))
}

fn running(id: i32) -> Hqe {
    Hqe {
        status: Some("Running".to_owned()),
        active: Some(true),
        ..hqe_meta(id, 1)
    }
}

fn completed(id: i32) -> Hqe {
    Hqe {
        status: Some("Completed".to_owned()),
        complete: Some(true),
        ..hqe_meta(id, 1)
    }
}

async fn upstream_known_job_with_an_aborted_entry_is_resent_while_nothing_started(db: TestDb) {
    setup(&db, vec![aborted_job(hqe_meta(51, 1))]).await;

    let response = heartbeat_in(&db, &knowing(&[5]), Mode::Upstream)
        .await
        .unwrap();

    assert_eq!(job_ids(&response), vec![5]);
    let entries = response.jobs[0].hostqueueentry_set.as_ref().unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|q| (q.id, q.aborted.unwrap_or(false)))
            .collect::<Vec<_>>(),
        vec![(50, true), (51, false)]
    );
}

async fn upstream_known_aborted_job_is_not_resent_once_an_entry_started(db: TestDb) {
    // Job 5 has an entry running, job 6 one complete, on the master.
    let finished = Job {
        id: 6,
        hostqueueentry_set: Some(vec![
            Hqe {
                aborted: Some(true),
                ..hqe_meta(60, 1)
            },
            completed(61),
        ]),
        ..aborted_job(completed(61))
    };
    setup(&db, vec![aborted_job(running(51)), finished]).await;

    let response = heartbeat_in(&db, &knowing(&[5, 6]), Mode::Upstream)
        .await
        .unwrap();

    assert_eq!(job_ids(&response), Vec::<i32>::new());
}

async fn strict_known_aborted_job_of_the_shard_is_resent_even_once_an_entry_started(db: TestDb) {
    setup(&db, vec![aborted_job(running(51))]).await;

    let response = heartbeat_in(&db, &knowing(&[5]), Mode::Strict)
        .await
        .unwrap();

    assert_eq!(job_ids(&response), vec![5]);
    let entries = response.jobs[0].hostqueueentry_set.as_ref().unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|q| (q.id, q.aborted.unwrap_or(false)))
            .collect::<Vec<_>>(),
        vec![(50, true), (51, false)]
    );
    assert_eq!(job_shard(&db, 5).await, Some(1));
}

async fn strict_known_aborted_job_of_another_shard_is_not_resent(db: TestDb) {
    let theirs = Job {
        shard: ToOne::Set(shard(2)),
        ..aborted_job(running(51))
    };
    setup(&db, vec![theirs]).await;

    let response = heartbeat_in(&db, &knowing(&[5]), Mode::Strict)
        .await
        .unwrap();

    assert_eq!(job_ids(&response), Vec::<i32>::new());
    assert_eq!(job_shard(&db, 5).await, Some(2));
}

async fn unknown_job_with_an_aborted_entry_and_a_started_one_is_not_handed_out(db: TestDb) {
    let unassigned = Job {
        shard: ToOne::Null,
        ..aborted_job(running(51))
    };
    setup(&db, vec![unassigned]).await;

    for mode in MODES {
        let response = heartbeat_in(&db, &request(1), mode).await.unwrap();

        assert_eq!(job_ids(&response), Vec::<i32>::new(), "{mode:?}");
        assert_eq!(job_shard(&db, 5).await, None, "{mode:?}");
    }
}
