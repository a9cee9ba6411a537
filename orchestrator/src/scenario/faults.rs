//! The `faults:` list: what to break during the workload, when, for how long and whom, in the
//! manner of Jepsen's nemesis. A target is a role (the ZooKeeper leader or a follower, a
//! minority or a majority of the servers, the replicas' leader or a follower), resolved only
//! when the fault fires, or ZooKeeper servers named by a host selection.
//!
//! Actions: `kill` (SIGKILL, restart after `duration_s`), `pause` (SIGSTOP, SIGCONT after
//! `duration_s`), and the network faults `partition` (no traffic between the target and every
//! other host of the run, both ways), `loss` (`percent` of the target's packets to the other
//! hosts dropped) and `delay` (`delay_ms` added to them), undone after `duration_s`.

use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::check::Checker;
use super::{ElectionPlan, ZookeeperPlan};

/// The longest fault and the latest start, s.
const MAX_S: u64 = 86_400;
/// Every action, for error messages.
const ACTIONS: &str = "kill, pause, partition, loss or delay";

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    at_s: Option<Spanned<f64>>,
    every_s: Option<Spanned<f64>>,
    count: Option<Spanned<u32>>,
    duration_s: Option<Spanned<f64>>,
    action: Spanned<String>,
    target: Spanned<String>,
    /// For `loss`: the share of the target's packets dropped.
    percent: Option<Spanned<f64>>,
    /// For `delay`: the delay added to the target's packets, ms.
    delay_ms: Option<Spanned<f64>>,
}

/// What a fault does to its target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultAction {
    /// SIGKILL to the process group; the server is started again after the duration.
    Kill,
    /// SIGSTOP, then SIGCONT after the duration.
    Pause,
    /// No traffic between the target's hosts and the run's other hosts, both ways.
    Partition,
    /// This share (percent) of the packets the target's hosts send to the other hosts dropped.
    Loss(f64),
    /// This many ms added to the packets the target's hosts send to the other hosts.
    Delay(f64),
}

impl FaultAction {
    pub fn name(self) -> &'static str {
        match self {
            FaultAction::Kill => "kill",
            FaultAction::Pause => "pause",
            FaultAction::Partition => "partition",
            FaultAction::Loss(_) => "loss",
            FaultAction::Delay(_) => "delay",
        }
    }

    /// Whether it acts on the network (the fault emulator) rather than on a process.
    pub fn is_network(self) -> bool {
        !matches!(self, FaultAction::Kill | FaultAction::Pause)
    }
}

/// Whom a fault hits, decided when it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultTarget {
    /// The server `srvr` calls leader at that instant.
    ZookeeperLeader,
    /// A server `srvr` calls follower at that instant (the first in inventory order).
    ZookeeperFollower,
    /// ZooKeeper servers named by a host selection (`host2`, `host1,host4`, `role:witness`),
    /// as written and as resolved.
    Hosts { spec: String, hosts: Vec<String> },
    /// The replica that leads the latest term in the replicas' event logs at that instant.
    ReplicaLeader,
    /// The first replica (by id) that does not lead at that instant.
    ReplicaFollower,
    /// ⌊(n−1)/2⌋ of the n ZooKeeper servers, chosen at that instant to keep the leader and the
    /// workload's client (its host and the servers it talks to) on the other side if they can.
    Minority,
    /// The other ⌊n/2⌋+1 servers: the complement of [`FaultTarget::Minority`].
    Majority,
}

impl FaultTarget {
    pub fn name(&self) -> String {
        match self {
            FaultTarget::ZookeeperLeader => "zookeeper-leader".into(),
            FaultTarget::ZookeeperFollower => "zookeeper-follower".into(),
            FaultTarget::Hosts { spec, .. } => spec.clone(),
            FaultTarget::ReplicaLeader => "replica-leader".into(),
            FaultTarget::ReplicaFollower => "replica-follower".into(),
            FaultTarget::Minority => "minority".into(),
            FaultTarget::Majority => "majority".into(),
        }
    }

    /// Whether the target is an election replica (else a ZooKeeper server).
    pub fn is_replica(&self) -> bool {
        matches!(
            self,
            FaultTarget::ReplicaLeader | FaultTarget::ReplicaFollower
        )
    }
}

/// One fault firing: its start after the `ycsb run` phase began, its length, action, target.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Position in the `faults:` list (0-based), shared by the firings of one `every_s` entry.
    pub entry: usize,
    pub at: Duration,
    pub duration: Duration,
    pub action: FaultAction,
    pub target: FaultTarget,
}

