//! `orch run --scenario`: one experiment, reproducibly. Validate everything, create the run on
//! every host, then per run of the matrix: background traffic, ZooKeeper with its designated
//! leader (verified), replicas, the YCSB workload; results are copied to the controller, and a
//! teardown in reverse order always runs (success, error, Ctrl-C) and stops exactly the
//! processes the run started. Logs stay on the hosts for `orch fetch-logs`.

mod delays;
mod election;
mod faults;
mod hosts;
mod teardown;
mod traffic;
mod workload;
pub mod zookeeper;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::bail;

pub use hosts::RunHost;

use crate::delay;
use crate::facts;
use crate::inventory::{Host, Inventory};
use crate::remote::{Cmd, Conn};
use crate::results::cells::{self, Cell};
use crate::results::faults::FaultRecord;
use crate::results::plot;
use crate::results::record;
use crate::results::report::{self, RunResult};
use crate::results::store;
use crate::scenario::{Connect, RunSpec, Scenario, WorkloadPlan};

/// How to run.
pub struct RunOptions {
    /// The results store (`results/`).
    pub results: PathBuf,
    /// Continue this earlier run of the same scenario: its finished runs are kept.
    pub resume: Option<String>,
}

/// What a finished scenario left behind.
pub struct RunOutcome {
    pub run_id: String,
    pub dir: store::RunDir,
    pub results: Vec<RunResult>,
    /// The parsed YCSB run output of each result, in the same order.
    pub reports: Vec<Option<orch_analysis::ycsb::Report>>,
    /// The matrix cells (repetitions aggregated).
    pub cells: Vec<Cell>,
    /// Every run that failed or was marked failed, with the reason; teardown still ran.
    pub failures: Vec<String>,
    /// Set when Ctrl-C stopped the scenario before its last run.
    pub interrupted: bool,
}

/// Runs every run of `scenario`; a failed run is recorded and the next one starts.
pub async fn run(
    inventory: &Inventory,
    scenario: &Scenario,
    opts: &RunOptions,
) -> anyhow::Result<RunOutcome> {
    let dir = match &opts.resume {
        Some(id) => resume_dir(&opts.results, scenario, id)?,
        None => new_dir(inventory, scenario, &opts.results)?,
    };
    let run_id = dir.run_id.clone();
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
    // Network faults put rules on every host of the run, which needs their facts too.
    let network = network_faults(scenario);
    let delayed: BTreeSet<&str> = scenario
        .runs
        .iter()
        .filter_map(|r| r.delays.as_ref())
        .flat_map(|d| d.hosts.iter().map(|(n, _)| n.as_str()))
        .chain(hosts.iter().filter(|_| network).map(|h| h.name.as_str()))
        .collect();
    let conns = connect(&hosts, &delayed, &run_id).await?;

    let mut results = Vec::new();
    let mut failures = Vec::new();
    let mut interrupted = false;
    for spec in &scenario.runs {
        let label = spec.label();
        let local = dir.path.join(&label);
        if let Some(done) = record::load(&local)? {
            eprintln!("== {label}: finished earlier, kept");
            failures.extend(
                done.failure
                    .iter()
                    .map(|f| format!("run {label} failed: {f}")),
            );
            results.push(done);
            continue;
        }
        if opts.resume.is_some() {
            set_aside(&label, &conns).await?;
        }
        eprintln!("== {label}");
        let mut delays = None;
        let work = one_run(inventory, spec, &label, &conns, &dir, &mut delays);
        let outcome = tokio::select! {
            r = work => r,
            _ = tokio::signal::ctrl_c() => {
                interrupted = true;
                Err(anyhow::anyhow!("interrupted (Ctrl-C)"))
            }
        };
        let teardown = teardown::run(&label, &conns, delays, network).await;
        match (outcome, teardown) {
            (Ok(mut r), Ok(())) => {
                let max_error_pct = spec.workload.as_ref().map_or(0.0, |w| w.max_error_pct);
                let reasons: Vec<String> = [
                    r.election.as_ref().and_then(|e| e.safety_violation()),
                    report::ycsb_failure(max_error_pct, &r.outputs),
                    fault_failure(&r.faults),
                ]
                .into_iter()
                .flatten()
                .collect();
                r.failure = (!reasons.is_empty()).then(|| reasons.join("; "));
                if let Some(f) = &r.failure {
                    eprintln!("!! {label}: {f}");
                    failures.push(format!("run {label} failed: {f}"));
                }
                record::save(&local, &r)?;
                results.push(r);
            }
            (Ok(_), Err(e)) | (Err(e), Ok(())) => {
                failures.push(format!("run {label} failed: {e:#}"));
            }
            (Err(e), Err(t)) => {
                failures.push(format!("run {label} failed: {e:#}; teardown: {t:#}"));
            }
        }
        if interrupted {
            break;
        }
        if let Some(f) = failures
            .last()
            .filter(|f| f.starts_with(&format!("{label}:")))
        {
            eprintln!("   failed: {f}; going on with the next run");
        }
    }
    let (reports, cells) = report::write(&dir, &scenario.name, &results)?;
    write_plots(&dir, &results, &reports);
    Ok(RunOutcome {
        run_id,
        dir,
        results,
        reports,
        cells,
        failures,
        interrupted,
    })
}

