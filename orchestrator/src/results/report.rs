//! Results of a scenario: every run's YCSB output parsed (ours and real YCSB's alike) into
//! `summary.json` and `summary.csv` in the run's results directory, and a side-by-side table.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Context;
use orch_analysis::ycsb::{is_cleanup, Report};
use serde::Serialize;

use crate::results::cells::{self, Cell};

mod election;

use crate::results::store::RunDir;
use election::{election_rows, fmt, ELECTION_COLUMNS};

/// What one run of the matrix produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub label: String,
    pub matrix: Vec<(String, String)>,
    pub repetition: u32,
    /// The verified ZooKeeper leader.
    pub leader: Option<String>,
    /// `srvr` mode of every server.
    pub zk_modes: Vec<(String, String)>,
    pub threads: Option<u32>,
    /// (phase, local YCSB output file).
    pub outputs: Vec<(String, PathBuf)>,
    /// What the replicas' event logs say, for runs with an election phase.
    pub election: Option<orch_analysis::elect::Summary>,
    /// Why this run counts as failed (it stopped with an error, a safety violation), if it does.
    pub failure: Option<String>,
    /// Declared vs measured round trip per delayed pair (delays.json), if the run had delays.
    pub delays: Option<serde_json::Value>,
    /// The faults of the run (faults.jsonl), in firing order.
    pub faults: Vec<crate::results::faults::FaultRecord>,
    /// The hosts' clocks against the controller's (clocks.json), if they were measured.
    pub clocks: Option<crate::clock::Clocks>,
}

#[derive(Serialize)]
struct Summary<'a> {
    scenario: &'a str,
    run_id: &'a str,
    runs: Vec<RunSummary<'a>>,
}

#[derive(Serialize)]
struct RunSummary<'a> {
    label: &'a str,
    matrix: serde_json::Map<String, serde_json::Value>,
    repetition: u32,
    leader: Option<&'a str>,
    zookeeper: serde_json::Map<String, serde_json::Value>,
    threads: Option<u32>,
    load: Option<Report>,
    run: Option<Report>,
    /// Operations that returned anything but OK, in the run phase.
    errors: u64,
    election: Option<&'a orch_analysis::elect::Summary>,
    /// Why this run counts as failed (failed operations above `workload.max_error_pct`, a
    /// safety violation), if it does.
    failed: Option<&'a str>,
    delays: Option<&'a serde_json::Value>,
    /// Each fault with the workload during its window and after it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    faults: Vec<crate::results::faults::FaultSummary<'a>>,
    /// The hosts' clocks against the controller's (clocks.json); `null`: not measured, the
    /// intervals are the hosts' own.
    clocks: Option<&'a crate::clock::Clocks>,
    /// Every interval above whose clock bound is more than 5 % of it (empty: none).
    clock_bound_large: Vec<String>,
}

/// Parses every output and writes summary.json, summary.csv, cells.json and cells.csv;
/// returns the run phases' reports and the matrix cells.
pub fn write(
    dir: &RunDir,
    scenario: &str,
    results: &[RunResult],
) -> anyhow::Result<(Vec<Option<Report>>, Vec<Cell>)> {
    let mut runs = Vec::new();
    for r in results {
        let mut load = None;
        let mut run = None;
        for (phase, path) in &r.outputs {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let report =
                orch_analysis::ycsb::parse(&text).with_context(|| format!("{}", path.display()))?;
            match phase.as_str() {
                "load" => load = Some(report),
                _ => run = Some(report),
            }
        }
        let errors = run.as_ref().map_or(0, Report::failed);
        let status = std::fs::read_to_string(dir.path.join(&r.label).join("ycsb-run.status.txt"))
            .unwrap_or_default();
        let clock_bound_large = crate::clock::correct::large_bounds(r);
        for line in &clock_bound_large {
            eprintln!("!! {}: clock bound large: {line}", r.label);
        }
        runs.push(RunSummary {
            label: &r.label,
            matrix: r
                .matrix
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into()))
                .collect(),
            repetition: r.repetition,
            leader: r.leader.as_deref(),
            zookeeper: r
                .zk_modes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into()))
                .collect(),
            threads: r.threads,
            load,
            run,
            errors,
            election: r.election.as_ref(),
            failed: r.failure.as_deref(),
            delays: r.delays.as_ref(),
            faults: crate::results::faults::summarize(&r.faults, &status),
            clocks: r.clocks.as_ref(),
            clock_bound_large,
        });
    }
    let summary = Summary {
        scenario,
        run_id: &dir.run_id,
        runs,
    };
    std::fs::write(
        dir.path.join("summary.json"),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    std::fs::write(dir.path.join("summary.csv"), csv(&summary))?;
    let reports: Vec<Option<Report>> = summary.runs.into_iter().map(|r| r.run).collect();
    let per_run: Vec<_> = results
        .iter()
        .zip(&reports)
        .map(|(r, rep)| (r, cells::metrics(r, rep.as_ref())))
        .collect();
    let cells = cells::aggregate(&per_run);
    cells::write(&dir.path, &cells)?;
    Ok((reports, cells))
}

