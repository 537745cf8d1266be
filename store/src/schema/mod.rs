//! The AFE schema as the rest of the workspace may use it: the entities
//! (each table's columns, named once), the column widths, the row each
//! record becomes, conversions between rows and records, and chunked
//! statements that stay under every backend's limits. The reference
//! master, the simulator and the bench build on these; apply's planning
//! and the heartbeat's queries stay private to the store.
//!
//! The widths are shared by [`create`] (which creates the columns) and the
//! validation that refuses values that would not fit them: SQLite stores an
//! over-long string without complaint and MySQL in strict mode refuses it,
//! so a record must be checked before it is written for the outcome to be
//! the same on every backend (§9).

pub mod chunk;
pub mod convert;
pub(crate) mod create;
pub mod entity;
pub mod read;
pub mod rows;
pub mod write;

/// `varchar(90)`: host attribute names and keyval keys.
pub const SHORT_NAME: u32 = 90;
/// `varchar(250)`: `afe_jobs.email_list`.
pub const EMAIL_LIST: u32 = 250;
/// `varchar(255)`: hostnames, logins, statuses, names.
pub const NAME: u32 = 255;
/// `varchar(300)`: host attribute and keyval values.
pub const VALUE: u32 = 300;
/// `varchar(750)`: `afe_labels.name`.
pub const LABEL_NAME: u32 = 750;
/// MySQL's `text` holds 65,535 bytes; the other backends are held to it.
pub const TEXT_BYTES: usize = 65_535;

/// Every `afe_` table, parents before children (the order to create them in).
pub const AFE_TABLES: [&str; 14] = [
    "afe_shards",
    "afe_labels",
    "afe_shards_labels",
    "afe_users",
    "afe_acl_groups",
    "afe_acl_groups_users",
    "afe_hosts",
    "afe_acl_groups_hosts",
    "afe_hosts_labels",
    "afe_host_attributes",
    "afe_jobs",
    "afe_jobs_dependency_labels",
    "afe_host_queue_entries",
    "afe_job_keyvals",
];

/// Every `afe_` table with its columns as its entity names them, in the
/// entity's order, parents first: what [`create`] makes, and what a test
/// holds each backend's catalog to.
pub fn entity_columns() -> Vec<(&'static str, Vec<&'static str>)> {
    use entity::{
        afe_acl_groups, afe_acl_groups_hosts, afe_acl_groups_users, afe_host_attributes,
        afe_host_queue_entries, afe_hosts, afe_hosts_labels, afe_job_keyvals, afe_jobs,
        afe_jobs_dependency_labels, afe_labels, afe_shards, afe_shards_labels, afe_users,
    };
    use sea_orm::{EntityTrait, IdenStatic, Iterable};

    fn of<E: EntityTrait>() -> (&'static str, Vec<&'static str>) {
        let columns = E::Column::iter().map(|c| c.as_str()).collect();
        (E::default().table_name(), columns)
    }
    vec![
        of::<afe_shards::Entity>(),
        of::<afe_labels::Entity>(),
        of::<afe_shards_labels::Entity>(),
        of::<afe_users::Entity>(),
        of::<afe_acl_groups::Entity>(),
        of::<afe_acl_groups_users::Entity>(),
        of::<afe_hosts::Entity>(),
        of::<afe_acl_groups_hosts::Entity>(),
        of::<afe_hosts_labels::Entity>(),
        of::<afe_host_attributes::Entity>(),
        of::<afe_jobs::Entity>(),
        of::<afe_jobs_dependency_labels::Entity>(),
        of::<afe_host_queue_entries::Entity>(),
        of::<afe_job_keyvals::Entity>(),
    ]
}
