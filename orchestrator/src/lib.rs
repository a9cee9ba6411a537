//! orch: runs distributed-systems latency experiments on real clusters over SSH.
//!
//! The modules follow the pipeline:
//!
//! - [`config`]: diagnostics for the files users write (file:line:column: field: message);
//! - [`inventory`] (which hosts) and [`scenario`] (what to run on them, expanded into runs);
//! - [`remote`]: SSH to many hosts at once, one reused connection each;
//! - [`facts`] (`orch check`), [`exec`] (`orch exec`), [`status`] (`orch status`);
//! - [`artifacts`] (built once on the controller) -> [`setup`] (pushed by hash, configs rendered);
//! - [`run`]: the phases of `orch run` ([`delay`]: the delays; traffic, ZooKeeper, replicas,
//!   workload, teardown);
//! - [`results`]: the results directory, summaries, cells, plots, `orch report`;
//! - [`logs`]: `orch fetch-logs`;
//! - [`lab`]: a local testbed of namespaced hosts to run all of it without a cluster;
//! - [`cli`] and [`output`]: the command line and its progress display.

pub mod artifacts;
pub mod cli;
pub mod clock;
pub mod config;
pub mod delay;
pub mod exec;
pub mod facts;
pub mod inventory;
pub mod lab;
pub mod logs;
pub mod output;
pub mod remote;
pub mod results;
pub mod run;
pub mod scenario;
pub mod setup;
pub mod status;
