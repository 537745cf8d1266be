//! Records whose bad fields only matter if their row is inserted.
//!
//! §6 writes an existing row's whitelisted fields only (`invalid`,
//! `aborted`, a keyval's or attribute's `value`): the original drops the
//! others before anything reads them (`_filter_update_allowed_fields`). A
//! bad value in such a field (a wrong type, a number out of range, a
//! missing required key) must therefore refuse the record only when the
//! row it belongs to is new. Parsing cannot know that, so a record that
//! fails to parse is *repaired*: each bad field the rules may leave unread
//! is replaced by a placeholder and noted as a [`Defect`] of its object,
//! and the apply refuses the record if it inserts that object's row.
//!
//! Fields that are always read (ids, a user's login, whitelisted fields,
//! relations, an attribute's or keyval's name and value, a suite keyval's
//! `job_id`) are never repaired: a bad one refuses its record as before.
//! Fields that are never read (an attribute's or keyval's own `id`, a
//! nested attribute's `host_id` or keyval's `job_id`, which their parent
//! overrides) are repaired without a defect.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::packet::RecordKind;

/// A bad field of a parsed record, replaced by a placeholder: the record
/// is refused if the row of the object at [`Defect::at`] is inserted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defect {
    /// Which list the record came from.
    pub kind: RecordKind,
    /// The record's position among the parsed records of its list.
    pub index: usize,
    /// The object's place in its record: `""` for the record itself, else
    /// a path such as `labels[0]`, `shard` or `aclgroup_set[1].users[0]`.
    pub at: String,
    /// What was wrong, as a refusal says it.
    pub reason: String,
}

/// A step of a path into a record.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// The model a JSON object of a record stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Host,
    Job,
    SuiteKeyval,
    Label,
    Shard,
    User,
    Group,
    Attribute,
    NestedKeyval,
    Hqe,
}

/// How the apply treats a field of an existing row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Always read: a bad value refuses the record.
    Read,
    /// Read only when the row is inserted.
    OnInsert,
    /// Never read.
    Unread,
}

/// The values a bad field is replaced by, tried in turn until the record
/// parses past it: one of them fits every scalar field of §5.
const PLACEHOLDERS: [fn() -> Value; 3] = [|| Value::Null, || Value::from(0), || Value::from("")];

/// The defects of one record, as `(at, reason)`.
pub(crate) type Found = Vec<(String, String)>;

/// Repairs are bounded: a record has a few dozen fields.
const MAX_STEPS: usize = 256;

/// Parses `value` as a `T` of `kind`, repairing the bad fields the rules
/// may leave unread. Returns the record and its defects as `(at, reason)`,
/// one per object,
/// or the reason of the first field that cannot be repaired (`None` when
/// it is the first bad field of all, which the caller has named already).
pub(crate) fn parse<T: DeserializeOwned>(
    kind: RecordKind,
    mut value: Value,
) -> Result<(T, Found), Option<String>> {
    let mut defects = Vec::new();
    // (object, field, placeholders tried)
    let mut tried: Vec<(Vec<Seg>, String, usize)> = Vec::new();
    for _ in 0..MAX_STEPS {
        let e = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(record) => return Ok((record, defects)),
            Err(e) => e,
        };
        let path: Option<Vec<Seg>> = e
            .path()
            .iter()
            .map(|s| match s {
                serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
                serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
                _ => None,
            })
            .collect();
        let message = e.inner().to_string();
        let reason = match e.path().iter().next() {
            Some(_) => format!("field `{}`: {message}", e.path()),
            None => message.clone(),
        };
        let refuse = |reason: String| Err((!tried.is_empty()).then_some(reason));
        let Some(path) = path else {
            return refuse(reason);
        };
        let (object, field) = match missing_field(&message) {
            Some(field) => (path, field.to_owned()),
            None => match path.split_last() {
                Some((Seg::Key(field), object)) => (object.to_vec(), field.clone()),
                _ => return refuse(reason),
            },
        };
        let role = shape_at(kind, &object).map_or(Role::Read, |shape| role(shape, &field));
        if role == Role::Read {
            return refuse(reason);
        }
        let attempt = match tried
            .iter_mut()
            .find(|(o, f, _)| *o == object && *f == field)
        {
            Some((_, _, n)) => {
                *n += 1;
                *n
            }
            None => {
                // The first bad field of an object is the one named.
                let at = display(&object);
                if role == Role::OnInsert && !defects.iter().any(|(a, _)| *a == at) {
                    defects.push((at, reason.clone()));
                }
                tried.push((object.clone(), field.clone(), 0));
                0
            }
        };
        let Some(placeholder) = PLACEHOLDERS.get(attempt) else {
            return Err(Some(reason));
        };
        let Some(Value::Object(map)) = walk(&mut value, &object) else {
            return Err(Some(reason));
        };
        map.insert(field, placeholder());
    }
    Err(Some("the record has too many bad fields".to_owned()))
}

