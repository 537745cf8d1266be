//! `afe_shards_labels`: which labels (boards) a shard serves.

use sea_orm::entity::prelude::*;

/// One row of `afe_shards_labels`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "afe_shards_labels")]
pub struct Model {
    /// Surrogate key; link rows are inserted without one.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The shard.
    pub shard_id: i32,
    /// The label; a label belongs to at most one shard.
    pub label_id: i32,
}

/// Foreign keys of `afe_shards_labels`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The shard.
    #[sea_orm(
        belongs_to = "super::afe_shards::Entity",
        from = "Column::ShardId",
        to = "super::afe_shards::Column::Id"
    )]
    Shard,
    /// The label.
    #[sea_orm(
        belongs_to = "super::afe_labels::Entity",
        from = "Column::LabelId",
        to = "super::afe_labels::Column::Id"
    )]
    Label,
}

impl ActiveModelBehavior for ActiveModel {}
