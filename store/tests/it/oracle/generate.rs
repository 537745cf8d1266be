//! Generators of heartbeat sequences for the oracle: 1–4 steps, each a
//! response (as JSON, the way a master writes it) or a write of the shard's
//! own scheduler, over a small id space so that records collide.
//!
//! What they make, besides plain valid records: shared labels, ACL groups
//! and users between hosts; users whose login and id conflict; duplicates
//! inside one response; resends with changed fields (small value pools);
//! attribute and keyval sets that grow, shrink, empty or are absent;
//! aborts; `incorrect_host_ids` (with a non-integer now and then);
//! non-positive ids; values that break a column width or range, a foreign
//! key (entries on hosts the shard never gets), a unique label name, a type,
//! a NUL byte (PostgreSQL refuses it); absent, `null` and set to-one
//! relations; absent, `null` and empty lists; numbers as numeric strings
//! and floats, booleans as 0/1, datetimes in every shape of §5.
//!
//! A feature that hits a known divergence can be turned off
//! ([`Features`]); where it only bites on a record that already exists,
//! turning it off gives such a record a fresh identity instead (a new id,
//! or a new attribute/keyval name), so the bad value is still tried on a
//! new record.

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use serde_json::{Map, Value, json};

/// Which generator features are on.
#[derive(Debug, Clone, Copy)]
pub struct Features {
    /// Floats in integer fields (`3.0`, `2.5`), ids included.
    pub floats: bool,
    /// Bad values (absent, null, wrong type, too long or too big, NUL) in
    /// local fields a record that exists does not write, and in fields that
    /// are never written (an attribute's or keyval's `id`, a nested keyval's
    /// `job_id`). Off: such records get a fresh identity, and the fields
    /// never written keep good values.
    pub bad_unwritten_fields: bool,
    /// A whitelisted field (`invalid`, `aborted`, `value`) absent from a
    /// record that exists. Off: such records get a fresh identity.
    pub absent_whitelisted: bool,
    /// `null` for a to-many relation.
    pub null_lists: bool,
    /// Names that differ only in case or trailing blanks, which MySQL's
    /// default collation compares equal.
    pub case_variants: bool,
    /// NUL bytes in strings.
    pub nul: bool,
}

/// One step of a sequence.
#[derive(Debug, Clone)]
pub enum Step {
    /// A heartbeat response's `result`.
    Response(Value),
    /// A statement of the shard's scheduler, run on both databases.
    Shard(String),
}

impl Step {
    /// The step as JSON, to print a sequence.
    pub fn to_json(&self) -> Value {
        match self {
            Step::Response(r) => json!({ "response": r }),
            Step::Shard(sql) => json!({ "shard": sql }),
        }
    }
}

/// What a field holds, for the values that break it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Int,
    SmallInt,
    Bool,
    /// `varchar(n)`.
    Str(usize),
    Text,
    DateTime,
}

/// How the rules treat a field of an existing record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// What finds the record (`id`, a login, an attribute name): always read.
    Identity,
    /// Written on insert only.
    Local,
    /// Overwritten on an existing record too.
    Whitelisted,
    /// Never written (an attribute's `id`).
    Ignored,
}

/// A value that breaks a field.
#[derive(Debug, Clone, Copy)]
enum Bad {
    Absent,
    Null,
    WrongType,
    TooBig,
    Nul,
}

fn bad_value(kind: Kind, bad: Bad) -> Option<Value> {
    let wrong_type = match kind {
        Kind::Int | Kind::SmallInt => json!("x1"),
        Kind::Bool => json!(2),
        Kind::Str(_) | Kind::Text => json!(7),
        Kind::DateTime => json!("yesterday"),
    };
    match bad {
        Bad::Absent => None,
        Bad::Null => Some(Value::Null),
        Bad::WrongType => Some(wrong_type),
        Bad::TooBig => Some(match kind {
            Kind::Int => json!(2_147_483_648_i64),
            Kind::SmallInt => json!(40_000),
            Kind::Bool => json!("true"),
            Kind::Str(n) => json!("x".repeat(n + 1)),
            Kind::Text => json!("x".repeat(65_536)),
            Kind::DateTime => json!("2014-13-40T10:00:00"),
        }),
        Bad::Nul => Some(match kind {
            Kind::Str(_) | Kind::Text => json!("a\u{0}b"),
            _ => wrong_type,
        }),
    }
}

