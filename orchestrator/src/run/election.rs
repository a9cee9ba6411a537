//! The election phase of a run: one `orch-node elect` replica per host, configured from the
//! scenario (the shared `orch_common::replica::Config`), run for `duration_s`; then every
//! replica's event log is copied into the run's results and analysed
//! (`orch_analysis::elect`). A replica killed by a fault is started again with the time left
//! and a log of its own (`replica-<id>.<n>.jsonl`); its logs are joined, in order, into its
//! `replica-<id>.jsonl` in the results.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use orch_analysis::elect::{self, Kill, Summary};
use orch_common::agent::Agent;
use orch_common::replica::Config;

use super::hosts::must;
use super::RunHost;
use crate::remote::Conn;
use crate::scenario::ElectionPlan;

/// The replicas' process name under `orch-node proc`.
pub const PROC: &str = "replica";
/// How long replicas may take to exit after their `runtimeSeconds` (clock skew between the
/// starts on different hosts, the final flush).
const EXIT_GRACE: Duration = Duration::from_secs(15);

/// A started election phase.
pub struct Started {
    pub at: Instant,
    /// Where replica `i`'s events went on its host, one file per start, the latest last.
    logs: Mutex<Vec<Vec<String>>>,
}

impl Started {
    /// The event log replica `id` writes now.
    pub fn log(&self, id: usize) -> String {
        let logs = self.logs.lock().expect("not poisoned");
        logs[id].last().expect("one per start").clone()
    }
}

/// Starts replica `id` again after a kill, for what is left of the phase, logging to a new
/// file (a start truncates its log).
pub async fn restart(
    plan: &ElectionPlan,
    started: &Started,
    id: usize,
    label: &str,
    conns: &BTreeMap<String, (Conn, RunHost)>,
) -> anyhow::Result<()> {
    let (conn, rh) = &conns[&plan.hosts[id]];
    let n = started.logs.lock().expect("not poisoned")[id].len();
    let left = plan.duration.saturating_sub(started.at.elapsed());
    let mut config = plan.config.clone();
    config.runtime_seconds = left.as_secs_f64().ceil().max(1.0) as u64;
    let log = format!("{}/replica-{id}.{n}.jsonl", rh.dir(label));
    config.event_log = Some(log.clone());
    let path = format!("{}/replica.{n}.yaml", rh.dir(label));
    launch((conn, rh), label, &config, &path, id, "restart the replica").await?;
    started.logs.lock().expect("not poisoned")[id].push(log);
    Ok(())
}

/// Writes `config` to `path` on the host and starts replica `id` from it under `orch-node proc`.
async fn launch(
    (conn, rh): (&Conn, &RunHost),
    label: &str,
    config: &Config,
    path: &str,
    id: usize,
    what: &str,
) -> anyhow::Result<()> {
    let text = config.to_file_text();
    conn.upload(text.as_bytes(), text.len() as u64, path, 0o644)
        .await?;
    let argv = rh.agent(Agent::Elect {
        config: path.into(),
        id,
    });
    must(conn, &rh.start(label, PROC, &BTreeMap::new(), &argv), what).await?;
    Ok(())
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
            let path = format!("{}/replica.yaml", rh.dir(label));
            launch((conn, rh), label, &config, &path, id, "start replica")
                .await
                .with_context(|| format!("{name}: starting replica {id}"))
        }
    }))
    .await?;
    Ok(Started {
        at: Instant::now(),
        logs: Mutex::new(logs.into_iter().map(|l| vec![l]).collect()),
    })
}

/// After the phase ([`wait_out`]): waits for every replica to exit, copies the event logs to
/// `local/replica-<id>.jsonl` and analyses them, with the replicas' `kills` by faults, on the
/// controller's clock by the run's `clocks`.
pub async fn finish(
    plan: &ElectionPlan,
    started: Started,
    label: &str,
    conns: &BTreeMap<String, (Conn, RunHost)>,
    local: &Path,
    kills: &[Kill],
    clocks: &crate::clock::Clocks,
) -> anyhow::Result<Summary> {
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
    let logs = started.logs.into_inner().expect("not poisoned");
    for (id, name) in plan.hosts.iter().enumerate() {
        let dest = local.join(format!("replica-{id}.jsonl"));
        let mut text = Vec::new();
        for log in &logs[id] {
            conns[name]
                .0
                .download(log, &mut text)
                .await
                .with_context(|| format!("{name}: copying replica {id}'s event log {log}"))?;
            // A kill may cut the last line short; the next start begins a line of its own.
            if text.last().is_some_and(|&b| b != b'\n') {
                text.push(b'\n');
            }
        }
        tokio::fs::write(&dest, &text).await?;
        files.push(dest);
    }
    let offsets = crate::clock::correct::replicas(Some(clocks)).unwrap_or_default();
    let summary =
        elect::summarize_files_with(&files, kills, &offsets).map_err(|e| anyhow::anyhow!(e))?;
    std::fs::write(local.join("election.txt"), elect::render(&summary))?;
    Ok(summary)
}

/// Sleeps until `duration` after `since`, with an elapsed-of-total bar on a terminal.
pub async fn wait_out(duration: Duration, since: Instant) {
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
