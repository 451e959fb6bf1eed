//! Test support: where the shared fixtures (real SEC filings, SEC API responses, Gemini bodies)
//! are, and what to do when they are not there.
//!
//! Fixtures live outside the repository, in `../shared/fixtures` beside the workspace root, or
//! wherever `FINTEL_FIXTURES` points. When they are missing a fixture test prints that it was
//! skipped and passes, except when `FINTEL_REQUIRE_FIXTURES=1` (as in CI), where it fails.

use std::path::PathBuf;

/// The fixtures directory, if present. Panics when it is absent and `FINTEL_REQUIRE_FIXTURES=1`.
pub fn dir() -> Option<PathBuf> {
    let candidate = match std::env::var_os("FINTEL_FIXTURES") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"),
    };
    if candidate.join("MANIFEST.md").is_file() {
        return Some(candidate);
    }
    if std::env::var("FINTEL_REQUIRE_FIXTURES").as_deref() == Ok("1") {
        panic!(
            "FINTEL_REQUIRE_FIXTURES=1 but no fixtures at {}: set FINTEL_FIXTURES to the shared \
             fixtures directory",
            candidate.display()
        );
    }
    eprintln!(
        "skipped: fixtures not found at {} (set FINTEL_FIXTURES)",
        candidate.display()
    );
    None
}

/// A file under the fixtures directory, or `None` (test skipped) when fixtures are absent.
pub fn path(relative: &str) -> Option<PathBuf> {
    dir().map(|d| d.join(relative))
}

/// Returns early from a test (as skipped) when the fixtures are absent; else the directory.
#[macro_export]
macro_rules! fixtures_or_skip {
    () => {
        match $crate::dir() {
            Some(dir) => dir,
            None => return,
        }
    };
}
