//! sea-orm entities for the AFE tables of §9, one file per table, with
//! exactly Autotest's table and column names.
//!
//! A field is an `Option` when the column is nullable in Autotest's own
//! schema, so these entities read a database that Autotest created.

pub mod afe_acl_groups;
pub mod afe_acl_groups_hosts;
pub mod afe_acl_groups_users;
pub mod afe_host_attributes;
pub mod afe_host_queue_entries;
pub mod afe_hosts;
pub mod afe_hosts_labels;
pub mod afe_job_keyvals;
pub mod afe_jobs;
pub mod afe_jobs_dependency_labels;
pub mod afe_labels;
pub mod afe_shards;
pub mod afe_shards_labels;
pub mod afe_users;

// The tables under the short names the code uses (`hosts::Column::Status`),
// so that each file imports what it needs instead of repeating an alias list.
pub use afe_acl_groups as groups;
pub use afe_acl_groups_hosts as group_hosts;
pub use afe_acl_groups_users as group_users;
pub use afe_host_attributes as attributes;
pub use afe_host_queue_entries as hqes;
pub use afe_hosts as hosts;
pub use afe_hosts_labels as host_labels;
pub use afe_job_keyvals as keyvals;
pub use afe_jobs as jobs;
pub use afe_jobs_dependency_labels as job_labels;
pub use afe_labels as labels;
pub use afe_shards as shards;
pub use afe_shards_labels as shard_labels;
pub use afe_users as users;

/// The entities under short names, for `use shard_store::schema::entity::prelude::*`.
pub mod prelude {
    pub use super::afe_acl_groups::Entity as AclGroups;
    pub use super::afe_acl_groups_hosts::Entity as AclGroupsHosts;
    pub use super::afe_acl_groups_users::Entity as AclGroupsUsers;
    pub use super::afe_host_attributes::Entity as HostAttributes;
    pub use super::afe_host_queue_entries::Entity as HostQueueEntries;
    pub use super::afe_hosts::Entity as Hosts;
    pub use super::afe_hosts_labels::Entity as HostsLabels;
    pub use super::afe_job_keyvals::Entity as JobKeyvals;
    pub use super::afe_jobs::Entity as Jobs;
    pub use super::afe_jobs_dependency_labels::Entity as JobsDependencyLabels;
    pub use super::afe_labels::Entity as Labels;
    pub use super::afe_shards::Entity as Shards;
    pub use super::afe_shards_labels::Entity as ShardsLabels;
    pub use super::afe_users::Entity as Users;
}
