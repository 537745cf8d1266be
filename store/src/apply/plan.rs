//! Planning: the rules of §6 applied record by record to an in-memory copy
//! of the rows involved, then turned into the set of writes that takes the
//! database from its snapshot to that state.
//!
//! Each record runs against the state left by the records before it, in
//! the original's order (hosts, jobs, suite keyvals), so duplicates, shared
//! labels and user conflicts between records behave exactly as if every
//! record had been applied alone, one after the other. A record that breaks
//! a rule the database would enforce (a width, a missing host, a label name
//! taken by another id) is rolled back in memory and rejected here, before
//! anything reaches the database.

use std::borrow::Cow;
use std::collections::HashSet;

use shard_model::{AclGroup, Defect, Host, Hqe, Job, JobKeyval, Label, Shard, ToOne, User};

use super::collation::{Collation, NameColumn};
use super::journal::Journal;
use super::snapshot::{HostCols, HqeCols, Snapshot};
use super::validate;
use super::{Item, Record};
use crate::layout::{InsertCheck, Layout};
use crate::rows;

/// A row of a table that is either already in the database or planned for
/// insertion by a record of this batch.
#[derive(Debug, Clone, Copy)]
enum Slot<'a, T> {
    Existing,
    New(&'a T),
}

/// A link row (many-to-many): already there, or to be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Existing,
    New,
}

#[derive(Debug, Clone)]
struct UserState<'a> {
    login: Option<String>,
    new: Option<&'a User>,
}

#[derive(Debug, Clone, Copy)]
struct HostState<'a> {
    new: Option<&'a Host>,
    invalid: Option<bool>,
    shard_id: Option<i32>,
}

#[derive(Debug, Clone, Copy)]
struct JobState<'a> {
    new: Option<&'a Job>,
    shard_id: Option<i32>,
}

#[derive(Debug, Clone, Copy)]
struct HqeState<'a> {
    new: Option<&'a Hqe>,
    job_id: Option<i32>,
    aborted: bool,
    meta_host: Option<i32>,
}

/// An ordered `(name, value)` set: a host's attributes or a job's keyvals.
type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// The rows a batch touches, as they will be after the records applied so
/// far. Every map is a [`Journal`], so one record's changes can be undone.
struct State<'a, 's> {
    /// The adopted tables: which foreign keys exist.
    layout: &'s Layout,
    /// What a row inserted into each table must fit.
    checks: Checks<'s>,
    /// Which names the database finds equal; the name journals
    /// (`label_names`, `logins`) are keyed by their keys.
    collation: &'s Collation,
    /// Jobs outside the batch that exist, for the foreign keys on a job's
    /// parent and a suite keyval's job.
    referenced_jobs: &'s HashSet<i32>,
    /// The defects of the record being applied: fields that refuse it if
    /// their object's row is inserted.
    defects: &'a [Defect],
    shards: Journal<i32, Slot<'a, Shard>>,
    labels: Journal<i32, Slot<'a, Label>>,
    label_names: Journal<String, i32>,
    users: Journal<i32, UserState<'a>>,
    logins: Journal<String, i32>,
    groups: Journal<i32, Slot<'a, AclGroup>>,
    group_users: Journal<(i32, i32), Link>,
    hosts: Journal<i32, HostState<'a>>,
    host_labels: Journal<(i32, i32), Link>,
    host_groups: Journal<(i32, i32), Link>,
    attributes: Journal<i32, Pairs<'a>>,
    jobs: Journal<i32, JobState<'a>>,
    job_labels: Journal<(i32, i32), Link>,
    hqes: Journal<i32, HqeState<'a>>,
    keyvals: Journal<i32, Pairs<'a>>,
}

/// Calls one method on every journal of a [`State`], so that adding a
/// table cannot forget one of mark, rollback or commit.
macro_rules! each_journal {
    ($state:expr, $f:ident $(, $arg:expr)?) => {
        [
            $state.shards.$f($($arg.shards)?),
            $state.labels.$f($($arg.labels)?),
            $state.label_names.$f($($arg.label_names)?),
            $state.users.$f($($arg.users)?),
            $state.logins.$f($($arg.logins)?),
            $state.groups.$f($($arg.groups)?),
            $state.group_users.$f($($arg.group_users)?),
            $state.hosts.$f($($arg.hosts)?),
            $state.host_labels.$f($($arg.host_labels)?),
            $state.host_groups.$f($($arg.host_groups)?),
            $state.attributes.$f($($arg.attributes)?),
            $state.jobs.$f($($arg.jobs)?),
            $state.job_labels.$f($($arg.job_labels)?),
            $state.hqes.$f($($arg.hqes)?),
            $state.keyvals.$f($($arg.keyvals)?),
        ]
    };
}

