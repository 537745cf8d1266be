//! The rules of §6, one function per record type, applied to the state in
//! memory as the original's `deserialize` applies them to the database.
//!
//! A row to insert is checked against the adopted columns first, as the
//! database would check it, and a top-level record whose rules do not all
//! hold is undone whole ([`Planning::record`]).

use std::borrow::Cow;
use std::collections::HashSet;

use shard_model::{AclGroup, Defect, Host, Hqe, Job, JobKeyval, Label, Shard, ToOne, User};

use super::Reason;
use super::state::{Change, HostState, HqeState, JobState, Link, Pairs, Slot, State, UserState};
use crate::apply::collation::{Collation, NameColumn};
use crate::apply::snapshot::Snapshot;
use crate::apply::validate;
use crate::apply::{Item, Record};
use crate::layout::{InsertCheck, Layout};
use crate::schema::entity::{jobs, keyvals};
use crate::schema::rows;

/// One batch being planned: the state its records left so far, and what
/// the rules check a record against.
pub(super) struct Planning<'a, 's> {
    /// The rows as the records applied so far left them.
    state: State<'a>,
    /// The adopted tables: which foreign keys exist.
    layout: &'s Layout,
    /// What a row inserted into each table must fit.
    checks: Checks<'s>,
    /// Which names the database finds equal; the state's `label_names` and
    /// `logins` are keyed by their keys.
    collation: &'s Collation,
    /// Jobs outside the batch that exist, for the foreign keys on a job's
    /// parent and a suite keyval's job.
    referenced_jobs: &'s HashSet<i32>,
    /// The defects of the record being applied: fields that refuse it if
    /// their object's row is inserted.
    defects: &'a [Defect],
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
    /// Looks up the columns of each table in `layout`.
    fn new(layout: &'s Layout) -> Self {
        Checks {
            shards: layout.insert_check(&rows::SHARDS),
            labels: layout.insert_check(&rows::LABELS),
            users: layout.insert_check(&rows::USERS),
            groups: layout.insert_check(&rows::GROUPS),
            hosts: layout.insert_check(&rows::HOSTS),
            attributes: layout.insert_check(&rows::ATTRIBUTES),
            jobs: layout.insert_check(&rows::JOBS),
            hqes: layout.insert_check(&rows::HQES),
            keyvals: layout.insert_check(&rows::KEYVALS),
        }
    }
}

impl<'a, 's> Planning<'a, 's> {
    /// Starts from the rows of `snapshot`, checked against `layout`.
    pub(super) fn new(snapshot: &'s Snapshot, layout: &'s Layout) -> Self {
        Planning {
            state: State::from_snapshot(snapshot),
            layout,
            checks: Checks::new(layout),
            collation: &snapshot.collation,
            referenced_jobs: &snapshot.referenced_jobs,
            defects: &[],
        }
    }

    /// The state the records applied so far left, to diff.
    pub(super) fn state(&self) -> &State<'a> {
        &self.state
    }

    /// Applies one top-level record all or nothing: its changes stay if
    /// every rule holds, and are undone if one does not.
    pub(super) fn record(&mut self, item: &Item<'a>) -> Result<(), Reason> {
        self.defects = item.defects;
        let mark = self.state.mark();
        let outcome = match item.record {
            Record::Host(h) => self.host(h),
            Record::Job(j) => self.job(j),
            Record::SuiteKeyval(kv) => self.suite_keyval(kv),
        };
        match outcome {
            Ok(()) => self.state.commit(),
            Err(_) => self.state.rollback(mark),
        }
        outcome
    }

    /// Whether a suite keyval cannot be stored because its job is not on
    /// the shard and a foreign key on `afe_job_keyvals.job_id` says it
    /// must be (Django's schemas, §9).
    pub(super) fn keyval_without_job(&self, kv: &JobKeyval) -> bool {
        self.layout.has_foreign_key(keyvals::Column::JobId) && !self.has_job(kv.job_id)
    }
}

