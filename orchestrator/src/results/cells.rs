//! Matrix cells: the repetitions of one combination of matrix values, every numeric column of
//! their results aggregated into n, mean, stddev, 95 % confidence interval (Student t), min and
//! max. Per-run numbers (ops/s, p99, time to first leader) give one value per repetition;
//! per-event numbers (the detection and failover time of every leader failure) are pooled
//! over the repetitions, so their `n` counts samples.

use std::collections::BTreeMap;
use std::path::Path;

use orch_analysis::stats::Describe;
use orch_analysis::ycsb::{is_cleanup, Report};
use serde::Serialize;

use crate::results::report::RunResult;

/// The numbers of one run, by column name, in a stable order.
pub type Metrics = Vec<(String, Vec<f64>)>;
/// A run and its numbers.
pub type RunMetrics<'a> = (&'a RunResult, Metrics);

/// One cell of the matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// `key=value` of every matrix axis, joined by spaces (`all` without a matrix).
    pub cell: String,
    pub matrix: BTreeMap<String, String>,
    /// Repetitions that finished.
    pub runs: usize,
    /// Of which marked failed (errors above the limit, a safety violation).
    pub failed_runs: usize,
    /// Column -> statistics, in column order.
    pub metrics: Vec<(String, Describe)>,
}

/// What one run contributes: YCSB's run phase and the election analysis.
pub fn metrics(result: &RunResult, run: Option<&Report>) -> Metrics {
    let mut m: Metrics = Vec::new();
    let mut one = |name: String, v: Option<f64>| {
        if let Some(v) = v {
            m.push((name, vec![v]));
        }
    };
    if let Some(rep) = run {
        one("ops_per_sec".into(), rep.throughput);
        one("runtime_ms".into(), rep.runtime_ms);
        for op in rep.operations.iter().filter(|o| !is_cleanup(&o.name)) {
            one(format!("{}_ops", op.name), Some(op.count as f64));
            one(
                format!("{}_avg_ms", op.name),
                op.average_us.map(|u| u / 1e3),
            );
            for p in [50.0, 95.0, 99.0] {
                let at = op.percentiles.iter().find(|x| x.percentile == p);
                one(
                    format!("{}_p{p}_ms", op.name),
                    at.map(|x| x.latency_us / 1e3),
                );
            }
        }
    }
    if let Some(s) = &result.election {
        one("first_leader_ms".into(), s.first_leader_ms);
        one("elections".into(), Some(s.elections as f64));
        one("terms".into(), Some(s.leaders.len() as f64));
        one(
            "terms_with_several_leaders".into(),
            Some(s.terms_with_several_leaders as f64),
        );
        one("false_positives".into(), Some(s.false_positives as f64));
        one("false_positives_per_min".into(), s.false_positives_per_min);
        one("petitions_sent".into(), Some(s.petitions_sent as f64));
        one(
            "petitions_accepted".into(),
            Some(s.petitions_accepted as f64),
        );
        if let (Some(f), Some(l)) = (s.final_leader, s.lowest_penalty) {
            one(
                "final_leader_is_lowest_penalty".into(),
                Some(f64::from(f == l)),
            );
        }
        if let Some(t) = s.timeouts.iter().find(|t| t.armed > 0) {
            one("timeout_median_ms".into(), t.median_ms);
            one("timeout_p99_ms".into(), t.p99_ms);
            one("timeout_formula_ms".into(), t.formula_ms);
            one("leader_srtt_median_ms".into(), t.median_srtt_ms);
        }
        for (name, pick) in [
            (
                "detection_ms",
                (|f| f.detection_ms) as fn(&orch_analysis::elect::Failure) -> Option<f64>,
            ),
            ("failover_ms", |f| f.failover_ms),
            ("detection_bound_ms", |f| f.detection_bound_ms),
            ("failover_bound_ms", |f| f.failover_bound_ms),
        ] {
            let samples: Vec<f64> = s.failures.iter().filter_map(pick).collect();
            if !samples.is_empty() {
                m.push((name.to_string(), samples));
            }
        }
    }
    m
}

