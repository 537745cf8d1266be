//! `afe_labels`: labels (`board:<name>`, `pool:<name>`, ...).

use sea_orm::entity::prelude::*;

/// One row of `afe_labels`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "afe_labels")]
pub struct Model {
    /// Primary key; master ids are inserted explicitly.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Unique name.
    pub name: Option<String>,
    /// Kernel config, usually empty.
    pub kernel_config: Option<String>,
    /// Whether the label names a platform.
    pub platform: Option<bool>,
    /// Soft-deletion flag.
    pub invalid: bool,
    /// Hosts with this label only run jobs that ask for it.
    pub only_if_needed: bool,
    /// Legacy atomic group; never written by the shard client.
    pub atomic_group_id: Option<i32>,
}

/// Foreign keys of `afe_labels`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// A plain label `id` named `name`: no platform, no kernel config,
    /// usable by any job (the labels of the reference master's labs and of
    /// the tests).
    pub fn plain(id: i32, name: String) -> Model {
        Model {
            id,
            name: Some(name),
            kernel_config: Some(String::new()),
            platform: Some(false),
            invalid: false,
            only_if_needed: false,
            atomic_group_id: None,
        }
    }
}
