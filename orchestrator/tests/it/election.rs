//! The election phase of `orch run` on a 5-host lab: replicas under emulated WAN delays with
//! the TCP mesh, their event logs collected and analysed, repetitions aggregated into cells,
//! plots; kill -9 of orch in the middle of the matrix and `--resume`; `orch report` on the
//! stored results. Needs root, the musl target and Debian's zookeeper package (.ci/run).

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::{leftovers, setup, text, wait_until, write, Lab, ORCH};

/// Four cells (two modes x two delay profiles), one repetition each, ~8 s per run.
const SCENARIO: &str = "\
name: elect-test
delay_profiles:
  near:
    interfaces:
      - {host: host1, delay_ms: 2}
      - {host: host2, delay_ms: 2}
      - {host: host3, delay_ms: 2}
      - {host: host4, delay_ms: 2}
      - {host: host5, delay_ms: 2}
  far:
    interfaces:
      - {host: host1, delay_ms: 20}
      - {host: host2, delay_ms: 20}
      - {host: host3, delay_ms: 20}
      - {host: host4, delay_ms: 20}
      - {host: host5, delay_ms: 20}
traffic:
  mode: mesh
  interval_ms: 100
election:
  duration_s: 6
  config:
    failureLeader: true
    maxHeartbeats: 10
    tcp_monitor: true
matrix:
  election.config.fdMode: [raft, Jacobson]
  delays: [near, far]
";

#[test]
fn election_runs_are_analysed_survive_kill_9_and_report_again() {
    let lab = Lab::up("ela", "10.181", 5);
    setup(&lab);
    let scenario = write(lab.dir.path(), "elect.yaml", SCENARIO);
    let results = lab.dir.path().join("results");
    let args = [
        "-i",
        lab.inventory.to_str().unwrap(),
        "run",
        "--scenario",
        scenario.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ];

    // Kill orch (-9) once the first run is done and the second one's replicas are up.
    let mut orch = Command::new(ORCH)
        .args(args)
        .env("ORCH_LAB_DIR", lab.dir.path().join("state"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let latest = results.join("elect-test/latest");
    let second = "r02-fdMode=raft-delays=far-rep1";
    wait_until(
        "the first run's done marker",
        Duration::from_secs(120),
        || {
            latest
                .join("r01-fdMode=raft-delays=near-rep1/run.json")
                .is_file()
        },
    );
    wait_until("the second run's replicas", Duration::from_secs(60), || {
        leftovers(&lab).contains("orch-node elect")
    });
    orch.kill().unwrap();
    orch.wait().unwrap();
    assert!(!latest.join(second).join("run.json").exists());
    let run_id = std::fs::read_link(&latest).unwrap();
    let run_id = run_id.to_str().unwrap();
    let first_done =
        std::fs::read(latest.join("r01-fdMode=raft-delays=near-rep1/run.json")).unwrap();

    let mut resume: Vec<&str> = args.to_vec();
    resume.extend(["--resume", run_id]);
    let out = lab.orch(&resume);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{}", text(&out.stdout));
    assert!(
        stderr.contains("r01-fdMode=raft-delays=near-rep1: finished earlier, kept"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("== {second}")), "{stderr}");
    assert_eq!(
        std::fs::read(latest.join("r01-fdMode=raft-delays=near-rep1/run.json")).unwrap(),
        first_done,
        "the finished run was not run again"
    );
    assert_eq!(leftovers(&lab), "", "processes left on the hosts");

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(latest.join("summary.json")).unwrap()).unwrap();
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    for run in runs {
        let e = &run["election"];
        assert_eq!(e["files"], 5, "{e}");
        assert_eq!(e["terms_with_several_leaders"], 0, "{e}");
        assert!(e["first_leader_ms"].as_f64().unwrap() > 0.0, "{e}");
        let failures = e["failures"].as_array().unwrap();
        assert!(failures.len() >= 2, "every run has injected failures: {e}");
        let detected = failures
            .iter()
            .filter(|f| f["detection_ms"].is_number())
            .count();
        assert!(detected >= 2, "{e}");
        assert!(
            failures[0]["failover_ms"].as_f64().unwrap()
                > failures[0]["detection_ms"].as_f64().unwrap()
        );
    }
    // Jacobson's timeouts come from the measured TCP RTT: the far profile (40 ms RTT) gives a
    // larger leader srtt than the near one (4 ms).
    let srtt = |label: &str| {
        let run = runs.iter().find(|r| r["label"] == label).unwrap();
        let t = run["election"]["timeouts"].as_array().unwrap();
        let j = t.iter().find(|m| m["mode"] == "jacobson").unwrap();
        j["median_srtt_ms"].as_f64().unwrap()
    };
    let (near, far) = (
        srtt("r03-fdMode=Jacobson-delays=near-rep1"),
        srtt("r04-fdMode=Jacobson-delays=far-rep1"),
    );
    assert!(
        (3.0..15.0).contains(&near) && (35.0..60.0).contains(&far),
        "near {near}, far {far}"
    );

    let cells = std::fs::read_to_string(latest.join("cells.csv")).unwrap();
    assert_eq!(cells.lines().count(), 5, "{cells}");
    assert!(
        cells
            .lines()
            .next()
            .unwrap()
            .contains("detection_ms_n,detection_ms_mean"),
        "{cells}"
    );
    for plot in [
        "election-detection.svg",
        "election-detection.png",
        "r01-fdMode=raft-delays=near-rep1/timeline.svg",
    ] {
        let size = std::fs::metadata(latest.join(plot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(size > 1000, "{plot}: {size} bytes");
    }

    // orch report rebuilds the same summary from the stored files alone.
    let before = std::fs::read(latest.join("summary.json")).unwrap();
    std::fs::remove_file(latest.join("cells.csv")).unwrap();
    let out = lab.orch(&["report", latest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(latest.join("summary.json")).unwrap(), before);
    assert_eq!(
        std::fs::read_to_string(latest.join("cells.csv")).unwrap(),
        cells
    );
}
