//! The scenario checks, on small scenario texts against a three-host inventory.

use super::*;

fn inventory() -> Inventory {
    let text = "\
hosts:
  - name: node0
    address: 10.10.1.1
    experiment_ip: 10.0.1.2
    roles: [zookeeper, client, replica]
    zk_id: 1
  - name: node1
    address: 10.10.1.2
    experiment_ip: 10.0.2.2
    roles: [zookeeper, replica]
    zk_id: 2
  - name: node2
    address: 10.10.1.3
    experiment_ip: 10.0.3.2
    roles: [zookeeper, replica]
    zk_id: 3
";
    Inventory::parse(text, Path::new("inv.yaml")).unwrap()
}

fn parse(text: &str) -> Result<Scenario, ConfigError> {
    Scenario::parse(text, Path::new("s.yaml"), &inventory())
}

fn only_problem(text: &str) -> String {
    let e = parse(text).unwrap_err();
    assert_eq!(e.problems.len(), 1, "{e}");
    e.problems[0].to_string()
}

const GOOD: &str = "\
name: zk
zookeeper:
  leader: node2
workload:
  client: node0
  threads: 1
  properties:
    readproportion: 0.1
    updateproportion: 0.9
repetitions: 2
matrix:
  zookeeper.leader: [node2, node1]
  workload.threads: [1, 4]
";

#[test]
fn max_error_pct_defaults_to_zero_and_is_a_percentage() {
    let s = parse(GOOD).unwrap();
    assert_eq!(s.runs[0].workload.as_ref().unwrap().max_error_pct, 0.0);
    let five = GOOD.replace("  threads: 1\n", "  threads: 1\n  max_error_pct: 2.5\n");
    assert_eq!(
        parse(&five).unwrap().runs[0]
            .workload
            .as_ref()
            .unwrap()
            .max_error_pct,
        2.5
    );
    let bad = GOOD.replace("  threads: 1\n", "  threads: 1\n  max_error_pct: 120\n");
    let problem = only_problem(&bad);
    assert!(problem.starts_with("s.yaml:7:"), "{problem}");
    assert!(problem.contains("workload.max_error_pct"), "{problem}");
}

#[test]
fn matrix_times_repetitions_in_order() {
    let s = parse(GOOD).unwrap();
    assert_eq!(s.runs.len(), 8);
    let r = &s.runs[0];
    assert_eq!(r.index, 1);
    assert_eq!(
        r.zookeeper.as_ref().unwrap().leader.as_deref(),
        Some("node2")
    );
    assert_eq!(r.workload.as_ref().unwrap().threads, 1);
    assert_eq!(r.label(), "r01-leader=node2-threads=1-rep1");
    assert_eq!(s.runs[1].label(), "r02-leader=node2-threads=1-rep2");
    assert_eq!(s.runs[2].workload.as_ref().unwrap().threads, 4);
    let last = &s.runs[7];
    assert_eq!(
        last.zookeeper.as_ref().unwrap().leader.as_deref(),
        Some("node1")
    );
    assert_eq!(
        last.workload.as_ref().unwrap().properties["readproportion"],
        "0.1"
    );
    assert_eq!(
        last.zookeeper.as_ref().unwrap().servers,
        ["node0", "node1", "node2"]
    );
}

#[test]
fn bad_matrix_value_points_at_its_line() {
    let text = GOOD.replace("[node2, node1]", "[node2, node9]");
    let p = only_problem(&text);
    assert!(p.starts_with("s.yaml:12:29: zookeeper.leader:"), "{p}");
    assert!(p.contains("`node9` is not one of the servers"), "{p}");
}

#[test]
fn unknown_matrix_key() {
    let text = GOOD.replace("workload.threads: [1, 4]", "workload.thread: [1, 4]");
    let p = only_problem(&text);
    assert!(
        p.starts_with("s.yaml:13:3: matrix.workload.thread: unknown matrix key"),
        "{p}"
    );
}

#[test]
fn unknown_field_is_named() {
    let text = GOOD.replace("  threads: 1\n", "  thread: 1\n");
    let p = only_problem(&text);
    assert!(
        p.starts_with("s.yaml:6:3: workload.thread: unknown field"),
        "{p}"
    );
}

