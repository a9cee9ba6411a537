//! The background-traffic phase: a mesh process per host, or (rate mode) a sink per host and a
//! paced sender to every peer, each started under `orch-node proc` like every other process.

use std::collections::BTreeMap;
use std::net::IpAddr;

use orch_common::agent::traffic::{Common, Traffic};
use orch_common::agent::Agent;

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
    let ip = |n: &str| inventory.host(n).expect("validated").experiment_ip;
    let mut starts: Vec<(String, String, Vec<String>)> = Vec::new();
    for name in &plan.hosts {
        let rh = &conns[name].1;
        let bind = ip(name);
        let peers: Vec<IpAddr> = plan
            .hosts
            .iter()
            .filter(|p| *p != name)
            .map(|p| ip(p))
            .collect();
        let (port, common) = (plan.port, Common::default());
        let start = |command| rh.agent(Agent::Traffic { command });
        match &plan.mode {
            TrafficMode::Mesh { bytes, interval_ms } => {
                let argv = start(Traffic::Mesh {
                    bind,
                    peers,
                    port,
                    bytes: *bytes,
                    interval_ms: u64::from(*interval_ms),
                    common,
                });
                starts.push((name.clone(), "traffic".into(), argv));
            }
            TrafficMode::Rate { rate, len } => {
                let sink = start(Traffic::Sink {
                    bind,
                    port,
                    common: common.clone(),
                });
                starts.push((name.clone(), "traffic-sink".into(), sink));
                for (i, &peer) in peers.iter().enumerate() {
                    let argv = start(Traffic::Rate {
                        bind,
                        peer,
                        port,
                        rate: *rate,
                        len: *len,
                        common: common.clone(),
                    });
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
