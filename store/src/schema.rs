//! Column widths of the AFE schema, shared by the migration that creates the
//! columns and the validation that refuses values that would not fit them.
//!
//! SQLite stores an over-long string without complaint and MySQL in strict
//! mode refuses it, so a record must be checked before it is written for the
//! outcome to be the same on every backend (§9).

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
