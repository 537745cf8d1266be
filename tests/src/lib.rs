//! Harness for the cross-crate integration tests: a scripted master, the
//! scheduler simulator and helpers to run the real binaries. Filled in by the
//! engine and master issues.
