//! What the integration tests of `orch` and `orch-node` share. Each crate has one test binary
//! (`tests/it/main.rs`, a module per area); this crate holds what both of them need:
//!
//! - [`wait`]: polling for a condition instead of fixed sleeps;
//! - [`procs`]: what /proc says about a process (the procfs crate);
//! - [`root`]: the declaration of a test that needs root, failing with the reason (never skipped);
//! - [`turn`]: tests of one file run side by side, files take turns.

pub mod procs;
pub mod root;
pub mod turn;
pub mod wait;

pub use turn::{alone, turn, Turn};
pub use wait::{wait_for, wait_until};
