//! What orch computes from the outputs of a run, on the controller (no host needed):
//!
//! - [`clock`]: hosts' clock offsets against the controller's clock, intervals across hosts
//!   put on it, with their bounds.
//! - [`elect`]: the replicas' event logs -> leaders per term, time to first leader, detection
//!   and failover times, false positives, petitions, armed timeouts next to measured RTTs
//!   (the original's count_leader.py, detection_time_analysis.py and extract_failure.py).
//! - [`stats`]: repetitions of a matrix cell -> n, mean, stddev, Student-t confidence interval.
//! - [`ycsb`]: YCSB's text output (real YCSB of any release, and `orch-node ycsb`) -> a report
//!   with failed operations counted per operation.
//!
//! `orch-node elect-summary` prints the same [`elect::Summary`] for logs at hand.

pub mod clock;
pub mod elect;
pub mod stats;
pub mod ycsb;
