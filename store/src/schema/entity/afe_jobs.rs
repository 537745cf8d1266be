//! `afe_jobs`: jobs; `shard_id IS NULL` with a complete entry means "upload me".

use sea_orm::entity::prelude::*;

/// One row of `afe_jobs`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "afe_jobs")]
pub struct Model {
    /// Primary key; master ids are inserted explicitly.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Login of the job's creator.
    pub owner: Option<String>,
    /// Job name.
    pub name: Option<String>,
    /// Scheduling priority.
    pub priority: Option<i32>,
    /// The control file.
    #[sea_orm(column_type = "Text")]
    pub control_file: Option<String>,
    /// Client or server control file.
    pub control_type: Option<i32>,
    /// Creation time on the master.
    pub created_on: Option<DateTime>,
    /// Hosts that run the job together.
    pub synch_count: i32,
    /// Legacy timeout in hours.
    pub timeout: i32,
    /// Verify hosts first.
    pub run_verify: Option<bool>,
    /// Addresses notified at the end.
    pub email_list: String,
    /// Reboot policy before.
    pub reboot_before: i16,
    /// Reboot policy after.
    pub reboot_after: i16,
    /// Repair hosts whose results failed to parse.
    pub parse_failed_repair: bool,
    /// Legacy maximum runtime in hours.
    pub max_runtime_hrs: i32,
    /// Drone set; never written by the shard client.
    pub drone_set_id: Option<i32>,
    /// Parameterized job; never written by the shard client.
    pub parameterized_job_id: Option<i32>,
    /// Maximum runtime in minutes.
    pub max_runtime_mins: i32,
    /// The suite job (no foreign key: suite jobs stay on the master).
    pub parent_job_id: Option<i32>,
    /// Retries of failed tests.
    pub test_retry: i32,
    /// Reset hosts first (`smallint` on MySQL, `boolean` elsewhere).
    pub run_reset: bool,
    /// Timeout in minutes.
    pub timeout_mins: i32,
    /// The shard the job is assigned to; NULL once it finished on the shard.
    pub shard_id: Option<i32>,
    /// Server-side packaging requirement.
    pub require_ssp: Option<bool>,
}

/// Foreign keys of `afe_jobs`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The shard the job is assigned to.
    #[sea_orm(
        belongs_to = "super::afe_shards::Entity",
        from = "Column::ShardId",
        to = "super::afe_shards::Column::Id"
    )]
    Shard,
}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// Job `id` with the values a lab's jobs share (one machine, 24 h
    /// timeouts, no retries, unassigned) and no owner, name, priority,
    /// control file or creation time: what the reference master's labs and
    /// the tests build their job rows on.
    pub fn with_defaults(id: i32) -> Model {
        Model {
            id,
            owner: None,
            name: None,
            priority: None,
            control_file: None,
            control_type: None,
            created_on: None,
            synch_count: 1,
            timeout: 24,
            run_verify: Some(false),
            email_list: String::new(),
            reboot_before: 1,
            reboot_after: 0,
            parse_failed_repair: true,
            max_runtime_hrs: 72,
            drone_set_id: None,
            parameterized_job_id: None,
            max_runtime_mins: 1440,
            parent_job_id: None,
            test_retry: 0,
            run_reset: true,
            timeout_mins: 1440,
            shard_id: None,
            require_ssp: None,
        }
    }
}
