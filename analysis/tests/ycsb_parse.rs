//! The seed README's outputs and real-YCSB-style outputs parse to exactly their numbers.

use orch_analysis::ycsb::{parse, Operation, Report};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn op<'a>(r: &'a Report, name: &str) -> &'a Operation {
    r.operation(name)
        .unwrap_or_else(|| panic!("no [{name}] in {r:?}"))
}

fn percentiles(o: &Operation) -> Vec<(f64, f64)> {
    o.percentiles
        .iter()
        .map(|p| (p.percentile, p.latency_us))
        .collect()
}

const SEED_PERCENTILES: [f64; 8] = [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9];

#[test]
fn seed_far_leader_output() {
    let r = parse(&fixture("seed-far-leader.txt")).unwrap();
    assert_eq!(r.runtime_ms, None);
    assert_eq!(r.throughput, Some(100.54293183189222));
    assert!(r.other.is_empty());
    assert_eq!(r.operations.len(), 1);
    let u = op(&r, "UPDATE");
    assert_eq!(u.count, 891);
    assert_eq!(u.average_us, Some(10721.777777777777));
    assert_eq!(u.min_us, Some(4320.0));
    assert_eq!(u.max_us, Some(85887.0));
    let want = [
        5667.0, 5919.0, 9519.0, 16127.0, 18175.0, 18815.0, 21375.0, 85887.0,
    ];
    assert_eq!(
        percentiles(u),
        SEED_PERCENTILES.into_iter().zip(want).collect::<Vec<_>>()
    );
    assert_eq!(u.returns.len(), 1);
    assert_eq!(u.returned("OK"), 891);
    assert!(u.other.is_empty());
}

#[test]
fn seed_near_leader_output() {
    let r = parse(&fixture("seed-near-leader.txt")).unwrap();
    assert_eq!(r.runtime_ms, None);
    assert_eq!(r.throughput, Some(97.03085581214826));
    assert_eq!(r.operations.len(), 1);
    let u = op(&r, "UPDATE");
    assert_eq!(u.count, 923);
    assert_eq!(u.average_us, Some(10790.535211267606));
    assert_eq!(u.min_us, Some(4268.0));
    assert_eq!(u.max_us, Some(82495.0));
    let want = [
        5719.0, 5991.0, 9431.0, 15863.0, 17855.0, 18319.0, 21583.0, 82495.0,
    ];
    assert_eq!(
        percentiles(u),
        SEED_PERCENTILES.into_iter().zip(want).collect::<Vec<_>>()
    );
    assert!(u.returns.is_empty(), "this excerpt has no Return= line");
    assert_eq!(u.percentile(99.0), Some(21583.0));
}

#[test]
fn real_ycsb_run_with_gc_cleanup_failures_and_stderr() {
    let r = parse(&fixture("real-ycsb-run.txt")).unwrap();
    assert_eq!(r.runtime_ms, Some(10047.0));
    assert_eq!(r.throughput, Some(99.53219866626854));
    let names: Vec<&str> = r.operations.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["READ", "CLEANUP", "UPDATE", "UPDATE-FAILED"]);

    let gc: Vec<(&str, &str, f64)> = r
        .other
        .iter()
        .map(|m| (m.section.as_str(), m.name.as_str(), m.value))
        .collect();
    assert_eq!(gc.len(), 9);
    assert_eq!(gc[0], ("TOTAL_GCS_G1_Young_Generation", "Count", 2.0));
    assert_eq!(
        gc[2],
        (
            "TOTAL_GC_TIME_%_G1_Young_Generation",
            "Time(%)",
            0.08957897879964169
        )
    );
    assert_eq!(gc[8], ("TOTAL_GC_TIME_%", "Time(%)", 0.08957897879964169));

    let read = op(&r, "READ");
    assert_eq!(read.count, 103);
    assert_eq!(read.average_us, Some(1091.1456310679611));
    assert_eq!(read.percentile(10.0), Some(729.0));
    assert_eq!(read.percentile(99.9), Some(6107.0));
    assert_eq!(read.returned("OK"), 103);

    let cleanup = op(&r, "CLEANUP");
    assert_eq!(
        (cleanup.count, cleanup.min_us, cleanup.max_us),
        (1, Some(2182.0), Some(2183.0))
    );
    assert!(cleanup.returns.is_empty());

    let update = op(&r, "UPDATE");
    assert_eq!(update.count, 895);
    assert_eq!(update.returned("OK"), 895);
    assert_eq!(update.returned("ERROR"), 2);
    assert_eq!(update.percentile(75.0), Some(16063.0));
    let failed = op(&r, "UPDATE-FAILED");
    assert_eq!((failed.count, failed.average_us), (2, Some(5999.0)));

    let attempts: u64 = r.operations.iter().flat_map(|o| o.returns.values()).sum();
    assert_eq!(attempts, 1000);
}

