//! orch: runs distributed-systems latency experiments on real clusters over SSH.
//!
//! The modules follow the pipeline: [`inventory`] (which hosts) -> [`remote`] (SSH to many
//! hosts at once) -> [`facts`] and [`exec`] (look at and act on hosts) -> [`lab`] (a local
//! testbed of namespaced hosts to run all of it without a cluster).

pub mod artifacts;
pub mod cli;
pub mod config;
pub mod exec;
pub mod facts;
pub mod inventory;
pub mod lab;
pub mod logs;
pub mod net;
pub mod output;
pub mod plot;
pub mod remote;
pub mod report;
pub mod results;
pub mod run;
pub mod scenario;
pub mod setup;
pub mod status;
pub mod store;