/// A field of a record: key, kind, role, and its good values.
struct Field {
    key: &'static str,
    kind: Kind,
    role: Role,
    values: BoxedStrategy<Option<Value>>,
}

fn field(
    key: &'static str,
    kind: Kind,
    role: Role,
    values: impl Strategy<Value = Value> + 'static,
) -> Field {
    Field {
        key,
        kind,
        role,
        values: values.prop_map(Some).boxed(),
    }
}

/// A field that is sometimes left out (one whose column has a default).
fn maybe_absent(mut f: Field) -> Field {
    f.values = prop_oneof![4 => f.values, 1 => Just(None)].boxed();
    f
}

/// The key under which a record asks for a fresh identity (removed before
/// the sequence is used): its value names the field to replace.
const FRESH: &str = "__fresh";
/// A nested record's owner id, filled in by its parent.
const PARENT: &str = "__parent";

/// How an integer is written.
#[derive(Debug, Clone, Copy)]
enum Form {
    Plain,
    Str,
    Float,
    Frac,
}

fn form(f: Features) -> BoxedStrategy<Form> {
    if f.floats {
        prop_oneof![16 => Just(Form::Plain), 2 => Just(Form::Str), 1 => Just(Form::Float), 1 => Just(Form::Frac)].boxed()
    } else {
        prop_oneof![16 => Just(Form::Plain), 2 => Just(Form::Str)].boxed()
    }
}

fn write_int(n: i64, form: Form) -> Value {
    match form {
        Form::Plain => json!(n),
        Form::Str => json!(n.to_string()),
        Form::Float => json!(n as f64),
        // Truncated toward zero, it is n again.
        Form::Frac => json!(n as f64 + if n < 0 { -0.5 } else { 0.5 }),
    }
}

fn int(range: std::ops::RangeInclusive<i64>, f: Features) -> BoxedStrategy<Value> {
    (range, form(f))
        .prop_map(|(n, form)| write_int(n, form))
        .boxed()
}

/// A record id in `1..=max`, now and then 0 or -1 (refused: ids must be
/// positive).
fn id(max: i64, f: Features) -> BoxedStrategy<Value> {
    prop_oneof![30 => int(1..=max, f), 1 => int(-1..=0, f)].boxed()
}

fn boolean() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!(false)),
        Just(json!(true)),
        Just(json!(0)),
        Just(json!(1))
    ]
    .boxed()
}

fn nullable(s: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![4 => s, 1 => Just(Value::Null)].boxed()
}

fn pick(options: &[&'static str]) -> BoxedStrategy<Value> {
    proptest::sample::select(options.to_vec())
        .prop_map(|s| json!(s))
        .boxed()
}

/// A datetime in one of the shapes of §5.
fn datetime() -> BoxedStrategy<Value> {
    let base = proptest::sample::select(vec!["2014-09-23", "2015-01-02"]);
    let shape = proptest::sample::select(vec![
        "T10:20:30",
        " 10:20:30",
        "T10:20:30.123",
        "T10:20:30.123456",
        " 23:59:59.999999",
    ]);
    (base, shape)
        .prop_map(|(d, t)| json!(format!("{d}{t}")))
        .boxed()
}

/// A name pool, with the variants MySQL compares equal when asked for.
fn names(plain: &[&'static str], variants: &[&'static str], f: Features) -> BoxedStrategy<Value> {
    let mut all = plain.to_vec();
    if f.case_variants {
        all.extend_from_slice(variants);
    }
    pick(&all)
}

/// A to-many relation: absent, a list of up to `max`, or (when asked for)
/// `null`.
fn list(item: BoxedStrategy<Value>, max: usize, f: Features) -> BoxedStrategy<Option<Value>> {
    let items = proptest::collection::vec(item, 0..=max).prop_map(|v| Some(Value::Array(v)));
    if f.null_lists {
        prop_oneof![1 => Just(None), 4 => items, 1 => Just(Some(Value::Null))].boxed()
    } else {
        prop_oneof![1 => Just(None), 4 => items].boxed()
    }
}

/// A to-one relation: absent, `null`, or a record.
fn to_one(item: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        3 => item.prop_map(Some),
    ]
    .boxed()
}

