//! What `orch` and `orch-node` must agree on, defined once (the pattern of `bpf/rtt-common`):
//!
//! - [`agent`]: orch-node's command line for everything orch starts on hosts (`proc`,
//!   `traffic`, `elect`, `fourlw`, `chroot`, `ycsb`), parsed by orch-node and built by orch.
//! - [`delay`]: the rule file of `orch-node delay`, the ranges of its values, the jitter
//!   distributions and the `--show` read-back, written by one side and read by the other.
//! - [`dist`]: netem's jitter distributions as quantile functions: the emulator draws from them
//!   and orch certifies measured round trips against them.
//! - [`replica`]: the replica's configuration (`orch-node elect --config`), which orch builds
//!   from a scenario's `election:` section and the inventory, and orch-node reads.
//! - [`events`]: the records of the replica's JSON-lines event log, which orch-node writes and
//!   the analysis (`orch-analysis`, used by orch and `orch-node elect-summary`) reads.
//!
//! Nothing here does I/O beyond parsing text it is handed.

pub mod agent;
pub mod delay;
pub mod dist;
pub mod events;
pub mod replica;
