//! `afe_users`: users; identified by the pair (`login`, `id`).

use sea_orm::entity::prelude::*;

/// One row of `afe_users`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "afe_users")]
pub struct Model {
    /// Primary key; master ids are inserted explicitly.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Unique login.
    pub login: Option<String>,
    /// 0 user, 1 admin, 100 root.
    pub access_level: Option<i32>,
    /// Reboot preference before jobs.
    pub reboot_before: i16,
    /// Reboot preference after jobs.
    pub reboot_after: i16,
    /// UI preference.
    pub show_experimental: bool,
    /// Drone set; never written by the shard client.
    pub drone_set_id: Option<i32>,
}

/// Foreign keys of `afe_users`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
