//! ZooKeeper's own log in a run's fetched logs: `orch run` on a 3-host lab, then
//! `orch fetch-logs`; each server's `proc/zookeeper.log` in the tarball holds the server's log
//! (the distribution's logging configuration), with the leader election: the designated leader
//! says `LEADING` and how long the election took, and commits the YCSB client's sessions; the
//! others say `FOLLOWING`; none has log4j's `No appenders` warning, all a server log holds when
//! the server starts without its configuration. Needs root, Debian's zookeeper package and the
//! musl target (.ci/run).

use std::io::Read;

use crate::util::{setup, text, Lab};

const SCENARIO: &str = "\
name: zklogs
zookeeper:
  leader: host3
workload:
  client: host1
  properties:
    recordcount: 20
    operationcount: 50
";

/// Every `*/proc/zookeeper.log` in the tarball, by host.
fn zookeeper_logs(tarball: &std::path::Path) -> Vec<(String, String)> {
    let f = std::fs::File::open(tarball).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut logs = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if path.ends_with("/proc/zookeeper.log") {
            let host = path.split('/').next().unwrap().to_string();
            let mut log = String::new();
            entry.read_to_string(&mut log).unwrap();
            logs.push((host, log));
        }
    }
    logs.sort();
    logs
}

#[test]
fn fetched_server_logs_hold_the_leader_election() {
    let lab = Lab::up("wyl", "10.72", 3);
    setup(&lab);
    let latest = lab.run_ok("zklogs", SCENARIO);
    let results = latest.parent().unwrap().parent().unwrap();
    let tarball = lab.dir.path().join("logs.tar.gz");
    let out = lab.orch(&[
        "-i",
        lab.inventory.to_str().unwrap(),
        "fetch-logs",
        "--results",
        results.to_str().unwrap(),
        "-o",
        tarball.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let logs = zookeeper_logs(&tarball);
    let hosts: Vec<&str> = logs.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(hosts, ["host1", "host2", "host3"]);
    for (host, log) in &logs {
        assert!(!log.contains("No appenders"), "{host}:\n{log}");
        assert!(log.contains("New election."), "{host}:\n{log}");
        let role = if host == "host3" {
            "LEADING"
        } else {
            "FOLLOWING"
        };
        assert!(
            log.lines().any(|l| l.ends_with(&format!(" - {role}"))),
            "{host} should log {role}:\n{log}"
        );
        assert!(
            log.contains(&format!(" - {role} - LEADER ELECTION TOOK - ")),
            "{host}:\n{log}"
        );
    }
    let leader = &logs[2].1;
    assert!(
        leader.contains("Committing global session 0x"),
        "the leader commits the client's sessions:\n{leader}"
    );
}
