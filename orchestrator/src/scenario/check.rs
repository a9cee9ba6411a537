//! The checked side of the scenario: the matrix expanded over the [`raw`](super::raw) file,
//! each combination x repetition validated into a [`RunSpec`]. Every problem names file, line,
//! column and field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::matrix::{apply, check_axes, combinations, scalar};
use super::raw::{RawScenario, RawTraffic, RawWorkload, RawZookeeper};
use super::{
    builtin_workload, Connect, RunSpec, Scenario, TrafficMode, TrafficPlan, Workload, WorkloadPlan,
    ZookeeperPlan,
};
use crate::config::{yaml, ConfigError, Problems};
use crate::inventory::{Host, Inventory};

/// Parses, applies the matrix, validates every run.
pub(super) fn parse(
    text: &str,
    path: &Path,
    inventory: &Inventory,
) -> Result<Scenario, ConfigError> {
    let raw: RawScenario = yaml::load(text, path)?;
    let mut c = Checker {
        dir: std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_default(),
        inventory,
        problems: Problems::new(path),
    };
    check_name(&mut c, &raw.name);
    let repetitions = match &raw.repetitions {
        Some(r) if r.value == 0 => {
            c.problems.report(r, "repetitions", "must be at least 1");
            1
        }
        Some(r) => r.value,
        None => 1,
    };
    let axes = check_axes(raw.matrix.clone().unwrap_or_default().0, &mut c.problems);

    let mut runs = Vec::new();
    for combo in combinations(&axes) {
        let mut this = raw.clone();
        let mut values = Vec::new();
        for &(a, v) in &combo {
            let (key, value) = (&axes[a].key, &axes[a].values[v]);
            let field = format!("matrix.{}", key.value);
            match apply(&mut this, &key.value, value) {
                Ok(shown) => values.push((key.value.clone(), shown)),
                Err(message) => c.problems.report(value, &field, message),
            }
        }
        for repetition in 1..=repetitions {
            if let Some(mut run) = c.run(&this) {
                run.index = runs.len() + 1;
                run.matrix = values.clone();
                run.repetition = repetition;
                runs.push(run);
            }
        }
    }
    c.problems.finish(Scenario {
        path: path.to_path_buf(),
        name: raw.name.value.clone(),
        description: raw.description.clone(),
        text: text.to_string(),
        runs,
    })
}

fn check_name(c: &mut Checker, name: &Spanned<String>) {
    let ok = !name.value.is_empty()
        && !name.value.starts_with(['.', '-'])
        && name
            .value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !ok {
        c.problems.report(
            name,
            "name",
            "use letters, digits, `-`, `_` and `.` (it names the results directory)",
        );
    }
}

/// Validation state: the collector, and what a check needs to resolve names and paths.
pub(super) struct Checker<'a> {
    /// Directory of the scenario file, against which relative workload paths resolve.
    dir: PathBuf,
    pub(super) inventory: &'a Inventory,
    pub(super) problems: Problems,
}

