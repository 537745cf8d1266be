//! `get_hosts`, as much of the real AFE's (`rpc_interface.get_hosts`) as a
//! shard client needs to heal itself: which of its host ids the master
//! still has, and in what state.
//!
//! Filters: `id`, `id__in`, `hostname`, `hostname__in`, and `valid_only`
//! (default true: only `invalid = 0`). Any other keyword is refused with
//! `TypeError` naming it, rather than silently widening the query. Each
//! host is its fields (`protection` human-readable, `locked_by` and `shard`
//! by name, as `get_object_dict` cleans them) plus `labels`, `acls` (names),
//! `attributes` (name → value) and `platform`.

use std::collections::{BTreeSet, HashMap};

use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Map, Value, json};
use shard_store::schema::chunk;
use shard_store::schema::entity::{groups, hosts, labels, shards, users};

use shard_store::schema::read::models_in;

use crate::load::{HostLinks, host_links};
use crate::{Fault, render};

/// The names of `host_protections.Protection`, by value.
const PROTECTIONS: [&str; 5] = [
    "No protection",
    "Repair software only",
    "Repair filesystem only",
    "Do not repair",
    "Do not verify",
];

/// The filters of one `get_hosts` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostQuery {
    /// Only these ids (`id`, `id__in`), if given.
    pub ids: Option<Vec<i32>>,
    /// Only these hostnames (`hostname`, `hostname__in`), if given.
    pub hostnames: Option<Vec<String>>,
    /// Only hosts with `invalid = 0`.
    pub valid_only: bool,
}

impl HostQuery {
    /// The filters of the keyword arguments `kwargs` (a JSON object).
    pub fn from_kwargs(kwargs: &Value) -> Result<HostQuery, Fault> {
        let Some(kwargs) = kwargs.as_object() else {
            return Err(Fault::new(
                "TypeError",
                format!("get_hosts takes keyword arguments (a JSON object), not {kwargs}"),
            ));
        };
        let unknown: Vec<String> = kwargs
            .keys()
            .filter(|k| {
                !["id", "id__in", "hostname", "hostname__in", "valid_only"].contains(&k.as_str())
            })
            .map(|k| format!("`{k}`"))
            .collect();
        if !unknown.is_empty() {
            return Err(Fault::new(
                "TypeError",
                format!(
                    "get_hosts() got unexpected keyword arguments: {} (this master filters on \
                     id, id__in, hostname, hostname__in, valid_only)",
                    unknown.join(", ")
                ),
            ));
        }
        let mut query = HostQuery {
            ids: None,
            hostnames: None,
            valid_only: true,
        };
        for (key, value) in kwargs {
            match key.as_str() {
                "id" => narrow(&mut query.ids, vec![id(key, value)?]),
                "id__in" => narrow(&mut query.ids, list(key, value, id)?),
                "hostname" => narrow(&mut query.hostnames, vec![text(key, value)?]),
                "hostname__in" => narrow(&mut query.hostnames, list(key, value, text)?),
                "valid_only" => {
                    query.valid_only = match value {
                        Value::Bool(b) => *b,
                        Value::Number(n) if n.as_i64() == Some(0) => false,
                        Value::Number(n) if n.as_i64() == Some(1) => true,
                        _ => return Err(bad(key, value, "a boolean")),
                    }
                }
                _ => {}
            }
        }
        Ok(query)
    }
}

/// Keeps in `filter` only what both `filter` and `values` allow (Django
/// ANDs its keyword filters).
fn narrow<T: PartialEq>(filter: &mut Option<Vec<T>>, values: Vec<T>) {
    *filter = Some(match filter.take() {
        Some(old) => old.into_iter().filter(|v| values.contains(v)).collect(),
        None => values,
    });
}

fn bad(key: &str, value: &Value, expected: &str) -> Fault {
    Fault::new(
        "ValueError",
        format!("get_hosts: `{key}` must be {expected}, not {value}"),
    )
}

fn id(key: &str, value: &Value) -> Result<i32, Fault> {
    let wide = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    wide.and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| bad(key, value, "a host id"))
}

fn text(key: &str, value: &Value) -> Result<String, Fault> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| bad(key, value, "a string"))
}

fn list<T>(
    key: &str,
    value: &Value,
    item: fn(&str, &Value) -> Result<T, Fault>,
) -> Result<Vec<T>, Fault> {
    value
        .as_array()
        .ok_or_else(|| bad(key, value, "a list"))?
        .iter()
        .map(|v| item(key, v))
        .collect()
}

