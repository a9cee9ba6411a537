//! The workload phase: YCSB load then run on the client host, through `orch-node ycsb` (or a
//! real YCSB installation named by the scenario), output copied to the controller.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

use super::hosts::{must, RunHost};
use super::zookeeper::{socket_ip, Ensemble};
use crate::inventory::Inventory;
use crate::remote::Conn;
use crate::scenario::{builtin_workload, Connect, Workload, WorkloadPlan};

/// The znode under which YCSB's records live, as in the seed's experiment.
pub const CHROOT: &str = "/benchmark";

/// How long one YCSB phase may take when the workload sets no `maxexecutiontime`.
const DEFAULT_LIMIT: Duration = Duration::from_secs(6 * 3600);

/// Runs load (if asked) and run; returns (phase, local output file) for each.
pub async fn run(
    inventory: &Inventory,
    plan: &WorkloadPlan,
    ensemble: &Ensemble,
    label: &str,
    conns: &BTreeMap<String, (Conn, RunHost)>,
    local: &Path,
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let (conn, rh) = &conns[&plan.client];
    let text = match &plan.workload {
        Workload::Builtin(name) => builtin_workload(name).expect("validated").to_string(),
        Workload::File(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read workload file {}", path.display()))?,
    };
    let workload_path = format!("{}/workload", rh.dir(label));
    conn.upload(text.as_bytes(), text.len() as u64, &workload_path, 0o644)
        .await?;
    let connect = connect_string(inventory, plan, ensemble);
    let limit = plan
        .properties
        .get("maxexecutiontime")
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(DEFAULT_LIMIT, |s| Duration::from_secs(s + 120));

    let phases: Vec<&str> = if plan.load {
        vec!["load", "run"]
    } else {
        vec!["run"]
    };
    let mut outputs = Vec::new();
    for phase in phases {
        let export = format!("{}/ycsb-{phase}.txt", rh.dir(label));
        let argv = ycsb_argv(rh, plan, phase, &workload_path, &connect, &export);
        let name = format!("ycsb-{phase}");
        must(
            conn,
            &rh.start(label, &name, &BTreeMap::new(), &argv),
            "start YCSB",
        )
        .await?;
        must(conn, &rh.wait(label, &name, limit), "wait for YCSB").await?;
        // YCSB writes its export file only once the phase completed; its absence is the failure.
        let dest = local.join(format!("ycsb-{phase}.txt"));
        let file = tokio::fs::File::create(&dest).await?;
        if let Err(e) = conn.download(&export, file).await {
            bail!(
                "{}: YCSB {phase} ended without results ({e}); see {}/proc/{name}.log",
                plan.client,
                rh.dir(label)
            );
        }
        // The status lines (-s: ops/s every 10 s) feed the throughput-over-time plot.
        let status = local.join(format!("ycsb-{phase}.status.txt"));
        let log = format!("{}/{name}.log", rh.proc_dir(label));
        conn.download(&log, tokio::fs::File::create(&status).await?)
            .await?;
        eprintln!("   ycsb {phase}: done ({})", dest.display());
        outputs.push((phase.to_string(), dest));
    }
    Ok(outputs)
}

/// `ip:port,...` of the servers the client talks to, with the chroot.
fn connect_string(inventory: &Inventory, plan: &WorkloadPlan, ensemble: &Ensemble) -> String {
    let port = inventory.zookeeper.client_port;
    let addr = |name: &str| {
        let ip = inventory.host(name).expect("validated").experiment_ip;
        format!("{}:{port}", socket_ip(&ip))
    };
    let servers: Vec<String> = match &plan.connect {
        Connect::Leader => vec![addr(&ensemble.leader)],
        Connect::Host(h) => vec![addr(h)],
        Connect::All => ensemble.modes.iter().map(|(n, _)| addr(n)).collect(),
    };
    format!("{}{CHROOT}", servers.join(","))
}

/// The YCSB command line: `orch-node ycsb` or the real `bin/ycsb`, same properties.
fn ycsb_argv(
    rh: &RunHost,
    plan: &WorkloadPlan,
    phase: &str,
    workload: &str,
    connect: &str,
    export: &str,
) -> Vec<String> {
    let mut argv = match &plan.ycsb_home {
        Some(home) => vec![
            format!("{}/bin/ycsb", home.trim_end_matches('/')),
            phase.to_string(),
            "zookeeper".to_string(),
        ],
        None => vec![rh.node(), "ycsb".to_string(), phase.to_string()],
    };
    argv.extend(["-s".to_string(), "-P".to_string(), workload.to_string()]);
    argv.extend(["-threads".to_string(), plan.threads.to_string()]);
    argv.extend([
        "-p".to_string(),
        format!("zookeeper.connectString={connect}"),
    ]);
    argv.extend(["-p".to_string(), format!("exportfile={export}")]);
    for (k, v) in &plan.properties {
        argv.extend(["-p".to_string(), format!("{k}={v}")]);
    }
    argv
}
