//! Planning a lab: every row of every table, in memory, as a pure
//! function of the spec and its seed. Ids are handed out in order from 1
//! in each table, after checking that the spec's totals fit 32-bit ids.

use chrono::{NaiveDateTime, TimeDelta};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::IntoActiveModel;
use shard_store::schema::entity::{
    attributes, group_hosts, group_users, groups, host_labels, hosts, hqes, job_labels, jobs,
    keyvals, labels, shard_labels, shards, users,
};

use super::names::*;
use super::{LabSpec, LabSummary, SeedError};
use crate::rng::SplitMix64;

/// The rows of a lab, one list per table, and their summary.
#[derive(Default)]
pub(super) struct Lab {
    pub(super) shards: Vec<shards::ActiveModel>,
    pub(super) labels: Vec<labels::ActiveModel>,
    pub(super) shard_labels: Vec<shard_labels::ActiveModel>,
    pub(super) users: Vec<users::ActiveModel>,
    pub(super) groups: Vec<groups::ActiveModel>,
    pub(super) group_users: Vec<group_users::ActiveModel>,
    pub(super) hosts: Vec<hosts::ActiveModel>,
    pub(super) group_hosts: Vec<group_hosts::ActiveModel>,
    pub(super) host_labels: Vec<host_labels::ActiveModel>,
    pub(super) attributes: Vec<attributes::ActiveModel>,
    pub(super) jobs: Vec<jobs::ActiveModel>,
    pub(super) job_labels: Vec<job_labels::ActiveModel>,
    pub(super) hqes: Vec<hqes::ActiveModel>,
    pub(super) keyvals: Vec<keyvals::ActiveModel>,
    pub(super) summary: LabSummary,
}

/// `count` rows of `what`, refused beyond what a 32-bit id counts (`None`:
/// beyond even `u64`).
fn fits(what: &'static str, count: Option<u64>) -> Result<u64, SeedError> {
    match count {
        Some(n) if n <= i32::MAX as u64 => Ok(n),
        _ => Err(SeedError::TooLarge {
            what,
            count: count.unwrap_or(u64::MAX),
        }),
    }
}

/// Checks that every table's rows fit 32-bit ids (link rows have ids too).
fn check_sizes(s: &LabSpec) -> Result<(), SeedError> {
    let n = u64::from;
    let boards = fits("afe_labels", n(s.shards).checked_mul(n(s.boards_per_shard)))?;
    fits("afe_labels", boards.checked_add(n(s.extra_labels_per_host)))?;
    fits(
        "afe_users",
        n(s.acl_groups).checked_mul(n(s.users_per_group)),
    )?;
    let hosts = fits("afe_hosts", boards.checked_mul(n(s.hosts_per_board)))?;
    let labels_each = 1 + n(s.extra_labels_per_host);
    fits("afe_hosts_labels", hosts.checked_mul(labels_each))?;
    fits("afe_acl_groups_hosts", hosts.checked_mul(n(s.acl_groups)))?;
    fits(
        "afe_host_attributes",
        hosts.checked_mul(n(s.attributes_per_host)),
    )?;
    let suites = fits("afe_jobs", boards.checked_mul(n(s.suites_per_board)))?;
    let children = fits("afe_jobs", suites.checked_mul(n(s.jobs_per_suite)))?;
    fits("afe_jobs", suites.checked_add(children))?;
    let entries = children
        .checked_mul(n(s.hqes_per_job))
        .and_then(|c| c.checked_add(suites));
    fits("afe_host_queue_entries", entries)?;
    fits("afe_jobs_dependency_labels", children.checked_mul(2))?;
    let keyvals = suites
        .checked_mul(n(s.keyvals_per_suite))
        .zip(children.checked_mul(n(s.keyvals_per_job)))
        .and_then(|(a, b)| a.checked_add(b));
    fits("afe_job_keyvals", keyvals)?;
    Ok(())
}

/// Plans every row of the lab of `spec`.
pub(super) fn plan(spec: &LabSpec) -> Result<Lab, SeedError> {
    check_sizes(spec)?;
    let mut lab = Lab::default();
    let mut rng = SplitMix64::new(spec.seed);
    let people = plan_people(&mut lab, spec);
    let boards = plan_shards_and_labels(&mut lab, spec);
    plan_hosts(&mut lab, spec, &boards, &people, &mut rng);
    plan_jobs(&mut lab, spec, &boards, &people, &mut rng);
    Ok(lab)
}

/// A board of the lab: its label and where its hosts are racked.
struct Board {
    name: String,
    label_id: i32,
    shard: u32,
    row: u32,
}

/// The users and groups hosts and jobs refer to.
struct People {
    group_ids: Vec<i32>,
    /// `(id, login)` of every user, in id order.
    users: Vec<(i32, String)>,
}

