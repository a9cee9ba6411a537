//! Scenarios: one experiment in YAML (which hosts run ZooKeeper, the designated leader,
//! background traffic, the leader-election phase, the YCSB workload, repetitions and a matrix), validated
//! against the inventory and expanded into concrete runs before any host is touched.

mod check;
mod election;
mod faults;
mod matrix;
mod raw;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, ConfigError};
use crate::inventory::Inventory;

pub use election::ElectionPlan;
pub use faults::{Fault, FaultAction, FaultTarget};

/// A validated scenario, expanded into the runs it stands for.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub path: PathBuf,
    pub name: String,
    pub description: Option<String>,
    /// The file as written, recorded with the results.
    pub text: String,
    /// Matrix combinations x repetitions, in order.
    pub runs: Vec<RunSpec>,
    /// What runs as declared but may not measure what it seems to (jitter that reorders one
    /// flow's packets: delay/reorder.rs); `orch run` prints them.
    pub warnings: Vec<config::Problem>,
}

/// One concrete run of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// 1-based position among the scenario's runs.
    pub index: usize,
    /// Matrix key -> value for this run, in matrix order.
    pub matrix: Vec<(String, String)>,
    /// 1-based repetition of this matrix combination.
    pub repetition: u32,
    /// Network delays (validated against the inventory), applied before anything starts.
    pub delays: Option<crate::delay::Delays>,
    pub zookeeper: Option<ZookeeperPlan>,
    pub traffic: Option<TrafficPlan>,
    /// Leader-election replicas; the run waits for them (`duration_s`).
    pub election: Option<ElectionPlan>,
    pub workload: Option<WorkloadPlan>,
    /// Faults during the workload's run phase, ordered by start; empty without `faults:`.
    pub faults: Vec<Fault>,
}

impl RunSpec {
    /// A short directory-safe name: `r01-leader=node2-threads=1-rep1`.
    pub fn label(&self) -> String {
        let mut s = format!("r{:02}", self.index);
        for (k, v) in &self.matrix {
            let key = k.rsplit('.').next().unwrap_or(k);
            s.push_str(&format!("-{key}={}", sanitize(v)));
        }
        s.push_str(&format!("-rep{}", self.repetition));
        s
    }
}

fn sanitize(v: &str) -> String {
    v.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The ZooKeeper ensemble of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ZookeeperPlan {
    /// Host names of the servers, in inventory order.
    pub servers: Vec<String>,
    /// The server that must end up leader, if the scenario designates one.
    pub leader: Option<String>,
    /// How long to wait for a serving quorum.
    pub quorum_timeout: Duration,
}

/// Background TCP traffic between the experiment IPs.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficPlan {
    pub hosts: Vec<String>,
    pub port: u16,
    pub mode: TrafficMode,
}

/// The two kinds of background traffic `orch-node traffic` makes.
#[derive(Debug, Clone, PartialEq)]
pub enum TrafficMode {
    /// One persistent connection to every peer, `bytes` every `interval_ms` (like tcp_sim.py).
    Mesh { bytes: u32, interval_ms: u32 },
    /// A paced stream to every peer, like `iperf3 -b RATE -l LEN`: bits/s, bytes per write.
    Rate { rate: u64, len: usize },
}

/// Which ZooKeeper server(s) the YCSB client connects to.
#[derive(Debug, Clone, PartialEq)]
pub enum Connect {
    /// The designated (and verified) leader, as in the seed's experiment.
    Leader,
    /// One named server.
    Host(String),
    /// Every server (ZooKeeper's client picks one).
    All,
}

/// The YCSB workload of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadPlan {
    pub client: String,
    pub connect: Connect,
    /// A YCSB workload file: a name shipped in scenarios/workloads/ or a path on the controller.
    pub workload: Workload,
    pub threads: u32,
    /// `-p` properties, applied after the workload file.
    pub properties: BTreeMap<String, String>,
    /// Run `ycsb load` before `ycsb run`.
    pub load: bool,
    /// A real YCSB installation on the client host to use instead of `orch-node ycsb`.
    pub ycsb_home: Option<String>,
    /// Failed operations (load or run) above this share of all operations fail the run.
    pub max_error_pct: f64,
}

/// Where the YCSB workload file comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    /// One of YCSB's core workloads (workloada .. workloadf), shipped with orch.
    Builtin(String),
    /// A file on the controller, read when the run starts.
    File(PathBuf),
}

impl Scenario {
    /// Reads, validates and expands a scenario against `inventory`.
    pub fn load(path: &Path, inventory: &Inventory) -> Result<Scenario, ConfigError> {
        Scenario::parse(&config::read(path)?, path, inventory)
    }

    /// Validates and expands scenario text; `path` names the file in messages and anchors
    /// relative workload paths.
    pub fn parse(text: &str, path: &Path, inventory: &Inventory) -> Result<Scenario, ConfigError> {
        check::parse(text, path, inventory)
    }
}

/// YCSB's core workloads, shipped so that `workload: workloadb` works without a YCSB checkout.
pub fn builtin_workload(name: &str) -> Option<&'static str> {
    match name {
        "workloada" => Some(include_str!("../../../scenarios/workloads/workloada")),
        "workloadb" => Some(include_str!("../../../scenarios/workloads/workloadb")),
        "workloadc" => Some(include_str!("../../../scenarios/workloads/workloadc")),
        "workloadd" => Some(include_str!("../../../scenarios/workloads/workloadd")),
        "workloadf" => Some(include_str!("../../../scenarios/workloads/workloadf")),
        _ => None,
    }
}