/// A cell's name: `key=value` of every matrix axis, or `all` without a matrix.
pub fn cell_name(matrix: &[(String, String)]) -> String {
    if matrix.is_empty() {
        return "all".to_string();
    }
    let parts: Vec<String> = matrix.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(" ")
}

/// Groups runs by their matrix values (first appearance order) and aggregates every column.
pub fn aggregate(runs: &[RunMetrics]) -> Vec<Cell> {
    let mut order: Vec<&[(String, String)]> = Vec::new();
    let mut groups: BTreeMap<&[(String, String)], Vec<&RunMetrics>> = BTreeMap::new();
    for run in runs {
        let key = run.0.matrix.as_slice();
        if !groups.contains_key(key) {
            order.push(key);
        }
        groups.entry(key).or_default().push(run);
    }
    order
        .into_iter()
        .map(|key| {
            let members = &groups[key];
            let mut columns: Vec<(String, Vec<f64>)> = Vec::new();
            for (_, metrics) in members {
                for (name, values) in metrics {
                    match columns.iter_mut().find(|(n, _)| n == name) {
                        Some((_, all)) => all.extend(values),
                        None => columns.push((name.clone(), values.clone())),
                    }
                }
            }
            Cell {
                cell: cell_name(key),
                matrix: key.iter().cloned().collect(),
                runs: members.len(),
                failed_runs: members.iter().filter(|(r, _)| r.failure.is_some()).count(),
                metrics: columns
                    .into_iter()
                    .filter_map(|(name, values)| Describe::of(&values).map(|d| (name, d)))
                    .collect(),
            }
        })
        .collect()
}

/// Writes `cells.json` and `cells.csv` (one row per cell; six columns per metric).
pub fn write(dir: &Path, cells: &[Cell]) -> anyhow::Result<()> {
    std::fs::write(dir.join("cells.json"), serde_json::to_vec_pretty(cells)?)?;
    std::fs::write(dir.join("cells.csv"), csv(cells))?;
    Ok(())
}

