//! `afe_hosts_labels`: labels of hosts.

use sea_orm::entity::prelude::*;

/// One row of `afe_hosts_labels`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "afe_hosts_labels")]
pub struct Model {
    /// Surrogate key; link rows are inserted without one.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The host.
    pub host_id: Option<i32>,
    /// The label.
    pub label_id: Option<i32>,
}

/// Foreign keys of `afe_hosts_labels`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The host.
    #[sea_orm(
        belongs_to = "super::afe_hosts::Entity",
        from = "Column::HostId",
        to = "super::afe_hosts::Column::Id"
    )]
    Host,
    /// The label.
    #[sea_orm(
        belongs_to = "super::afe_labels::Entity",
        from = "Column::LabelId",
        to = "super::afe_labels::Column::Id"
    )]
    Label,
}

impl ActiveModelBehavior for ActiveModel {}