/// The hosts matching `query`, in id order, as the real `get_hosts`
/// returns them.
pub async fn get_hosts(db: &impl ConnectionTrait, query: &HostQuery) -> Result<Value, Fault> {
    let rows = matching_hosts(db, query).await?;
    let ids: BTreeSet<i32> = rows.iter().map(|h| h.id).collect();
    let HostLinks {
        labels: label_links,
        groups: group_links,
        attributes: attribute_rows,
    } = host_links(db, &ids).await?;
    let label_ids: BTreeSet<i32> = label_links.iter().filter_map(|l| l.label_id).collect();
    let labels: HashMap<i32, labels::Model> =
        models_in::<labels::Entity>(db, labels::Column::Id, labels::Column::Id, &label_ids)
            .await?
            .into_iter()
            .map(|l| (l.id, l))
            .collect();
    let group_ids: BTreeSet<i32> = group_links.iter().filter_map(|l| l.aclgroup_id).collect();
    let groups: HashMap<i32, Option<String>> =
        models_in::<groups::Entity>(db, groups::Column::Id, groups::Column::Id, &group_ids)
            .await?
            .into_iter()
            .map(|g| (g.id, g.name))
            .collect();
    let shard_ids: BTreeSet<i32> = rows.iter().filter_map(|h| h.shard_id).collect();
    let shards: HashMap<i32, String> =
        models_in::<shards::Entity>(db, shards::Column::Id, shards::Column::Id, &shard_ids)
            .await?
            .into_iter()
            .map(|s| (s.id, s.hostname))
            .collect();
    let user_ids: BTreeSet<i32> = rows.iter().filter_map(|h| h.locked_by_id).collect();
    let logins: HashMap<i32, Option<String>> =
        models_in::<users::Entity>(db, users::Column::Id, users::Column::Id, &user_ids)
            .await?
            .into_iter()
            .map(|u| (u.id, u.login))
            .collect();

    let mut labels_of: HashMap<i32, Vec<&labels::Model>> = HashMap::new();
    for link in &label_links {
        if let (Some(host), Some(label)) =
            (link.host_id, link.label_id.and_then(|l| labels.get(&l)))
        {
            labels_of.entry(host).or_default().push(label);
        }
    }
    let mut acls_of: HashMap<i32, Vec<Value>> = HashMap::new();
    for link in &group_links {
        if let (Some(host), Some(name)) =
            (link.host_id, link.aclgroup_id.and_then(|g| groups.get(&g)))
        {
            acls_of.entry(host).or_default().push(json!(name));
        }
    }
    let mut attributes_of: HashMap<i32, Map<String, Value>> = HashMap::new();
    for a in attribute_rows {
        attributes_of
            .entry(a.host_id)
            .or_default()
            .insert(a.attribute, Value::String(a.value));
    }

    let mut out = Vec::with_capacity(rows.len());
    for h in rows {
        let host_labels = labels_of.remove(&h.id).unwrap_or_default();
        let hostname = h.hostname.clone().unwrap_or_default();
        let platforms: Vec<&str> = host_labels
            .iter()
            .filter(|l| l.platform == Some(true))
            .filter_map(|l| l.name.as_deref())
            .collect();
        if platforms.len() > 1 {
            return Err(Fault::new(
                "ValueError",
                format!(
                    "Host {hostname} has more than one platform: {}",
                    platforms.join(", ")
                ),
            ));
        }
        let protection = usize::try_from(h.protection)
            .ok()
            .and_then(|p| PROTECTIONS.get(p))
            .map_or_else(|| json!(h.protection), |name| json!(name));
        out.push(json!({
            "id": h.id,
            "hostname": h.hostname,
            "locked": h.locked,
            "synch_id": h.synch_id,
            "status": h.status,
            "invalid": h.invalid,
            "protection": protection,
            "locked_by": h.locked_by_id.and_then(|u| logins.get(&u).cloned().flatten()),
            "lock_time": h.lock_time.map(render::datetime),
            "dirty": h.dirty,
            "leased": h.leased,
            "shard": h.shard_id.and_then(|s| shards.get(&s).cloned()),
            "lock_reason": h.lock_reason,
            "labels": host_labels.iter().map(|l| json!(l.name)).collect::<Vec<_>>(),
            "acls": acls_of.remove(&h.id).unwrap_or_default(),
            "attributes": attributes_of.remove(&h.id).unwrap_or_default(),
            "platform": platforms.first(),
        }));
    }
    Ok(Value::Array(out))
}

/// The host rows the filters select, in id order.
async fn matching_hosts(
    db: &impl ConnectionTrait,
    query: &HostQuery,
) -> Result<Vec<hosts::Model>, Fault> {
    let mut base = Condition::all();
    if query.valid_only {
        base = base.add(Expr::col(hosts::Column::Invalid).eq(false));
    }
    if let Some(names) = &query.hostnames {
        base = base.add(Expr::col(hosts::Column::Hostname).is_in(names.iter().cloned()));
    }
    let select = |condition: Condition| {
        hosts::Entity::find()
            .filter(condition)
            .order_by_asc(hosts::Column::Id)
    };
    let Some(ids) = &query.ids else {
        return Ok(select(base).all(db).await?);
    };
    let ids: Vec<i32> = ids
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut out = Vec::new();
    for chunk in chunk::by_params(db.get_database_backend(), 1, &ids) {
        let condition = base
            .clone()
            .add(Expr::col(hosts::Column::Id).is_in(chunk.iter().copied()));
        out.extend(select(condition).all(db).await?);
    }
    Ok(out)
}
