//! orch's integration tests: one binary, a module per area, helpers in `util` (the lab,
//! the binaries, output helpers; waits, /proc, root and turns from orch-testkit).
//!
//! Most modules need root: they bring up a local lab (network namespaces, each with its own
//! sshd; see docs/lab.md) and fail, saying so, when run as a user. `inventory` and `scenarios`
//! need nothing. `kernel` needs a kernel with sch_netem: its tests are `#[ignore]`d here and
//! run by `scripts/kernel-test.sh` in VMs (`it kernel:: --include-ignored`).
//!
//! Files take turns (orch_testkit::turn): the tests of one module run side by side, as their
//! timings were written for, never beside another module's.

mod util;

mod certify;
mod cllab;
mod clocks;
mod control;
mod delay;
mod election;
mod failures;
mod faults;
mod intended;
mod inventory;
mod kernel;
mod lab;
mod logs;
mod relay;
mod reorder;
mod run;
mod scenarios;
mod setup;
mod uplink;
mod zklogs;
