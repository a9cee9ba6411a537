//! The election phase of a run: one `orch-node elect` replica per host, configured from the
//! scenario (the shared `orch_common::replica::Config`), run for `duration_s`; then every
//! replica's event log is copied into the run's results and analysed
//! (`orch_analysis::elect`).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use orch_analysis::elect::{self, Summary};
use orch_common::agent::Agent;

use super::hosts::must;
use super::RunHost;
use crate::remote::Conn;
use crate::scenario::ElectionPlan;

/// The replicas' process name under `orch-node proc`.
const PROC: &str = "replica";
/// How long replicas may take to exit after their `runtimeSeconds` (clock skew between the
/// starts on different hosts, the final flush).
const EXIT_GRACE: Duration = Duration::from_secs(15);

/// A started election phase.
pub struct Started {
    at: Instant,
    /// Where replica `i`'s events go on its host.
    logs: Vec<String>,
}

/// Writes each host's replica config into the run directory and starts the replicas.
pub async fn start(
    plan: &ElectionPlan,
    label: &str,
    conns: &BTreeMap<String, (Conn, RunHost)>,
) -> anyhow::Result<Started> {
    let logs: Vec<String> = plan
        .hosts
        .iter()
        .enumerate()
        .map(|(id, name)| format!("{}/replica-{id}.jsonl", conns[name].1.dir(label)))
        .collect();
    futures::future::try_join_all(plan.hosts.iter().enumerate().map(|(id, name)| {
        let mut config = plan.config.clone();
        config.event_log = Some(logs[id].clone());
        async move {
            let (conn, rh) = &conns[name];
            let text = config.to_file_text();
            let path = format!("{}/replica.yaml", rh.dir(label));
            conn.upload(text.as_bytes(), text.len() as u64, &path, 0o644)
                .await?;
            let argv = rh.agent(Agent::Elect {
                config: path.into(),
                id,
            });
            must(
                conn,
                &rh.start(label, PROC, &BTreeMap::new(), &argv),
                "start replica",
            )
            .await
            .with_context(|| format!("{name}: starting replica {id}"))
        }
    }))
    .await?;
    Ok(Started {
        at: Instant::now(),
        logs,
    })
}

/// Waits out the phase (progress on a terminal), waits for every replica to exit, copies the
/// event logs to `local/replica-<id>.jsonl` and analyses them.
pub async fn finish(
    plan: &ElectionPlan,
    started: Started,
    label: &str,
    conns: &BTreeMap<String, (Conn, RunHost)>,
    local: &Path,
) -> anyhow::Result<Summary> {
    wait_out(plan.duration, started.at).await;
    futures::future::try_join_all(plan.hosts.iter().map(|name| async move {
        let (conn, rh) = &conns[name];
        must(
            conn,
            &rh.wait(label, PROC, EXIT_GRACE),
            "wait for the replica",
        )
        .await
        .with_context(|| format!("{name}: the replica did not exit after runtimeSeconds"))
    }))
    .await?;
    let mut files = Vec::new();
    for (id, name) in plan.hosts.iter().enumerate() {
        let dest = local.join(format!("replica-{id}.jsonl"));
        let file = tokio::fs::File::create(&dest).await?;
        conns[name]
            .0
            .download(&started.logs[id], file)
            .await
            .with_context(|| format!("{name}: copying replica {id}'s event log"))?;
        files.push(dest);
    }
    let summary = elect::summarize_files(&files).map_err(|e| anyhow::anyhow!(e))?;
    std::fs::write(local.join("election.txt"), elect::render(&summary))?;
    Ok(summary)
}

/// Sleeps until `duration` after `since`, with an elapsed-of-total bar on a terminal.
async fn wait_out(duration: Duration, since: Instant) {
    let total = duration.as_secs();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("   election [{bar:30}] {pos}/{len} s")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar
    });
    if bar.is_none() {
        eprintln!("   election: {total} s");
    }
    loop {
        let elapsed = since.elapsed();
        if let Some(b) = &bar {
            b.set_position(elapsed.as_secs().min(total));
        }
        let Some(left) = duration.checked_sub(elapsed) else {
            break;
        };
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}
