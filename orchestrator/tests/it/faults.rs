//! Faults during `orch run` on a 5-host lab: the shipped zk-leader-kill-lab scenario kills the
//! server srvr calls leader 20 s into the workload and restarts it 10 s later. Needs root,
//! Debian's zookeeper package and the musl target (.ci/run).

use crate::util::{leftovers, setup, text, workspace, Lab};

#[test]
fn zookeeper_leader_kill_is_recorded_measured_and_undone() {
    let lab = Lab::up("fa", "10.101", 5);
    setup(&lab);
    let results = lab.dir.path().join("results");
    let out = lab.run(&workspace("scenarios/zk-leader-kill-lab.yaml"), &results);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("zookeeper: leader host3 (srvr: "),
        "{stderr}"
    );

    let latest = results.join("zk-leader-kill-lab/latest");
    let label = "r01-rep1";
    let lines = std::fs::read_to_string(latest.join(label).join("faults.jsonl")).unwrap();
    let faults: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(faults.len(), 1, "{lines}");
    let f = &faults[0];
    // srvr verified host3 as leader at the start and again when the fault fired.
    assert_eq!(f["leader_before"], "host3", "{f}");
    assert_eq!(f["host"], "host3", "{f}");
    assert_eq!(f["action"], "kill", "{f}");
    assert!(f["error"].is_null(), "{f}");
    let start = f["start_s"].as_f64().unwrap();
    let end = f["end_s"].as_f64().unwrap();
    assert!((19.5..25.0).contains(&start), "{f}");
    assert!((end - start - 10.0).abs() < 3.0, "{f}");
    assert!(f["start_unix_ns"].as_u64().unwrap() < f["end_unix_ns"].as_u64().unwrap());
    let new_leader = f["new_leader"].as_str().unwrap();
    assert_ne!(new_leader, "host3");
    let ms = f["new_leader_ms"].as_f64().unwrap();
    assert!(ms > 0.0 && ms < 10_000.0, "{f}");
    assert!(
        f["rejoined_ms"].as_f64().is_some(),
        "host3 did not serve again: {f}"
    );

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(latest.join("summary.json")).unwrap()).unwrap();
    let s = &summary["runs"][0]["faults"][0];
    assert_eq!(s["host"], "host3", "{s}");
    assert_eq!(s["new_leader_ms"].as_f64(), Some(ms), "{s}");
    // One status line a second: the 10 s window and the 30 s after it are both covered.
    let during = &s["during"];
    assert!(during["intervals"].as_u64().unwrap() >= 8, "{s}");
    assert!(during["errors"].as_u64().is_some(), "{s}");
    assert!(s["after"]["intervals"].as_u64().unwrap() >= 25, "{s}");
    assert!(
        s["after"]["ok"].as_u64().unwrap() > 0,
        "the workload went on: {s}"
    );
    eprintln!("fault summary: {s}");

    assert_eq!(leftovers(&lab), "", "processes left on the hosts");
    let rules = lab.exec(&[
        "--",
        "sh",
        "-c",
        "nft list ruleset 2>/dev/null | grep -c drop; tc qdisc show | grep -c netem; true",
    ]);
    assert!(rules.status.success(), "{}", text(&rules.stderr));
    // Two counts per host (`host1: 0`), each 0 when nothing is left.
    let counts = text(&rules.stdout);
    let numbers: Vec<u32> = counts
        .lines()
        .filter_map(|l| l.split_whitespace().next_back()?.parse().ok())
        .collect();
    assert_eq!(numbers, vec![0; 10], "drop rules or qdiscs left: {counts}");
}
