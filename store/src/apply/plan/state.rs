//! The state the rules work on: the rows a batch touches, one plain map per
//! table, with a single undo log over all of them, so that one record's
//! changes can be taken back when the record turns out bad, like a
//! savepoint in memory.
//!
//! The maps can be read from anywhere in the plan but changed only here:
//! every change goes through [`State::change`], which logs the change that
//! undoes it. A [`Mark`] is the log's length, a rollback replays the log
//! backwards to a mark, a commit forgets the log. None of the three knows
//! the tables, so a new table cannot be left out of them; it needs a
//! [`Change`] variant to be written at all, and the one `match` in
//! [`Tables::swap`] then makes it restorable.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::ops::Deref;

use shard_model::{AclGroup, Host, Hqe, Job, Label, Shard, User};

use crate::apply::collation::NameColumn;
use crate::apply::snapshot::Snapshot;

/// A row of a table that is either already in the database or planned for
/// insertion by a record of this batch.
#[derive(Debug, Clone, Copy)]
pub(super) enum Slot<'a, T> {
    Existing,
    New(&'a T),
}

/// A link row (many-to-many): already there, or to be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Link {
    Existing,
    New,
}

/// A user: its login, which finds it too, and the record that inserts it
/// (`None` for a row the database has).
#[derive(Debug, Clone)]
pub(super) struct UserState<'a> {
    pub(super) login: Option<String>,
    pub(super) new: Option<&'a User>,
}

/// A host: the record that inserts it, and the columns §6 updates on an
/// existing one.
#[derive(Debug, Clone, Copy)]
pub(super) struct HostState<'a> {
    pub(super) new: Option<&'a Host>,
    pub(super) invalid: Option<bool>,
    pub(super) shard_id: Option<i32>,
}

/// A job: the record that inserts it, and the shard §6 updates on an
/// existing one.
#[derive(Debug, Clone, Copy)]
pub(super) struct JobState<'a> {
    pub(super) new: Option<&'a Job>,
    pub(super) shard_id: Option<i32>,
}

/// An entry: the record that inserts it, and the columns §6 updates on an
/// existing one.
#[derive(Debug, Clone, Copy)]
pub(super) struct HqeState<'a> {
    pub(super) new: Option<&'a Hqe>,
    pub(super) job_id: Option<i32>,
    pub(super) aborted: bool,
    pub(super) meta_host: Option<i32>,
}

/// An ordered `(name, value)` set: a host's attributes or a job's keyvals.
pub(super) type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// The rows a batch touches, as they are after the records applied so far:
/// one plain map per table, keyed the way the rules look rows up.
#[derive(Debug)]
pub(super) struct Tables<'a> {
    /// `afe_shards` by id.
    pub(super) shards: HashMap<i32, Slot<'a, Shard>>,
    /// `afe_labels` by id.
    pub(super) labels: HashMap<i32, Slot<'a, Label>>,
    /// Label ids by the collation key of their name, which is unique.
    pub(super) label_names: HashMap<String, i32>,
    /// `afe_users` by id.
    pub(super) users: HashMap<i32, UserState<'a>>,
    /// User ids by the collation key of their login, which is unique.
    pub(super) logins: HashMap<String, i32>,
    /// `afe_acl_groups` by id.
    pub(super) groups: HashMap<i32, Slot<'a, AclGroup>>,
    /// `afe_acl_groups_users` by (group, user).
    pub(super) group_users: HashMap<(i32, i32), Link>,
    /// `afe_hosts` by id.
    pub(super) hosts: HashMap<i32, HostState<'a>>,
    /// `afe_hosts_labels` by (host, label).
    pub(super) host_labels: HashMap<(i32, i32), Link>,
    /// `afe_acl_groups_hosts` by (group, host).
    pub(super) host_groups: HashMap<(i32, i32), Link>,
    /// `afe_host_attributes` by host, in id order.
    pub(super) attributes: HashMap<i32, Pairs<'a>>,
    /// `afe_jobs` by id.
    pub(super) jobs: HashMap<i32, JobState<'a>>,
    /// `afe_jobs_dependency_labels` by (job, label).
    pub(super) job_labels: HashMap<(i32, i32), Link>,
    /// `afe_host_queue_entries` by id.
    pub(super) hqes: HashMap<i32, HqeState<'a>>,
    /// `afe_job_keyvals` by job, in id order.
    pub(super) keyvals: HashMap<i32, Pairs<'a>>,
}