/// Users `user1...` in ACL groups `acl-group1...`, `users_per_group` each.
fn plan_people(lab: &mut Lab, spec: &LabSpec) -> People {
    let mut people = People {
        group_ids: Vec::new(),
        users: Vec::new(),
    };
    let mut group_ids = Ids::default();
    let mut user_ids = Ids::default();
    for _ in 0..spec.acl_groups {
        let group_id = group_ids.next();
        people.group_ids.push(group_id);
        lab.groups.push(
            groups::Model {
                id: group_id,
                name: Some(format!("acl-group{group_id}")),
                description: Some(format!("Seeded ACL group {group_id}")),
            }
            .into_active_model(),
        );
        for _ in 0..spec.users_per_group {
            let id = user_ids.next();
            let login = format!("user{id}");
            people.users.push((id, login.clone()));
            lab.users.push(
                users::Model {
                    id,
                    login: Some(login),
                    access_level: Some(0),
                    reboot_before: 1,
                    reboot_after: 2,
                    show_experimental: false,
                    drone_set_id: None,
                }
                .into_active_model(),
            );
            lab.group_users.push(group_users::ActiveModel {
                id: NotSet,
                aclgroup_id: Set(Some(group_id)),
                user_id: Set(Some(id)),
            });
        }
    }
    lab.summary.users = lab.users.len() as u64;
    lab.summary.groups = lab.groups.len() as u64;
    people
}

/// A plain label: no platform, no kernel config, usable by any job.
fn label(id: i32, name: String) -> labels::ActiveModel {
    labels::Model::plain(id, name).into_active_model()
}

/// Shards `shard1...`, each owning its `board:<name>` labels, then the
/// extra labels, which no shard owns.
fn plan_shards_and_labels(lab: &mut Lab, spec: &LabSpec) -> Vec<Board> {
    let mut label_ids = Ids::default();
    let mut shard_ids = Ids::default();
    let mut boards = Vec::new();
    for shard in 1..=spec.shards {
        let shard_id = shard_ids.next();
        lab.shards.push(
            shards::Model {
                id: shard_id,
                hostname: format!("shard{shard}"),
            }
            .into_active_model(),
        );
        for row in 1..=spec.boards_per_shard {
            let name = nth(&BOARDS, boards.len());
            let label_id = label_ids.next();
            lab.labels.push(label(label_id, format!("board:{name}")));
            lab.shard_labels.push(shard_labels::ActiveModel {
                id: NotSet,
                shard_id: Set(shard_id),
                label_id: Set(label_id),
            });
            boards.push(Board {
                name,
                label_id,
                shard,
                row,
            });
        }
    }
    for k in 0..spec.extra_labels_per_host {
        lab.labels
            .push(label(label_ids.next(), nth(&EXTRA_LABELS, k as usize)));
    }
    lab.summary.shards = lab.shards.len() as u64;
    lab.summary.boards = boards.len() as u64;
    lab.summary.labels = lab.labels.len() as u64;
    boards
}

/// The ids of the extra labels, which follow the board labels.
fn extra_label_ids(spec: &LabSpec, boards: &[Board]) -> Vec<i32> {
    let first = boards.last().map_or(0, |b| b.label_id);
    (1..=spec.extra_labels_per_host)
        .map(|k| first.saturating_add(i32::try_from(k).unwrap_or(i32::MAX)))
        .collect()
}

/// Every Nth of a sequence of ids, N = 0 meaning none.
fn every(n: u32, id: i32) -> bool {
    n != 0 && i64::from(id) % i64::from(n) == 0
}

