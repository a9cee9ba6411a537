//! Results of a scenario: every run's YCSB output parsed (ours and real YCSB's alike) into
//! `summary.json` and `summary.csv` in the run's results directory, and a side-by-side table.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;
use ycsb_report::Report;

use crate::scenario::Scenario;
use crate::store::RunDir;

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
    /// Declared vs measured round trip per delayed pair (delays.json), if the run had delays.
    pub delays: Option<serde_json::Value>,
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
    delays: Option<&'a serde_json::Value>,
}

/// Parses every output and writes summary.json and summary.csv; returns the run phases' reports.
pub fn write(
    dir: &RunDir,
    scenario: &Scenario,
    results: &[RunResult],
) -> anyhow::Result<Vec<Option<Report>>> {
    let mut runs = Vec::new();
    for r in results {
        let mut load = None;
        let mut run = None;
        for (phase, path) in &r.outputs {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let report =
                ycsb_report::parse(&text).with_context(|| format!("{}", path.display()))?;
            match phase.as_str() {
                "load" => load = Some(report),
                _ => run = Some(report),
            }
        }
        let errors = run.as_ref().map_or(0, errors);
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
            delays: r.delays.as_ref(),
        });
    }
    let summary = Summary {
        scenario: &scenario.name,
        run_id: &dir.run_id,
        runs,
    };
    std::fs::write(
        dir.path.join("summary.json"),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    std::fs::write(dir.path.join("summary.csv"), csv(&summary))?;
    Ok(summary.runs.into_iter().map(|r| r.run).collect())
}

/// Non-OK returns across all operations.
fn errors(report: &Report) -> u64 {
    report
        .operations
        .iter()
        .flat_map(|o| o.returns.iter())
        .filter(|(status, _)| status.as_str() != "OK")
        .map(|(_, n)| n)
        .sum()
}

/// Operations worth a column: every one with an Operations count, except YCSB's bookkeeping.
fn operations(summary: &Summary) -> Vec<String> {
    let mut ops = BTreeSet::new();
    for r in &summary.runs {
        for o in r.run.iter().flat_map(|rep| &rep.operations) {
            if o.name != "CLEANUP" && !o.name.ends_with("-FAILED") {
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
        ]
        .map(String::from),
    );
    for op in &ops {
        for col in ["count", "avg_us", "min_us", "max_us"] {
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
        for op in &ops {
            let o = rep.and_then(|x| x.operation(op));
            row.push(o.map(|o| o.count.to_string()).unwrap_or_default());
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
            if o.name != "CLEANUP" && !o.name.ends_with("-FAILED") {
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

fn fmt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into())
}
