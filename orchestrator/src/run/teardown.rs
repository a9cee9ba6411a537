//! The teardown every run ends with, on success, error and Ctrl-C alike: exactly the processes
//! the run started are stopped (by their pid records, newest first), then its delays removed
//! and, where the scenario has network faults, any fault emulator an interrupted fault left.
//! Logs stay on the hosts for `orch fetch-logs`.

use std::collections::BTreeMap;

use anyhow::bail;

use super::hosts::RunHost;
use crate::delay;
use crate::remote::Conn;

/// Stops every process the run started on every host, newest first, then removes the run's
/// network delays and (`network_faults`) the fault emulator's leftovers; logs stay.
pub(super) async fn run(
    label: &str,
    conns: &BTreeMap<String, (Conn, RunHost)>,
    delays: Option<delay::AppliedDelays>,
    network_faults: bool,
) -> anyhow::Result<()> {
    let results = futures::future::join_all(conns.values().map(|(conn, rh)| async move {
        let out = conn.run(&rh.stop_all(label)).await?;
        if !out.status.success() && !out.stderr.contains("No such file") {
            anyhow::bail!("{}: stop-all failed: {}", rh.host.name, out.stderr.trim());
        }
        if network_faults {
            delay::clear(conn, &rh.orch_dir, delay::Layer::Fault)
                .await
                .map_err(|e| anyhow::anyhow!("{}: fault emulator: {e}", rh.host.name))?;
        }
        Ok(())
    }))
    .await;
    let mut problems: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:#}")))
        .collect();
    if let Some(applied) = delays {
        let conns: Vec<&Conn> = conns.values().map(|(c, _)| c).collect();
        if let Err(e) = delay::remove(applied, &conns).await {
            problems.push(format!("removing delays: {e:#}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("{}", problems.join("; "))
    }
}