/// `hosts_per_board` hosts per board, with their board and extra labels,
/// in every ACL group, with attributes; every Nth leased or locked.
fn plan_hosts(
    lab: &mut Lab,
    spec: &LabSpec,
    boards: &[Board],
    people: &People,
    rng: &mut SplitMix64,
) {
    let extras = extra_label_ids(spec, boards);
    let locker = people.users.first().map(|(id, _)| *id);
    let mut host_ids = Ids::default();
    for board in boards {
        for h in 0..spec.hosts_per_board {
            let id = host_ids.next();
            let rack = format!(
                "chromeos{}-row{}-rack{}",
                board.shard,
                board.row,
                h / HOSTS_PER_RACK + 1
            );
            let hostname = format!("{rack}-host{}", h % HOSTS_PER_RACK + 1);
            let locked = every(spec.locked_every, id);
            let leased = every(spec.leased_every, id);
            lab.summary.locked += u64::from(locked);
            lab.summary.leased += u64::from(leased);
            lab.hosts.push(
                hosts::Model {
                    id,
                    hostname: Some(hostname.clone()),
                    locked: Some(locked),
                    synch_id: None,
                    status: Some(HOST_READY.to_owned()),
                    invalid: Some(false),
                    protection: 0,
                    locked_by_id: locker.filter(|_| locked),
                    lock_time: locked.then_some(EPOCH),
                    dirty: false,
                    leased,
                    shard_id: None,
                    lock_reason: Some(match locked {
                        true => "seeded: out for repair".to_owned(),
                        false => String::new(),
                    }),
                }
                .into_active_model(),
            );
            for label_id in std::iter::once(board.label_id).chain(extras.iter().copied()) {
                lab.host_labels.push(host_labels::ActiveModel {
                    id: NotSet,
                    host_id: Set(Some(id)),
                    label_id: Set(Some(label_id)),
                });
            }
            for &group_id in &people.group_ids {
                lab.group_hosts.push(group_hosts::ActiveModel {
                    id: NotSet,
                    aclgroup_id: Set(Some(group_id)),
                    host_id: Set(Some(id)),
                });
            }
            for k in 0..spec.attributes_per_host {
                let attribute = nth(&ATTRIBUTES, k as usize);
                let value = match attribute.as_str() {
                    "serial_number" => format!("5CD{:07X}", rng.below(0x1000_0000)),
                    "HWID" => format!(
                        "{} A{}B-C{}D",
                        board.name.to_uppercase(),
                        rng.below(10),
                        rng.below(10)
                    ),
                    "powerunit_hostname" => format!("{rack}-rpm1"),
                    "powerunit_outlet" => format!(".A{}", h % HOSTS_PER_RACK + 1),
                    "servo_host" => format!("{hostname}-servo"),
                    "servo_port" => "9999".to_owned(),
                    _ => format!("value{k}"),
                };
                lab.attributes.push(attributes::ActiveModel {
                    id: NotSet,
                    host_id: Set(id),
                    attribute: Set(attribute),
                    value: Set(value),
                });
            }
        }
    }
    lab.summary.hosts = lab.hosts.len() as u64;
    lab.summary.attributes = lab.attributes.len() as u64;
}

/// The fields every seeded job shares; the caller sets the rest.
fn job(
    id: i32,
    owner: &str,
    name: String,
    priority: i32,
    created_on: NaiveDateTime,
) -> jobs::Model {
    jobs::Model {
        owner: Some(owner.to_owned()),
        name: Some(name),
        priority: Some(priority),
        created_on: Some(created_on),
        ..jobs::Model::with_defaults(id)
    }
}

/// A queued entry of `job_id`: hostless when `meta_host` is `None`.
fn queued_entry(id: i32, job_id: i32, meta_host: Option<i32>) -> hqes::ActiveModel {
    hqes::Model {
        meta_host,
        ..hqes::Model::queued(id, job_id)
    }
    .into_active_model()
}

/// `count` keyvals of `job_id`, named from [`KEYVALS`].
fn push_keyvals(lab: &mut Lab, job_id: i32, count: u32, build: &str, suite: &str) {
    for k in 0..count {
        let key = nth(&KEYVALS, k as usize);
        let value = match key.as_str() {
            "build" => build.to_owned(),
            "suite" => suite.to_owned(),
            "experimental" => "False".to_owned(),
            "job_retries" => "0".to_owned(),
            "firmware_rw_build" | "firmware_ro_build" => format!("{build}-firmware"),
            _ => format!("value{k}"),
        };
        lab.keyvals.push(keyvals::ActiveModel {
            id: NotSet,
            job_id: Set(job_id),
            key: Set(key),
            value: Set(value),
        });
    }
}

