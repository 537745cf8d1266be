//! `afe_acl_groups_users`: members of ACL groups.

use sea_orm::entity::prelude::*;

/// One row of `afe_acl_groups_users`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "afe_acl_groups_users")]
pub struct Model {
    /// Surrogate key; link rows are inserted without one.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The group.
    pub aclgroup_id: Option<i32>,
    /// The member.
    pub user_id: Option<i32>,
}

/// Foreign keys of `afe_acl_groups_users`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The group.
    #[sea_orm(
        belongs_to = "super::afe_acl_groups::Entity",
        from = "Column::AclgroupId",
        to = "super::afe_acl_groups::Column::Id"
    )]
    AclGroup,
    /// The member.
    #[sea_orm(
        belongs_to = "super::afe_users::Entity",
        from = "Column::UserId",
        to = "super::afe_users::Column::Id"
    )]
    User,
}

impl ActiveModelBehavior for ActiveModel {}
