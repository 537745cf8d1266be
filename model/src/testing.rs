//! The spec's example payloads and minimal records ([`records`]), for
//! tests (feature `testing`).
//!
//! They live in `shared/spec/fixtures/` beside the repository and are read
//! from there, never copied in. A clone may sit at any depth, so the
//! directory is looked up from the crate upwards; `SHARD_SPEC_DIR` overrides
//! the search.

use std::path::{Path, PathBuf};

pub mod records;

/// The directory holding the spec's fixtures.
///
/// # Panics
/// When no `shared/spec/fixtures` directory can be found: the tests that
/// need it cannot say anything without it.
pub fn fixtures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SHARD_SPEC_DIR") {
        return PathBuf::from(dir).join("fixtures");
    }
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    start
        .ancestors()
        .map(|dir| dir.join("shared/spec/fixtures"))
        .chain(std::iter::once(PathBuf::from("/work/shared/spec/fixtures")))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "no shared/spec/fixtures above {}; set SHARD_SPEC_DIR to the spec directory",
                start.display()
            )
        })
}

/// The bytes of one fixture, e.g. `fixture("response-basic.json")`.
///
/// # Panics
/// When the fixture cannot be read.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
