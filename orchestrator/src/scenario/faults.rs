//! The `faults:` list: what to break during the workload, when, for how long and whom, in the
//! manner of Jepsen's nemesis. A target is a role (the ZooKeeper leader or a follower),
//! resolved only when the fault fires, or one named ZooKeeper server.
//!
//! This version runs `kill` (SIGKILL, restart after `duration_s`) and `pause` (SIGSTOP, SIGCONT
//! after `duration_s`) against ZooKeeper servers. The other actions and targets the issue
//! names are refused here, at their line, rather than accepted and ignored.

use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::check::Checker;
use super::ZookeeperPlan;

/// Actions the issue names that this version does not run yet.
const NOT_YET: &[&str] = &["partition", "loss", "delay"];
/// Targets the issue names that this version does not resolve yet.
const TARGETS_NOT_YET: &[&str] = &["replica-leader", "replica-follower", "minority", "majority"];
/// The longest fault and the latest start, s.
const MAX_S: u64 = 86_400;

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    at_s: Option<Spanned<f64>>,
    every_s: Option<Spanned<f64>>,
    count: Option<Spanned<u32>>,
    duration_s: Option<Spanned<f64>>,
    action: Spanned<String>,
    target: Spanned<String>,
}

/// What a fault does to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// SIGKILL to the process group; the server is started again after the duration.
    Kill,
    /// SIGSTOP, then SIGCONT after the duration.
    Pause,
}

impl FaultAction {
    pub fn name(self) -> &'static str {
        match self {
            FaultAction::Kill => "kill",
            FaultAction::Pause => "pause",
        }
    }
}

/// Whom a fault hits, decided when it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultTarget {
    /// The server `srvr` calls leader at that instant.
    ZookeeperLeader,
    /// A server `srvr` calls follower at that instant (the first in inventory order).
    ZookeeperFollower,
    /// One named ZooKeeper server.
    Host(String),
}

impl FaultTarget {
    pub fn name(&self) -> String {
        match self {
            FaultTarget::ZookeeperLeader => "zookeeper-leader".into(),
            FaultTarget::ZookeeperFollower => "zookeeper-follower".into(),
            FaultTarget::Host(h) => h.clone(),
        }
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
    ) -> Option<Vec<Fault>> {
        let before = self.problems.len();
        let mut out = Vec::new();
        for (i, f) in raw.iter().enumerate() {
            let field = |k: &str| format!("faults[{i}].{k}");
            let action = match f.value.action.value.as_str() {
                "kill" => Some(FaultAction::Kill),
                "pause" => Some(FaultAction::Pause),
                a if NOT_YET.contains(&a) => {
                    self.problems.report(
                        &f.value.action,
                        &field("action"),
                        format!("`{a}` is not supported by this orch yet; use kill or pause"),
                    );
                    None
                }
                a => {
                    self.problems.report(
                        &f.value.action,
                        &field("action"),
                        format!("`{a}`: expected kill or pause"),
                    );
                    None
                }
            };
            let target = self.fault_target(&f.value.target, &field("target"), zookeeper);
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
                    "missing: how long until the fault is undone (restart or SIGCONT), s",
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

    fn fault_target(
        &mut self,
        t: &Spanned<String>,
        field: &str,
        zookeeper: Option<&ZookeeperPlan>,
    ) -> Option<FaultTarget> {
        let Some(zk) = zookeeper else {
            self.problems.report(
                t,
                field,
                "faults act on ZooKeeper servers: the scenario needs a `zookeeper:` section",
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
            x if TARGETS_NOT_YET.contains(&x) => {
                self.problems.report(
                    t,
                    field,
                    format!("`{x}` is not supported by this orch yet; use zookeeper-leader, zookeeper-follower or a server's name"),
                );
                None
            }
            name if zk.servers.iter().any(|s| s == name) => Some(FaultTarget::Host(name.into())),
            other => {
                self.problems.report(
                    t,
                    field,
                    format!(
                        "`{other}`: expected zookeeper-leader, zookeeper-follower or one of the servers ({})",
                        zk.servers.join(", ")
                    ),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