/// A new results directory, with the scenario and inventory as they were.
fn new_dir(
    inventory: &Inventory,
    scenario: &Scenario,
    results: &std::path::Path,
) -> anyhow::Result<store::RunDir> {
    let run_id = format!(
        "{}-{}",
        utc_stamp(std::time::SystemTime::now()),
        scenario.name
    );
    let dir = store::create_run(results, &scenario.name, &run_id)?;
    std::fs::write(dir.path.join("scenario.yaml"), &scenario.text)?;
    if let Ok(inv) = std::fs::read_to_string(&inventory.path) {
        std::fs::write(dir.path.join("inventory.yaml"), inv)?;
    }
    Ok(dir)
}

/// The directory of run `id`, which must have run this very scenario text.
fn resume_dir(
    results: &std::path::Path,
    scenario: &Scenario,
    id: &str,
) -> anyhow::Result<store::RunDir> {
    let Some(dir) = store::find_run(results, id) else {
        bail!(
            "no run {id} under {}: pass a run id `orch run` printed",
            results.display()
        );
    };
    if dir.scenario_text().as_deref() != Some(scenario.text.as_str()) {
        bail!(
            "{} is not the scenario run {id} ran ({}): resume with the same file, unchanged",
            scenario.path.display(),
            dir.path.join("scenario.yaml").display()
        );
    }
    Ok(dir)
}

/// Before an unfinished run is run again: stops whatever the interrupted attempt left running
/// on the hosts, and moves its directory aside (its logs stay for `orch fetch-logs`).
async fn set_aside(label: &str, conns: &BTreeMap<String, (Conn, RunHost)>) -> anyhow::Result<()> {
    teardown::run(label, conns, None, true).await?;
    let stamp = utc_stamp(std::time::SystemTime::now());
    futures::future::try_join_all(
        conns.values().map(|(conn, rh)| {
            let dir = rh.dir(label);
            let script = format!(
                "if [ -e {d} ]; then mv -- {d} {d}.interrupted-{stamp}; fi",
                d = crate::remote::quote::path(&dir)
            );
            async move {
                hosts::must(conn, &Cmd::script(&script), "set the interrupted run aside").await
            }
        }),
    )
    .await?;
    Ok(())
}

/// YCSB latency and throughput plots for the runs that have a YCSB run phase.
pub fn write_plots(
    dir: &store::RunDir,
    results: &[RunResult],
    reports: &[Option<orch_analysis::ycsb::Report>],
) {
    let plotted: Vec<_> = results
        .iter()
        .zip(reports)
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
    let elected: Vec<&RunResult> = results.iter().filter(|r| r.election.is_some()).collect();
    if !elected.is_empty() {
        match election_plots(dir, &elected) {
            Ok(files) => eprintln!("election plots: {}", files.len()),
            Err(e) => eprintln!("warning: no election plots: {e:#}"),
        }
    }
}