/// The field of serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")?
        .split('`')
        .next()
        .filter(|f| !f.is_empty())
}

/// The object at `path` inside `value`.
fn walk<'v>(value: &'v mut Value, path: &[Seg]) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |v, seg| match seg {
        Seg::Key(k) => v.as_object_mut()?.get_mut(k),
        Seg::Index(i) => v.as_array_mut()?.get_mut(*i),
    })
}

/// A path as [`Defect::at`] writes it.
fn display(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The model of the object at `path` in a record of `kind`.
fn shape_at(kind: RecordKind, path: &[Seg]) -> Option<Shape> {
    let mut shape = match kind {
        RecordKind::Host => Shape::Host,
        RecordKind::Job => Shape::Job,
        RecordKind::SuiteKeyval => Shape::SuiteKeyval,
        RecordKind::IncorrectHostId => return None,
    };
    let mut segs = path.iter();
    while let Some(seg) = segs.next() {
        let Seg::Key(key) = seg else {
            return None;
        };
        let (next, listed) = match (shape, key.as_str()) {
            (Shape::Host, "labels") | (Shape::Job, "dependency_labels") => (Shape::Label, true),
            (Shape::Host, "aclgroup_set") => (Shape::Group, true),
            (Shape::Host, "hostattribute_set") => (Shape::Attribute, true),
            (Shape::Host | Shape::Job, "shard") => (Shape::Shard, false),
            (Shape::Group, "users") => (Shape::User, true),
            (Shape::Job, "hostqueueentry_set") => (Shape::Hqe, true),
            (Shape::Job, "jobkeyval_set") => (Shape::NestedKeyval, true),
            (Shape::Hqe, "meta_host") => (Shape::Label, false),
            _ => return None,
        };
        if listed && !matches!(segs.next(), Some(Seg::Index(_))) {
            return None;
        }
        shape = next;
    }
    Some(shape)
}

/// How the apply reads `field` of an object of `shape` (§6).
fn role(shape: Shape, field: &str) -> Role {
    use Shape::*;
    match (shape, field) {
        (Attribute, "id" | "host_id") | (NestedKeyval, "id" | "job_id") | (SuiteKeyval, "id") => {
            Role::Unread
        }
        (Attribute | NestedKeyval | SuiteKeyval, _) => Role::Read,
        (_, "id")
        | (User, "login")
        | (Group, "users")
        | (Host, "invalid" | "aclgroup_set" | "hostattribute_set" | "labels" | "shard")
        | (Hqe, "aborted" | "meta_host")
        | (Job, "dependency_labels" | "hostqueueentry_set" | "jobkeyval_set" | "shard") => {
            Role::Read
        }
        _ => Role::OnInsert,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &[&str]) -> Vec<Seg> {
        path.iter()
            .map(|s| match s.parse() {
                Ok(i) => Seg::Index(i),
                Err(_) => Seg::Key((*s).to_owned()),
            })
            .collect()
    }

    #[test]
    fn paths_name_the_nested_models() {
        let user = segs(&["aclgroup_set", "1", "users", "0"]);
        assert_eq!(shape_at(RecordKind::Host, &user), Some(Shape::User));
        assert_eq!(display(&user), "aclgroup_set[1].users[0]");
        let meta = segs(&["hostqueueentry_set", "2", "meta_host"]);
        assert_eq!(shape_at(RecordKind::Job, &meta), Some(Shape::Label));
        assert_eq!(display(&meta), "hostqueueentry_set[2].meta_host");
        // A relation of the wrong model, or a list without an index.
        assert_eq!(shape_at(RecordKind::Job, &segs(&["labels", "0"])), None);
        assert_eq!(shape_at(RecordKind::Host, &segs(&["labels"])), None);
    }

    #[test]
    fn identities_whitelisted_fields_and_relations_are_always_read() {
        for (shape, field) in [
            (Shape::Host, "id"),
            (Shape::Host, "invalid"),
            (Shape::Host, "labels"),
            (Shape::User, "login"),
            (Shape::Hqe, "aborted"),
            (Shape::Attribute, "value"),
            (Shape::SuiteKeyval, "job_id"),
        ] {
            assert_eq!(role(shape, field), Role::Read, "{shape:?}.{field}");
        }
        assert_eq!(role(Shape::Host, "protection"), Role::OnInsert);
        assert_eq!(role(Shape::NestedKeyval, "job_id"), Role::Unread);
    }
}
