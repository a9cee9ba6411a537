//! The `election:` phase: leader-election replicas (`orch-node elect`) on a set of hosts for
//! `duration_s`. Its `config` is the replica's own configuration, checked field by field
//! against the one definition orch-node reads (`orch_common::replica::Config`), so that a
//! wrong name or value is reported at its line before any host is touched.

use std::collections::BTreeMap;
use std::time::Duration;

use orch_common::replica::Config;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::check::Checker;

/// Fields orch fills itself, with what to write instead.
const FILLED_BY_ORCH: &[(&str, &str)] = &[
    (
        "ips",
        "orch fills `ips` from the inventory's experiment IPs",
    ),
    (
        "eventLog",
        "orch writes each replica's events to the run directory",
    ),
    ("runtimeSeconds", "use `election.duration_s`"),
];

/// The longest election phase, s (a day).
const MAX_DURATION_S: u64 = 86_400;

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawElection {
    hosts: Option<Spanned<String>>,
    pub(super) duration_s: Option<Spanned<u64>>,
    pub(super) config: Option<BTreeMap<String, Spanned<serde_json::Value>>>,
}

/// Leader-election replicas of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ElectionPlan {
    /// Replica `i` runs on `hosts[i]` (inventory order).
    pub hosts: Vec<String>,
    /// How long the replicas run (their `runtimeSeconds`).
    pub duration: Duration,
    /// The replica configuration, `ips` and `runtimeSeconds` filled in; orch sets `eventLog`
    /// per run.
    pub config: Config,
}

impl Checker<'_> {
    pub(super) fn election(&mut self, e: &Spanned<RawElection>) -> Option<ElectionPlan> {
        let before = self.problems.len();
        let hosts = self.hosts(
            e.value.hosts.as_ref(),
            "role:replica",
            "election.hosts",
            e.referenced,
        )?;
        if hosts.len() < 2 {
            let at = e
                .value
                .hosts
                .as_ref()
                .map_or(e.referenced, |h| h.referenced);
            self.problems.at(
                at,
                "election.hosts",
                "an election needs at least two replicas",
            );
            return None;
        }
        let duration_s = match &e.value.duration_s {
            None => {
                self.problems.report(
                    e,
                    "election.duration_s",
                    "missing: how long the replicas run, s",
                );
                return None;
            }
            Some(d) if d.value == 0 || d.value > MAX_DURATION_S => {
                self.problems.report(
                    d,
                    "election.duration_s",
                    format!("must be 1..={MAX_DURATION_S}"),
                );
                return None;
            }
            Some(d) => d.value,
        };
        let ips: Vec<String> = hosts
            .iter()
            .map(|n| {
                self.inventory
                    .host(n)
                    .expect("selected")
                    .experiment_ip
                    .to_string()
            })
            .collect();
        let mut fields = serde_json::Map::new();
        for (k, v) in e.value.config.iter().flatten() {
            let field = format!("election.config.{k}");
            if let Some((_, hint)) = FILLED_BY_ORCH.iter().find(|(f, _)| f == k) {
                self.problems.report(v, &field, *hint);
                continue;
            }
            // Each field alone on top of a minimal config: serde names what is wrong with it.
            let alone = serde_json::json!({ "ips": ["192.0.2.1"], k.as_str(): v.value });
            if let Err(message) = serde_json::from_value::<Config>(alone) {
                self.problems.report(v, &field, message.to_string());
                continue;
            }
            fields.insert(k.clone(), v.value.clone());
        }
        if self.problems.len() > before {
            return None;
        }
        fields.insert("ips".into(), serde_json::json!(ips));
        fields.insert("runtimeSeconds".into(), serde_json::json!(duration_s));
        match Config::from_json(serde_json::Value::Object(fields)) {
            Ok(config) => Some(ElectionPlan {
                hosts,
                duration: Duration::from_secs(duration_s),
                config,
            }),
            Err(message) => {
                self.problems.report(e, "election.config", message);
                None
            }
        }
    }
}
