//! `orch run --scenario`: one experiment, reproducibly. Validate everything, create the run on
//! every host, then per run of the matrix: background traffic, ZooKeeper with its designated
//! leader (verified), replicas, the YCSB workload; results are copied to the controller, and a
//! teardown in reverse order always runs (success, error, Ctrl-C) and stops exactly the
//! processes the run started. Logs stay on the hosts for `orch fetch-logs`.

mod hosts;
mod workload;
pub mod zookeeper;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

pub use hosts::RunHost;

use crate::facts;
use crate::inventory::{Host, Inventory};
use crate::net;
use crate::plot;
use crate::remote::{Cmd, Conn};
use crate::report::{self, RunResult};
use crate::scenario::{RunSpec, Scenario, TrafficMode};
use crate::store;

/// How to run.
pub struct RunOptions {
    /// The results store (`results/`).
    pub results: PathBuf,
}

/// What a finished scenario left behind.
pub struct RunOutcome {
    pub run_id: String,
    pub dir: store::RunDir,
    pub results: Vec<RunResult>,
    /// The parsed YCSB run output of each result, in the same order.
    pub reports: Vec<Option<ycsb_report::Report>>,
    /// Set when the run stopped early (an error or Ctrl-C); teardown still ran.
    pub failure: Option<String>,
}

/// Runs every run of `scenario`.
pub async fn run(
    inventory: &Inventory,
    scenario: &Scenario,
    opts: &RunOptions,
) -> anyhow::Result<RunOutcome> {
    let run_id = format!(
        "{}-{}",
        utc_stamp(std::time::SystemTime::now()),
        scenario.name
    );
    let dir = store::create_run(&opts.results, &scenario.name, &run_id)?;
    std::fs::write(dir.path.join("scenario.yaml"), &scenario.text)?;
    if let Ok(inv) = std::fs::read_to_string(&inventory.path) {
        std::fs::write(dir.path.join("inventory.yaml"), inv)?;
    }
    eprintln!(
        "run {run_id}: {} runs; results in {}",
        scenario.runs.len(),
        dir.path.display()
    );

    let names = involved(scenario);
    let hosts: Vec<&Host> = inventory
        .hosts
        .iter()
        .filter(|h| names.contains(&h.name))
        .collect();
    let conns = connect(&hosts, &run_id).await?;

    let mut results = Vec::new();
    let mut failure = None;
    for spec in &scenario.runs {
        let label = spec.label();
        eprintln!("== {label}");
        let mut delays = None;
        let work = one_run(inventory, spec, &label, &conns, &dir, &mut delays);
        let outcome = tokio::select! {
            r = work => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted (Ctrl-C)")),
        };
        let teardown = teardown(&label, &conns, delays).await;
        match (outcome, teardown) {
            (Ok(r), Ok(())) => results.push(r),
            (Ok(_), Err(e)) | (Err(e), Ok(())) => {
                failure = Some(format!("{label}: {e:#}"));
                break;
            }
            (Err(e), Err(t)) => {
                failure = Some(format!("{label}: {e:#}; teardown: {t:#}"));
                break;
            }
        }
    }
    let reports = report::write(&dir, scenario, &results)?;
    let plotted: Vec<_> = results
        .iter()
        .zip(&reports)
        .filter_map(|(r, rep)| {
            let status = dir.path.join(&r.label).join("ycsb-run.status.txt");
            rep.clone().map(|rep| (r.label.clone(), rep, status))
        })
        .collect();
    if !plotted.is_empty() {
        match plot::write_plots(&dir.path, &plotted) {
            Ok(files) => eprintln!("plots: {}", files.len()),
            Err(e) => eprintln!("warning: no plots: {e:#}"),
        }
    }
    Ok(RunOutcome {
        run_id,
        dir,
        results,
        reports,
        failure,
    })
}

