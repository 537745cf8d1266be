//! The AFE schema and the apply and query rules; filled in by the foundation issue.
