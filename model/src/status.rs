//! Status vocabularies of §5, shared by the store, the master and the
//! scheduler simulator so that nobody spells a status twice.

/// The status of a new entry, waiting for a host.
pub const QUEUED: &str = "Queued";

/// Every host queue entry status.
pub const HQE_STATUSES: [&str; 15] = [
    QUEUED,
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

/// True when an entry's `complete` flag disagrees with its `status`: a
/// complete status with `complete = 0`, or `complete = 1` with a status that
/// is not complete.
///
/// The scheduler writes an entry's status first and `complete` last, in
/// separate statements (§1), so a reader can catch an entry in between; such
/// an entry is not uploaded until it is consistent (§7 step 1). A status
/// outside [`HQE_STATUSES`] (or none) says nothing either way, and neither
/// does a NULL flag: the scheduler writes 0 or 1, so a NULL is not a write
/// in progress, and holding its job back would hold it for good.
pub fn half_written(status: Option<&str>, complete: Option<bool>) -> bool {
    let (Some(status), Some(complete)) = (status, complete) else {
        return false;
    };
    if HQE_COMPLETE_STATUSES.contains(&status) {
        !complete
    } else {
        complete && HQE_STATUSES.contains(&status)
    }
}

#[cfg(test)]
mod tests {
    use super::half_written;

    #[test]
    fn an_entry_is_half_written_while_its_flag_disagrees_with_its_status() {
        // Between the scheduler's status write and its `complete = 1`.
        assert!(half_written(Some("Completed"), Some(false)));
        // Re-queued: `complete = 0` not yet written after the status.
        assert!(half_written(Some("Queued"), Some(true)));
        // Consistent entries.
        assert!(!half_written(Some("Completed"), Some(true)));
        assert!(!half_written(Some("Aborted"), Some(true)));
        assert!(!half_written(Some("Running"), Some(false)));
        assert!(!half_written(Some("Queued"), None));
    }

    #[test]
    fn a_null_flag_never_holds_an_entry_back() {
        // Found by the packet oracle: the job would never go up.
        assert!(!half_written(Some("Failed"), None));
        assert!(!half_written(Some("Queued"), None));
    }

    #[test]
    fn an_unknown_or_missing_status_never_holds_an_entry_back() {
        assert!(!half_written(Some("Archiving"), Some(true)));
        assert!(!half_written(None, Some(true)));
        assert!(!half_written(None, Some(false)));
    }
}
