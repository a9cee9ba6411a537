//! `<label>/faults.jsonl`: one line per fault of a run (what was hit, when, how it ended), and
//! what YCSB's status lines say about the workload during each fault window and after it.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The file of a run's faults.
pub const FILE: &str = "faults.jsonl";

/// One fault as it happened.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FaultRecord {
    /// Position of its entry in the scenario's `faults:` list.
    pub entry: usize,
    pub action: String,
    /// The target as written (`zookeeper-leader`, `minority`, a host name).
    pub target: String,
    /// The hosts it resolved to when it fired (runs recorded before minorities existed wrote
    /// one `host`).
    #[serde(default, alias = "host", deserialize_with = "one_or_many")]
    pub hosts: Vec<String>,
    /// The `orch-node proc` record that was signalled (`zookeeper`, `replica`), or for a
    /// network fault the fault emulator's (`fault`, under `<orch_dir>/fault/proc` on each host
    /// that got rules).
    pub process: String,
    /// For a fault on an election replica: its id.
    #[serde(default)]
    pub replica: Option<usize>,
    /// The server `srvr` called leader just before the fault fired.
    pub leader_before: Option<String>,
    /// When the signal was sent, as the target host's clock says (ns since the Unix epoch).
    pub start_unix_ns: Option<u64>,
    /// When the fault started and ended, s after `ycsb run` started (the controller's
    /// monotonic clock).
    pub start_s: Option<f64>,
    pub end_s: Option<f64>,
    pub end_unix_ns: Option<u64>,
    /// For faults on the leader: the first other server that `srvr` called leader, with every
    /// server still running answering leader or follower, and how long after the signal. For
    /// the replica leader: the host of the replica elected next in a later term (its event
    /// log), and how long after the signal.
    pub new_leader: Option<String>,
    pub new_leader_ms: Option<f64>,
    /// For faults on the ZooKeeper leader: the surviving server a write was tried through
    /// (`orch-node zk-write`: an ephemeral znode, every 100 ms), and the signal to the first
    /// write that succeeded, ms (that server's clock against the target's); `null` when none
    /// did before the undo.
    #[serde(default)]
    pub write_server: Option<String>,
    #[serde(default)]
    pub write_ms: Option<f64>,
    /// For a kill of the replica leader: signal to the first election timeout that suspected
    /// it (the replicas' event logs), ms.
    #[serde(default)]
    pub detection_ms: Option<f64>,
    /// For faults that spare the ZooKeeper leader: from the start until every server hit had
    /// stopped serving (`srvr`: a partitioned minority leaves the quorum), ms; `null` if one
    /// served throughout.
    #[serde(default)]
    pub left_ms: Option<f64>,
    /// How long after the undo (restart, SIGCONT, rules removed) every server hit served again
    /// (`srvr`), or the replica knew a leader again.
    pub rejoined_ms: Option<f64>,
    /// The host whose clock `start_unix_ns` is (`the controller` for a network fault).
    #[serde(default)]
    pub start_clock: Option<String>,
    /// Set once the intervals above are on the controller's clock (clocks.json, see
    /// docs/clocks.md): how far off each can be because of the hosts' clocks.
    #[serde(default)]
    pub clock_bounds: Option<ClockBounds>,
    /// Why the fault did not fire or was not undone, if so.
    pub error: Option<String>,
}

/// The bound the clocks leave on each interval of a fault, ms: 0 for one the controller timed
/// alone, the two hosts' bounds for one across two hosts; `null` for an interval that is
/// missing or could not be corrected (a host without a measured clock).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClockBounds {
    pub write_ms: Option<f64>,
    pub new_leader_ms: Option<f64>,
    pub detection_ms: Option<f64>,
    pub left_ms: Option<f64>,
    pub rejoined_ms: Option<f64>,
}

impl FaultRecord {
    /// `fault <action> <hosts hit, or the target>`, for progress lines.
    pub fn what(&self) -> String {
        let hit = if self.hosts.is_empty() {
            self.target.clone()
        } else {
            self.hosts.join(",")
        };
        format!("fault {} {hit}", self.action)
    }

