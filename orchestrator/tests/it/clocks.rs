//! The hosts' clocks of `orch run` on a 3-host lab: every run's clocks.json gives each host's
//! offset against the controller at the start and the end, with its bound, and the replica
//! kill's detection and failover carry the bound of the two hosts' clocks. Lab hosts share
//! the controller's clock, so the truth is known: every offset is 0, so it must lie within
//! its bound of 0. Needs root, the musl target and Debian's zookeeper package (.ci/run).

use crate::util::{leftovers, setup, Lab};

/// Three replicas; the leader is killed once, 4 s in, and restarted 2 s later.
const SCENARIO: &str = "\
name: clocks
election:
  hosts: role:replica
  duration_s: 16
  config: {fdMode: raft}
faults:
  - {every_s: 4, count: 1, duration_s: 2, action: kill, target: replica-leader}
";

fn json(path: &std::path::Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

fn ms(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn every_host_gets_an_offset_within_its_bound_and_intervals_their_bounds() {
    let lab = Lab::up("clka", "10.241", 3);
    setup(&lab);
    let latest = lab.run_ok("clocks", SCENARIO);
    let run = latest.join("r01-rep1");
    let clocks = json(&run.join("clocks.json"));
    eprintln!("{}", serde_json::to_string_pretty(&clocks).unwrap());
    assert!(
        clocks["reference"]
            .as_str()
            .unwrap()
            .starts_with("the controller"),
        "{clocks}"
    );
    let hosts = clocks["hosts"].as_object().unwrap();
    let names: Vec<&str> = hosts.keys().map(String::as_str).collect();
    assert_eq!(names, ["host1", "host2", "host3"]);
    for (name, c) in hosts {
        for when in ["start", "end"] {
            let m = &c[when];
            let (offset, bound, rtt) = (ms(&m["offset_ms"]), ms(&m["bound_ms"]), ms(&m["rtt_ms"]));
            assert!(
                offset.abs() <= bound,
                "{name} {when}: one clock, offset 0: {m}"
            );
            assert!(
                bound < 5.0 && rtt > 0.0 && bound >= rtt / 2.0,
                "{name} {when}: {m}"
            );
            assert_eq!(m["samples"], 20, "{name} {when}: {m}");
        }
        let r = &c["run"];
        assert_eq!(r["host"].as_str(), Some(name.as_str()));
        assert!(
            ms(&r["offset_ms"]).abs() <= ms(&r["bound_ms"]),
            "{name}: {r}"
        );
    }
    let replicas: Vec<&str> = clocks["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(replicas, ["host1", "host2", "host3"]);
    let bound_of = |replica: &serde_json::Value| {
        let host = replicas[replica.as_u64().unwrap() as usize];
        ms(&hosts[host]["run"]["bound_ms"])
    };

    // summary.json holds the same clocks, and the kill's intervals with their bounds.
    let summary = json(&latest.join("summary.json"));
    let r = &summary["runs"][0];
    assert_eq!(r["clocks"], clocks);
    let failures = r["election"]["failures"].as_array().unwrap();
    let killed = failures
        .iter()
        .find(|f| f["how"] == "killed")
        .unwrap_or_else(|| panic!("no kill among {failures:?}"));
    let detection = ms(&killed["detection_ms"]);
    let detection_bound = ms(&killed["detection_bound_ms"]);
    let expected = bound_of(&killed["node"]) + bound_of(&killed["detected_by"]);
    assert!((detection_bound - expected).abs() < 1e-9, "{killed}");
    let failover_bound = ms(&killed["failover_bound_ms"]);
    let expected = bound_of(&killed["node"]) + bound_of(&killed["new_leader"]);
    assert!((failover_bound - expected).abs() < 1e-9, "{killed}");
    // The large-bound field says exactly what the bounds say.
    let large =
        detection_bound > 0.05 * detection || failover_bound > 0.05 * ms(&killed["failover_ms"]);
    let said = r["clock_bound_large"].as_array().unwrap();
    assert_eq!(!said.is_empty(), large, "{r}");

    // faults.jsonl: the same intervals and bounds; the rejoin is across the replica's host
    // and the controller.
    let lines = std::fs::read_to_string(run.join("faults.jsonl")).unwrap();
    let fault: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(fault["start_clock"], fault["hosts"][0], "{fault}");
    let b = &fault["clock_bounds"];
    assert_eq!(ms(&b["detection_ms"]), detection_bound, "{fault}");
    assert_eq!(ms(&fault["detection_ms"]), detection, "{fault}");
    assert_eq!(ms(&b["new_leader_ms"]), failover_bound, "{fault}");
    let host = fault["hosts"][0].as_str().unwrap();
    assert_eq!(
        ms(&b["rejoined_ms"]),
        ms(&hosts[host]["run"]["bound_ms"]),
        "{fault}"
    );

    let text = std::fs::read_to_string(run.join("election.txt")).unwrap();
    assert!(
        text.contains(&format!("detected after {detection:.1} ± ")),
        "{text}"
    );
    assert!(text.contains("node 0 on host1: "), "{text}");
    assert_eq!(leftovers(&lab), "", "processes left on the hosts");
}
