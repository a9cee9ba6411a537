//! What the test modules share: the `orch-node` binary, and orch-testkit's waits, /proc, root
//! and turns.

pub use orch_testkit::{alone, procs, root, turn, wait_for, Turn};

/// The `orch-node` binary under test.
pub const NODE: &str = env!("CARGO_BIN_EXE_orch-node");