    /// What came of it, in a few words: the error, the new leader, or when the hit servers
    /// stopped and started serving.
    pub fn outcome(&self) -> String {
        let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0} ms"));
        let bounds = self.clock_bounds.clone().unwrap_or_default();
        let pm = |v: Option<f64>, b: Option<f64>| match (v, b) {
            (Some(v), Some(b)) if b > 0.0 => format!("{v:.0} ± {b:.2} ms"),
            _ => ms(v),
        };
        if let Some(e) = &self.error {
            return format!("FAILED: {e}");
        }
        if let (Some(l), Some(_)) = (&self.new_leader, self.new_leader_ms) {
            return format!(
                "new leader {l} after {}, a write through {} after {}",
                pm(self.new_leader_ms, bounds.new_leader_ms),
                self.write_server.as_deref().unwrap_or("-"),
                pm(self.write_ms, bounds.write_ms)
            );
        }
        let said: Vec<String> = [
            self.left_ms
                .map(|v| format!("stopped serving after {v:.0} ms")),
            self.rejoined_ms
                .map(|v| format!("rejoined {v:.0} ms after the undo")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if said.is_empty() {
            "done".into()
        } else {
            said.join(", ")
        }
    }
}

/// A list of hosts, or the single `host` (or `null`) of older records.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Hosts {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Hosts>::deserialize(d)? {
        None => Vec::new(),
        Some(Hosts::One(h)) => vec![h],
        Some(Hosts::Many(v)) => v,
    })
}

/// Writes every record so far (the file is rewritten at each change, so an interrupted run
/// keeps what had happened).
pub fn write(dir: &Path, records: &[FaultRecord]) -> anyhow::Result<()> {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    let path = dir.join(FILE);
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The records of `dir/faults.jsonl`; none if the run had no faults.
pub fn read(dir: &Path) -> anyhow::Result<Vec<FaultRecord>> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not a fault", path.display(), i + 1))
        })
        .collect()
}

/// The replica kills (`kill` faults that fired on a replica), for the election analysis.
pub fn kills(records: &[FaultRecord]) -> Vec<orch_analysis::elect::Kill> {
    records
        .iter()
        .filter(|r| r.action == "kill")
        .filter_map(|r| {
            Some(orch_analysis::elect::Kill {
                node: r.replica?,
                wall: r.start_unix_ns?,
            })
        })
        .collect()
}

/// Fills each replica kill's detection and failover from the election analysis (which
/// counted it as a failure from the signal when the replica was leader). `hosts[i]` runs
/// replica `i`; without them (a stored run read back) the recorded new leader's host stays.
pub fn add_election(
    records: &mut [FaultRecord],
    summary: &orch_analysis::elect::Summary,
    hosts: Option<&[String]>,
) {
    for r in records.iter_mut() {
        let (Some(node), Some(wall), "kill") = (r.replica, r.start_unix_ns, r.action.as_str())
        else {
            continue;
        };
        let Some(f) = summary
            .failures
            .iter()
            .find(|f| f.how == "killed" && f.node == node && f.wall_ns == wall)
        else {
            continue;
        };
        r.detection_ms = f.detection_ms;
        if let Some(hosts) = hosts {
            r.new_leader = f.new_leader.and_then(|l| hosts.get(l).cloned());
        }
        r.new_leader_ms = f.failover_ms;
        if let Some(b) = r.clock_bounds.as_mut() {
            b.detection_ms = f.detection_bound_ms;
            b.new_leader_ms = f.failover_bound_ms;
        }
    }
}

/// The workload in a stretch of time, from YCSB's status lines.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Window {
    /// Status intervals that ended inside the stretch.
    pub intervals: usize,
    /// Successful operations and failed ones (names ending `-FAILED` or another status).
    pub ok: u64,
    pub errors: u64,
    /// Mean latency of the successful operations, µs.
    pub avg_latency_us: Option<f64>,
}

/// The workload around one fault: during its window and from its end to the end of the run.
#[derive(Debug, Clone, Serialize)]
pub struct FaultSummary<'a> {
    #[serde(flatten)]
    pub fault: &'a FaultRecord,
    pub during: Window,
    pub after: Window,
}

/// Sums the status intervals ending in `(from, to]` s. Each status line of YCSB counts the
/// operations of its own interval: `[READ: Count=12, ..., Avg=830.5, ...]`.
pub fn window(status: &str, from: f64, to: f64) -> Window {
    let mut w = Window::default();
    let mut latency_sum = 0.0;
    for line in status.lines() {
        let Some((before, after)) = line.split_once(" sec: ") else {
            continue;
        };
        let Some(sec) = before
            .split_whitespace()
            .next_back()
            .and_then(|s| s.parse::<f64>().ok())
        else {
            continue;
        };
        if sec <= from || sec > to {
            continue;
        }
        w.intervals += 1;
        for part in after.split('[').skip(1) {
            let Some((name, fields)) = part.split_once(':') else {
                continue;
            };
            let field = |k: &str| {
                fields
                    .split(',')
                    .filter_map(|f| f.trim().trim_end_matches([']', ' ']).split_once('='))
                    .find(|(key, _)| *key == k)
                    .and_then(|(_, v)| v.parse::<f64>().ok())
            };
            let Some(count) = field("Count") else {
                continue;
            };
            // CLEANUP is YCSB's own; READ-MODIFY-WRITE is also counted as its READ and UPDATE;
            // `Intended-` names count the same operations again (measurement.interval=both).
            if name == "CLEANUP"
                || name == "READ-MODIFY-WRITE"
                || name.starts_with(orch_analysis::ycsb::INTENDED_PREFIX)
            {
                continue;
            }
            // `OP-FAILED`, or `OP-<STATUS>` for statuses YCSB tracks apart.
            if name.contains('-') {
                w.errors += count as u64;
            } else {
                w.ok += count as u64;
                latency_sum += count * field("Avg").unwrap_or(0.0);
            }
        }
    }
    w.avg_latency_us = (w.ok > 0).then(|| latency_sum / w.ok as f64);
    w
}