impl Checker<'_> {
    /// Every firing of every entry, ordered by start; `None` after reporting a problem.
    pub(super) fn faults(
        &mut self,
        raw: &[Spanned<RawFault>],
        zookeeper: Option<&ZookeeperPlan>,
        election: Option<&ElectionPlan>,
        workload: bool,
    ) -> Option<Vec<Fault>> {
        let before = self.problems.len();
        let mut out = Vec::new();
        for (i, f) in raw.iter().enumerate() {
            let field = |k: &str| format!("faults[{i}].{k}");
            let action = self.fault_action(&f.value, &field);
            let target = self.fault_target(&f.value.target, &field("target"), zookeeper, election);
            let seconds = |p: &mut Checker, v: &Option<Spanned<f64>>, k: &str, zero: bool| {
                let v = v.as_ref()?;
                let ok = v.value.is_finite()
                    && v.value <= MAX_S as f64
                    && (v.value > 0.0 || (zero && v.value == 0.0));
                if !ok {
                    let low = if zero { "0" } else { "more than 0" };
                    p.problems
                        .report(v, &field(k), format!("must be {low} and at most {MAX_S}"));
                    return None;
                }
                Some(Duration::from_secs_f64(v.value))
            };
            let at = seconds(self, &f.value.at_s, "at_s", true);
            let every = seconds(self, &f.value.every_s, "every_s", false);
            let duration = seconds(self, &f.value.duration_s, "duration_s", false);
            if f.value.duration_s.is_none() {
                self.problems.report(
                    f,
                    &field("duration_s"),
                    "missing: how long until the fault is undone (restart, SIGCONT, rules removed), s",
                );
            }
            let count = match (&f.value.every_s, &f.value.count) {
                (Some(_), Some(c)) if c.value == 0 => {
                    self.problems
                        .report(c, &field("count"), "must be at least 1");
                    None
                }
                (Some(_), Some(c)) => Some(c.value),
                (Some(e), None) => {
                    self.problems.report(
                        e,
                        &field("count"),
                        "`every_s` needs `count`: how many times",
                    );
                    None
                }
                (None, Some(c)) => {
                    self.problems
                        .report(c, &field("count"), "only with `every_s`");
                    None
                }
                (None, None) => Some(1),
            };
            if f.value.at_s.is_none() && f.value.every_s.is_none() {
                self.problems.report(
                    f,
                    &field("at_s"),
                    "missing: when the fault fires (`at_s`, or `every_s` + `count`), s after `ycsb run` starts",
                );
            }
            let (Some(action), Some(target), Some(duration), Some(count)) =
                (action, target, duration, count)
            else {
                continue;
            };
            if let (Some(e), Some(every)) = (&f.value.every_s, every) {
                if every <= duration {
                    self.problems.report(
                        e,
                        &field("every_s"),
                        "must be longer than `duration_s`: each fault is undone before the next",
                    );
                    continue;
                }
            }
            let first = at.unwrap_or(every.unwrap_or_default());
            let last_end = first + every.unwrap_or_default() * (count - 1) + duration;
            if let (false, Some(e)) = (workload, election) {
                if last_end >= e.duration {
                    self.problems.report(
                        f,
                        &field("at_s"),
                        format!(
                            "the last fault ends {:.1} s after the replicas start, not before their end (election.duration_s: {})",
                            last_end.as_secs_f64(),
                            e.duration.as_secs()
                        ),
                    );
                    continue;
                }
            }
            for n in 0..count {
                out.push(Fault {
                    entry: i,
                    at: first + every.unwrap_or_default() * n,
                    duration,
                    action,
                    target: target.clone(),
                });
            }
        }
        out.sort_by_key(|f| f.at);
        (self.problems.len() == before).then_some(out)
    }

    /// The action, with the one value `loss` and `delay` need and the others refuse.
    fn fault_action(
        &mut self,
        f: &RawFault,
        field: &dyn Fn(&str) -> String,
    ) -> Option<FaultAction> {
        let a = &f.action;
        let (needs, action): (Option<&str>, Option<FaultAction>) = match a.value.as_str() {
            "kill" => (None, Some(FaultAction::Kill)),
            "pause" => (None, Some(FaultAction::Pause)),
            "partition" => (None, Some(FaultAction::Partition)),
            "loss" => (Some("percent"), None),
            "delay" => (Some("delay_ms"), None),
            other => {
                self.problems.report(
                    a,
                    &field("action"),
                    format!("`{other}`: expected {ACTIONS}"),
                );
                return None;
            }
        };
        let mut ok = true;
        for (key, value) in [("percent", &f.percent), ("delay_ms", &f.delay_ms)] {
            if let (Some(v), false) = (value, needs == Some(key)) {
                let with = if key == "percent" { "loss" } else { "delay" };
                self.problems.report(
                    v,
                    &field(key),
                    format!("only with `action: {with}`, not `{}`", a.value),
                );
                ok = false;
            }
        }
        let action = match (needs, &f.percent, &f.delay_ms) {
            (None, _, _) => action,
            (Some("percent"), Some(p), _) => {
                let fine = p.value > 0.0 && orch_common::delay::check_loss(p.value).is_ok();
                if !fine {
                    self.problems.report(
                        p,
                        &field("percent"),
                        "must be more than 0 and at most 100",
                    );
                }
                fine.then_some(FaultAction::Loss(p.value))
            }
            (Some("delay_ms"), _, Some(d)) => {
                let fine = d.value > 0.0 && orch_common::delay::check_ms(d.value).is_ok();
                if !fine {
                    let max = orch_common::delay::MAX_MS;
                    self.problems.report(
                        d,
                        &field("delay_ms"),
                        format!("must be more than 0 and at most {max} ms"),
                    );
                }
                fine.then_some(FaultAction::Delay(d.value))
            }
            (Some(key), _, _) => {
                let what = if key == "percent" {
                    "the share of the target's packets dropped, 0 to 100"
                } else {
                    "the delay added to the target's packets, ms"
                };
                self.problems.report(
                    a,
                    &field(key),
                    format!("missing: `action: {}` needs `{key}`: {what}", a.value),
                );
                None
            }
        };
        action.filter(|_| ok)
    }

    fn fault_target(
        &mut self,
        t: &Spanned<String>,
        field: &str,
        zookeeper: Option<&ZookeeperPlan>,
        election: Option<&ElectionPlan>,
    ) -> Option<FaultTarget> {
        let replica = match t.value.as_str() {
            "replica-leader" => Some(FaultTarget::ReplicaLeader),
            "replica-follower" => Some(FaultTarget::ReplicaFollower),
            _ => None,
        };
        if let Some(target) = replica {
            return match election {
                Some(e) if e.hosts.len() < 2 => {
                    self.problems.report(
                        t,
                        field,
                        "a single replica has neither a successor nor a follower",
                    );
                    None
                }
                Some(_) => Some(target),
                None => {
                    self.problems.report(
                        t,
                        field,
                        "replica faults act on the election replicas: the scenario needs an `election:` section",
                    );
                    None
                }
            };
        }
        let Some(zk) = zookeeper else {
            self.problems.report(
                t,
                field,
                "faults on ZooKeeper servers (their roles, a minority or majority of them, a server's name) need a `zookeeper:` section (or use replica-leader, replica-follower with `election:`)",
            );
            return None;
        };
        match t.value.as_str() {
            "zookeeper-leader" => Some(FaultTarget::ZookeeperLeader),
            "zookeeper-follower" if zk.servers.len() < 2 => {
                self.problems
                    .report(t, field, "a single ZooKeeper server has no follower");
                None
            }
            "zookeeper-follower" => Some(FaultTarget::ZookeeperFollower),
            side @ ("minority" | "majority") if zk.servers.len() < 3 => {
                self.problems.report(
                    t,
                    field,
                    format!(
                        "`{side}` needs at least 3 ZooKeeper servers (a minority of {} is none)",
                        zk.servers.len()
                    ),
                );
                None
            }
            "minority" => Some(FaultTarget::Minority),
            "majority" => Some(FaultTarget::Majority),
            spec => match self.inventory.select(Some(spec)) {
                Ok(hosts) => {
                    let hosts: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
                    let strays: Vec<&str> = hosts
                        .iter()
                        .filter(|h| !zk.servers.contains(h))
                        .map(String::as_str)
                        .collect();
                    if strays.is_empty() {
                        return Some(FaultTarget::Hosts {
                            spec: spec.into(),
                            hosts,
                        });
                    }
                    self.problems.report(
                        t,
                        field,
                        format!(
                            "`{spec}` selects {}, not among the ZooKeeper servers ({})",
                            strays.join(", "),
                            zk.servers.join(", ")
                        ),
                    );
                    None
                }
                Err(e) => {
                    self.problems.report(
                        t,
                        field,
                        format!(
                            "`{spec}`: expected zookeeper-leader, zookeeper-follower, minority, majority, replica-leader, replica-follower or servers by name or role ({}): {e}",
                            zk.servers.join(", ")
                        ),
                    );
                    None
                }
            },
        }
    }
}

#[cfg(test)]
mod tests;