/// Detection/failover and false positives per cell, and a role timeline per run.
fn election_plots(dir: &store::RunDir, results: &[&RunResult]) -> anyhow::Result<Vec<PathBuf>> {
    let mut cells: Vec<plot::CellSamples> = Vec::new();
    let mut runs = Vec::new();
    for r in results {
        let summary = r.election.as_ref().expect("filtered");
        let name = cells::cell_name(&r.matrix);
        let i = match cells.iter().position(|c| c.cell == name) {
            Some(i) => i,
            None => {
                cells.push(plot::CellSamples {
                    cell: name,
                    detection_ms: Vec::new(),
                    failover_ms: Vec::new(),
                    false_positives_per_min: Vec::new(),
                });
                cells.len() - 1
            }
        };
        let c = &mut cells[i];
        c.detection_ms
            .extend(summary.failures.iter().filter_map(|f| f.detection_ms));
        c.failover_ms
            .extend(summary.failures.iter().filter_map(|f| f.failover_ms));
        c.false_positives_per_min
            .extend(summary.false_positives_per_min);
        let logs = (0..summary.files)
            .map(|id| {
                let path = dir.path.join(&r.label).join(format!("replica-{id}.jsonl"));
                let text = std::fs::read_to_string(&path)?;
                Ok(orch_analysis::elect::parse(&text).0)
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let windows = r
            .faults
            .iter()
            .filter_map(|f| Some((f.start_unix_ns?, f.end_unix_ns?)))
            .collect();
        runs.push((r.label.clone(), logs, summary.clone(), windows));
    }
    plot::write_election_plots(&dir.path, &cells, &runs)
}

/// Whether any run has a partition, loss or delay fault (the fault emulator on its hosts).
fn network_faults(scenario: &Scenario) -> bool {
    scenario
        .runs
        .iter()
        .any(|r| r.faults.iter().any(|f| f.action.is_network()))
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
        if let Some(e) = &r.election {
            names.extend(e.hosts.iter().cloned());
        }
        if let Some(w) = &r.workload {
            names.insert(w.client.clone());
        }
    }
    names
}

/// Opens a connection to every host, learns its home, checks `orch setup` ran there and
/// probes the facts of the hosts in `delayed`, all hosts at once.
async fn connect(
    hosts: &[&Host],
    delayed: &BTreeSet<&str>,
    run_id: &str,
) -> anyhow::Result<BTreeMap<String, (Conn, RunHost)>> {
    let opened = futures::future::join_all(hosts.iter().map(|h| async move {
        let conn = Conn::open(h).await?;
        let home = hosts::must(&conn, &Cmd::script("printf %s \"$HOME\""), "read $HOME").await?;
        let mut rh = RunHost::new(h, home.trim_end_matches('\n'), run_id);
        if delayed.contains(h.name.as_str()) {
            rh.facts = Some(facts::probe(&conn, &h.orch_dir).await?);
        }
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
    applied: &mut Option<delay::AppliedDelays>,
) -> anyhow::Result<RunResult> {
    let local = dir.path.join(label);
    std::fs::create_dir_all(&local)?;
    let mut measured = None;
    futures::future::try_join_all(conns.values().map(|(conn, rh)| async move {
        let mkdir = Cmd::new(&["mkdir", "-p", "--", &rh.dir(label)]);
        hosts::must(conn, &mkdir, "create the run directory").await
    }))
    .await?;
    let clock_start = crate::clock::start(conns).await?;
    if let Some(d) = &spec.delays {
        measured = Some(delays::start(d, conns, &local, applied).await?);
    }
    if let Some(t) = &spec.traffic {
        traffic::start(inventory, t, label, conns).await?;
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
    let replicas = match &spec.election {
        Some(e) => {
            let started = election::start(e, label, conns).await?;
            eprintln!(
                "   replicas: {} ({}, {} s)",
                e.hosts.join(", "),
                e.config.fd_mode,
                e.duration.as_secs()
            );
            Some((e, started))
        }
        None => None,
    };
    let replicas_ref = replicas.as_ref().map(|(p, s)| (*p, s));
    let nemesis = faults::Nemesis {
        inventory,
        ensemble: ensemble.as_ref(),
        replicas: replicas_ref,
        label,
        conns,
        client_side: client_side(spec.workload.as_ref(), ensemble.as_ref()),
        local: &local,
        clocks: &clock_start,
    };
    let (outputs, mut fault_records) = match (&spec.workload, &ensemble, replicas_ref) {
        (Some(w), Some(e), _) => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            with_faults(
                workload::run(inventory, w, e, label, conns, &local, Some(tx)),
                nemesis.run(&spec.faults, rx),
            )
            .await?
        }
        // Without a workload, faults are timed from the replicas' start.
        (None, _, Some((plan, started))) => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let _ = tx.send(());
            let (records, ()) = tokio::join!(
                nemesis.run(&spec.faults, rx),
                election::wait_out(plan.duration, started.at)
            );
            (Vec::new(), records)
        }
        _ => (Vec::new(), Vec::new()),
    };
    if let (Some((plan, started)), Some(_)) = (&replicas, &spec.workload) {
        election::wait_out(plan.duration, started.at).await;
    }
    let clocks = crate::clock::end(conns, clock_start, spec, &local, &mut fault_records).await?;
    let election = match replicas {
        Some((plan, started)) => {
            let kills = crate::results::faults::kills(&fault_records);
            let summary =
                election::finish(plan, started, label, conns, &local, &kills, &clocks).await?;
            eprintln!("   election: {}", election_line(&summary));
            faults::add_election(&local, &mut fault_records, &summary, &plan.hosts);
            Some(summary)
        }
        None => None,
    };
    Ok(RunResult {
        label: label.to_string(),
        matrix: spec.matrix.clone(),
        repetition: spec.repetition,
        leader: ensemble.as_ref().map(|e| e.leader.clone()),
        zk_modes: ensemble.map(|e| e.modes).unwrap_or_default(),
        threads: spec.workload.as_ref().map(|w| w.threads),
        outputs,
        election,
        failure: None,
        delays: measured,
        faults: fault_records,
        clocks: Some(clocks),
    })
}

/// The workload's client host and the servers it connects to: the side a minority spares.
fn client_side(
    workload: Option<&WorkloadPlan>,
    ensemble: Option<&zookeeper::Ensemble>,
) -> Vec<String> {
    let (Some(w), Some(e)) = (workload, ensemble) else {
        return Vec::new();
    };
    let mut side = vec![w.client.clone()];
    match &w.connect {
        Connect::Leader => side.push(e.leader.clone()),
        Connect::Host(h) => side.push(h.clone()),
        Connect::All => side.extend(e.modes.iter().map(|(n, _)| n.clone())),
    }
    side
}

/// The workload with its faults beside it. A fault in progress when the workload ends is
/// seen through (so it is undone); a failed workload drops the faults at once (teardown
/// undoes what is in force).
async fn with_faults<W, F>(
    work: W,
    nemesis: F,
) -> anyhow::Result<(Vec<(String, PathBuf)>, Vec<FaultRecord>)>
where
    W: std::future::Future<Output = anyhow::Result<Vec<(String, PathBuf)>>>,
    F: std::future::Future<Output = Vec<FaultRecord>>,
{
    tokio::pin!(work, nemesis);
    let mut records = None;
    let outputs = loop {
        tokio::select! {
            o = &mut work => break o?,
            r = &mut nemesis, if records.is_none() => records = Some(r),
        }
    };
    let records = match records {
        Some(r) => r,
        None => nemesis.await,
    };
    Ok((outputs, records))
}

/// Why the faults make a run count as failed: one did not fire or was not undone.
fn fault_failure(faults: &[FaultRecord]) -> Option<String> {
    let failed: Vec<String> = faults
        .iter()
        .filter_map(|f| {
            let e = f.error.as_ref()?;
            Some(format!("fault {} {}: {e}", f.action, f.target))
        })
        .collect();
    (!failed.is_empty()).then(|| failed.join("; "))
}

/// One line about an election phase: leaders, failures and their detection, safety.
fn election_line(s: &orch_analysis::elect::Summary) -> String {
    let detected: Vec<String> = s
        .failures
        .iter()
        .filter_map(|f| Some((f.detection_ms?, f.detection_bound_ms)))
        .map(|(ms, b)| b.map_or(format!("{ms:.0}"), |b| format!("{ms:.1} ± {b:.2}")))
        .collect();
    let mut line = format!(
        "{} terms, {} elections, final leader {}, {} failures (detected after {} ms), {} false positives",
        s.leaders.len(),
        s.elections,
        s.final_leader.map_or("-".into(), |l| format!("replica {l}")),
        s.failures.len(),
        if detected.is_empty() { "-".into() } else { detected.join(", ") },
        s.false_positives
    );
    if let Some(v) = s.safety_violation() {
        line = format!("{v}; {line}");
    }
    line
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

/// `YYYYmmdd-HHMMSS` in UTC, for run ids that sort by time.
fn utc_stamp(t: std::time::SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y%m%d-%H%M%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
