//! The background-traffic phase: a mesh process per host, or (rate mode) a sink per host and a
//! paced sender to every peer, each started under `orch-node proc` like every other process.

use std::collections::BTreeMap;

use super::hosts::{self, RunHost};
use crate::inventory::Inventory;
use crate::remote::Conn;
use crate::scenario::TrafficMode;

/// Background traffic: a mesh process per host, or (rate mode) a sink per host and a paced
/// sender to every peer, all under `orch-node proc`.
pub(super) async fn start(
    inventory: &Inventory,
    plan: &crate::scenario::TrafficPlan,
    label: &str,
    conns: &BTreeMap<String, (Conn, RunHost)>,
) -> anyhow::Result<()> {
    let ip = |n: &str| {
        inventory
            .host(n)
            .expect("validated")
            .experiment_ip
            .to_string()
    };
    let port = plan.port.to_string();
    let mut starts: Vec<(String, String, Vec<String>)> = Vec::new();
    for name in &plan.hosts {
        let node = conns[name].1.node();
        let me = ip(name);
        let peers: Vec<String> = plan
            .hosts
            .iter()
            .filter(|p| *p != name)
            .map(|p| ip(p))
            .collect();
        let base = |mode: &str| {
            vec![
                node.clone(),
                "traffic".into(),
                mode.into(),
                "--bind".into(),
                me.clone(),
            ]
        };
        match &plan.mode {
            TrafficMode::Mesh { bytes, interval_ms } => {
                let mut argv = base("mesh");
                argv.extend([
                    "--peers".into(),
                    peers.join(","),
                    "--port".into(),
                    port.clone(),
                ]);
                argv.extend([
                    "--bytes".into(),
                    bytes.to_string(),
                    "--interval-ms".into(),
                    interval_ms.to_string(),
                ]);
                starts.push((name.clone(), "traffic".into(), argv));
            }
            TrafficMode::Rate { rate, len } => {
                let mut sink = base("sink");
                sink.extend(["--port".into(), port.clone()]);
                starts.push((name.clone(), "traffic-sink".into(), sink));
                for (i, peer) in peers.iter().enumerate() {
                    let mut argv = base("rate");
                    argv.extend(["--peer".into(), peer.clone(), "--port".into(), port.clone()]);
                    argv.extend(["--rate".into(), rate.clone(), "--len".into(), len.clone()]);
                    starts.push((name.clone(), format!("traffic-rate-{}", i + 1), argv));
                }
            }
        }
    }
    futures::future::try_join_all(starts.iter().map(|(name, proc_name, argv)| async move {
        let (conn, rh) = &conns[name];
        hosts::must(
            conn,
            &rh.start(label, proc_name, &BTreeMap::new(), argv),
            "start traffic",
        )
        .await
    }))
    .await?;
    Ok(())
}
