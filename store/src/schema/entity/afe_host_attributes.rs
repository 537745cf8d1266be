//! `afe_host_attributes`: host attributes; identified by (`host_id`, `attribute`).

use sea_orm::entity::prelude::*;

/// One row of `afe_host_attributes`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "afe_host_attributes")]
pub struct Model {
    /// Surrogate key; link rows are inserted without one.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The host.
    pub host_id: i32,
    /// Attribute name.
    pub attribute: String,
    /// Attribute value.
    pub value: String,
}

/// Foreign keys of `afe_host_attributes`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The host.
    #[sea_orm(
        belongs_to = "super::afe_hosts::Entity",
        from = "Column::HostId",
        to = "super::afe_hosts::Column::Id"
    )]
    Host,
}

impl ActiveModelBehavior for ActiveModel {}