#[test]
fn scans_and_connect_string_are_rejected() {
    let text = GOOD.replace(
        "    updateproportion: 0.9\n",
        "    updateproportion: 0.8\n    scanproportion: 0.1\n    zookeeper.connectString: x:2181\n",
    );
    let e = parse(&text).unwrap_err();
    let all = e.to_string();
    assert!(
        all.contains("s.yaml:10:21: workload.properties.scanproportion: scans are not implemented"),
        "{all}"
    );
    assert!(
        all.contains("s.yaml:11:30: workload.properties.zookeeper.connectString: orch sets"),
        "{all}"
    );
}

/// YCSB's three measurement intervals pass, as matrix values too; anything else is named.
#[test]
fn measurement_interval_is_op_intended_or_both() {
    let text = GOOD.replace(
        "    updateproportion: 0.9\n",
        "    updateproportion: 0.9\n    target: 100\n",
    ) + "  workload.properties.measurement.interval: [op, intended, both]\n";
    let s = parse(&text).unwrap();
    let intervals: std::collections::BTreeSet<&str> = s
        .runs
        .iter()
        .map(|r| r.workload.as_ref().unwrap().properties["measurement.interval"].as_str())
        .collect();
    assert_eq!(intervals, ["op", "intended", "both"].into());
    let text = GOOD.replace(
        "    updateproportion: 0.9\n",
        "    updateproportion: 0.9\n    measurement.interval: wall\n",
    );
    let p = only_problem(&text);
    assert!(
        p.starts_with("s.yaml:10:27: workload.properties.measurement.interval: expected op"),
        "{p}"
    );
}

#[test]
fn workload_needs_zookeeper_and_known_client() {
    let p = only_problem("name: x\nworkload:\n  client: node0\n  connect: all\n");
    assert!(
        p.contains("workload: a workload needs a `zookeeper:` section"),
        "{p}"
    );
    let p = only_problem("name: x\nzookeeper: {}\nworkload:\n  client: nodeX\n  connect: all\n");
    assert!(
        p.starts_with("s.yaml:4:11: workload.client: no host `nodeX`"),
        "{p}"
    );
}

#[test]
fn connect_leader_needs_a_designated_leader() {
    let p = only_problem("name: x\nzookeeper: {}\nworkload:\n  client: node0\n");
    assert!(
        p.contains("workload.connect: `leader` needs `zookeeper.leader`"),
        "{p}"
    );
}

#[test]
fn traffic_defaults_and_checks() {
    let s = parse("name: t\ntraffic: {}\n").unwrap();
    let t = s.runs[0].traffic.as_ref().unwrap();
    assert_eq!(
        t.mode,
        TrafficMode::Mesh {
            bytes: 64,
            interval_ms: 500
        }
    );
    assert_eq!(t.hosts.len(), 3);
    let p = only_problem("name: t\ntraffic:\n  mode: rate\n  rate: fast\n");
    assert!(p.starts_with("s.yaml:4:9: traffic.rate: `fast`"), "{p}");
    let p = only_problem("name: t\ntraffic:\n  mode: burst\n");
    assert!(p.starts_with("s.yaml:3:9: traffic.mode: `burst`"), "{p}");
}

#[test]
fn election_config_is_the_replicas_own() {
    let s = parse(
            "name: r\nelection:\n  duration_s: 10\n  config:\n    fdMode: Jacobson\n    maxHeartbeats: 20\n",
        )
        .unwrap();
    let e = s.runs[0].election.as_ref().unwrap();
    assert_eq!(e.hosts.len(), 3);
    assert_eq!(e.duration, Duration::from_secs(10));
    assert_eq!(e.config.runtime_seconds, 10);
    assert_eq!(e.config.max_heartbeats, 20);
    assert_eq!(e.config.ips[1].to_string(), "10.0.2.2");
    let p = only_problem("name: r\nelection:\n  duration_s: 5\n  config:\n    ips: [a]\n");
    assert!(
        p.starts_with("s.yaml:5:10: election.config.ips: orch fills `ips`"),
        "{p}"
    );
    let p = only_problem("name: r\nelection:\n  duration_s: 5\n  config:\n    fdMod: raft\n");
    assert!(
        p.starts_with("s.yaml:5:12: election.config.fdMod: unknown field `fdMod`"),
        "{p}"
    );
    let p = only_problem("name: r\nelection:\n  duration_s: 5\n  config:\n    port: many\n");
    assert!(p.contains("election.config.port: invalid type"), "{p}");
    let p = only_problem("name: r\nelection:\n  config: {}\n");
    assert!(p.contains("election.duration_s: missing"), "{p}");
    let p =
        only_problem("name: r\nelection:\n  duration_s: 5\n  config: {timeoutLowerBound: 500}\n");
    assert!(
        p.contains("election.config: timeoutLowerBound (500)"),
        "{p}"
    );
}

