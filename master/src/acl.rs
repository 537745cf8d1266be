//! The calling user and its access to hosts, as the real master's
//! middleware and `AclGroup.check_for_acl_violation_hosts` see them (§11).
//!
//! The real master looks the `AUTHORIZATION` user up by login and creates
//! it on first use (an ordinary user, added to the `Everyone` group). Saving
//! a host checks that the user is a superuser or belongs to an ACL group of
//! that host; an invalid host is not checked.

use std::collections::HashSet;

use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use shard_store::schema::chunk;
use shard_store::schema::entity::{group_hosts, group_users, groups, users};

use crate::Fault;

/// The login the real master assumes when a request names no user.
pub const DEBUG_USER: &str = "debug_user";

/// `access_level` from which a user may touch every host (`ACCESS_ROOT`).
pub const SUPERUSER_ACCESS_LEVEL: i32 = 100;

/// The group every new user joins, when the master has one.
const EVERYONE: &str = "Everyone";

/// A user of the master, as far as access control needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `afe_users.id`.
    pub id: i32,
    /// The login, as the `AUTHORIZATION` header named it.
    pub login: String,
    /// `afe_users.access_level` (NULL counts as an ordinary user).
    pub access_level: Option<i32>,
}

impl User {
    /// Whether the user may change any host (`User.is_superuser`).
    pub fn is_superuser(&self) -> bool {
        self.access_level
            .is_some_and(|level| level >= SUPERUSER_ACCESS_LEVEL)
    }
}

/// The user with `login`, created when missing: access level 0, the
/// master's default reboot policies (`If dirty`, `Never`), and a member of
/// the `Everyone` ACL group if the master has one.
pub async fn user_by_login(db: &impl ConnectionTrait, login: &str) -> Result<User, Fault> {
    if let Some(user) = find(db, login).await? {
        return Ok(user);
    }
    // Two first calls of a new user may race: the loser's insert breaks the
    // unique login (or takes the same id), and it then finds the winner's.
    let created = create(db, login).await;
    match find(db, login).await? {
        Some(user) => {
            if created.is_ok() {
                tracing::info!(login, id = user.id, "user created on first use");
            }
            Ok(user)
        }
        None => Err(created.err().unwrap_or_else(|| {
            Fault::new(
                "DatabaseError",
                format!("user {login:?} vanished after creation"),
            )
        })),
    }
}

async fn find(db: &impl ConnectionTrait, login: &str) -> Result<Option<User>, Fault> {
    let row = users::Entity::find()
        .filter(users::Column::Login.eq(login))
        .order_by_asc(users::Column::Id)
        .one(db)
        .await?;
    Ok(row.map(|row| User {
        id: row.id,
        login: login.to_owned(),
        access_level: row.access_level,
    }))
}

async fn create(db: &impl ConnectionTrait, login: &str) -> Result<(), Fault> {
    // Every id on this master is written explicitly (records keep their
    // master ids), so a sequence may lag behind the table: take the next id.
    let next = Query::select()
        .expr(Func::max(Expr::col(users::Column::Id)))
        .from(users::Entity)
        .to_owned();
    let max: i32 = match db.query_one(&next).await? {
        Some(row) => row.try_get_by_index::<Option<i32>>(0)?.unwrap_or(0),
        None => 0,
    };
    let id = max
        .checked_add(1)
        .ok_or_else(|| Fault::new("DatabaseError", "afe_users ids are exhausted"))?;
    users::ActiveModel {
        id: Set(id),
        login: Set(Some(login.to_owned())),
        access_level: Set(Some(0)),
        reboot_before: Set(1),
        reboot_after: Set(0),
        show_experimental: Set(false),
        drone_set_id: Set(None),
    }
    .insert(db)
    .await?;
    let everyone: Option<i32> = groups::Entity::find()
        .select_only()
        .column(groups::Column::Id)
        .filter(groups::Column::Name.eq(EVERYONE))
        .order_by_asc(groups::Column::Id)
        .into_tuple()
        .one(db)
        .await?;
    if let Some(group) = everyone {
        group_users::ActiveModel {
            aclgroup_id: Set(Some(group)),
            user_id: Set(Some(id)),
            ..Default::default()
        }
        .insert(db)
        .await?;
    }
    Ok(())
}

/// Of `host_ids`, those in an ACL group `user` belongs to.
pub async fn accessible_hosts(
    db: &impl ConnectionTrait,
    user: &User,
    host_ids: &[i32],
) -> Result<HashSet<i32>, Fault> {
    let groups_of_user = Query::select()
        .column(group_users::Column::AclgroupId)
        .from(group_users::Entity)
        .and_where(Expr::col(group_users::Column::UserId).eq(user.id))
        .to_owned();
    let mut out = HashSet::new();
    for chunk in chunk::by_params(db.get_database_backend(), 1, host_ids) {
        let stmt = Query::select()
            .distinct()
            .column(group_hosts::Column::HostId)
            .from(group_hosts::Entity)
            .and_where(Expr::col(group_hosts::Column::HostId).is_in(chunk.iter().copied()))
            .and_where(
                Expr::col(group_hosts::Column::AclgroupId).in_subquery(groups_of_user.clone()),
            )
            .to_owned();
        for row in db.query_all(&stmt).await? {
            if let Some(id) = row.try_get_by_index::<Option<i32>>(0)? {
                out.insert(id);
            }
        }
    }
    Ok(out)
}