impl Checker<'_> {
    /// Resolves a host selection, reporting an unknown host or role at the field.
    pub(super) fn hosts(
        &mut self,
        sel: Option<&Spanned<String>>,
        default: &str,
        field: &str,
        at: Location,
    ) -> Option<Vec<String>> {
        let spec = sel.map(|s| s.value.as_str()).unwrap_or(default);
        match self.inventory.select(Some(spec)) {
            Ok(hosts) => Some(hosts.iter().map(|h| h.name.clone()).collect()),
            Err(e) => {
                let loc = sel.map(|s| s.referenced).unwrap_or(at);
                self.problems.at(loc, field, e.to_string());
                None
            }
        }
    }

    fn run(&mut self, raw: &RawScenario) -> Option<RunSpec> {
        let before = self.problems.len();
        let delays = raw.delays.as_ref().and_then(|d| {
            let hosts: Vec<&Host> = self.inventory.hosts.iter().collect();
            d.validate(&hosts, &mut self.problems)
        });
        let zookeeper = raw.zookeeper.as_ref().and_then(|z| self.zookeeper(z));
        let traffic = raw.traffic.as_ref().and_then(|t| self.traffic(t));
        let election = raw.election.as_ref().and_then(|e| self.election(e));
        let workload = raw
            .workload
            .as_ref()
            .and_then(|w| self.workload(w, zookeeper.as_ref()));
        if let (Some(w), None) = (&raw.workload, &raw.zookeeper) {
            self.problems.report(
                w,
                "workload",
                "a workload needs a `zookeeper:` section to run against",
            );
        }
        (self.problems.len() == before).then_some(RunSpec {
            index: 0,
            matrix: Vec::new(),
            repetition: 1,
            delays: delays.filter(|d| !d.is_empty()),
            zookeeper,
            traffic,
            election,
            workload,
        })
    }

    fn zookeeper(&mut self, z: &Spanned<RawZookeeper>) -> Option<ZookeeperPlan> {
        let servers = self.hosts(
            z.value.servers.as_ref(),
            "role:zookeeper",
            "zookeeper.servers",
            z.referenced,
        )?;
        for name in &servers {
            let host = self.inventory.host(name).expect("selected");
            if host.zk_id.is_none() {
                let at = z
                    .value
                    .servers
                    .as_ref()
                    .map_or(z.referenced, |s| s.referenced);
                self.problems.at(
                    at,
                    "zookeeper.servers",
                    format!("{name} has no zk_id; give it the zookeeper role and a zk_id in the inventory"),
                );
                return None;
            }
        }
        if let Some(leader) = &z.value.leader {
            if !servers.contains(&leader.value) {
                self.problems.report(
                    leader,
                    "zookeeper.leader",
                    format!(
                        "`{}` is not one of the servers ({})",
                        leader.value,
                        servers.join(", ")
                    ),
                );
                return None;
            }
        }
        let quorum_timeout = match &z.value.quorum_timeout_secs {
            Some(t) if t.value == 0 || t.value > 3600 => {
                self.problems
                    .report(t, "zookeeper.quorum_timeout_secs", "must be 1..=3600");
                return None;
            }
            Some(t) => Duration::from_secs(t.value),
            None => Duration::from_secs(60),
        };
        Some(ZookeeperPlan {
            servers,
            leader: z.value.leader.as_ref().map(|l| l.value.clone()),
            quorum_timeout,
        })
    }

    fn traffic(&mut self, t: &Spanned<RawTraffic>) -> Option<TrafficPlan> {
        let hosts = self.hosts(t.value.hosts.as_ref(), "all", "traffic.hosts", t.referenced)?;
        if hosts.len() < 2 {
            self.problems.report(
                t,
                "traffic.hosts",
                "background traffic needs at least two hosts",
            );
            return None;
        }
        let mode = t
            .value
            .mode
            .as_ref()
            .map(|m| m.value.as_str())
            .unwrap_or("mesh");
        let mode = match mode {
            "mesh" => {
                for (f, v) in [("rate", &t.value.rate), ("len", &t.value.len)] {
                    if let Some(v) = v {
                        self.problems
                            .report(v, &format!("traffic.{f}"), "only for `mode: rate`");
                    }
                }
                TrafficMode::Mesh {
                    bytes: t.value.bytes.as_ref().map_or(64, |b| b.value),
                    interval_ms: t.value.interval_ms.as_ref().map_or(500, |i| i.value),
                }
            }
            "rate" => {
                for (f, v) in [
                    ("bytes", &t.value.bytes),
                    ("interval_ms", &t.value.interval_ms),
                ] {
                    if let Some(v) = v {
                        self.problems
                            .report(v, &format!("traffic.{f}"), "only for `mode: mesh`");
                    }
                }
                let rate = t
                    .value
                    .rate
                    .as_ref()
                    .map_or("100K".into(), |r| r.value.clone());
                let len = t
                    .value
                    .len
                    .as_ref()
                    .map_or("1K".into(), |l| l.value.clone());
                for (f, v, s) in [("rate", &t.value.rate, &rate), ("len", &t.value.len, &len)] {
                    if !is_size(s) {
                        let loc = v.as_ref().map_or(t.referenced, |v| v.referenced);
                        self.problems.at(
                            loc,
                            &format!("traffic.{f}"),
                            format!("`{s}`: expected a number with an optional K, M or G suffix"),
                        );
                    }
                }
                TrafficMode::Rate { rate, len }
            }
            other => {
                let at = t
                    .value
                    .mode
                    .as_ref()
                    .expect("a mode other than the default was written");
                self.problems.report(
                    at,
                    "traffic.mode",
                    format!("`{other}`: expected mesh or rate"),
                );
                return None;
            }
        };
        Some(TrafficPlan {
            hosts,
            port: t.value.port.as_ref().map_or(7100, |p| p.value),
            mode,
        })
    }

    fn workload(
        &mut self,
        w: &Spanned<RawWorkload>,
        zk: Option<&ZookeeperPlan>,
    ) -> Option<WorkloadPlan> {
        let v = &w.value;
        let before = self.problems.len();
        if self.inventory.host(&v.client.value).is_none() {
            self.problems.report(
                &v.client,
                "workload.client",
                format!("no host `{}` in the inventory", v.client.value),
            );
        }
        let connect = match v
            .connect
            .as_ref()
            .map(|c| c.value.as_str())
            .unwrap_or("leader")
        {
            "leader" => {
                if zk.is_some_and(|z| z.leader.is_none()) {
                    let loc = v.connect.as_ref().map_or(w.referenced, |c| c.referenced);
                    self.problems.at(
                        loc,
                        "workload.connect",
                        "`leader` needs `zookeeper.leader`; name a server or use `all`",
                    );
                }
                Connect::Leader
            }
            "all" => Connect::All,
            host => {
                if zk.is_some_and(|z| !z.servers.iter().any(|s| s == host)) {
                    let at = v.connect.as_ref().expect("a host was written");
                    self.problems.report(
                        at,
                        "workload.connect",
                        format!(
                            "`{host}` is not a ZooKeeper server; use leader, all or a server name"
                        ),
                    );
                }
                Connect::Host(host.to_string())
            }
        };
        let workload = match &v.workload {
            None => Workload::Builtin("workloadb".into()),
            Some(name) if name.value == "workloade" => {
                self.problems.report(
                    name,
                    "workload.workload",
                    "workloade is all scans, which the YCSB ZooKeeper binding does not implement",
                );
                return None;
            }
            Some(name) if builtin_workload(&name.value).is_some() => {
                Workload::Builtin(name.value.clone())
            }
            Some(path) => {
                let p = self.dir.join(&path.value);
                if !p.is_file() {
                    self.problems.report(path, "workload.workload", format!("no such workload file {} (built in: workloada, workloadb, workloadc, workloadd, workloadf)", p.display()));
                    return None;
                }
                Workload::File(p)
            }
        };
        let threads = match &v.threads {
            None => 1,
            Some(t) => match t.value.as_u64() {
                Some(n) if (1..=1024).contains(&n) => n as u32,
                _ => {
                    self.problems
                        .report(t, "workload.threads", "must be a whole number 1..=1024");
                    1
                }
            },
        };
        let mut properties = BTreeMap::new();
        for (k, val) in v.properties.iter().flatten() {
            let field = format!("workload.properties.{k}");
            let value = match scalar(&val.value) {
                Ok(s) => s,
                Err(e) => {
                    self.problems.report(val, &field, e);
                    continue;
                }
            };
            if k == "zookeeper.connectString" {
                self.problems.report(
                    val,
                    &field,
                    "orch sets the connect string from `workload.connect`",
                );
            } else if k == "threadcount" {
                self.problems.report(val, &field, "use `workload.threads`");
            } else if k == "scanproportion" && value.parse::<f64>() != Ok(0.0) {
                self.problems.report(
                    val,
                    &field,
                    "scans are not implemented by the YCSB ZooKeeper binding",
                );
            }
            properties.insert(k.clone(), value);
        }
        let max_error_pct = match &v.max_error_pct {
            None => 0.0,
            Some(m) => match m.value.as_f64() {
                Some(pct) if (0.0..=100.0).contains(&pct) => pct,
                _ => {
                    self.problems.report(
                        m,
                        "workload.max_error_pct",
                        "must be a percentage 0..=100",
                    );
                    0.0
                }
            },
        };
        (self.problems.len() == before).then(|| WorkloadPlan {
            client: v.client.value.clone(),
            connect,
            workload,
            threads,
            properties,
            load: v.load.unwrap_or(true),
            ycsb_home: v.ycsb_home.as_ref().map(|h| h.value.clone()),
            max_error_pct,
        })
    }
}

