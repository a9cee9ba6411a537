//! YCSB's intended latency through `orch run` on a 3-host lab: a scenario with a `target` and
//! `measurement.interval: both` gets `[Intended-UPDATE]` and `[Intended-READ]` in the YCSB
//! output, and columns of their own in summary.csv/json and cells.csv. The target (5000 ops/s,
//! one thread) is above what the ensemble can do, so the schedule falls behind and the intended
//! latencies are far above the op latencies. Needs root, Debian's zookeeper package and the
//! musl target (.ci/run).

use crate::util::{setup, Lab};

const SCENARIO: &str = "\
name: intended
zookeeper:
  leader: host2
workload:
  client: host1
  threads: 1
  properties:
    recordcount: 100
    operationcount: 300
    readproportion: 0.5
    updateproportion: 0.5
    target: 5000
    measurement.interval: both
";

/// The cells of the CSV row after the header, by column name.
fn csv_row(text: &str) -> Vec<(String, String)> {
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from);
    let row = lines.next().unwrap().split(',').map(String::from);
    header.zip(row).collect()
}

/// Equal but for the last bits (serde_json reads floats to within an ulp, not exactly).
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs()
}

fn cell<'a>(row: &'a [(String, String)], name: &str) -> &'a str {
    row.iter()
        .find(|(h, _)| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {row:?}"))
        .1
        .as_str()
}

#[test]
fn target_with_both_intervals_reports_intended_latency_everywhere() {
    let lab = Lab::up("wyi", "10.71", 3);
    setup(&lab);
    let latest = lab.run_ok("intended", SCENARIO);
    let label = std::fs::read_dir(&latest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("ycsb-run.txt").is_file())
        .expect("a run directory with ycsb-run.txt");
    let text = std::fs::read_to_string(label.join("ycsb-run.txt")).unwrap();
    for section in [
        "[Intended-UPDATE], Operations, ",
        "[Intended-READ], Operations, ",
    ] {
        assert!(text.contains(section), "{section}\n{text}");
    }
    assert!(!text.contains("[Intended-UPDATE], Return="), "{text}");

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(latest.join("summary.json")).unwrap()).unwrap();
    let run = &summary["runs"][0];
    assert_eq!(run["errors"], 0, "Intended- sections count nothing twice");
    let ops = run["run"]["operations"].as_array().unwrap();
    let avg = |name: &str| {
        let op = ops
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {ops:?}"));
        op["average_us"].as_f64().unwrap()
    };
    for op in ["UPDATE", "READ"] {
        let (actual, intended) = (avg(op), avg(&format!("Intended-{op}")));
        eprintln!(
            "{op}: average {actual} us from the start, {intended} us from the intended start"
        );
        assert!(
            intended >= 5.0 * actual,
            "{op}: at a target above capacity the schedule falls behind: {intended} vs {actual} us"
        );
    }

    let summary_csv = csv_row(&std::fs::read_to_string(latest.join("summary.csv")).unwrap());
    for op in ["UPDATE", "READ"] {
        let intended = format!("Intended-{op}");
        let count = cell(&summary_csv, &format!("{intended}_count"));
        assert_eq!(count, cell(&summary_csv, &format!("{op}_count")));
        let avg_csv: f64 = cell(&summary_csv, &format!("{intended}_avg_us"))
            .parse()
            .unwrap();
        assert!(
            close(avg_csv, avg(&intended)),
            "{avg_csv} vs {}",
            avg(&intended)
        );
        assert_eq!(cell(&summary_csv, &format!("{intended}_failed")), "");
    }
    let cells = csv_row(&std::fs::read_to_string(latest.join("cells.csv")).unwrap());
    for op in ["UPDATE", "READ"] {
        let mean: f64 = cell(&cells, &format!("Intended-{op}_avg_ms_mean"))
            .parse()
            .unwrap();
        let want = avg(&format!("Intended-{op}")) / 1e3;
        assert!(close(mean, want), "{mean} vs {want}");
        assert!(!cell(&cells, &format!("{op}_avg_ms_mean")).is_empty());
    }
}
