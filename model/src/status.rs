//! Status vocabularies of §5, shared by the store, the master and the
//! scheduler simulator so that nobody spells a status twice.

/// Every host queue entry status.
pub const HQE_STATUSES: [&str; 15] = [
    "Queued",
    "Starting",
    "Resetting",
    "Verifying",
    "Provisioning",
    "Pending",
    "Running",
    "Gathering",
    "Parsing",
    "Aborted",
    "Completed",
    "Failed",
    "Stopped",
    "Cleaning",
    "Template",
];

/// Entry statuses in which `active = 1`.
pub const HQE_ACTIVE_STATUSES: [&str; 8] = [
    "Starting",
    "Resetting",
    "Verifying",
    "Provisioning",
    "Pending",
    "Running",
    "Gathering",
    "Cleaning",
];

/// Entry statuses in which `complete = 1`.
pub const HQE_COMPLETE_STATUSES: [&str; 5] =
    ["Aborted", "Completed", "Failed", "Stopped", "Template"];

/// Every host status.
pub const HOST_STATUSES: [&str; 9] = [
    "Verifying",
    "Running",
    "Ready",
    "Repairing",
    "Repair Failed",
    "Cleaning",
    "Pending",
    "Resetting",
    "Provisioning",
];