#[test]
fn real_ycsb_load_with_default_percentiles() {
    let r = parse(&fixture("real-ycsb-load.txt")).unwrap();
    assert_eq!(r.runtime_ms, Some(61382.0));
    assert_eq!(r.throughput, Some(162.9142093773419));
    let insert = op(&r, "INSERT");
    assert_eq!(insert.count, 10000);
    assert_eq!(insert.average_us, Some(6121.5331));
    assert_eq!(
        percentiles(insert),
        [(95.0, 8207.0), (99.0, 12799.0)].to_vec()
    );
    assert_eq!(insert.returned("OK"), 10000);
    assert_eq!(op(&r, "CLEANUP").count, 1);
}

#[test]
fn ordinals_and_unknown_metrics() {
    let text = "[READ], Operations, 3\n\
                [READ], 1stPercentileLatency(us), 10\n\
                [READ], 2ndPercentileLatency(us), 11\n\
                [READ], 3rdPercentileLatency(us), 12\n\
                [READ], 99.99PercentileLatency(us), 40\n\
                [READ], >1000, 0\n\
                [OVERALL], Whatever, 1.5\n";
    let r = parse(text).unwrap();
    let read = op(&r, "READ");
    assert_eq!(
        percentiles(read),
        [(1.0, 10.0), (2.0, 11.0), (3.0, 12.0), (99.99, 40.0)].to_vec()
    );
    assert_eq!(read.other.len(), 1);
    assert_eq!(read.other[0].name, ">1000");
    assert_eq!(r.other[0].name, "Whatever");
}

#[test]
fn two_outputs_in_one_text_are_an_error() {
    let text = format!(
        "{}\n{}",
        fixture("seed-far-leader.txt"),
        fixture("seed-near-leader.txt")
    );
    let err = parse(&text).unwrap_err();
    assert!(
        err.to_string().contains("already appeared on line 1"),
        "{err}"
    );
}

