//! orch-node's integration tests: one binary, a module per subcommand, helpers in `util` (the
//! binary; waits, /proc, root and turns from orch-testkit) and `cluster` (replicas on loopback).
//!
//! `delay` and `rtt` need root (network namespaces, eBPF) and say so when run as a user; `rtt`
//! also runs in the kernel tier's VMs (`it rtt::`, scripts/kernel-test.sh). `ycsb` needs Debian's
//! `zookeeper` package. Files take turns (orch_testkit::turn), `delay`'s tests run alone.

mod cluster;
mod util;

mod delay;
mod elect_cluster;
mod proc;
mod proc_signal;
mod rtt;
mod traffic;
mod ycsb;
