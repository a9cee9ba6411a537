//! `orch run` end to end on a 5-host lab: the shipped lab scenario (delays, traffic, ZooKeeper
//! with a designated leader, YCSB), its results, and a Ctrl-C during the workload that must
//! leave nothing running. Needs root, Debian's zookeeper package and the musl target (.ci/run).

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use crate::util::{leftovers, setup, text, workspace, Lab};

#[test]
fn shipped_lab_scenario_runs_both_leaders_and_cleans_up() {
    let lab = Lab::up("runa", "10.231", 5);
    setup(&lab);
    let results = lab.dir.path().join("results");
    let inv = lab.inventory.to_str().unwrap();
    let scenario = workspace("scenarios/zk-leader-placement-lab.yaml");
    let out = lab.run(&scenario, &results);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // srvr on every server confirmed each designated leader.
    assert!(
        stderr.contains("zookeeper: leader host3 (srvr: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("zookeeper: leader host2 (srvr: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("emulator"),
        "delays were applied with the emulator: {stderr}"
    );
    // The side-by-side table names both leaders.
    let stdout = text(&out.stdout);
    let leader_row = stdout.lines().find(|l| l.starts_with("leader ")).unwrap();
    assert!(
        leader_row.contains("host3") && leader_row.contains("host2"),
        "{stdout}"
    );

    let latest = results.join("zk-leader-placement-lab/latest");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(latest.join("summary.json")).unwrap()).unwrap();
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for (run, leader) in runs.iter().zip(["host3", "host2"]) {
        assert_eq!(run["leader"], leader);
        let ops = run["run"]["operations"].as_array().unwrap();
        for name in ["READ", "UPDATE"] {
            let op = ops.iter().find(|o| o["name"] == name).unwrap();
            assert!(op["count"].as_u64().unwrap() > 0, "{name}: {op}");
            assert!(
                !op["percentiles"].as_array().unwrap().is_empty(),
                "{name}: {op}"
            );
        }
        assert_eq!(run["errors"], 0);
    }
    assert!(
        std::fs::read_to_string(latest.join("summary.csv"))
            .unwrap()
            .lines()
            .count()
            == 3
    );
    for plot in [
        "latency.svg",
        "latency.png",
        "throughput.svg",
        "throughput.png",
    ] {
        let size = std::fs::metadata(latest.join(plot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(size > 1000, "{plot}: {size} bytes");
    }
    assert_eq!(leftovers(&lab), "", "processes left on the hosts");
    let status = lab.orch(&["-i", inv, "status"]);
    assert!(text(&status.stdout)
        .lines()
        .skip(1)
        .all(|l| l.contains("not running")));
}

#[test]
fn ctrl_c_during_the_workload_stops_everything() {
    let lab = Lab::up("runb", "10.232", 3);
    setup(&lab);
    let scenario = lab.dir.path().join("long.yaml");
    std::fs::write(
        &scenario,
        "name: long\nzookeeper:\n  leader: host2\ntraffic: {}\nworkload:\n  client: host1\n  \
         properties:\n    recordcount: 100\n    operationcount: 100000000\n",
    )
    .unwrap();
    let results = lab.dir.path().join("results");
    let mut child = lab.spawn_run(&scenario, &results);
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let started = Instant::now();
    while !seen.contains("ycsb load: done") {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "orch run ended early: {seen}"
        );
        seen.push_str(&line);
        assert!(started.elapsed() < Duration::from_secs(120), "{seen}");
    }
    // The run phase is going: interrupt it as a user would.
    std::thread::sleep(Duration::from_secs(2));
    let busy = leftovers(&lab);
    assert!(
        busy.contains("ycsb run"),
        "the workload should be running: {busy}"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(!status.success());
    assert!(rest.contains("interrupted (Ctrl-C)"), "{rest}");
    assert_eq!(
        leftovers(&lab),
        "",
        "processes left on the hosts after Ctrl-C"
    );
}