/// The insert checks of every table a record inserts into, with their
/// columns looked up once per batch rather than once per row.
struct Checks<'s> {
    shards: InsertCheck<'s>,
    labels: InsertCheck<'s>,
    users: InsertCheck<'s>,
    groups: InsertCheck<'s>,
    hosts: InsertCheck<'s>,
    attributes: InsertCheck<'s>,
    jobs: InsertCheck<'s>,
    hqes: InsertCheck<'s>,
    keyvals: InsertCheck<'s>,
}

impl<'s> Checks<'s> {
    fn new(layout: &'s Layout) -> Self {
        Checks {
            shards: layout.insert_check("afe_shards", &rows::SHARDS),
            labels: layout.insert_check("afe_labels", &rows::LABELS),
            users: layout.insert_check("afe_users", &rows::USERS),
            groups: layout.insert_check("afe_acl_groups", &rows::GROUPS),
            hosts: layout.insert_check("afe_hosts", &rows::HOSTS),
            attributes: layout.insert_check("afe_host_attributes", &rows::ATTRIBUTES),
            jobs: layout.insert_check("afe_jobs", &rows::JOBS),
            hqes: layout.insert_check("afe_host_queue_entries", &rows::HQES),
            keyvals: layout.insert_check("afe_job_keyvals", &rows::KEYVALS),
        }
    }
}

/// A position in every journal of a [`State`].
struct Mark {
    shards: usize,
    labels: usize,
    label_names: usize,
    users: usize,
    logins: usize,
    groups: usize,
    group_users: usize,
    hosts: usize,
    host_labels: usize,
    host_groups: usize,
    attributes: usize,
    jobs: usize,
    job_labels: usize,
    hqes: usize,
    keyvals: usize,
}

impl<'a, 's> State<'a, 's> {
    fn from_snapshot(s: &'s Snapshot, layout: &'s Layout) -> Self {
        State {
            layout,
            checks: Checks::new(layout),
            collation: &s.collation,
            referenced_jobs: &s.referenced_jobs,
            defects: &[],
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
                    (
                        id,
                        JobState {
                            new: None,
                            shard_id,
                        },
                    )
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

    fn mark(&self) -> Mark {
        let [
            shards,
            labels,
            label_names,
            users,
            logins,
            groups,
            group_users,
            hosts,
            host_labels,
            host_groups,
            attributes,
            jobs,
            job_labels,
            hqes,
            keyvals,
        ] = each_journal!(self, mark);
        Mark {
            shards,
            labels,
            label_names,
            users,
            logins,
            groups,
            group_users,
            hosts,
            host_labels,
            host_groups,
            attributes,
            jobs,
            job_labels,
            hqes,
            keyvals,
        }
    }

    fn rollback(&mut self, mark: &Mark) {
        each_journal!(self, rollback, mark);
    }

    fn commit(&mut self) {
        each_journal!(self, commit);
    }
}

fn links(set: &HashSet<(i32, i32)>) -> Journal<(i32, i32), Link> {
    set.iter().map(|&pair| (pair, Link::Existing)).collect()
}

fn pairs<'a>(
    map: &std::collections::HashMap<i32, Vec<(String, String)>>,
) -> Journal<i32, Pairs<'a>> {
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

/// Why a record cannot be applied.
type Reason = String;

// The rules of §6, one function per record type. Each mutates the state as
// the original's `deserialize` would mutate the database. A row to insert
// is checked against the adopted columns first, as the database would.
impl<'a> State<'a, '_> {
    /// Refuses the record if the object at `at` (a path as
    /// [`Defect::at`] writes it) had a bad field: its row is about to be
    /// inserted, and that field would be written.
    fn defect(&self, at: &dyn Fn() -> String) -> Result<(), Reason> {
        if self.defects.is_empty() {
            return Ok(());
        }
        let at = at();
        match self.defects.iter().find(|d| d.at == at) {
            Some(d) => Err(d.reason.clone()),
            None => Ok(()),
        }
    }