/// Each fault with its windows, read from the run's `ycsb-run.status.txt` text.
pub fn summarize<'a>(records: &'a [FaultRecord], status: &str) -> Vec<FaultSummary<'a>> {
    records
        .iter()
        .map(|f| {
            let (start, end) = (f.start_s.unwrap_or(0.0), f.end_s.unwrap_or(f64::MAX));
            FaultSummary {
                fault: f,
                during: window(status, start, end),
                after: window(status, end, f64::MAX),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "\
2026-12-02 13:00:01:000 1 sec: 100 operations; 100 current ops/sec; [READ: Count=90, Max=900, Min=100, Avg=500, 90=800] [UPDATE: Count=10, Max=900, Min=100, Avg=1000, 90=800]
2026-12-02 13:00:02:000 2 sec: 150 operations; 50 current ops/sec; [READ: Count=40, Max=900, Min=100, Avg=2000, 90=800] [READ-FAILED: Count=10, Max=9, Min=1, Avg=5, 90=8] [Intended-READ: Count=40, Max=90000, Min=100, Avg=9000, 90=800] [Intended-READ-FAILED: Count=10, Max=9, Min=1, Avg=5, 90=8]
some stderr line
2026-12-02 13:00:03:000 3 sec: 250 operations; 100 current ops/sec; [READ: Count=100, Max=900, Min=100, Avg=400, 90=800] [CLEANUP: Count=1, Avg=3]
";

    /// The `Intended-` names (measurement.interval=both) count the same operations again: they
    /// change neither the counts nor the average.
    #[test]
    fn windows_count_each_interval_once_and_failures_apart() {
        let during = window(STATUS, 1.0, 2.0);
        assert_eq!(during.intervals, 1);
        assert_eq!((during.ok, during.errors), (40, 10));
        assert_eq!(during.avg_latency_us, Some(2000.0));
        let all = window(STATUS, 0.0, f64::MAX);
        assert_eq!((all.intervals, all.ok, all.errors), (3, 240, 10));
        let avg = (90.0 * 500.0 + 10.0 * 1000.0 + 40.0 * 2000.0 + 100.0 * 400.0) / 240.0;
        assert!((all.avg_latency_us.unwrap() - avg).abs() < 1e-9);
        assert_eq!(window(STATUS, 3.0, 9.0), Window::default());
    }

    #[test]
    fn records_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_empty());
        let r = FaultRecord {
            entry: 0,
            action: "kill".into(),
            target: "zookeeper-leader".into(),
            hosts: vec!["h2".into()],
            process: "zookeeper".into(),
            replica: None,
            leader_before: Some("h2".into()),
            start_unix_ns: Some(1),
            start_s: Some(20.0),
            end_s: Some(30.0),
            end_unix_ns: Some(2),
            new_leader: Some("h3".into()),
            new_leader_ms: Some(812.0),
            write_server: Some("h1".into()),
            write_ms: Some(1020.0),
            detection_ms: None,
            left_ms: Some(3000.0),
            rejoined_ms: None,
            start_clock: Some("h2".into()),
            clock_bounds: None,
            error: None,
        };
        assert_eq!(r.what(), "fault kill h2");
        assert_eq!(
            r.outcome(),
            "new leader h3 after 812 ms, a write through h1 after 1020 ms"
        );
        let healed = FaultRecord {
            new_leader: None,
            rejoined_ms: Some(40.0),
            ..r.clone()
        };
        assert_eq!(
            healed.outcome(),
            "stopped serving after 3000 ms, rejoined 40 ms after the undo"
        );
        write(dir.path(), &[r.clone(), r.clone()]).unwrap();
        assert_eq!(read(dir.path()).unwrap(), vec![r.clone(), r.clone()]);
        // A record written before faults could hit several hosts names its one `host`.
        let old = serde_json::to_string(&r)
            .unwrap()
            .replace(r#""hosts":["h2"]"#, r#""host":"h2""#);
        assert!(old.contains(r#""host":"h2""#), "{old}");
        std::fs::write(dir.path().join(FILE), format!("{old}\n")).unwrap();
        assert_eq!(read(dir.path()).unwrap(), vec![r]);
    }
}
