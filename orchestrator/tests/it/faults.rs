//! Faults during `orch run` on a lab: the shipped zk-leader-kill-lab scenario kills the server
//! srvr calls leader 20 s into the workload and restarts it 10 s later; zk-minority-partition-lab
//! cuts a minority off during the workload; replica leaders are killed. Needs root, Debian's
//! zookeeper package, nftables and the musl target (.ci/run).

use std::time::{Duration, Instant};

use crate::util::{leftovers, setup, text, workspace, write, Lab};

/// `nft list tables` on every host, which must succeed: the fault emulator's table must be gone.
fn fault_tables(lab: &Lab) -> String {
    let out = lab.exec(&["--", "nft", "list", "tables"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

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
    assert_eq!(f["hosts"], serde_json::json!(["host3"]), "{f}");
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
    // A write through a surviving server succeeded, after the kill and before the restart.
    assert_ne!(f["write_server"], "host3", "{f}");
    let write = f["write_ms"].as_f64().unwrap();
    assert!(write > 0.0 && write < 10_000.0, "{f}");

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(latest.join("summary.json")).unwrap()).unwrap();
    let s = &summary["runs"][0]["faults"][0];
    assert_eq!(s["hosts"][0], "host3", "{s}");
    assert_eq!(s["new_leader_ms"].as_f64(), Some(ms), "{s}");
    assert_eq!(s["write_ms"].as_f64(), Some(write), "{s}");
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
    let tables = fault_tables(&lab);
    assert!(!tables.contains("orch_"), "tables left: {tables}");
    let qdiscs = lab.exec(&["--", "sh", "-c", "tc qdisc show | grep -c netem; true"]);
    assert!(qdiscs.status.success(), "{}", text(&qdiscs.stderr));
    // One count per host (`host1: 0`), each 0 when nothing is left.
    let counts = text(&qdiscs.stdout);
    let numbers: Vec<u32> = counts
        .lines()
        .filter_map(|l| l.split_whitespace().next_back()?.parse().ok())
        .collect();
    assert_eq!(numbers, vec![0; 5], "qdiscs left: {counts}");
}

/// Three replicas, the leader killed three times, each restarted 2 s later; the phase goes on
/// 10 s past the last restart, so the replica has time to rejoin on a busy machine (with 1 s,
/// CI saw the third restart not rejoin before the end).
const REPLICA_KILL: &str = "\
name: replica-kill
election:
  hosts: role:replica
  duration_s: 33
  config: {fdMode: raft}
faults:
  - {every_s: 7, count: 3, duration_s: 2, action: kill, target: replica-leader}
";

#[test]
fn replica_leader_kills_are_measured_from_the_signal_and_the_replica_rejoins() {
    let lab = Lab::up("fb", "10.102", 3);
    setup(&lab);
    let latest = lab.run_ok("replica-kill", REPLICA_KILL);
    let run = latest.join("r01-rep1");
    let lines = std::fs::read_to_string(run.join("faults.jsonl")).unwrap();
    let faults: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(faults.len(), 3, "{lines}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(latest.join("summary.json")).unwrap()).unwrap();
    let failures = summary["runs"][0]["election"]["failures"]
        .as_array()
        .unwrap();
    for f in &faults {
        assert!(f["error"].is_null(), "{f}");
        assert_eq!(f["process"], "replica", "{f}");
        // The leader when it fired was the one hit.
        let host = &f["hosts"][0];
        assert_eq!(host, &f["leader_before"], "{f}");
        let id = f["replica"].as_u64().unwrap();
        assert_eq!(host, &format!("host{}", id + 1), "{f}");
        let detection = f["detection_ms"].as_f64().unwrap();
        let failover = f["new_leader_ms"].as_f64().unwrap();
        assert!(
            detection > 0.0 && detection <= failover && failover < 5000.0,
            "{f}"
        );
        assert_ne!(&f["new_leader"], host, "{f}");
        assert!(f["rejoined_ms"].as_f64().is_some(), "{f}");
        // The analysis counted it from the signal's instant.
        let start = f["start_unix_ns"].as_u64().unwrap();
        let killed = failures
            .iter()
            .find(|x| x["how"] == "killed" && x["wall_ns"].as_u64() == Some(start))
            .unwrap_or_else(|| panic!("no failure at {start}: {failures:?}"));
        assert_eq!(killed["failover_ms"].as_f64(), Some(failover));
        // Its replica's log holds both of its starts.
        let log = std::fs::read_to_string(run.join(format!("replica-{id}.jsonl"))).unwrap();
        assert!(
            log.matches("\"event\":\"start\"").count() >= 2,
            "replica {id}"
        );
    }
    let cells = std::fs::read_to_string(latest.join("cells.csv")).unwrap();
    let header: Vec<&str> = cells.lines().next().unwrap().split(',').collect();
    let row: Vec<&str> = cells.lines().nth(1).unwrap().split(',').collect();
    let n = header.iter().position(|h| *h == "failover_ms_n").unwrap();
    assert_eq!(row[n], "3", "{cells}");
    assert_eq!(leftovers(&lab), "", "processes left on the hosts");
}

#[test]
fn a_partitioned_minority_leaves_the_workload_alone_and_rejoins() {
    let lab = Lab::up("fc", "10.103", 5);
    setup(&lab);
    let results = lab.dir.path().join("results");
    let out = lab.run(
        &workspace("scenarios/zk-minority-partition-lab.yaml"),
        &results,
    );
    let stderr = text(&out.stderr);
    // max_error_pct is 0: a single failed operation would fail the run.
    assert!(out.status.success(), "{stderr}");

    let latest = results.join("zk-minority-partition-lab/latest");
    let lines = std::fs::read_to_string(latest.join("r01-rep1/faults.jsonl")).unwrap();
    let f: serde_json::Value = serde_json::from_str(lines.trim()).unwrap();
    assert!(f["error"].is_null(), "{f}");
    assert_eq!(f["action"], "partition", "{f}");
    assert_eq!(f["process"], "fault", "{f}");
    // The leader (host3) and the client's host (host1) stay on the majority side.
    assert_eq!(f["leader_before"], "host3", "{f}");
    assert_eq!(f["hosts"], serde_json::json!(["host2", "host4"]), "{f}");
    // Cut off, the minority stopped serving; healed, it served again.
    let left = f["left_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("kept serving: {f}"));
    assert!(left > 0.0 && left < 20_000.0, "{f}");
    assert!(f["rejoined_ms"].as_f64().is_some(), "{f}");
    assert!(
        f["new_leader"].is_null(),
        "no election on the majority side: {f}"
    );

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(latest.join("summary.json")).unwrap()).unwrap();
    let s = &summary["runs"][0]["faults"][0];
    for window in ["during", "after"] {
        assert_eq!(s[window]["errors"], 0, "{s}");
        assert!(s[window]["ok"].as_u64().unwrap() > 0, "{s}");
    }
    assert!(s["during"]["intervals"].as_u64().unwrap() >= 8, "{s}");
    eprintln!("fault summary: {s}");

    assert_eq!(leftovers(&lab), "", "processes left on the hosts");
    let tables = fault_tables(&lab);
    assert!(!tables.contains("orch_"), "tables left: {tables}");
}

/// Three servers, host3 leads, the client on host1 talks to it. A 100 ms delay on the leader's
/// packets, then all of host2's packets lost (a one-way cut: it must leave the quorum, which
/// syncLimit x tickTime, 10 s, takes); neither may cost the client an operation.
const DELAY_AND_LOSS: &str = "\
name: delay-and-loss
zookeeper: {servers: role:zookeeper, leader: host3}
workload:
  client: host1
  connect: leader
  workload: workloadb
  properties:
    recordcount: 100
    operationcount: 100000000
    maxexecutiontime: 40
    status.interval: 1
    readproportion: 0.1
    updateproportion: 0.9
faults:
  - {at_s: 3, duration_s: 6, action: delay, delay_ms: 100, target: zookeeper-leader}
  - {at_s: 12, duration_s: 14, action: loss, percent: 100, target: host2}
";

#[test]
fn a_delay_slows_the_workload_and_total_loss_takes_a_follower_out() {
    let lab = Lab::up("fd", "10.104", 3);
    setup(&lab);
    let latest = lab.run_ok("delay-and-loss", DELAY_AND_LOSS);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(latest.join("summary.json")).unwrap()).unwrap();
    let faults = summary["runs"][0]["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 2, "{faults:?}");
    let (delay, loss) = (&faults[0], &faults[1]);
    for f in faults {
        assert!(f["error"].is_null(), "{f}");
        assert_eq!(f["during"]["errors"], 0, "{f}");
        assert!(f["rejoined_ms"].as_f64().is_some(), "{f}");
    }
    assert_eq!(delay["hosts"], serde_json::json!(["host3"]), "{delay}");
    // Each reply to the client waits 100 ms more; after the loss has healed, none does. The
    // status intervals are whole seconds on YCSB's clock, which starts a little after orch's,
    // so the intervals the delay began and ended in (part fast, part slow) are left out.
    let status = std::fs::read_to_string(latest.join("r01-rep1/ycsb-run.status.txt")).unwrap();
    let s = |f: &serde_json::Value, k: &str| f[k].as_f64().unwrap();
    let window = orch::results::faults::window;
    let slow = window(&status, s(delay, "start_s") + 1.0, s(delay, "end_s") - 1.0);
    let fast = window(&status, s(loss, "end_s") + 1.0, f64::MAX);
    let (slow, fast) = (slow.avg_latency_us.unwrap(), fast.avg_latency_us.unwrap());
    assert!(
        slow > 100_000.0 && fast < 50_000.0,
        "{slow} µs, then {fast} µs"
    );
    // The leader kept serving through its delay; host2 left the quorum and came back.
    assert!(delay["left_ms"].is_null(), "{delay}");
    assert_eq!(loss["hosts"], serde_json::json!(["host2"]), "{loss}");
    let left = loss["left_ms"].as_f64().unwrap_or_else(|| panic!("{loss}"));
    assert!(left > 0.0 && left < 14_000.0, "{loss}");
    eprintln!("{slow:.0} µs per operation during the delay, {fast:.0} µs after; host2 left after {left:.0} ms");

    assert_eq!(leftovers(&lab), "", "processes left on the hosts");
    let tables = fault_tables(&lab);
    assert!(!tables.contains("orch_"), "tables left: {tables}");
}

/// Three replicas; their leader is cut off from the other two for 4 s, then healed.
const REPLICA_PARTITION: &str = "\
name: replica-partition
election:
  hosts: role:replica
  duration_s: 25
  config: {fdMode: raft}
faults:
  - {at_s: 6, duration_s: 4, action: partition, target: replica-leader}
";

#[test]
fn a_partitioned_replica_leader_is_replaced_and_rejoins() {
    let lab = Lab::up("fe", "10.105", 3);
    setup(&lab);
    let latest = lab.run_ok("replica-partition", REPLICA_PARTITION);
    let lines = std::fs::read_to_string(latest.join("r01-rep1/faults.jsonl")).unwrap();
    let f: serde_json::Value = serde_json::from_str(lines.trim()).unwrap();
    assert!(f["error"].is_null(), "{f}");
    assert_eq!(
        (&f["action"], &f["process"]),
        (&"partition".into(), &"fault".into()),
        "{f}"
    );
    assert_eq!(f["hosts"][0], f["leader_before"], "{f}");
    assert!(f["rejoined_ms"].as_f64().is_some(), "{f}");
    // The other two elected a leader of their own while it was cut off.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(latest.join("summary.json")).unwrap()).unwrap();
    let terms = summary["runs"][0]["election"]["leaders"]
        .as_array()
        .unwrap();
    let cut = f["replica"].as_u64().unwrap();
    assert!(
        terms.iter().any(|t| t["leaders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_u64() != Some(cut))),
        "only replica {cut} ever led: {terms:?}"
    );
    assert_eq!(leftovers(&lab), "", "processes left on the hosts");
    let tables = fault_tables(&lab);
    assert!(!tables.contains("orch_"), "tables left: {tables}");
}

/// The majority (host1 and host3: the client's host and the leader) cut off from host2 2 s
/// into a long workload, for far longer than the test waits.
const LONG_PARTITION: &str = "\
name: long-partition
zookeeper: {servers: role:zookeeper, leader: host3}
workload:
  client: host1
  connect: leader
  max_error_pct: 100
  properties: {recordcount: 100, operationcount: 100000000}
faults:
  - {at_s: 2, duration_s: 600, action: partition, target: majority}
";

#[test]
fn ctrl_c_during_a_partition_removes_its_rules() {
    let lab = Lab::up("ff", "10.106", 3);
    setup(&lab);
    let scenario = write(lab.dir.path(), "long-partition.yaml", LONG_PARTITION);
    let mut child = lab.spawn_run(&scenario, &lab.dir.path().join("results"));
    // In force once both sides hold the fault emulator's table.
    let started = Instant::now();
    loop {
        let tables = fault_tables(&lab);
        if tables.matches("orch_fault").count() == 3 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120) && child.try_wait().unwrap().is_none(),
            "the partition never came: {tables}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("interrupted (Ctrl-C)"), "{stderr}");
    let lines = std::fs::read_to_string(
        lab.dir
            .path()
            .join("results/long-partition/latest/r01-rep1/faults.jsonl"),
    )
    .unwrap();
    assert!(lines.contains(r#""hosts":["host1","host3"]"#), "{lines}");
    assert_eq!(leftovers(&lab), "", "processes left after Ctrl-C");
    let tables = fault_tables(&lab);
    assert!(
        !tables.contains("orch_"),
        "tables left after Ctrl-C: {tables}"
    );
}