    fn shard(&mut self, s: &'a Shard, at: &dyn Fn() -> String) -> Result<(), Reason> {
        if !self.shards.contains(&s.id) {
            self.defect(at)?;
            validate::id("afe_shards", s.id)?;
            self.checks.shards.check(&rows::shard(s))?;
            self.shards.insert(s.id, Slot::New(s));
        }
        Ok(())
    }

    fn label(&mut self, l: &'a Label, at: &dyn Fn() -> String) -> Result<(), Reason> {
        if self.labels.contains(&l.id) {
            return Ok(());
        }
        self.defect(at)?;
        validate::id("afe_labels", l.id)?;
        self.checks.labels.check(&rows::label(l))?;
        if let Some(name) = &l.name {
            let key = self.collation.key(NameColumn::LabelName, name).to_owned();
            if let Some(&other) = self.label_names.get(&key) {
                return Err(format!(
                    "label {} is named {name:?}, which is the name of label {other} here",
                    l.id
                ));
            }
            self.label_names.insert(key, l.id);
        }
        self.labels.insert(l.id, Slot::New(l));
        Ok(())
    }

    /// Users are found by (login, id); a row matching only one of them is
    /// deleted first, with its group memberships (§6).
    fn user(&mut self, u: &'a User, at: &dyn Fn() -> String) -> Result<(), Reason> {
        if let Some(existing) = self.users.get(&u.id)
            && match (&existing.login, &u.login) {
                (Some(a), Some(b)) => self.collation.same(NameColumn::Login, a, b),
                (a, b) => a == b,
            }
        {
            return Ok(());
        }
        self.defect(at)?;
        validate::id("afe_users", u.id)?;
        self.checks.users.check(&rows::user(u))?;
        let key = (u.login.as_deref()).map(|l| self.collation.key(NameColumn::Login, l).to_owned());
        if let Some(key) = &key
            && let Some(&other) = self.logins.get(key)
        {
            self.delete_user(other);
        }
        self.delete_user(u.id);
        if let Some(key) = key {
            self.logins.insert(key, u.id);
        }
        let state = UserState {
            login: u.login.clone(),
            new: Some(u),
        };
        self.users.insert(u.id, state);
        Ok(())
    }

    fn delete_user(&mut self, id: i32) {
        let Some(user) = self.users.get(&id) else {
            return;
        };
        if let Some(login) = &user.login {
            let key = self.collation.key(NameColumn::Login, login).to_owned();
            self.logins.remove(&key);
        }
        self.users.remove(&id);
        self.group_users.remove_where(|&(_, user)| user == id);
    }

    fn group(&mut self, g: &'a AclGroup, at: &dyn Fn() -> String) -> Result<(), Reason> {
        if !self.groups.contains(&g.id) {
            self.defect(at)?;
            validate::id("afe_acl_groups", g.id)?;
            self.checks.groups.check(&rows::group(g))?;
            self.groups.insert(g.id, Slot::New(g));
        }
        for (k, u) in g.users.iter().flatten().enumerate() {
            self.user(u, &|| format!("{}.users[{k}]", at()))?;
            add_link(&mut self.group_users, (g.id, u.id));
        }
        Ok(())
    }

    fn host(&mut self, h: &'a Host) -> Result<(), Reason> {
        let mut state = match self.hosts.get(&h.id) {
            // Absent, the whitelisted flag stays as it is (§6).
            Some(&existing) => HostState {
                invalid: h.invalid.unwrap_or(existing.invalid),
                ..existing
            },
            None => {
                self.defect(&String::new)?;
                validate::id("afe_hosts", h.id)?;
                let shard_id = h.shard.as_set().map(|s| s.id);
                let invalid = h.invalid.flatten();
                let row = rows::host(self.layout, h, invalid, shard_id);
                self.checks.hosts.check(&row)?;
                HostState {
                    new: Some(h),
                    invalid,
                    shard_id: None,
                }
            }
        };
        match &h.shard {
            ToOne::Set(s) => {
                self.shard(s, &|| "shard".to_owned())?;
                state.shard_id = Some(s.id);
            }
            ToOne::Null => state.shard_id = None,
            ToOne::Absent => {}
        }
        self.hosts.insert(h.id, state);
        for (k, g) in h.aclgroup_set.iter().flatten().enumerate() {
            self.group(g, &|| format!("aclgroup_set[{k}]"))?;
            add_link(&mut self.host_groups, (g.id, h.id));
        }
        if let Some(attributes) = &h.hostattribute_set {
            let mut set: Pairs<'a> = Vec::with_capacity(attributes.len());
            for a in attributes {
                let row = rows::pair(h.id, &a.attribute, a.value.as_deref().unwrap_or_default());
                self.checks.attributes.check(&row)?;
                let same = |a: &str, b: &str| self.collation.same(NameColumn::Attribute, a, b);
                upsert(
                    &mut set,
                    same,
                    "attribute",
                    &a.attribute,
                    a.value.as_deref(),
                )?;
            }
            self.attributes.insert(h.id, set);
        }
        for (k, l) in h.labels.iter().flatten().enumerate() {
            self.label(l, &|| format!("labels[{k}]"))?;
            add_link(&mut self.host_labels, (h.id, l.id));
        }
        Ok(())
    }