impl<'a> Planning<'a, '_> {
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

    /// A shard is inserted if it is new, never updated.
    fn shard(&mut self, s: &'a Shard, at: &dyn Fn() -> String) -> Result<(), Reason> {
        if !self.state.shards.contains_key(&s.id) {
            self.defect(at)?;
            validate::id("afe_shards", s.id)?;
            self.checks.shards.check(&rows::shard(s))?;
            self.state.change(Change::Shards(s.id, Some(Slot::New(s))));
        }
        Ok(())
    }

    /// A label is inserted if it is new, never updated; its name must not
    /// be another label's.
    fn label(&mut self, l: &'a Label, at: &dyn Fn() -> String) -> Result<(), Reason> {
        if self.state.labels.contains_key(&l.id) {
            return Ok(());
        }
        self.defect(at)?;
        validate::id("afe_labels", l.id)?;
        self.checks.labels.check(&rows::label(l))?;
        if let Some(name) = &l.name {
            let key = self.collation.key(NameColumn::LabelName, name).to_owned();
            if let Some(&other) = self.state.label_names.get(&key) {
                return Err(format!(
                    "label {} is named {name:?}, which is the name of label {other} here",
                    l.id
                ));
            }
            self.state.change(Change::LabelNames(key, Some(l.id)));
        }
        self.state.change(Change::Labels(l.id, Some(Slot::New(l))));
        Ok(())
    }

    /// Users are found by (login, id); a row matching only one of them is
    /// deleted first, with its group memberships (§6).
    fn user(&mut self, u: &'a User, at: &dyn Fn() -> String) -> Result<(), Reason> {
        if let Some(existing) = self.state.users.get(&u.id)
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
            && let Some(&other) = self.state.logins.get(key)
        {
            self.delete_user(other);
        }
        self.delete_user(u.id);
        if let Some(key) = key {
            self.state.change(Change::Logins(key, Some(u.id)));
        }
        let user = UserState {
            login: u.login.clone(),
            new: Some(u),
        };
        self.state.change(Change::Users(u.id, Some(user)));
        Ok(())
    }

    /// Deletes user `id`, if there is one, with its login and its group
    /// memberships, as the database's cascade would.
    fn delete_user(&mut self, id: i32) {
        let Some(user) = self.state.users.get(&id) else {
            return;
        };
        if let Some(login) = &user.login {
            let key = self.collation.key(NameColumn::Login, login).to_owned();
            self.state.change(Change::Logins(key, None));
        }
        self.state.change(Change::Users(id, None));
        let memberships: Vec<(i32, i32)> = (self.state.group_users.keys())
            .filter(|&&(_, user)| user == id)
            .copied()
            .collect();
        for pair in memberships {
            self.state.change(Change::GroupUsers(pair, None));
        }
    }

    /// A group is inserted if it is new, never updated; its users are
    /// applied and linked to it.
    fn group(&mut self, g: &'a AclGroup, at: &dyn Fn() -> String) -> Result<(), Reason> {
        if !self.state.groups.contains_key(&g.id) {
            self.defect(at)?;
            validate::id("afe_acl_groups", g.id)?;
            self.checks.groups.check(&rows::group(g))?;
            self.state.change(Change::Groups(g.id, Some(Slot::New(g))));
        }
        for (k, u) in g.users.iter().flatten().enumerate() {
            self.user(u, &|| format!("{}.users[{k}]", at()))?;
            let pair = (g.id, u.id);
            if !self.state.group_users.contains_key(&pair) {
                self.state.change(Change::GroupUsers(pair, Some(Link::New)));
            }
        }
        Ok(())
    }

    /// A host is inserted if it is new; an existing one takes only its
    /// whitelisted `invalid` and its shard. Groups and labels are added,
    /// attributes replaced when sent.
    fn host(&mut self, h: &'a Host) -> Result<(), Reason> {
        let mut host = match self.state.hosts.get(&h.id) {
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
                host.shard_id = Some(s.id);
            }
            ToOne::Null => host.shard_id = None,
            ToOne::Absent => {}
        }
        self.state.change(Change::Hosts(h.id, Some(host)));
        for (k, g) in h.aclgroup_set.iter().flatten().enumerate() {
            self.group(g, &|| format!("aclgroup_set[{k}]"))?;
            let pair = (g.id, h.id);
            if !self.state.host_groups.contains_key(&pair) {
                self.state.change(Change::HostGroups(pair, Some(Link::New)));
            }
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
            self.state.change(Change::Attributes(h.id, Some(set)));
        }
        for (k, l) in h.labels.iter().flatten().enumerate() {
            self.label(l, &|| format!("labels[{k}]"))?;
            let pair = (h.id, l.id);
            if !self.state.host_labels.contains_key(&pair) {
                self.state.change(Change::HostLabels(pair, Some(Link::New)));
            }
        }
        Ok(())
    }

    /// A job is inserted if it is new; an existing one takes only its
    /// shard. Labels are added, entries applied, keyvals replaced when
    /// sent.
    fn job(&mut self, j: &'a Job) -> Result<(), Reason> {
        let mut job = match self.state.jobs.get(&j.id) {
            Some(&existing) => existing,
            None => {
                self.defect(&String::new)?;
                validate::id("afe_jobs", j.id)?;
                let shard_id = j.shard.as_set().map(|s| s.id);
                let row = rows::job(self.layout, j, shard_id);
                self.checks.jobs.check(&row)?;
                if let Some(parent) = j.parent_job_id
                    && parent != j.id
                    && self.layout.has_foreign_key(jobs::Column::ParentJobId)
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
                job.shard_id = Some(s.id);
            }
            ToOne::Null => job.shard_id = None,
            ToOne::Absent => {}
        }
        self.state.change(Change::Jobs(j.id, Some(job)));
        for (k, l) in j.dependency_labels.iter().flatten().enumerate() {
            self.label(l, &|| format!("dependency_labels[{k}]"))?;
            let pair = (j.id, l.id);
            if !self.state.job_labels.contains_key(&pair) {
                self.state.change(Change::JobLabels(pair, Some(Link::New)));
            }
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
            self.state.change(Change::Keyvals(j.id, Some(set)));
        }
        Ok(())
    }

    /// An entry nested in job `job_id`: it belongs to that job whatever its
    /// own fields say, as the original's `relation_set.add` makes it.
    fn hqe(&mut self, q: &'a Hqe, job_id: i32, at: &dyn Fn() -> String) -> Result<(), Reason> {
        let mut entry = match self.state.hqes.get(&q.id) {
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
                    && !self.state.hosts.contains_key(&host)
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
                entry.meta_host = Some(l.id);
            }
            ToOne::Null => entry.meta_host = None,
            ToOne::Absent => {}
        }
        self.state.change(Change::Hqes(q.id, Some(entry)));
        Ok(())
    }

    /// A suite keyval is upserted by (`job_id`, `key`); nothing is deleted.
    fn suite_keyval(&mut self, kv: &'a JobKeyval) -> Result<(), Reason> {
        self.check_keyval(kv.job_id, kv)?;
        let mut set = (self.state.keyvals.get(&kv.job_id).cloned()).unwrap_or_default();
        let same = |a: &str, b: &str| self.collation.same(NameColumn::KeyvalKey, a, b);
        upsert(&mut set, same, "keyval", &kv.key, kv.value.as_deref())?;
        self.state.change(Change::Keyvals(kv.job_id, Some(set)));
        Ok(())
    }

    /// Checks a keyval's row against its columns.
    fn check_keyval(&self, job_id: i32, kv: &JobKeyval) -> Result<(), Reason> {
        // An absent value is checked by `upsert`; the name is checked here.
        let row = rows::pair(job_id, &kv.key, kv.value.as_deref().unwrap_or_default());
        self.checks.keyvals.check(&row)
    }

    /// Whether job `id` is on the shard, or planned by this batch.
    fn has_job(&self, id: i32) -> bool {
        self.state.jobs.contains_key(&id) || self.referenced_jobs.contains(&id)
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