/// Per board, `suites_per_board` hostless suite jobs, each followed by its
/// `jobs_per_suite` children with meta-host entries on the board.
fn plan_jobs(
    lab: &mut Lab,
    spec: &LabSpec,
    boards: &[Board],
    people: &People,
    rng: &mut SplitMix64,
) {
    let pool = extra_label_ids(spec, boards).first().copied();
    let mut job_ids = Ids::default();
    let mut hqe_ids = Ids::default();
    let mut suite_number: usize = 0;
    for board in boards {
        let build = format!("{}-release/{VERSION}", board.name);
        for t in 0..spec.suites_per_board {
            let suite = nth(&SUITES, t as usize);
            // Suites take turns among the users; their children follow.
            let owner = match people.users.len() {
                0 => "chromeos-test",
                n => people.users[suite_number % n].1.as_str(),
            };
            let priority = PRIORITIES[rng.below(PRIORITIES.len() as u64) as usize];
            // Ten minutes apart, give or take five; children a second apart.
            let created = suite_number as u64 * 600 + rng.below(300);
            suite_number += 1;

            let suite_id = job_ids.next();
            lab.jobs.push(
                jobs::Model {
                    control_file: Some(format!(
                        "import common\n\
                         from autotest_lib.server.cros.dynamic_suite import dynamic_suite\n\n\
                         dynamic_suite.run(build='{build}', board='{}', name='{suite}', job=job)\n",
                        board.name
                    )),
                    control_type: Some(CONTROL_SERVER),
                    ..job(
                        suite_id,
                        owner,
                        format!("{build}/{suite}"),
                        priority,
                        at(created),
                    )
                }
                .into_active_model(),
            );
            lab.hqes.push(queued_entry(hqe_ids.next(), suite_id, None));
            push_keyvals(lab, suite_id, spec.keyvals_per_suite, &build, &suite);
            lab.summary.suite_jobs += 1;

            for j in 0..spec.jobs_per_suite {
                let test = nth(&TESTS, j as usize);
                let id = job_ids.next();
                lab.jobs.push(
                    jobs::Model {
                        control_file: Some(format!("job.run_test('{test}')\n")),
                        control_type: Some(CONTROL_CLIENT),
                        parent_job_id: Some(suite_id),
                        require_ssp: Some(false),
                        ..job(
                            id,
                            owner,
                            format!("{build}/{suite}/{test}"),
                            priority,
                            at(created + 1 + u64::from(j)),
                        )
                    }
                    .into_active_model(),
                );
                for label_id in std::iter::once(board.label_id).chain(pool) {
                    lab.job_labels.push(job_labels::ActiveModel {
                        id: NotSet,
                        job_id: Set(id),
                        label_id: Set(label_id),
                    });
                }
                for _ in 0..spec.hqes_per_job {
                    lab.hqes
                        .push(queued_entry(hqe_ids.next(), id, Some(board.label_id)));
                }
                push_keyvals(lab, id, spec.keyvals_per_job, &build, &suite);
                lab.summary.child_jobs += 1;
            }
        }
    }
    lab.summary.hqes = lab.hqes.len() as u64;
    lab.summary.keyvals = lab.keyvals.len() as u64;
}

/// Adds `seconds` to the epoch (the spec's sizes keep it far from overflow).
fn at(seconds: u64) -> NaiveDateTime {
    i64::try_from(seconds)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .and_then(|d| EPOCH.checked_add_signed(d))
        .unwrap_or(EPOCH)
}

/// Ids handed out in order from 1; the spec's totals are checked against
/// `i32::MAX` before any is taken.
#[derive(Default)]
struct Ids(i32);

impl Ids {
    fn next(&mut self) -> i32 {
        self.0 = self.0.saturating_add(1);
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_lab_has_sixty_jobs_on_twenty_four_hosts() {
        let lab = plan(&LabSpec::default()).unwrap();
        assert_eq!(
            lab.summary,
            LabSummary {
                shards: 3,
                boards: 6,
                labels: 8,
                hosts: 24,
                leased: 3,
                locked: 4,
                users: 3,
                groups: 1,
                attributes: 48,
                suite_jobs: 12,
                child_jobs: 48,
                hqes: 108,
                keyvals: 180,
            }
        );
    }

    #[test]
    fn the_bench_lab_has_the_sizes_it_promises() {
        let lab = plan(&LabSpec::bench()).unwrap();
        let s = lab.summary;
        assert_eq!((s.hosts, s.leased, s.child_jobs), (2_000, 0, 10_000));
        assert_eq!(lab.host_labels.len(), 2_000 * 4);
        assert_eq!(lab.group_hosts.len(), 2_000 * 2);
        assert_eq!(lab.attributes.len(), 2_000 * 4);
        assert_eq!(s.users, 10);
        assert_eq!(s.hqes, 100 + 10_000 * 2);
        assert_eq!(lab.job_labels.len(), 10_000 * 2);
        assert_eq!(s.keyvals, 500 + 10_000 * 3);
    }

    #[test]
    fn the_same_seed_gives_the_same_lab() {
        let attribute_values = |seed| {
            let lab = plan(&LabSpec {
                seed,
                ..LabSpec::default()
            })
            .unwrap();
            lab.attributes
                .iter()
                .filter_map(|a| a.value.try_as_ref().cloned())
                .collect::<Vec<_>>()
        };
        assert_eq!(attribute_values(3), attribute_values(3));
        assert_ne!(attribute_values(3), attribute_values(4));
    }

    #[test]
    fn a_lab_beyond_32_bit_ids_is_refused() {
        let spec = LabSpec {
            hosts_per_board: u32::MAX,
            ..LabSpec::default()
        };
        assert!(matches!(
            plan(&spec),
            Err(SeedError::TooLarge {
                what: "afe_hosts",
                ..
            })
        ));
    }
}