    fn job(&mut self, j: &'a Job) -> Result<(), Reason> {
        let mut state = match self.jobs.get(&j.id) {
            Some(&existing) => existing,
            None => {
                self.defect(&String::new)?;
                validate::id("afe_jobs", j.id)?;
                let shard_id = j.shard.as_set().map(|s| s.id);
                let row = rows::job(self.layout, j, shard_id);
                self.checks.jobs.check(&row)?;
                if let Some(parent) = j.parent_job_id
                    && parent != j.id
                    && self.layout.has_foreign_key("afe_jobs", "parent_job_id")
                    && !self.has_job(parent)
                {
                    return Err(format!(
                        "job {}'s parent job {parent} is not on this shard, and \
                         `afe_jobs.parent_job_id` has a foreign key here",
                        j.id
                    ));
                }
                JobState {
                    new: Some(j),
                    shard_id: None,
                }
            }
        };
        match &j.shard {
            ToOne::Set(s) => {
                self.shard(s, &|| "shard".to_owned())?;
                state.shard_id = Some(s.id);
            }
            ToOne::Null => state.shard_id = None,
            ToOne::Absent => {}
        }
        self.jobs.insert(j.id, state);
        for (k, l) in j.dependency_labels.iter().flatten().enumerate() {
            self.label(l, &|| format!("dependency_labels[{k}]"))?;
            add_link(&mut self.job_labels, (j.id, l.id));
        }
        for (k, q) in j.hostqueueentry_set.iter().flatten().enumerate() {
            self.hqe(q, j.id, &|| format!("hostqueueentry_set[{k}]"))?;
        }
        if let Some(keyvals) = &j.jobkeyval_set {
            let mut set: Pairs<'a> = Vec::with_capacity(keyvals.len());
            for kv in keyvals {
                self.check_keyval(j.id, kv)?;
                let same = |a: &str, b: &str| self.collation.same(NameColumn::KeyvalKey, a, b);
                upsert(&mut set, same, "keyval", &kv.key, kv.value.as_deref())?;
            }
            self.keyvals.insert(j.id, set);
        }
        Ok(())
    }

    /// An entry nested in job `job_id`: it belongs to that job whatever its
    /// own fields say, as the original's `relation_set.add` makes it.
    fn hqe(&mut self, q: &'a Hqe, job_id: i32, at: &dyn Fn() -> String) -> Result<(), Reason> {
        let mut state = match self.hqes.get(&q.id) {
            // Absent, the whitelisted flag stays as it is (§6).
            Some(&existing) => HqeState {
                aborted: q.aborted.unwrap_or(existing.aborted),
                job_id: Some(job_id),
                ..existing
            },
            None => {
                self.defect(at)?;
                validate::id("afe_host_queue_entries", q.id)?;
                let meta_host = q.meta_host.as_set().map(|l| l.id);
                let aborted = q.aborted.unwrap_or(false);
                let row = rows::hqe(self.layout, q, Some(job_id), aborted, meta_host);
                self.checks.hqes.check(&row)?;
                if let Some(host) = q.host_id
                    && !self.hosts.contains(&host)
                {
                    return Err(format!(
                        "entry {} runs on host {host}, which this shard does not have",
                        q.id
                    ));
                }
                HqeState {
                    new: Some(q),
                    job_id: Some(job_id),
                    aborted,
                    meta_host: None,
                }
            }
        };
        match &q.meta_host {
            ToOne::Set(l) => {
                self.label(l, &|| format!("{}.meta_host", at()))?;
                state.meta_host = Some(l.id);
            }
            ToOne::Null => state.meta_host = None,
            ToOne::Absent => {}
        }
        self.hqes.insert(q.id, state);
        Ok(())
    }

