//! Schema migrations (sea-orm-migration), one file per migration; a
//! migration is never edited once it has landed.
//!
//! The first migration *creates the missing `afe_` tables only*: on a
//! database that Autotest itself created, every table exists and is adopted
//! untouched (never altered, converted or dropped); sea-orm's own
//! `seaql_migrations` table is the only addition.

use sea_orm_migration::prelude::*;

mod m20261128_000001_create_afe_tables;

/// Every migration of the shard database, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261128_000001_create_afe_tables::Migration)]
    }
}
