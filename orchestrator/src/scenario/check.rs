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
use orch_common::agent::units;

use crate::config::{yaml, ConfigError, Problems};
use crate::delay::reorder;
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
    let mut warnings = Vec::new();
    if let Some(d) = &raw.delays {
        warnings.extend(reorder::warnings(d, "delays", path));
    }
    for (name, d) in raw.delay_profiles.iter().flatten() {
        let field = format!("delay_profiles.{name}");
        warnings.extend(reorder::warnings(d, &field, path));
    }
    c.problems.finish(Scenario {
        path: path.to_path_buf(),
        name: raw.name.value.clone(),
        description: raw.description.clone(),
        text: text.to_string(),
        runs,
        warnings,
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
        let faults = match &raw.faults {
            Some(f) if raw.workload.is_none() && raw.election.is_none() => {
                self.problems.report(
                    f,
                    "faults",
                    "faults are timed from the workload's run phase (or the replicas' start): add a `workload:` or `election:` section",
                );
                None
            }
            Some(f) => self.faults(
                &f.value,
                zookeeper.as_ref(),
                election.as_ref(),
                raw.workload.is_some(),
            ),
            None => Some(Vec::new()),
        };
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
            faults: faults.unwrap_or_default(),
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
                let rate = self.size(
                    &t.value.rate,
                    "rate",
                    "100K",
                    t.referenced,
                    units::parse_rate,
                );
                let len = self.size(&t.value.len, "len", "1K", t.referenced, |s| {
                    units::parse_len(s).map(|n| n as u64)
                });
                TrafficMode::Rate {
                    rate,
                    len: len as usize,
                }
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

    /// An iperf3-style size of `traffic:` (`100K`), `default` where it is not written; an error
    /// is reported at the value (0 stands in, the run is not built).
    fn size(
        &mut self,
        value: &Option<Spanned<String>>,
        field: &str,
        default: &str,
        section: Location,
        parse: fn(&str) -> Result<u64, String>,
    ) -> u64 {
        let (text, at) = value
            .as_ref()
            .map_or((default, section), |v| (v.value.as_str(), v.referenced));
        parse(text).unwrap_or_else(|e| {
            self.problems
                .at(at, &format!("traffic.{field}"), format!("`{text}`: {e}"));
            0
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
            } else if k == "measurement.interval"
                && !matches!(value.as_str(), "op" | "intended" | "both")
            {
                self.problems.report(
                    val,
                    &field,
                    "expected op (latency from the actual start), intended (from the start the \
                     target throughput scheduled) or both",
                );
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

#[cfg(test)]
mod tests;
