//! Tests that need root say so by calling [`require`] first. Without root they fail with the
//! reason: a skipped test would look like a passed one.

/// Panics with `why` (what the test does that needs root) unless this process is root.
#[track_caller]
pub fn require(why: &str) {
    assert!(
        crate::procs::is_root(),
        "this test needs root ({why}): run the tests as root, e.g. scripts/test.sh"
    );
}