    /// A suite keyval is upserted by (`job_id`, `key`); nothing is deleted.
    fn suite_keyval(&mut self, kv: &'a JobKeyval) -> Result<(), Reason> {
        self.check_keyval(kv.job_id, kv)?;
        let mut set = self.keyvals.get(&kv.job_id).cloned().unwrap_or_default();
        let same = |a: &str, b: &str| self.collation.same(NameColumn::KeyvalKey, a, b);
        upsert(&mut set, same, "keyval", &kv.key, kv.value.as_deref())?;
        self.keyvals.insert(kv.job_id, set);
        Ok(())
    }
}

impl State<'_, '_> {
    fn check_keyval(&self, job_id: i32, kv: &JobKeyval) -> Result<(), Reason> {
        // An absent value is checked by `upsert`; the name is checked here.
        let row = rows::pair(job_id, &kv.key, kv.value.as_deref().unwrap_or_default());
        self.checks.keyvals.check(&row)
    }

    /// Whether job `id` is on the shard, or planned by this batch.
    fn has_job(&self, id: i32) -> bool {
        self.jobs.contains(&id) || self.referenced_jobs.contains(&id)
    }

    /// Whether a suite keyval cannot be stored because its job is not on
    /// the shard and a foreign key on `afe_job_keyvals.job_id` says it
    /// must be (Django's schemas, §9).
    fn keyval_without_job(&self, kv: &JobKeyval) -> bool {
        self.layout.has_foreign_key("afe_job_keyvals", "job_id") && !self.has_job(kv.job_id)
    }
}

fn add_link(links: &mut Journal<(i32, i32), Link>, pair: (i32, i32)) {
    if !links.contains(&pair) {
        links.insert(pair, Link::New);
    }
}

/// Sets `name` to `value` in an ordered set: every existing entry of that
/// name (as `same` compares names) gets the value (a table without a
/// unique key may hold several), or a new entry is appended.
fn upsert<'a>(
    set: &mut Pairs<'a>,
    same: impl Fn(&str, &str) -> bool,
    what: &str,
    name: &'a str,
    value: Option<&'a str>,
) -> Result<(), Reason> {
    let mut found = false;
    for (n, v) in set.iter_mut() {
        if same(n, name) {
            // Absent, the whitelisted value stays as it is (§6).
            if let Some(value) = value {
                *v = Cow::Borrowed(value);
            }
            found = true;
        }
    }
    if !found {
        let Some(value) = value else {
            return Err(format!("{what} {name:?} is new and has no `value`"));
        };
        set.push((Cow::Borrowed(name), Cow::Borrowed(value)));
    }
    Ok(())
}

/// A host to insert, with the columns its relations set.
#[derive(Debug)]
pub(crate) struct NewHost<'a> {
    pub host: &'a Host,
    pub invalid: Option<bool>,
    pub shard_id: Option<i32>,
}

/// A job to insert, with its shard.
#[derive(Debug)]
pub(crate) struct NewJob<'a> {
    pub job: &'a Job,
    pub shard_id: Option<i32>,
}

/// An entry to insert, with its job and meta host.
#[derive(Debug)]
pub(crate) struct NewHqe<'a> {
    pub hqe: &'a Hqe,
    pub job_id: Option<i32>,
    pub aborted: bool,
    pub meta_host: Option<i32>,
}

/// Everything one batch writes, per table, in foreign-key order. Lists are
/// sorted so the statements are the same from one run to the next.
#[derive(Debug, Default)]
pub(crate) struct Writes<'a> {
    pub shards: Vec<&'a Shard>,
    pub labels: Vec<&'a Label>,
    pub users_deleted: Vec<i32>,
    pub users: Vec<&'a User>,
    pub groups: Vec<&'a AclGroup>,
    /// (group, user)
    pub group_users: Vec<(i32, i32)>,
    pub hosts: Vec<NewHost<'a>>,
    pub host_invalid: Vec<(i32, Option<bool>)>,
    pub host_shard: Vec<(i32, Option<i32>)>,
    /// (group, host)
    pub host_groups: Vec<(i32, i32)>,
    /// (host, label)
    pub host_labels: Vec<(i32, i32)>,
    /// Hosts whose attribute rows are deleted before the new set goes in.
    pub attributes_cleared: Vec<i32>,
    /// (host, attribute, value)
    pub attributes: Vec<(i32, Cow<'a, str>, Cow<'a, str>)>,
    pub jobs: Vec<NewJob<'a>>,
    pub job_shard: Vec<(i32, Option<i32>)>,
    /// (job, label)
    pub job_labels: Vec<(i32, i32)>,
    pub hqes: Vec<NewHqe<'a>>,
    pub hqe_job: Vec<(i32, Option<i32>)>,
    pub hqe_aborted: Vec<(i32, bool)>,
    pub hqe_meta_host: Vec<(i32, Option<i32>)>,
    /// Jobs whose keyval rows are deleted before the new set goes in.
    pub keyvals_cleared: Vec<i32>,
    /// (job, key, value)
    pub keyvals: Vec<(i32, Cow<'a, str>, Cow<'a, str>)>,
}

