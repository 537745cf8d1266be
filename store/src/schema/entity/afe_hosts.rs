//! `afe_hosts`: hosts (test devices).

use sea_orm::entity::prelude::*;

/// One row of `afe_hosts`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "afe_hosts")]
pub struct Model {
    /// Primary key; master ids are inserted explicitly.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// DNS name.
    pub hostname: Option<String>,
    /// Locked hosts are not scheduled.
    pub locked: Option<bool>,
    /// Synchronization group.
    pub synch_id: Option<i32>,
    /// Status, owned by the shard's scheduler.
    pub status: Option<String>,
    /// Soft-deletion flag; an invalid host is not reported as known.
    pub invalid: Option<bool>,
    /// Repair protection level.
    pub protection: i32,
    /// Who locked the host; cleared when that user is deleted.
    pub locked_by_id: Option<i32>,
    /// When the host was locked.
    pub lock_time: Option<DateTime>,
    /// The host needs a cleanup before its next job.
    pub dirty: bool,
    /// Leased hosts are not handed to shards.
    pub leased: bool,
    /// The shard the host is assigned to.
    pub shard_id: Option<i32>,
    /// Why the host was locked.
    #[sea_orm(column_type = "Text")]
    pub lock_reason: Option<String>,
}

/// Foreign keys of `afe_hosts`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Who locked the host.
    #[sea_orm(
        belongs_to = "super::afe_users::Entity",
        from = "Column::LockedById",
        to = "super::afe_users::Column::Id"
    )]
    LockedBy,
    /// The shard the host is assigned to.
    #[sea_orm(
        belongs_to = "super::afe_shards::Entity",
        from = "Column::ShardId",
        to = "super::afe_shards::Column::Id"
    )]
    Shard,
}

impl ActiveModelBehavior for ActiveModel {}
