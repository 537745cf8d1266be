//! `afe_job_keyvals`: job keyvals; identified by (`job_id`, `key`).

use sea_orm::entity::prelude::*;

/// One row of `afe_job_keyvals`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "afe_job_keyvals")]
pub struct Model {
    /// Surrogate key; link rows are inserted without one.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The job (no foreign key: suite jobs stay on the master).
    pub job_id: i32,
    /// Keyval name (a reserved word in MySQL: always quoted).
    pub key: String,
    /// Keyval value.
    pub value: String,
}

/// Foreign keys of `afe_job_keyvals`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