impl Writes<'_> {
    pub(crate) fn is_empty(&self) -> bool {
        let Writes {
            shards,
            labels,
            users_deleted,
            users,
            groups,
            group_users,
            hosts,
            host_invalid,
            host_shard,
            host_groups,
            host_labels,
            attributes_cleared,
            attributes,
            jobs,
            job_shard,
            job_labels,
            hqes,
            hqe_job,
            hqe_aborted,
            hqe_meta_host,
            keyvals_cleared,
            keyvals,
        } = self;
        shards.is_empty()
            && labels.is_empty()
            && users_deleted.is_empty()
            && users.is_empty()
            && groups.is_empty()
            && group_users.is_empty()
            && hosts.is_empty()
            && host_invalid.is_empty()
            && host_shard.is_empty()
            && host_groups.is_empty()
            && host_labels.is_empty()
            && attributes_cleared.is_empty()
            && attributes.is_empty()
            && jobs.is_empty()
            && job_shard.is_empty()
            && job_labels.is_empty()
            && hqes.is_empty()
            && hqe_job.is_empty()
            && hqe_aborted.is_empty()
            && hqe_meta_host.is_empty()
            && keyvals_cleared.is_empty()
            && keyvals.is_empty()
    }
}

/// The outcome of planning one batch.
pub(crate) struct Plan<'a> {
    /// Indices (into the batch) of the records that passed planning.
    pub accepted: Vec<usize>,
    /// Indices of the records refused by planning, with why.
    pub rejected: Vec<(usize, Reason)>,
    /// Indices of the suite keyvals refused because their job is not on
    /// the shard (kept apart: the master sends them every heartbeat).
    pub without_job: Vec<usize>,
    /// What the accepted records write.
    pub writes: Writes<'a>,
}

/// Applies `items` in order to the snapshot in memory and derives the
/// writes.
pub(crate) fn plan<'a>(items: &[Item<'a>], snapshot: &Snapshot, layout: &Layout) -> Plan<'a> {
    let mut state = State::from_snapshot(snapshot, layout);
    let mut accepted = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    let mut without_job = Vec::new();
    for (i, item) in items.iter().enumerate() {
        state.defects = item.defects;
        let mark = state.mark();
        let outcome = match item.record {
            Record::Host(h) => state.host(h),
            Record::Job(j) => state.job(j),
            Record::SuiteKeyval(kv) if state.keyval_without_job(kv) => {
                without_job.push(i);
                continue;
            }
            Record::SuiteKeyval(kv) => state.suite_keyval(kv),
        };
        match outcome {
            Ok(()) => {
                state.commit();
                accepted.push(i);
            }
            Err(reason) => {
                state.rollback(&mark);
                rejected.push((i, reason));
            }
        }
    }
    Plan {
        accepted,
        rejected,
        without_job,
        writes: diff(&state, snapshot),
    }
}