fn csv(cells: &[Cell]) -> String {
    let mut keys: Vec<&String> = Vec::new();
    let mut names: Vec<&String> = Vec::new();
    for c in cells {
        for k in c.matrix.keys() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        for (n, _) in &c.metrics {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let mut header: Vec<String> = vec!["cell".into()];
    header.extend(keys.iter().map(|k| k.to_string()));
    header.extend(["runs".to_string(), "failed_runs".to_string()]);
    for n in &names {
        for s in ["n", "mean", "stddev", "ci95", "min", "max"] {
            header.push(format!("{n}_{s}"));
        }
    }
    let mut out = header.join(",") + "\n";
    for c in cells {
        let mut row = vec![c.cell.clone()];
        row.extend(
            keys.iter()
                .map(|k| c.matrix.get(*k).cloned().unwrap_or_default()),
        );
        row.extend([c.runs.to_string(), c.failed_runs.to_string()]);
        for n in &names {
            match c.metrics.iter().find(|(m, _)| m == *n) {
                Some((_, d)) => row.extend([
                    d.n.to_string(),
                    d.mean.to_string(),
                    d.stddev.to_string(),
                    d.ci95.map(|v| v.to_string()).unwrap_or_default(),
                    d.min.to_string(),
                    d.max.to_string(),
                ]),
                None => row.extend(std::iter::repeat_n(String::new(), 6)),
            }
        }
        let row: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The cells side by side: one column per cell, one row per metric, `mean ± CI half-width`
/// (`n` samples where it is not the number of runs).
pub fn table(cells: &[Cell]) -> String {
    let mut names: Vec<&String> = Vec::new();
    for c in cells {
        for (n, _) in &c.metrics {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let mut header = vec![String::new()];
    header.extend(cells.iter().map(|c| c.cell.clone()));
    let mut rows = vec![{
        let mut r = vec!["runs (failed)".to_string()];
        r.extend(
            cells
                .iter()
                .map(|c| format!("{} ({})", c.runs, c.failed_runs)),
        );
        r
    }];
    for n in names {
        let mut row = vec![n.clone()];
        row.extend(cells.iter().map(|c| {
            c.metrics
                .iter()
                .find(|(m, _)| m == n)
                .map_or("-".to_string(), |(_, d)| {
                    let mut v = match d.ci95 {
                        Some(ci) => format!("{:.2} ± {:.2}", d.mean, ci),
                        None => format!("{:.2}", d.mean),
                    };
                    if d.n != c.runs {
                        v.push_str(&format!(" (n={})", d.n));
                    }
                    v
                })
        }));
        rows.push(row);
    }
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    crate::output::table(&header_refs, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(matrix: &[(&str, &str)], rep: u32) -> RunResult {
        RunResult {
            label: format!("r-{rep}"),
            matrix: matrix
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            repetition: rep,
            leader: None,
            zk_modes: vec![],
            threads: None,
            outputs: vec![],
            election: None,
            failure: None,
            delays: None,
            faults: Vec::new(),
            clocks: None,
        }
    }

    /// `measurement.interval=both`: the intended latencies are columns of their own.
    #[test]
    fn intended_latencies_are_metrics_beside_the_others() {
        let run = orch_analysis::ycsb::parse(
            "[UPDATE], Operations, 2\n[UPDATE], AverageLatency(us), 1000.0\n\
             [CLEANUP], Operations, 1\n[Intended-CLEANUP], Operations, 1\n\
             [Intended-UPDATE], Operations, 2\n[Intended-UPDATE], AverageLatency(us), 9000.0\n\
             [Intended-UPDATE], 99thPercentileLatency(us), 15000\n",
        )
        .unwrap();
        let m = metrics(&result(&[], 1), Some(&run));
        let names: Vec<&str> = m.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "UPDATE_ops",
                "UPDATE_avg_ms",
                "Intended-UPDATE_ops",
                "Intended-UPDATE_avg_ms",
                "Intended-UPDATE_p99_ms"
            ]
        );
        assert_eq!(m[3].1, [9.0]);
    }

    #[test]
    fn repetitions_are_aggregated_per_cell_and_samples_pooled() {
        let a1 = result(&[("mode", "raft")], 1);
        let a2 = result(&[("mode", "raft")], 2);
        let b1 = result(&[("mode", "ci")], 1);
        let runs = vec![
            (
                &a1,
                vec![
                    ("x".to_string(), vec![1.0]),
                    ("d".to_string(), vec![10.0, 20.0]),
                ],
            ),
            (
                &a2,
                vec![("x".to_string(), vec![3.0]), ("d".to_string(), vec![30.0])],
            ),
            (&b1, vec![("x".to_string(), vec![5.0])]),
        ];
        let cells = aggregate(&runs);
        assert_eq!(cells.len(), 2);
        assert_eq!((cells[0].cell.as_str(), cells[0].runs), ("mode=raft", 2));
        let x = &cells[0].metrics[0].1;
        assert_eq!((x.n, x.mean), (2, 2.0));
        let d = &cells[0].metrics[1].1;
        assert_eq!((d.n, d.mean), (3, 20.0));
        let csv = csv(&cells);
        let lines: Vec<&str> = csv.lines().collect();
        assert!(
            lines[0].starts_with("cell,mode,runs,failed_runs,x_n,x_mean,"),
            "{}",
            lines[0]
        );
        assert_eq!(lines.len(), 3);
        assert!(
            lines[2].starts_with("mode=ci,ci,1,0,1,5,0,,5,5"),
            "{}",
            lines[2]
        );
        let t = table(&cells);
        assert!(t.contains("2.00 ± 12.71"), "{t}");
        assert!(t.contains("20.00 ± 24.84 (n=3)"), "{t}");
    }
}
