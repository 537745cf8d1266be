//! `afe_host_queue_entries`: host queue entries: one job on one host or on a label's hosts.

use sea_orm::entity::prelude::*;

/// One row of `afe_host_queue_entries`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "afe_host_queue_entries")]
pub struct Model {
    /// Primary key; master ids are inserted explicitly.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The job.
    pub job_id: Option<i32>,
    /// The host, once known.
    pub host_id: Option<i32>,
    /// Entry status.
    pub status: Option<String>,
    /// The label of "any host with this label" entries.
    pub meta_host: Option<i32>,
    /// Being worked on.
    pub active: Option<bool>,
    /// Finished.
    pub complete: Option<bool>,
    /// Deleted.
    pub deleted: bool,
    /// Results subdirectory.
    pub execution_subdir: String,
    /// Legacy atomic group; never written by the shard client.
    pub atomic_group_id: Option<i32>,
    /// Aborted on the master or the shard.
    pub aborted: bool,
    /// Start time.
    pub started_on: Option<DateTime>,
    /// End time.
    pub finished_on: Option<DateTime>,
}

/// Foreign keys of `afe_host_queue_entries`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The job.
    #[sea_orm(
        belongs_to = "super::afe_jobs::Entity",
        from = "Column::JobId",
        to = "super::afe_jobs::Column::Id"
    )]
    Job,
    /// The host.
    #[sea_orm(
        belongs_to = "super::afe_hosts::Entity",
        from = "Column::HostId",
        to = "super::afe_hosts::Column::Id"
    )]
    Host,
    /// The meta host label.
    #[sea_orm(
        belongs_to = "super::afe_labels::Entity",
        from = "Column::MetaHost",
        to = "super::afe_labels::Column::Id"
    )]
    MetaHost,
}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// Entry `id` of `job_id`, queued, on no host and no label: the entry
    /// the reference master's labs and the tests build on.
    pub fn queued(id: i32, job_id: i32) -> Model {
        Model {
            id,
            job_id: Some(job_id),
            host_id: None,
            status: Some(shard_model::status::QUEUED.to_owned()),
            meta_host: None,
            active: Some(false),
            complete: Some(false),
            deleted: false,
            execution_subdir: String::new(),
            atomic_group_id: None,
            aborted: false,
            started_on: None,
            finished_on: None,
        }
    }
}
