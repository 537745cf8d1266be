//! `afe_acl_groups`: ACL groups.

use sea_orm::entity::prelude::*;

/// One row of `afe_acl_groups`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "afe_acl_groups")]
pub struct Model {
    /// Primary key; master ids are inserted explicitly.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Group name.
    pub name: Option<String>,
    /// Free-text description.
    pub description: Option<String>,
}

/// Foreign keys of `afe_acl_groups`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