/// Why a run's YCSB outputs make it fail, if they do: an output that does not parse, or failed
/// operations above `max_pct` percent (`workload.max_error_pct`).
pub fn ycsb_failure(max_pct: f64, outputs: &[(String, PathBuf)]) -> Option<String> {
    let (mut load, mut run) = (None, None);
    for (phase, path) in outputs {
        let parsed = std::fs::read_to_string(path)
            .map_err(anyhow::Error::from)
            .and_then(|t| Ok(orch_analysis::ycsb::parse(&t)?));
        match (phase.as_str(), parsed) {
            (_, Err(e)) => return Some(format!("{}: {e}", path.display())),
            ("load", Ok(p)) => load = Some(p),
            (_, Ok(p)) => run = Some(p),
        }
    }
    verdict(max_pct, load.as_ref(), run.as_ref())
}

/// `Some(reason)` when a phase's failed operations exceed `max_pct` percent of its operations.
pub fn verdict(max_pct: f64, load: Option<&Report>, run: Option<&Report>) -> Option<String> {
    let mut reasons = Vec::new();
    for (phase, report) in [("load", load), ("run", run)] {
        let Some(report) = report else { continue };
        let (failed, attempted) = (report.failed(), report.attempted());
        if failed == 0 {
            continue;
        }
        let pct = 100.0 * failed as f64 / attempted as f64;
        if pct > max_pct {
            let per_op: Vec<String> = report
                .db_operations()
                .filter(|o| o.failed() > 0)
                .map(|o| format!("{} {}", o.name, o.failed()))
                .collect();
            reasons.push(format!(
                "{phase}: {failed} of {attempted} operations failed ({pct:.1}%: {}), above workload.max_error_pct {max_pct}",
                per_op.join(", ")
            ));
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// Operations worth a column: every one with an Operations count (`Intended-UPDATE` beside
/// `UPDATE` with `measurement.interval=both`), except YCSB's bookkeeping and the latencies of
/// failed operations.
fn operations(summary: &Summary) -> Vec<String> {
    let mut ops = BTreeSet::new();
    for r in &summary.runs {
        for o in r.run.iter().flat_map(|rep| &rep.operations) {
            if !is_cleanup(&o.name) && !o.name.ends_with("-FAILED") {
                ops.insert(o.name.clone());
            }
        }
    }
    ops.into_iter().collect()
}

/// Percentiles present in any run, ascending.
fn percentiles(summary: &Summary) -> Vec<f64> {
    let mut ps: Vec<f64> = summary
        .runs
        .iter()
        .flat_map(|r| r.run.iter())
        .flat_map(|rep| rep.operations.iter())
        .flat_map(|o| o.percentiles.iter().map(|p| p.percentile))
        .collect();
    ps.sort_by(f64::total_cmp);
    ps.dedup();
    ps
}

fn csv(summary: &Summary) -> String {
    let keys: Vec<String> = summary
        .runs
        .first()
        .map(|r| r.matrix.keys().cloned().collect())
        .unwrap_or_default();
    let ops = operations(summary);
    let ps = percentiles(summary);
    let mut header: Vec<String> = vec!["run".into()];
    header.extend(keys.iter().cloned());
    header.extend(
        [
            "repetition",
            "leader",
            "threads",
            "ops_per_sec",
            "runtime_ms",
            "errors",
            "failed",
            "clock_bound_large",
        ]
        .map(String::from),
    );
    header.extend(ELECTION_COLUMNS.iter().map(|(c, _)| c.to_string()));
    for op in &ops {
        for col in ["count", "failed", "avg_us", "min_us", "max_us"] {
            header.push(format!("{op}_{col}"));
        }
        for p in &ps {
            header.push(format!("{op}_p{p}_us"));
        }
    }
    let mut out = header.join(",") + "\n";
    for r in &summary.runs {
        let mut row = vec![r.label.to_string()];
        row.extend(keys.iter().map(|k| {
            r.matrix
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        }));
        row.push(r.repetition.to_string());
        row.push(r.leader.unwrap_or("").to_string());
        row.push(r.threads.map(|t| t.to_string()).unwrap_or_default());
        let rep = r.run.as_ref();
        row.push(num(rep.and_then(|x| x.throughput)));
        row.push(num(rep.and_then(|x| x.runtime_ms)));
        row.push(r.errors.to_string());
        row.push(r.failed.unwrap_or("").to_string());
        row.push(r.clock_bound_large.join("; "));
        for (_, value) in ELECTION_COLUMNS {
            row.push(num(r.election.and_then(value)));
        }
        for op in &ops {
            let o = rep.and_then(|x| x.operation(op));
            row.push(o.map(|o| o.count.to_string()).unwrap_or_default());
            row.push(o.and_then(failed).unwrap_or_default());
            row.push(num(o.and_then(|o| o.average_us)));
            row.push(num(o.and_then(|o| o.min_us)));
            row.push(num(o.and_then(|o| o.max_us)));
            for p in &ps {
                row.push(num(o
                    .and_then(|o| o.percentiles.iter().find(|x| x.percentile == *p))
                    .map(|x| x.latency_us)));
            }
        }
        out.push_str(
            &row.iter()
                .map(|c| csv_field(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    out
}

/// The failed operations of a section, if it has `Return=` lines to count them (an
/// `Intended-` section has none: YCSB counts them in the operation's own).
fn failed(o: &orch_analysis::ycsb::Operation) -> Option<String> {
    (!o.returns.is_empty()).then(|| o.failed().to_string())
}

fn num(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The runs side by side: one column per run, one row per number that matters.
pub fn table(results: &[RunResult], reports: &[Option<Report>]) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header = vec![String::new()];
    header.extend(results.iter().map(|r| r.label.clone()));
    let mut push = |name: &str, f: &dyn Fn(usize) -> String| {
        let mut row = vec![name.to_string()];
        row.extend((0..results.len()).map(f));
        rows.push(row);
    };
    if results.iter().any(|r| r.election.is_some()) {
        election_rows(results, &mut push);
    }
    if reports.iter().all(Option::is_none) {
        let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
        return crate::output::table(&header_refs, &rows);
    }
    push("leader", &|i| results[i].leader.clone().unwrap_or_default());
    push("threads", &|i| {
        results[i]
            .threads
            .map(|t| t.to_string())
            .unwrap_or_default()
    });
    push("ops/s", &|i| {
        fmt(reports
            .get(i)
            .and_then(|r| r.as_ref())
            .and_then(|r| r.throughput))
    });
    let mut ops = BTreeSet::new();
    for r in reports.iter().flatten() {
        for o in &r.operations {
            if !is_cleanup(&o.name) && !o.name.ends_with("-FAILED") {
                ops.insert(o.name.clone());
            }
        }
    }
    for op in &ops {
        let get = |i: usize| {
            reports
                .get(i)
                .and_then(|r| r.as_ref())
                .and_then(|r| r.operation(op))
        };
        push(&format!("{op} ops"), &|i| {
            get(i).map(|o| o.count.to_string()).unwrap_or_default()
        });
        push(&format!("{op} failed"), &|i| {
            get(i).and_then(failed).unwrap_or_else(|| "-".into())
        });
        push(&format!("{op} avg ms"), &|i| {
            fmt(get(i).and_then(|o| o.average_us).map(|u| u / 1000.0))
        });
        for p in [50.0, 95.0, 99.0] {
            push(&format!("{op} p{p} ms"), &|i| {
                fmt(get(i)
                    .and_then(|o| o.percentiles.iter().find(|x| x.percentile == p))
                    .map(|x| x.latency_us / 1000.0))
            });
        }
    }
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    crate::output::table(&header_refs, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every update failed: YCSB still prints `[UPDATE]` (no latencies, the `Return=` counts).
    const ALL_FAILED: &str = "[OVERALL], RunTime(ms), 2000\n\
        [UPDATE], Operations, 0\n\
        [UPDATE], Return=ERROR, 1800\n\
        [UPDATE-FAILED], Operations, 1800\n\
        [READ], Operations, 0\n\
        [READ], Return=NOT_FOUND, 200\n";

    #[test]
    fn failed_operations_above_the_limit_fail_the_run() {
        let run = orch_analysis::ycsb::parse(ALL_FAILED).unwrap();
        let why = verdict(0.0, None, Some(&run)).unwrap();
        assert!(
            why.contains("run: 2000 of 2000 operations failed (100.0%: UPDATE 1800, READ 200)"),
            "{why}"
        );
        assert_eq!(verdict(100.0, None, Some(&run)), None);
        let some = orch_analysis::ycsb::parse(
            "[UPDATE], Operations, 98\n[UPDATE], Return=OK, 98\n[UPDATE], Return=ERROR, 2\n",
        )
        .unwrap();
        assert_eq!(verdict(2.0, None, Some(&some)), None, "2% is not above 2%");
        assert!(verdict(1.0, Some(&some), None)
            .unwrap()
            .starts_with("load: 2 of 100"));
        assert_eq!(verdict(0.0, None, None), None);
    }

    /// `measurement.interval=both`: `Intended-UPDATE` gets its columns beside `UPDATE`, its
    /// `failed` left empty (YCSB counts the returns in `[UPDATE]`), `Intended-CLEANUP` none.
    #[test]
    fn intended_operations_get_columns_beside_the_others() {
        let run = orch_analysis::ycsb::parse(
            "[OVERALL], RunTime(ms), 1000\n\
             [UPDATE], Operations, 2\n[UPDATE], AverageLatency(us), 1000.0\n\
             [UPDATE], 99thPercentileLatency(us), 1500\n[UPDATE], Return=OK, 2\n\
             [Intended-CLEANUP], Operations, 1\n\
             [Intended-UPDATE], Operations, 2\n[Intended-UPDATE], AverageLatency(us), 9000.0\n\
             [Intended-UPDATE], 99thPercentileLatency(us), 15000\n",
        )
        .unwrap();
        let summary = Summary {
            scenario: "s",
            run_id: "id",
            runs: vec![RunSummary {
                label: "r1",
                matrix: serde_json::Map::new(),
                repetition: 1,
                leader: None,
                zookeeper: serde_json::Map::new(),
                threads: Some(1),
                load: None,
                run: Some(run),
                errors: 0,
                election: None,
                failed: None,
                delays: None,
                clocks: None,
                clock_bound_large: Vec::new(),
                faults: Vec::new(),
            }],
        };
        assert_eq!(operations(&summary), ["Intended-UPDATE", "UPDATE"]);
        let text = csv(&summary);
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let row: Vec<&str> = lines.next().unwrap().split(',').collect();
        let cell = |name: &str| {
            let i = header.iter().position(|h| *h == name);
            row[i.unwrap_or_else(|| panic!("no {name} in {header:?}"))]
        };
        assert_eq!(cell("UPDATE_avg_us"), "1000");
        assert_eq!(cell("UPDATE_failed"), "0");
        assert_eq!(cell("Intended-UPDATE_avg_us"), "9000");
        assert_eq!(cell("Intended-UPDATE_p99_us"), "15000");
        assert_eq!(cell("Intended-UPDATE_failed"), "");
        assert!(!text.contains("CLEANUP"), "{text}");
    }

    #[test]
    fn the_table_shows_failed_operations_per_operation() {
        let run = orch_analysis::ycsb::parse(ALL_FAILED).unwrap();
        let result = RunResult {
            label: "r1".into(),
            matrix: Vec::new(),
            repetition: 1,
            leader: Some("h1".into()),
            zk_modes: Vec::new(),
            threads: Some(1),
            outputs: Vec::new(),
            election: None,
            failure: None,
            delays: None,
            faults: Vec::new(),
            clocks: None,
        };
        let table = table(&[result], &[Some(run)]);
        let row = |name: &str| {
            table
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("no `{name}` row in\n{table}"))
                .split_whitespace()
                .last()
                .unwrap()
                .to_string()
        };
        assert_eq!(row("UPDATE failed"), "1800");
        assert_eq!(row("READ failed"), "200");
        assert_eq!(row("UPDATE ops"), "0");
    }
}
