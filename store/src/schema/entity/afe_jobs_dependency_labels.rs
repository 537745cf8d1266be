//! `afe_jobs_dependency_labels`: labels a job needs on its host.

use sea_orm::entity::prelude::*;

/// One row of `afe_jobs_dependency_labels`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "afe_jobs_dependency_labels")]
pub struct Model {
    /// Surrogate key; link rows are inserted without one.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The job.
    pub job_id: i32,
    /// The label.
    pub label_id: i32,
}

/// Foreign keys of `afe_jobs_dependency_labels`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The job.
    #[sea_orm(
        belongs_to = "super::afe_jobs::Entity",
        from = "Column::JobId",
        to = "super::afe_jobs::Column::Id"
    )]
    Job,
    /// The label.
    #[sea_orm(
        belongs_to = "super::afe_labels::Entity",
        from = "Column::LabelId",
        to = "super::afe_labels::Column::Id"
    )]
    Label,
}

impl ActiveModelBehavior for ActiveModel {}