/// Up to one bad value per record, now and then.
fn mutations(f: Features) -> BoxedStrategy<Vec<(usize, Bad)>> {
    let mut bads = vec![Bad::Absent, Bad::Null, Bad::WrongType, Bad::TooBig];
    if f.nul {
        bads.push(Bad::Nul);
    }
    let one = (0..64usize, proptest::sample::select(bads));
    prop_oneof![10 => Just(Vec::new()), 1 => proptest::collection::vec(one, 1..=1)].boxed()
}

/// A record from its fields, its relations, and maybe a bad value; `fresh`
/// names the field that gives it a fresh identity when a bad value needs
/// one.
fn record(
    fields: Vec<Field>,
    relations: Vec<(&'static str, BoxedStrategy<Option<Value>>)>,
    fresh: &'static str,
    f: Features,
) -> BoxedStrategy<Value> {
    let meta: Vec<(&'static str, Kind, Role)> =
        fields.iter().map(|x| (x.key, x.kind, x.role)).collect();
    let values: Vec<BoxedStrategy<Option<Value>>> = fields.into_iter().map(|x| x.values).collect();
    let rel_keys: Vec<&'static str> = relations.iter().map(|(k, _)| *k).collect();
    let rels: Vec<BoxedStrategy<Option<Value>>> = relations.into_iter().map(|(_, s)| s).collect();
    (values, rels, mutations(f))
        .prop_filter_map(
            "a bad value the features leave out",
            move |(vals, rels, muts)| {
                let mut map = Map::new();
                for ((key, _, _), v) in meta.iter().zip(vals) {
                    if let Some(v) = v {
                        map.insert((*key).to_owned(), v);
                    }
                }
                for (key, v) in rel_keys.iter().zip(rels) {
                    if let Some(v) = v {
                        map.insert((*key).to_owned(), v);
                    }
                }
                for (selector, bad) in muts {
                    let (key, kind, role) = meta[selector % meta.len()];
                    let needs_fresh = match role {
                        Role::Identity => false,
                        Role::Local => !f.bad_unwritten_fields,
                        Role::Whitelisted => matches!(bad, Bad::Absent) && !f.absent_whitelisted,
                        Role::Ignored if f.bad_unwritten_fields => false,
                        Role::Ignored => return None,
                    };
                    match bad_value(kind, bad) {
                        Some(v) => map.insert(key.to_owned(), v),
                        None => map.remove(key),
                    };
                    if needs_fresh {
                        map.insert(FRESH.to_owned(), json!(fresh));
                    }
                }
                Some(Value::Object(map))
            },
        )
        .boxed()
}

fn shard(f: Features) -> BoxedStrategy<Value> {
    record(
        vec![
            field("id", Kind::Int, Role::Identity, id(2, f)),
            field(
                "hostname",
                Kind::Str(255),
                Role::Local,
                pick(&["shard1", "shard2"]),
            ),
        ],
        vec![],
        "id",
        f,
    )
}

fn label(f: Features) -> BoxedStrategy<Value> {
    let name = names(
        &["board:a", "board:b", "pool:x"],
        &["Board:A", "board:a "],
        f,
    );
    record(
        vec![
            field("id", Kind::Int, Role::Identity, id(5, f)),
            field("name", Kind::Str(750), Role::Local, nullable(name)),
            field(
                "kernel_config",
                Kind::Str(255),
                Role::Local,
                nullable(pick(&["", "k"])),
            ),
            field("platform", Kind::Bool, Role::Local, nullable(boolean())),
            field("invalid", Kind::Bool, Role::Local, boolean()),
            field("only_if_needed", Kind::Bool, Role::Local, boolean()),
        ],
        vec![],
        "id",
        f,
    )
}

fn user(f: Features) -> BoxedStrategy<Value> {
    let login = names(&["alice", "bob", "carol"], &["Alice"], f);
    record(
        vec![
            field("id", Kind::Int, Role::Identity, id(4, f)),
            field("login", Kind::Str(255), Role::Identity, login),
            field(
                "access_level",
                Kind::Int,
                Role::Local,
                nullable(int(0..=1, f)),
            ),
            field("reboot_before", Kind::SmallInt, Role::Local, int(0..=2, f)),
            field("reboot_after", Kind::SmallInt, Role::Local, int(0..=2, f)),
            maybe_absent(field(
                "show_experimental",
                Kind::Bool,
                Role::Local,
                boolean(),
            )),
        ],
        vec![],
        "id",
        f,
    )
}

fn group(f: Features) -> BoxedStrategy<Value> {
    record(
        vec![
            field("id", Kind::Int, Role::Identity, id(3, f)),
            field(
                "name",
                Kind::Str(255),
                Role::Local,
                pick(&["Everyone", "lab"]),
            ),
            field(
                "description",
                Kind::Str(255),
                Role::Local,
                nullable(pick(&["", "d"])),
            ),
        ],
        vec![("users", list(user(f), 2, f))],
        "id",
        f,
    )
}

fn attribute(f: Features) -> BoxedStrategy<Value> {
    let name = names(&["serial", "os"], &["Serial", "s\u{e9}rial"], f);
    record(
        vec![
            field("id", Kind::Int, Role::Ignored, int(1..=99, f)),
            field("attribute", Kind::Str(90), Role::Identity, name),
            field(
                "value",
                Kind::Str(300),
                Role::Whitelisted,
                pick(&["1", "2", ""]),
            ),
            field("host_id", Kind::Int, Role::Ignored, Just(json!(PARENT))),
        ],
        vec![],
        "attribute",
        f,
    )
}

fn host(f: Features) -> BoxedStrategy<Value> {
    record(
        vec![
            field("id", Kind::Int, Role::Identity, id(4, f)),
            field(
                "hostname",
                Kind::Str(255),
                Role::Local,
                nullable(pick(&["h1", "h2"])),
            ),
            field("locked", Kind::Bool, Role::Local, nullable(boolean())),
            maybe_absent(field("leased", Kind::Bool, Role::Local, boolean())),
            field("synch_id", Kind::Int, Role::Local, nullable(int(1..=2, f))),
            field(
                "status",
                Kind::Str(255),
                Role::Local,
                nullable(pick(&["Ready", "Running"])),
            ),
            field(
                "invalid",
                Kind::Bool,
                Role::Whitelisted,
                nullable(boolean()),
            ),
            field("protection", Kind::Int, Role::Local, int(0..=2, f)),
            field(
                "lock_time",
                Kind::DateTime,
                Role::Local,
                nullable(datetime()),
            ),
            field("dirty", Kind::Bool, Role::Local, boolean()),
            field(
                "lock_reason",
                Kind::Text,
                Role::Local,
                nullable(pick(&["", "r"])),
            ),
        ],
        vec![
            ("aclgroup_set", list(group(f), 2, f)),
            ("hostattribute_set", list(attribute(f), 3, f)),
            ("labels", list(label(f), 3, f)),
            ("shard", to_one(shard(f))),
        ],
        "id",
        f,
    )
}

fn keyval(f: Features) -> BoxedStrategy<Value> {
    let job_id = if f.bad_unwritten_fields {
        // The job's own id, another job's, or garbage: the job's id wins.
        prop_oneof![6 => Just(json!(PARENT)), 1 => int(1..=5, f), 1 => Just(json!("x1"))].boxed()
    } else {
        Just(json!(PARENT)).boxed()
    };
    keyval_record(
        int(1..=99, f),
        field("job_id", Kind::Int, Role::Ignored, job_id),
        f,
    )
}

fn suite_keyval(f: Features) -> BoxedStrategy<Value> {
    keyval_record(
        int(1..=9, f),
        field("job_id", Kind::Int, Role::Identity, int(1..=5, f)),
        f,
    )
}

/// A job's or a suite's keyval: the master's `id` (never written), the
/// `job_id` field given, and a key from a small pool with its value.
fn keyval_record(id: BoxedStrategy<Value>, job_id: Field, f: Features) -> BoxedStrategy<Value> {
    let key = names(&["suite", "build"], &["Suite"], f);
    record(
        vec![
            field("id", Kind::Int, Role::Ignored, id),
            job_id,
            field("key", Kind::Str(90), Role::Identity, key),
            field(
                "value",
                Kind::Str(300),
                Role::Whitelisted,
                pick(&["a", "b"]),
            ),
        ],
        vec![],
        "key",
        f,
    )
}

fn hqe(f: Features) -> BoxedStrategy<Value> {
    let status = pick(&["Queued", "Running", "Completed"]);
    record(
        vec![
            field("id", Kind::Int, Role::Identity, id(6, f)),
            field("status", Kind::Str(255), Role::Local, nullable(status)),
            field("active", Kind::Bool, Role::Local, nullable(boolean())),
            field("complete", Kind::Bool, Role::Local, nullable(boolean())),
            field("deleted", Kind::Bool, Role::Local, boolean()),
            field("aborted", Kind::Bool, Role::Whitelisted, boolean()),
            field(
                "execution_subdir",
                Kind::Str(255),
                Role::Local,
                pick(&["", "h1"]),
            ),
            field(
                "started_on",
                Kind::DateTime,
                Role::Local,
                nullable(datetime()),
            ),
            field(
                "finished_on",
                Kind::DateTime,
                Role::Local,
                nullable(datetime()),
            ),
            // Host 5 never reaches the shard: a foreign key refuses it.
            field("host_id", Kind::Int, Role::Local, nullable(int(1..=5, f))),
        ],
        vec![("meta_host", to_one(label(f)))],
        "id",
        f,
    )
}

fn job(f: Features) -> BoxedStrategy<Value> {
    let small = || int(0..=2, f);
    record(
        vec![
            field("id", Kind::Int, Role::Identity, id(4, f)),
            field(
                "owner",
                Kind::Str(255),
                Role::Local,
                nullable(pick(&["alice", "bob"])),
            ),
            field(
                "name",
                Kind::Str(255),
                Role::Local,
                nullable(pick(&["j1", "j2"])),
            ),
            field("priority", Kind::Int, Role::Local, nullable(small())),
            field(
                "control_file",
                Kind::Text,
                Role::Local,
                nullable(pick(&["x", ""])),
            ),
            field(
                "control_type",
                Kind::Int,
                Role::Local,
                nullable(int(1..=2, f)),
            ),
            field(
                "created_on",
                Kind::DateTime,
                Role::Local,
                nullable(datetime()),
            ),
            field("synch_count", Kind::Int, Role::Local, int(1..=2, f)),
            field("timeout", Kind::Int, Role::Local, small()),
            field("timeout_mins", Kind::Int, Role::Local, small()),
            field("max_runtime_hrs", Kind::Int, Role::Local, small()),
            field("max_runtime_mins", Kind::Int, Role::Local, small()),
            maybe_absent(field("test_retry", Kind::Int, Role::Local, small())),
            field("run_verify", Kind::Bool, Role::Local, nullable(boolean())),
            maybe_absent(field("run_reset", Kind::Bool, Role::Local, boolean())),
            maybe_absent(field(
                "parse_failed_repair",
                Kind::Bool,
                Role::Local,
                boolean(),
            )),
            field(
                "email_list",
                Kind::Str(250),
                Role::Local,
                pick(&["", "a@b"]),
            ),
            field("reboot_before", Kind::SmallInt, Role::Local, small()),
            field("reboot_after", Kind::SmallInt, Role::Local, small()),
            field("require_ssp", Kind::Bool, Role::Local, nullable(boolean())),
            maybe_absent(field(
                "parent_job_id",
                Kind::Int,
                Role::Local,
                nullable(int(1..=9, f)),
            )),
        ],
        vec![
            ("dependency_labels", list(label(f), 2, f)),
            ("hostqueueentry_set", list(hqe(f), 3, f)),
            ("jobkeyval_set", list(keyval(f), 3, f)),
            ("shard", to_one(shard(f))),
        ],
        "id",
        f,
    )
}

fn response(f: Features) -> BoxedStrategy<Value> {
    let incorrect = prop_oneof![
        1 => Just(None),
        3 => proptest::collection::vec(prop_oneof![8 => int(1..=5, f), 1 => Just(json!("x1"))], 0..=2)
            .prop_map(Some),
    ];
    (
        proptest::collection::vec(host(f), 0..=3),
        proptest::collection::vec(job(f), 0..=3),
        proptest::collection::vec(suite_keyval(f), 0..=2),
        incorrect,
    )
        .prop_map(|(hosts, jobs, suite_keyvals, incorrect)| {
            let mut r = json!({ "hosts": hosts, "jobs": jobs, "suite_keyvals": suite_keyvals });
            if let (Some(ids), Some(map)) = (incorrect, r.as_object_mut()) {
                map.insert("incorrect_host_ids".to_owned(), Value::Array(ids));
            }
            r
        })
        .boxed()
}

/// The shard's scheduler between heartbeats: a host locked by a user (so
/// deleting that user must clear it), an entry finished (so a resent job
/// is re-synced).
fn shard_write() -> BoxedStrategy<String> {
    prop_oneof![
        (1..=4i32, 1..=4i32).prop_map(|(host, user)| format!(
            "UPDATE afe_hosts SET locked_by_id = {user} WHERE id = {host}"
        )),
        (1..=6i32).prop_map(|hqe| format!(
            "UPDATE afe_host_queue_entries SET complete = TRUE, active = FALSE, \
             status = 'Completed' WHERE id = {hqe}"
        )),
    ]
    .boxed()
}

/// Sequences of 1–4 steps.
pub fn sequence(f: Features) -> BoxedStrategy<Vec<Step>> {
    let step = prop_oneof![
        6 => response(f).prop_map(Step::Response),
        1 => shard_write().prop_map(Step::Shard),
    ];
    proptest::collection::vec(step, 1..=4)
        .prop_map(|mut steps| {
            let mut fresh = 0;
            for step in &mut steps {
                if let Step::Response(r) = step {
                    finish(r, None, &mut fresh);
                }
            }
            steps
        })
        .boxed()
}

/// Fills in what generation left to the parent (a nested record's owner
/// id) and gives the records that asked for it a fresh identity.
fn finish(v: &mut Value, parent_id: Option<&Value>, fresh: &mut u32) {
    match v {
        Value::Array(items) => {
            for item in items {
                finish(item, parent_id, fresh);
            }
        }
        Value::Object(map) => {
            if let Some(Value::String(key)) = map.remove(FRESH) {
                *fresh += 1;
                let identity = if key == "id" {
                    json!(1000 + *fresh)
                } else {
                    json!(format!("fresh{fresh}"))
                };
                map.insert(key, identity);
            }
            for owner in ["host_id", "job_id"] {
                if map.get(owner) == Some(&json!(PARENT)) {
                    match parent_id {
                        Some(id) => map.insert(owner.to_owned(), id.clone()),
                        None => map.remove(owner),
                    };
                }
            }
            let own_id = map.get("id").cloned();
            for (key, child) in map.iter_mut() {
                let parent = match key.as_str() {
                    "hostattribute_set" | "jobkeyval_set" => own_id.as_ref(),
                    _ => None,
                };
                finish(child, parent, fresh);
            }
        }
        _ => {}
    }
}
