//! `afe_shards`: shards, found by hostname.

use sea_orm::entity::prelude::*;

/// One row of `afe_shards`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "afe_shards")]
pub struct Model {
    /// Primary key; master ids are inserted explicitly.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The shard's hostname (`shard_hostname` of the heartbeat).
    pub hostname: String,
}

/// Foreign keys of `afe_shards`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
