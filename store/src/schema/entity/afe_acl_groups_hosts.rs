//! `afe_acl_groups_hosts`: hosts of ACL groups.

use sea_orm::entity::prelude::*;

/// One row of `afe_acl_groups_hosts`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "afe_acl_groups_hosts")]
pub struct Model {
    /// Surrogate key; link rows are inserted without one.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The group.
    pub aclgroup_id: Option<i32>,
    /// The host.
    pub host_id: Option<i32>,
}

/// Foreign keys of `afe_acl_groups_hosts`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The group.
    #[sea_orm(
        belongs_to = "super::afe_acl_groups::Entity",
        from = "Column::AclgroupId",
        to = "super::afe_acl_groups::Column::Id"
    )]
    AclGroup,
    /// The host.
    #[sea_orm(
        belongs_to = "super::afe_hosts::Entity",
        from = "Column::HostId",
        to = "super::afe_hosts::Column::Id"
    )]
    Host,
}

impl ActiveModelBehavior for ActiveModel {}