#[test]
fn matrix_sweeps_election_fields_and_delay_profiles() {
    let text = "name: m
delay_profiles:
  far: {interfaces: [{host: node0, delay_ms: 50}]}
  near: {interfaces: [{host: node0, delay_ms: 1}]}
election:
  duration_s: 5
matrix:
  election.config.fdMode: [raft, CI]
  delays: [far, near]
";
    let s = parse(text).unwrap();
    assert_eq!(s.runs.len(), 4);
    let modes: Vec<String> = s
        .runs
        .iter()
        .map(|r| r.election.as_ref().unwrap().config.fd_mode.to_string())
        .collect();
    assert_eq!(modes, ["raft", "raft", "ci", "ci"]);
    assert!(
        s.runs[1].label().contains("fdMode=raft-delays=near"),
        "{}",
        s.runs[1].label()
    );
    assert_eq!(s.runs[0].delays.as_ref().unwrap().hosts.len(), 1);
    let p = only_problem(&text.replace("[far, near]", "[far, wan]"));
    assert!(
        p.contains(
            "matrix.delays: no delay profile `wan` under `delay_profiles:` (defined: far, near)"
        ),
        "{p}"
    );
    let p = only_problem(&text.replace("[raft, CI]", "[raft, paxos]"));
    assert!(p.contains("unknown fdMode `paxos`"), "{p}");
}

#[test]
fn delays_are_validated_against_the_inventory() {
    let s = parse("name: d\ndelays:\n  pairs:\n    - {from: node0, to: node1, delay_ms: 5, both_ways: true}\n").unwrap();
    let d = s.runs[0].delays.as_ref().unwrap();
    assert_eq!(d.hosts.len(), 2);
    let p =
        only_problem("name: d\ndelays:\n  pairs:\n    - {from: node0, to: node7, delay_ms: 5}\n");
    assert!(p.starts_with("s.yaml:4:25: delays.pairs[0].to:"), "{p}");
}

#[test]
fn names_and_repetitions() {
    let p = only_problem("name: a/b\n");
    assert!(p.starts_with("s.yaml:1:7: name:"), "{p}");
    let p = only_problem("name: a\nrepetitions: 0\n");
    assert!(
        p.starts_with("s.yaml:2:14: repetitions: must be at least 1"),
        "{p}"
    );
}

#[test]
fn traffic_sizes_are_what_orch_node_accepts() {
    let run = |extra: &str| {
        let text = format!("name: t\ntraffic:\n  mode: rate\n{extra}");
        parse(&text).map(|s| s.runs[0].traffic.clone().unwrap().mode)
    };
    assert_eq!(
        run("  rate: 1.5M\n").unwrap(),
        TrafficMode::Rate {
            rate: 1_500_000,
            len: 1024
        }
    );
    let e = run("  len: 1G\n").unwrap_err().to_string();
    assert!(
        e.contains("traffic.len: `1G`: the length must be 1 to"),
        "{e}"
    );
    let e = run("  rate: 0\n").unwrap_err().to_string();
    assert!(
        e.contains("traffic.rate: `0`: the rate must be above 0"),
        "{e}"
    );
}

#[test]
fn jittered_links_of_delays_and_delay_profiles_are_warned_about_not_refused() {
    let text = "name: w
delays:
  pairs:
    - {from: node0, to: node1, delay_ms: 15, jitter_ms: 5, distribution: normal}
    - {from: node1, to: node2, delay_ms: 15}
delay_profiles:
  wan: {interfaces: [{host: node2, delay_ms: 2, jitter_ms: 1, distribution: normal}]}
  lan: {interfaces: [{host: node2, delay_ms: 1}]}
matrix:
  delays: [wan, lan]
";
    let s = parse(text).unwrap();
    assert_eq!(s.runs.len(), 2);
    let w: Vec<String> = s.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(
        w[0].starts_with("s.yaml:4:57: delays.pairs[0].jitter_ms: node0 -> node1, 15 ms ± 5 ms normal: the jitter reorders"),
        "{}",
        w[0]
    );
    assert!(
        w[1].starts_with("s.yaml:7:60: delay_profiles.wan.interfaces[0].jitter_ms: node2 -> every other host, 2 ms ± 1 ms normal"),
        "{}",
        w[1]
    );
    assert!(parse(GOOD).unwrap().warnings.is_empty());
}