#[test]
fn a_measurement_line_without_a_number_is_an_error() {
    let err = parse("noise\n[READ], Operations, many\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(err.to_string().contains("`many` is not a count"), "{err}");
}

/// Recorded from YCSB 0.12.0 (`./bin/ycsb load mongodb -s -P workloads/workloada
/// -p recordcount=10000000 -threads 8`, macOS, 2017-10-06) and `ycsb run` of the same setup, as
/// published in a public GitHub notes file (found through the session's code library; see
/// tests/fixtures/SOURCES.md): releases before 0.13 print counts as Java doubles.
#[test]
fn ycsb_0_12_prints_counts_as_doubles() {
    let load = parse(&fixture("ycsb-0.12.0-load.txt")).unwrap();
    assert_eq!(load.runtime_ms, Some(437086.0));
    let insert = op(&load, "INSERT");
    assert_eq!(insert.count, 10_000_000, "`1.0E7` is a count");
    assert_eq!(insert.returned("OK"), 10_000_000);
    assert_eq!(op(&load, "CLEANUP").count, 8);
    assert_eq!((load.attempted(), load.failed()), (10_000_000, 0));

    let run = parse(&fixture("ycsb-0.12.0-run.txt")).unwrap();
    assert_eq!(op(&run, "READ").count, 4_998_463);
    assert_eq!(op(&run, "UPDATE").count, 5_001_537);
    assert_eq!(run.attempted(), 10_000_000);
    let gc = run.other.iter().find(|m| m.section == "TOTAL_GCs").unwrap();
    assert_eq!(gc.value, 3866.0);
}

/// Releases before 0.7 printed the int their `DB` methods returned, 0 for success.
#[test]
fn return_code_zero_is_success() {
    let r = parse("[READ], Operations, 3\n[READ], Return=0, 3\n[READ], Return=-1, 1\n").unwrap();
    assert_eq!((r.attempted(), r.failed()), (4, 1));
}

#[test]
fn a_count_must_be_whole() {
    let err = parse("[READ], Operations, 2.5\n").unwrap_err();
    assert!(err.to_string().contains("`2.5` is not a count"), "{err}");
    assert!(parse("[READ], Operations, -1.0\n").is_err());
}

#[test]
fn failed_operations_are_counted_per_operation() {
    let r = parse(&fixture("real-ycsb-run.txt")).unwrap();
    assert_eq!(op(&r, "UPDATE").failed(), 2);
    assert_eq!(op(&r, "READ").failed(), 0);
    assert_eq!((r.attempted(), r.failed()), (1000, 2));
    let names: Vec<&str> = r.db_operations().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["READ", "UPDATE"]);
}

/// `measurement.interval=both` (YCSB's Measurements.java): after the operations' sections, the
/// same operations from their intended start as `[Intended-<OP>]`, without `Return=` lines
/// (YCSB reports the returns to `[UPDATE]` only), so failures are not counted twice.
#[test]
fn intended_sections_are_operations_of_their_own() {
    let text = "[OVERALL], RunTime(ms), 2500\n\
        [OVERALL], Throughput(ops/sec), 200.0\n\
        [READ], Operations, 50\n\
        [READ], AverageLatency(us), 735.1\n\
        [READ], 99thPercentileLatency(us), 1201\n\
        [READ], Return=OK, 50\n\
        [CLEANUP], Operations, 1\n\
        [CLEANUP], AverageLatency(us), 900.0\n\
        [UPDATE], Operations, 450\n\
        [UPDATE], AverageLatency(us), 6551.8\n\
        [UPDATE], 99thPercentileLatency(us), 20111\n\
        [UPDATE], Return=OK, 449\n\
        [UPDATE], Return=ERROR, 1\n\
        [UPDATE-FAILED], Operations, 1\n\
        [Intended-READ], Operations, 50\n\
        [Intended-READ], AverageLatency(us), 296882.6\n\
        [Intended-READ], 99thPercentileLatency(us), 980223\n\
        [Intended-CLEANUP], Operations, 1\n\
        [Intended-CLEANUP], AverageLatency(us), 900.0\n\
        [Intended-UPDATE], Operations, 450\n\
        [Intended-UPDATE], AverageLatency(us), 304047.8\n\
        [Intended-UPDATE], 99thPercentileLatency(us), 1001471\n\
        [Intended-UPDATE-FAILED], Operations, 1\n";
    let r = parse(text).unwrap();
    let names: Vec<&str> = r.operations.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "READ",
            "CLEANUP",
            "UPDATE",
            "UPDATE-FAILED",
            "Intended-READ",
            "Intended-CLEANUP",
            "Intended-UPDATE",
            "Intended-UPDATE-FAILED"
        ]
    );
    let intended = op(&r, "Intended-UPDATE");
    assert_eq!(orch_analysis::ycsb::measured(&intended.name), "UPDATE");
    assert_eq!(orch_analysis::ycsb::measured("UPDATE"), "UPDATE");
    assert_eq!(intended.average_us, Some(304047.8));
    assert_eq!(intended.percentile(99.0), Some(1001471.0));
    assert!(orch_analysis::ycsb::is_cleanup("Intended-CLEANUP"));
    assert!(!orch_analysis::ycsb::is_cleanup("Intended-UPDATE"));
    assert_eq!((r.attempted(), r.failed()), (500, 1));
}