/// The writes that turn the snapshot into the state.
fn diff<'a>(state: &State<'a, '_>, snap: &Snapshot) -> Writes<'a> {
    let mut w = Writes::default();
    for (_, slot) in state.shards.iter() {
        if let Slot::New(s) = slot {
            w.shards.push(*s);
        }
    }
    w.shards.sort_by_key(|s| s.id);
    for (_, slot) in state.labels.iter() {
        if let Slot::New(l) = slot {
            w.labels.push(*l);
        }
    }
    w.labels.sort_by_key(|l| l.id);
    w.users_deleted = snap
        .users
        .keys()
        .copied()
        .filter(|id| state.users.get(id).is_none_or(|u| u.new.is_some()))
        .collect();
    w.users_deleted.sort_unstable();
    w.users = state.users.iter().filter_map(|(_, u)| u.new).collect();
    w.users.sort_by_key(|u| u.id);
    for (_, slot) in state.groups.iter() {
        if let Slot::New(g) = slot {
            w.groups.push(*g);
        }
    }
    w.groups.sort_by_key(|g| g.id);
    w.group_users = new_links(&state.group_users);
    for (&id, h) in state.hosts.iter() {
        match (h.new, snap.hosts.get(&id)) {
            (Some(host), _) => w.hosts.push(NewHost {
                host,
                invalid: h.invalid,
                shard_id: h.shard_id,
            }),
            (None, Some(&HostCols { invalid, shard_id })) => {
                if h.invalid != invalid {
                    w.host_invalid.push((id, h.invalid));
                }
                if h.shard_id != shard_id {
                    w.host_shard.push((id, h.shard_id));
                }
            }
            (None, None) => {}
        }
    }
    w.hosts.sort_by_key(|h| h.host.id);
    w.host_invalid.sort_unstable();
    w.host_shard.sort_unstable();
    w.host_groups = new_links(&state.host_groups);
    w.host_labels = new_links(&state.host_labels);
    (w.attributes_cleared, w.attributes) = changed_sets(&state.attributes, &snap.attributes);
    for (&id, j) in state.jobs.iter() {
        match (j.new, snap.jobs.get(&id)) {
            (Some(job), _) => w.jobs.push(NewJob {
                job,
                shard_id: j.shard_id,
            }),
            (None, Some(&shard_id)) if j.shard_id != shard_id => {
                w.job_shard.push((id, j.shard_id));
            }
            _ => {}
        }
    }
    w.jobs.sort_by_key(|j| j.job.id);
    w.job_shard.sort_unstable();
    w.job_labels = new_links(&state.job_labels);
    for (&id, q) in state.hqes.iter() {
        match (q.new, snap.hqes.get(&id)) {
            (Some(hqe), _) => w.hqes.push(NewHqe {
                hqe,
                job_id: q.job_id,
                aborted: q.aborted,
                meta_host: q.meta_host,
            }),
            (
                None,
                Some(&HqeCols {
                    job_id,
                    aborted,
                    meta_host,
                }),
            ) => {
                if q.job_id != job_id {
                    w.hqe_job.push((id, q.job_id));
                }
                if q.aborted != aborted {
                    w.hqe_aborted.push((id, q.aborted));
                }
                if q.meta_host != meta_host {
                    w.hqe_meta_host.push((id, q.meta_host));
                }
            }
            (None, None) => {}
        }
    }
    w.hqes.sort_by_key(|q| q.hqe.id);
    w.hqe_job.sort_unstable();
    w.hqe_aborted.sort_unstable();
    w.hqe_meta_host.sort_unstable();
    (w.keyvals_cleared, w.keyvals) = changed_sets(&state.keyvals, &snap.keyvals);
    w
}

fn new_links(links: &Journal<(i32, i32), Link>) -> Vec<(i32, i32)> {
    let mut new: Vec<_> = links
        .iter()
        .filter(|(_, link)| **link == Link::New)
        .map(|(&pair, _)| pair)
        .collect();
    new.sort_unstable();
    new
}

/// For name/value sets (attributes, keyvals): the owners whose rows must be
/// deleted, and the rows to insert. An unchanged set writes nothing.
#[allow(clippy::type_complexity)]
fn changed_sets<'a>(
    state: &Journal<i32, Pairs<'a>>,
    snap: &std::collections::HashMap<i32, Vec<(String, String)>>,
) -> (Vec<i32>, Vec<(i32, Cow<'a, str>, Cow<'a, str>)>) {
    let mut cleared = Vec::new();
    let mut rows = Vec::new();
    let mut owners: Vec<i32> = state.iter().map(|(&id, _)| id).collect();
    owners.sort_unstable();
    for owner in owners {
        let Some(set) = state.get(&owner) else {
            continue;
        };
        let before = snap.get(&owner).map(Vec::as_slice).unwrap_or_default();
        let same = set.len() == before.len()
            && set
                .iter()
                .zip(before)
                .all(|((n, v), (bn, bv))| n == bn && v == bv);
        if same {
            continue;
        }
        if !before.is_empty() {
            cleared.push(owner);
        }
        rows.extend(set.iter().map(|(n, v)| (owner, n.clone(), v.clone())));
    }
    (cleared, rows)
}