/// One change to one of the [`Tables`] (the variant is named after its
/// field): a key and the value it takes, `None` to remove the key. The undo
/// log holds, for every change made, the change that puts back what it
/// replaced.
#[derive(Debug)]
pub(super) enum Change<'a> {
    Shards(i32, Option<Slot<'a, Shard>>),
    Labels(i32, Option<Slot<'a, Label>>),
    LabelNames(String, Option<i32>),
    Users(i32, Option<UserState<'a>>),
    Logins(String, Option<i32>),
    Groups(i32, Option<Slot<'a, AclGroup>>),
    GroupUsers((i32, i32), Option<Link>),
    Hosts(i32, Option<HostState<'a>>),
    HostLabels((i32, i32), Option<Link>),
    HostGroups((i32, i32), Option<Link>),
    Attributes(i32, Option<Pairs<'a>>),
    Jobs(i32, Option<JobState<'a>>),
    JobLabels((i32, i32), Option<Link>),
    Hqes(i32, Option<HqeState<'a>>),
    Keyvals(i32, Option<Pairs<'a>>),
}

impl<'a> Tables<'a> {
    /// The rows of the snapshot, every one of them `Existing`.
    fn from_snapshot(s: &Snapshot) -> Self {
        Tables {
            shards: s.shards.iter().map(|&id| (id, Slot::Existing)).collect(),
            labels: s.labels.keys().map(|&id| (id, Slot::Existing)).collect(),
            label_names: s
                .labels
                .iter()
                .filter_map(|(&id, name)| {
                    let key = s.collation.key(NameColumn::LabelName, name.as_deref()?);
                    Some((key.to_owned(), id))
                })
                .collect(),
            users: s
                .users
                .iter()
                .map(|(&id, login)| {
                    let login = login.clone();
                    (id, UserState { login, new: None })
                })
                .collect(),
            logins: s
                .users
                .iter()
                .filter_map(|(&id, login)| {
                    let key = s.collation.key(NameColumn::Login, login.as_deref()?);
                    Some((key.to_owned(), id))
                })
                .collect(),
            groups: s.groups.iter().map(|&id| (id, Slot::Existing)).collect(),
            group_users: links(&s.group_users),
            hosts: s
                .hosts
                .iter()
                .map(|(&id, c)| {
                    let state = HostState {
                        new: None,
                        invalid: c.invalid,
                        shard_id: c.shard_id,
                    };
                    (id, state)
                })
                .collect(),
            host_labels: links(&s.host_labels),
            host_groups: links(&s.host_groups),
            attributes: pairs(&s.attributes),
            jobs: s
                .jobs
                .iter()
                .map(|(&id, &shard_id)| {
                    let state = JobState {
                        new: None,
                        shard_id,
                    };
                    (id, state)
                })
                .collect(),
            job_labels: links(&s.job_labels),
            hqes: s
                .hqes
                .iter()
                .map(|(&id, c)| {
                    let state = HqeState {
                        new: None,
                        job_id: c.job_id,
                        aborted: c.aborted,
                        meta_host: c.meta_host,
                    };
                    (id, state)
                })
                .collect(),
            keyvals: pairs(&s.keyvals),
        }
    }

    /// Makes `change` and returns the change that undoes it. The one place
    /// that maps a [`Change`] to its table: the compiler makes every
    /// variant have an arm.
    fn swap(&mut self, change: Change<'a>) -> Change<'a> {
        use Change as C;
        match change {
            C::Shards(key, value) => put(&mut self.shards, key, value, C::Shards),
            C::Labels(key, value) => put(&mut self.labels, key, value, C::Labels),
            C::LabelNames(key, value) => put(&mut self.label_names, key, value, C::LabelNames),
            C::Users(key, value) => put(&mut self.users, key, value, C::Users),
            C::Logins(key, value) => put(&mut self.logins, key, value, C::Logins),
            C::Groups(key, value) => put(&mut self.groups, key, value, C::Groups),
            C::GroupUsers(key, value) => put(&mut self.group_users, key, value, C::GroupUsers),
            C::Hosts(key, value) => put(&mut self.hosts, key, value, C::Hosts),
            C::HostLabels(key, value) => put(&mut self.host_labels, key, value, C::HostLabels),
            C::HostGroups(key, value) => put(&mut self.host_groups, key, value, C::HostGroups),
            C::Attributes(key, value) => put(&mut self.attributes, key, value, C::Attributes),
            C::Jobs(key, value) => put(&mut self.jobs, key, value, C::Jobs),
            C::JobLabels(key, value) => put(&mut self.job_labels, key, value, C::JobLabels),
            C::Hqes(key, value) => put(&mut self.hqes, key, value, C::Hqes),
            C::Keyvals(key, value) => put(&mut self.keyvals, key, value, C::Keyvals),
        }
    }
}

/// Sets `key` to `value` in `map` (`None` removes it) and returns, built
/// by `undo`, the change that puts back what was there.
fn put<'a, K: Hash + Eq + Clone, V>(
    map: &mut HashMap<K, V>,
    key: K,
    value: Option<V>,
    undo: fn(K, Option<V>) -> Change<'a>,
) -> Change<'a> {
    let old = match value {
        Some(value) => map.insert(key.clone(), value),
        None => map.remove(&key),
    };
    undo(key, old)
}

/// The link rows of a snapshot, all `Existing`.
fn links(set: &HashSet<(i32, i32)>) -> HashMap<(i32, i32), Link> {
    set.iter().map(|&pair| (pair, Link::Existing)).collect()
}

/// The name/value sets of a snapshot, as owned copies: only a record's
/// values are borrowed.
fn pairs<'a>(map: &HashMap<i32, Vec<(String, String)>>) -> HashMap<i32, Pairs<'a>> {
    map.iter()
        .map(|(&id, list)| {
            let list = list
                .iter()
                .map(|(k, v)| (Cow::Owned(k.clone()), Cow::Owned(v.clone())))
                .collect();
            (id, list)
        })
        .collect()
}

/// The [`Tables`] with one undo log over all of them. It reads as the
/// tables (through `Deref`); it changes only through [`State::change`].
#[derive(Debug)]
pub(super) struct State<'a> {
    tables: Tables<'a>,
    /// The changes that undo those made since the last commit, oldest first.
    undo: Vec<Change<'a>>,
}

/// A point to roll the state back to: the length of the undo log when it
/// was taken.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mark(usize);

impl<'a> State<'a> {
    /// The rows of the snapshot, with nothing to undo.
    pub(super) fn from_snapshot(s: &Snapshot) -> Self {
        State {
            tables: Tables::from_snapshot(s),
            undo: Vec::new(),
        }
    }

    /// Makes `change` and logs how to undo it.
    pub(super) fn change(&mut self, change: Change<'a>) {
        let undo = self.tables.swap(change);
        self.undo.push(undo);
    }

    /// The current point, to roll back to.
    pub(super) fn mark(&self) -> Mark {
        Mark(self.undo.len())
    }

    /// Undoes every change made after `mark`, newest first. The mark must
    /// be from after the last commit, which forgot what came before.
    pub(super) fn rollback(&mut self, mark: Mark) {
        // A mark from before the last commit has nothing left to undo.
        let from = mark.0.min(self.undo.len());
        for undo in self.undo.drain(from..).rev() {
            self.tables.swap(undo);
        }
    }

    /// Forgets the undo log: what the tables hold now stays.
    pub(super) fn commit(&mut self) {
        self.undo.clear();
    }
}

impl<'a> Deref for State<'a> {
    type Target = Tables<'a>;

    /// Read access only: there is no `DerefMut`, so no change escapes the
    /// log.
    fn deref(&self) -> &Tables<'a> {
        &self.tables
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{Change, Link, State};
    use crate::apply::snapshot::Snapshot;

    fn names(pairs: &[(&str, i32)]) -> HashMap<String, i32> {
        pairs.iter().map(|&(k, v)| (k.to_owned(), v)).collect()
    }

    #[test]
    fn rollback_restores_inserts_overwrites_and_removals_in_every_table() {
        let snapshot = Snapshot {
            labels: HashMap::from([(1, Some("one".to_owned()))]),
            users: HashMap::from([(7, Some("ann".to_owned()))]),
            ..Snapshot::default()
        };
        let mut state = State::from_snapshot(&snapshot);
        let mark = state.mark();
        state.change(Change::LabelNames("one".to_owned(), Some(2)));
        state.change(Change::LabelNames("two".to_owned(), Some(3)));
        state.change(Change::Logins("ann".to_owned(), None));
        state.change(Change::Users(7, None));
        state.change(Change::Logins("ann".to_owned(), None));
        state.change(Change::GroupUsers((1, 7), Some(Link::New)));
        assert_eq!(state.label_names, names(&[("one", 2), ("two", 3)]));
        assert_eq!(state.logins, names(&[]));
        assert!(!state.users.contains_key(&7));
        assert_eq!(state.group_users.get(&(1, 7)), Some(&Link::New));
        state.rollback(mark);
        assert_eq!(state.label_names, names(&[("one", 1)]));
        assert_eq!(state.logins, names(&[("ann", 7)]));
        assert!(state.users.contains_key(&7));
        assert!(state.group_users.is_empty());
    }

    #[test]
    fn rollback_keeps_what_came_before_the_mark_and_the_last_commit() {
        let mut state = State::from_snapshot(&Snapshot::default());
        state.change(Change::Logins("ann".to_owned(), Some(1)));
        state.commit();
        state.change(Change::Logins("bob".to_owned(), Some(2)));
        let mark = state.mark();
        state.change(Change::Logins("ann".to_owned(), Some(3)));
        state.change(Change::Logins("cy".to_owned(), Some(4)));
        state.rollback(mark);
        assert_eq!(state.logins, names(&[("ann", 1), ("bob", 2)]));
    }
}