/// Every host the scenario uses, in any run.
fn involved(scenario: &Scenario) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for r in &scenario.runs {
        if let Some(d) = &r.delays {
            names.extend(d.hosts.iter().map(|(n, _)| n.clone()));
        }
        if let Some(z) = &r.zookeeper {
            names.extend(z.servers.iter().cloned());
        }
        if let Some(t) = &r.traffic {
            names.extend(t.hosts.iter().cloned());
        }
        if let Some(p) = &r.replicas {
            names.extend(p.hosts.iter().cloned());
        }
        if let Some(w) = &r.workload {
            names.insert(w.client.clone());
        }
    }
    names
}

/// Opens a connection to every host, learns its home and checks `orch setup` ran there.
async fn connect(
    hosts: &[&Host],
    run_id: &str,
) -> anyhow::Result<BTreeMap<String, (Conn, RunHost)>> {
    let opened = futures::future::join_all(hosts.iter().map(|h| async move {
        let conn = Conn::open(h).await?;
        let home = hosts::must(&conn, &Cmd::script("printf %s \"$HOME\""), "read $HOME").await?;
        let rh = RunHost::new(h, home.trim_end_matches('\n'), run_id);
        let check = Cmd::new(&[rh.node(), "--version".to_string()]);
        if !conn.run(&check).await?.status.success() {
            return Err(anyhow::anyhow!(
                "{}: no working {} (run `orch setup` first)",
                h.name,
                rh.node()
            ));
        }
        anyhow::Ok((h.name.clone(), (conn, rh)))
    }))
    .await;
    let mut conns = BTreeMap::new();
    let mut problems = Vec::new();
    for r in opened {
        match r {
            Ok((name, c)) => {
                conns.insert(name, c);
            }
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    if !problems.is_empty() {
        bail!("cannot start the run:\n  {}", problems.join("\n  "));
    }
    Ok(conns)
}

/// The phases of one run, in order. Teardown is the caller's.
async fn one_run(
    inventory: &Inventory,
    spec: &RunSpec,
    label: &str,
    conns: &BTreeMap<String, (Conn, RunHost)>,
    dir: &store::RunDir,
    delays: &mut Option<net::AppliedDelays>,
) -> anyhow::Result<RunResult> {
    let local = dir.path.join(label);
    std::fs::create_dir_all(&local)?;
    let mut measured = None;
    futures::future::try_join_all(conns.values().map(|(conn, rh)| async move {
        let mkdir = Cmd::new(&["mkdir", "-p", "--", &rh.dir(label)]);
        hosts::must(conn, &mkdir, "create the run directory").await
    }))
    .await?;
    if let Some(d) = &spec.delays {
        let hosts: Vec<&Host> = d.hosts.iter().map(|(n, _)| &conns[n].1.host).collect();
        let mut facts = Vec::new();
        for h in &hosts {
            let (conn, _) = &conns[&h.name];
            facts.push((h.name.clone(), facts::probe(conn, &h.orch_dir).await?));
        }
        let applied = net::apply(&hosts, d, &facts, hosts.len()).await?;
        eprintln!("   delays:\n{}", indent(&applied.report()));
        std::fs::write(local.join("delays.txt"), applied.report())?;
        *delays = Some(applied);
        // Measured delays: declared vs measured round trip per pair, before any workload.
        let with_conns: Vec<(&Host, &Conn)> =
            hosts.iter().map(|h| (*h, &conns[&h.name].0)).collect();
        let m = net::measure::measure(&with_conns, d).await?;
        let report = format!(
            "{}\n{}",
            delays.as_ref().expect("set above").report(),
            m.report()
        );
        std::fs::write(local.join("delays.txt"), &report)?;
        std::fs::write(local.join("delays.json"), serde_json::to_vec_pretty(&m)?)?;
        eprintln!("{}", indent(&m.report()));
        if let Some(off) = m.failures() {
            bail!(
                "the measured round trips do not match the declared delays (see {}):\n  {off}",
                local.join("delays.txt").display()
            );
        }
        measured = Some(serde_json::to_value(&m)?);
    }
    if let Some(t) = &spec.traffic {
        start_traffic(inventory, t, label, conns).await?;
        eprintln!("   traffic: {} hosts, {:?}", t.hosts.len(), t.mode);
    }
    let ensemble = match &spec.zookeeper {
        Some(z) => {
            let e = zookeeper::start(inventory, z, label, conns).await?;
            eprintln!("   zookeeper: leader {} (srvr: {})", e.leader, modes(&e));
            Some(e)
        }
        None => None,
    };
    if let Some(p) = &spec.replicas {
        start_replicas(inventory, p, label, conns).await?;
        eprintln!("   replicas: {}", p.hosts.join(", "));
    }
    let outputs = match (&spec.workload, &ensemble) {
        (Some(w), Some(e)) => workload::run(inventory, w, e, label, conns, &local).await?,
        _ => Vec::new(),
    };
    Ok(RunResult {
        label: label.to_string(),
        matrix: spec.matrix.clone(),
        repetition: spec.repetition,
        leader: ensemble.as_ref().map(|e| e.leader.clone()),
        zk_modes: ensemble.map(|e| e.modes).unwrap_or_default(),
        threads: spec.workload.as_ref().map(|w| w.threads),
        outputs,
        delays: measured,
    })
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("     {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn modes(e: &zookeeper::Ensemble) -> String {
    e.modes
        .iter()
        .map(|(n, m)| format!("{n}={m}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Background traffic: a mesh process per host, or (rate mode) a sink per host and a paced
/// sender to every peer, all under `orch-node proc`.
async fn start_traffic(
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

async fn start_replicas(
    inventory: &Inventory,
    plan: &crate::scenario::ReplicaPlan,
    label: &str,
    conns: &BTreeMap<String, (Conn, RunHost)>,
) -> anyhow::Result<()> {
    let ips: Vec<String> = plan
        .hosts
        .iter()
        .map(|n| {
            inventory
                .host(n)
                .expect("validated")
                .experiment_ip
                .to_string()
        })
        .collect();
    let mut replica = serde_json::Map::new();
    replica.insert("ips".into(), serde_json::json!(ips));
    for (k, v) in &plan.config {
        replica.insert(k.clone(), v.clone());
    }
    let config = serde_json::to_string_pretty(&serde_json::json!({ "replica": replica }))?;
    futures::future::try_join_all(plan.hosts.iter().enumerate().map(|(id, name)| {
        let config = config.clone();
        async move {
            let (conn, rh) = &conns[name];
            let path = format!("{}/replica.yaml", rh.dir(label));
            conn.upload(config.as_bytes(), config.len() as u64, &path, 0o644)
                .await?;
            let argv = vec![
                rh.node(),
                "elect".into(),
                "--config".into(),
                path,
                "--id".into(),
                id.to_string(),
            ];
            hosts::must(
                conn,
                &rh.start(label, "replica", &BTreeMap::new(), &argv),
                "start replica",
            )
            .await
            .context("starting the replica")
        }
    }))
    .await?;
    Ok(())
}

/// Stops every process the run started on every host, newest first, then removes the run's
/// network delays; logs stay.
async fn teardown(
    label: &str,
    conns: &BTreeMap<String, (Conn, RunHost)>,
    delays: Option<net::AppliedDelays>,
) -> anyhow::Result<()> {
    let results = futures::future::join_all(conns.values().map(|(conn, rh)| async move {
        let out = conn.run(&rh.stop_all(label)).await?;
        if out.status.success() || out.stderr.contains("No such file") {
            Ok(())
        } else {
            Err(anyhow::anyhow!(
                "{}: stop-all failed: {}",
                rh.host.name,
                out.stderr.trim()
            ))
        }
    }))
    .await;
    let mut problems: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:#}")))
        .collect();
    if let Some(applied) = delays {
        if let Err(e) = net::remove(applied).await {
            problems.push(format!("removing delays: {e:#}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("{}", problems.join("; "))
    }
}

/// `YYYYmmdd-HHMMSS` in UTC, for run ids that sort by time.
fn utc_stamp(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_calendar_times() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_795_637_700);
        assert_eq!(utc_stamp(t), "20261125-201500");
        assert_eq!(utc_stamp(std::time::UNIX_EPOCH), "19700101-000000");
        let leap = std::time::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_stamp(leap), "20000229-000000");
    }
}