/// `100`, `100K`, `1.5M`: what iperf3 and `orch-node traffic` accept.
fn is_size(s: &str) -> bool {
    let digits = s.trim_end_matches(['K', 'M', 'G', 'k', 'm', 'g']);
    !digits.is_empty()
        && digits.len() + 1 >= s.len()
        && digits.parse::<f64>().is_ok_and(|v| v > 0.0)
}

#[cfg(test)]
mod tests {
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
        let text = GOOD.replace("    updateproportion: 0.9\n", "    updateproportion: 0.8\n    scanproportion: 0.1\n    zookeeper.connectString: x:2181\n");
        let e = parse(&text).unwrap_err();
        let all = e.to_string();
        assert!(
            all.contains(
                "s.yaml:10:21: workload.properties.scanproportion: scans are not implemented"
            ),
            "{all}"
        );
        assert!(
            all.contains("s.yaml:11:30: workload.properties.zookeeper.connectString: orch sets"),
            "{all}"
        );
    }

    #[test]
    fn workload_needs_zookeeper_and_known_client() {
        let p = only_problem("name: x\nworkload:\n  client: node0\n  connect: all\n");
        assert!(
            p.contains("workload: a workload needs a `zookeeper:` section"),
            "{p}"
        );
        let p =
            only_problem("name: x\nzookeeper: {}\nworkload:\n  client: nodeX\n  connect: all\n");
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
        let p = only_problem(
            "name: r\nelection:\n  duration_s: 5\n  config: {timeoutLowerBound: 500}\n",
        );
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
            p.contains("matrix.delays: no delay profile `wan` under `delay_profiles:` (defined: far, near)"),
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
        let p = only_problem(
            "name: d\ndelays:\n  pairs:\n    - {from: node0, to: node7, delay_ms: 5}\n",
        );
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
    fn sizes() {
        for ok in ["100K", "1K", "2.5M", "800"] {
            assert!(is_size(ok), "{ok}");
        }
        for bad in ["", "K", "fast", "10KK", "-1K", "0"] {
            assert!(!is_size(bad), "{bad}");
        }
    }
}
