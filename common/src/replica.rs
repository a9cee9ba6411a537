//! The replica's YAML configuration: the prototype's `replica:` fields plus our additions.
//!
//! Every replica of an experiment reads the same file and picks its own address with `--id`,
//! so per-replica values (the event log path) take an `{id}` placeholder. orch builds this
//! struct from a scenario's `election.config` ([`Config::from_json`]) and writes it with serde;
//! `orch-node elect` reads it back ([`Config::load`]): one definition, one validation.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Deserializer, Serialize};

/// Jacobson mode caps srtt + 4 rttvar at this many ms, as the prototype did.
pub const JACOBSON_CAP_MS: f64 = 800.0;

/// Jacobson's retransmission bound srtt + 4*rttvar, in ms, capped at [`JACOBSON_CAP_MS`]. The
/// replica arms half of it plus the margins; the analysis applies it to measured medians.
pub fn jacobson_bound_ms(srtt_us: f64, rttvar_us: f64) -> f64 {
    ((srtt_us + 4.0 * rttvar_us) / 1000.0).min(JACOBSON_CAP_MS)
}

/// The whole configuration file; only the `replica:` section exists.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub replica: Config,
}

/// How a follower computes its election timeout (`fdMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FdMode {
    /// Uniform in [timeoutLowerBound, timeoutUpperBound], as in Raft.
    Raft,
    /// From the TCP srtt/rttvar to the leader, as in Jacobson's RTO.
    Jacobson,
    /// From the confidence interval of RTT samples to the leader.
    Ci,
}

impl FdMode {
    /// `raft`, `Jacobson`, `CI`, in any case.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "raft" => Some(Self::Raft),
            "jacobson" => Some(Self::Jacobson),
            "ci" => Some(Self::Ci),
            _ => None,
        }
    }
}

impl fmt::Display for FdMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Raft => "raft",
            Self::Jacobson => "jacobson",
            Self::Ci => "ci",
        })
    }
}

/// The config file spells modes `raft`, `Jacobson`, `CI`; accept any case.
fn fd_mode<'de, D: Deserializer<'de>>(d: D) -> Result<FdMode, D::Error> {
    let s = String::deserialize(d)?;
    FdMode::parse(&s).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "unknown fdMode `{s}`: use raft, Jacobson or CI (any case)"
        ))
    })
}

/// The `replica:` section. Field names follow the prototype's YAML; units are in docs/elect.md.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Experiment address of every replica; `--id N` picks `ips[N]`.
    pub ips: Vec<IpAddr>,
    /// Experiment interfaces of the hosts; recorded in the start event for the orchestrator.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// Stop cleanly after this many seconds; 0 runs until SIGINT/SIGTERM.
    #[serde(default)]
    pub runtime_seconds: u64,
    /// Raft election timeout lower bound, ms.
    #[serde(default = "defaults::timeout_lower")]
    pub timeout_lower_bound: f64,
    /// Raft election timeout upper bound, ms.
    #[serde(default = "defaults::timeout_upper")]
    pub timeout_upper_bound: f64,
    /// A leader goes silent after `maxHeartbeats` heartbeats (failure injection).
    #[serde(default)]
    pub failure_leader: bool,
    /// Heartbeats a leader sends before going silent when `failureLeader` is set.
    #[serde(default = "defaults::max_heartbeats")]
    pub max_heartbeats: u64,
    /// UDP port every replica binds on its own address.
    #[serde(default = "defaults::port")]
    pub port: u16,
    /// Simulated one-way delay lower bound, ms.
    #[serde(default)]
    pub delay_lower_bound: f64,
    /// Simulated one-way delay upper bound, ms.
    #[serde(default)]
    pub delay_upper_bound: f64,
    /// Delay and drop datagrams in the sender instead of relying on the network.
    #[serde(default)]
    pub use_simulated_links: bool,
    /// Probability (0..1) that a simulated link drops a datagram.
    #[serde(default)]
    pub link_loss_rate: f64,
    /// Count election timeouts that happen while a leader is known (no failure injected).
    #[serde(default)]
    pub check_false_positive_rate: bool,
    /// Read TCP RTT statistics of the replica's address from the kernel (sock_diag).
    #[serde(default = "defaults::yes", rename = "tcp_monitor")]
    pub tcp_monitor: bool,
    /// Confidence level (0..1) of the interval used by `fdMode: CI`.
    #[serde(default = "defaults::confidence")]
    pub confidence_level: f64,
    /// Added to the RTT-derived timeout to cover the heartbeat interval, ms.
    #[serde(default = "defaults::heartbeat_margin")]
    pub heartbeat_interval_margin: f64,
    /// Safety margin of the best-ranked node starts here, ms.
    #[serde(default = "defaults::safety_lower")]
    pub safety_margin_lower_bound: f64,
    /// Width of each rank's safety-margin band, ms.
    #[serde(default = "defaults::safety_step")]
    pub safety_margin_step_size: f64,
    /// Election timeout mode: raft, Jacobson or CI.
    #[serde(default = "defaults::fd_mode", deserialize_with = "fd_mode")]
    pub fd_mode: FdMode,
    /// A follower petitions when its latency to the leader exceeds this, ms.
    #[serde(default = "defaults::latency_threshold")]
    pub latency_threshold: f64,
    /// Ids allowed to become candidates; empty means every replica.
    #[serde(default)]
    pub eligible_leaders: Vec<usize>,
    /// Enables petitions (latency-driven leader change).
    #[serde(default)]
    pub test_petition: bool,
    /// Leader heartbeat period, ms.
    #[serde(default = "defaults::heartbeat_interval")]
    pub heartbeat_interval_ms: u64,
    /// Period of penalty-score computation and broadcast, ms.
    #[serde(default = "defaults::penalty_interval")]
    pub penalty_interval_ms: u64,
    /// JSON-lines event log path (`{id}` is replaced by the replica id); absent means stdout.
    #[serde(default)]
    pub event_log: Option<String>,
    /// Extra simulated one-way delay, ms, for datagrams sent to the given address.
    #[serde(default)]
    pub simulated_delays: BTreeMap<IpAddr, f64>,
}

mod defaults {
    use super::FdMode;

    pub fn timeout_lower() -> f64 {
        150.0
    }
    pub fn timeout_upper() -> f64 {
        300.0
    }
    pub fn max_heartbeats() -> u64 {
        100
    }
    pub fn port() -> u16 {
        5000
    }
    pub fn yes() -> bool {
        true
    }
    pub fn confidence() -> f64 {
        0.95
    }
    pub fn heartbeat_margin() -> f64 {
        100.0
    }
    pub fn safety_lower() -> f64 {
        10.0
    }
    pub fn safety_step() -> f64 {
        10.0
    }
    pub fn fd_mode() -> FdMode {
        FdMode::Raft
    }
    pub fn latency_threshold() -> f64 {
        100.0
    }
    pub fn heartbeat_interval() -> u64 {
        75
    }
    pub fn penalty_interval() -> u64 {
        1000
    }
}

impl Config {
    /// Reads and validates `path`; errors name the file, line and field.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses YAML text; `source` names it in error messages.
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        let file: File = serde_saphyr::from_str(text).map_err(|e| {
            let at = match e.location() {
                Some(l) => format!("{source}:{}:{}", l.line(), l.column()),
                None => source.to_string(),
            };
            let mut rendered = String::new();
            let _ = e.render_to(
                &mut rendered,
                serde_saphyr::render_options! { source_name: Some(source) },
            );
            anyhow::anyhow!("{at}: invalid replica config\n{rendered}")
        })?;
        if let Err(msg) = file.replica.validate() {
            bail!("{source}: {msg}");
        }
        Ok(file.replica)
    }

    /// Builds a config from the JSON form of the `replica:` section (field names as in the
    /// file) and validates it; the error is serde's or the validation's message.
    pub fn from_json(value: serde_json::Value) -> std::result::Result<Self, String> {
        let c: Config = serde_json::from_value(value).map_err(|e| e.to_string())?;
        c.validate()?;
        Ok(c)
    }

    /// The whole file (`replica:` and this section) as YAML text, as `orch-node elect` reads it.
    pub fn to_file_text(&self) -> String {
        let file = File {
            replica: self.clone(),
        };
        serde_json::to_string_pretty(&file).expect("a config serializes")
    }

    /// Checks what serde cannot: ranges and relations between fields.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let bad = |msg: String| -> std::result::Result<(), String> { Err(msg) };
        if self.ips.is_empty() {
            return bad("`ips` is empty: list the experiment address of every replica".into());
        }
        if self.ips.len() > usize::from(u16::MAX) {
            return bad(format!(
                "`ips` lists {} addresses; at most 65535 replicas",
                self.ips.len()
            ));
        }
        for (i, ip) in self.ips.iter().enumerate() {
            if self.ips[..i].contains(ip) {
                return bad(format!(
                    "`ips` lists {ip} twice: every replica needs its own address"
                ));
            }
        }
        if !(self.timeout_lower_bound > 0.0 && self.timeout_lower_bound <= self.timeout_upper_bound)
        {
            return bad(format!(
                "timeoutLowerBound ({}) must be > 0 and <= timeoutUpperBound ({})",
                self.timeout_lower_bound, self.timeout_upper_bound
            ));
        }
        if !(self.delay_lower_bound >= 0.0 && self.delay_lower_bound <= self.delay_upper_bound) {
            return bad(format!(
                "delayLowerBound ({}) must be >= 0 and <= delayUpperBound ({})",
                self.delay_lower_bound, self.delay_upper_bound
            ));
        }
        if !(0.0..1.0).contains(&self.link_loss_rate) {
            return bad(format!(
                "linkLossRate ({}) is a probability: use a value in [0, 1)",
                self.link_loss_rate
            ));
        }
        if !(self.confidence_level > 0.0 && self.confidence_level < 1.0) {
            return bad(format!(
                "confidenceLevel ({}) must be between 0 and 1, e.g. 0.95",
                self.confidence_level
            ));
        }
        for (name, v) in [
            ("heartbeatIntervalMargin", self.heartbeat_interval_margin),
            ("safetyMarginLowerBound", self.safety_margin_lower_bound),
            ("safetyMarginStepSize", self.safety_margin_step_size),
            ("latencyThreshold", self.latency_threshold),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(format!("{name} ({v}) must be a non-negative number of ms"));
            }
        }
        if self.heartbeat_interval_ms == 0 || self.penalty_interval_ms == 0 {
            return bad("heartbeatIntervalMs and penaltyIntervalMs must be at least 1".into());
        }
        if self.fd_mode != FdMode::Raft
            && self.heartbeat_interval_margin + self.safety_margin_lower_bound
                <= self.heartbeat_interval_ms as f64
        {
            return bad(format!(
                "heartbeatIntervalMargin ({}) + safetyMarginLowerBound ({}) must exceed \
                 heartbeatIntervalMs ({}), otherwise followers time out between heartbeats",
                self.heartbeat_interval_margin,
                self.safety_margin_lower_bound,
                self.heartbeat_interval_ms
            ));
        }
        if let Some(id) = self
            .eligible_leaders
            .iter()
            .find(|&&id| id >= self.ips.len())
        {
            return bad(format!(
                "eligibleLeaders names id {id} but `ips` has {} entries (ids 0..{})",
                self.ips.len(),
                self.ips.len() - 1
            ));
        }
        for (ip, ms) in &self.simulated_delays {
            if !self.ips.contains(ip) {
                return bad(format!("simulatedDelays names {ip}, which is not in `ips`"));
            }
            if !(*ms >= 0.0 && ms.is_finite()) {
                return bad(format!("simulatedDelays for {ip} ({ms}) must be >= 0 ms"));
            }
        }
        Ok(())
    }

    /// Number of replicas.
    pub fn nodes(&self) -> usize {
        self.ips.len()
    }

    /// The UDP address replica `id` binds and is reached at.
    pub fn addr(&self, id: usize) -> SocketAddr {
        SocketAddr::new(self.ips[id], self.port)
    }

    /// Checks that `--id` indexes `ips`.
    pub fn check_id(&self, id: usize) -> Result<()> {
        if id >= self.ips.len() {
            bail!(
                "--id {id} is out of range: the config lists {} ips, so use 0..{}",
                self.ips.len(),
                self.ips.len() - 1
            );
        }
        Ok(())
    }

    /// Where replica `id` writes events, or `None` for stdout.
    pub fn event_log_path(&self, id: usize) -> Option<PathBuf> {
        self.event_log
            .as_ref()
            .map(|p| PathBuf::from(p.replace("{id}", &id.to_string())))
    }

    /// Whether replica `id` may start elections.
    pub fn eligible(&self, id: usize) -> bool {
        self.eligible_leaders.is_empty() || self.eligible_leaders.contains(&id)
    }

    /// The leader heartbeat period.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    /// The penalty-score period.
    pub fn penalty_interval(&self) -> Duration {
        Duration::from_millis(self.penalty_interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "replica:\n  ips: [127.0.0.2, 127.0.0.3, 127.0.0.4]\n";

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::parse(MINIMAL, "t.yaml").unwrap();
        assert_eq!(c.nodes(), 3);
        assert_eq!(c.port, 5000);
        assert_eq!(c.fd_mode, FdMode::Raft);
        assert_eq!(c.heartbeat_interval_ms, 75);
        assert_eq!(c.penalty_interval_ms, 1000);
        assert_eq!(
            (c.timeout_lower_bound, c.timeout_upper_bound),
            (150.0, 300.0)
        );
        assert!(c.eligible(2));
        assert_eq!(c.event_log_path(1), None);
    }

    #[test]
    fn every_original_field_parses() {
        let text = "replica:
  ips: [\"10.0.1.2\", \"10.0.2.2\"]
  interfaces: [eth1]
  runtimeSeconds: 60
  timeoutLowerBound: 150
  timeoutUpperBound: 300
  failureLeader: true
  maxHeartbeats: 50
  port: 6000
  delayLowerBound: 1
  delayUpperBound: 2.5
  useSimulatedLinks: true
  linkLossRate: 0.01
  checkFalsePositiveRate: true
  tcp_monitor: false
  confidenceLevel: 0.99
  heartbeatIntervalMargin: 120
  safetyMarginLowerBound: 5
  safetyMarginStepSize: 15
  fdMode: Jacobson
  latencyThreshold: 40
  eligibleLeaders: [1]
  testPetition: true
  heartbeatIntervalMs: 50
  penaltyIntervalMs: 500
  eventLog: logs/node_{id}.jsonl
  simulatedDelays: {\"10.0.2.2\": 40}
";
        let c = Config::parse(text, "t.yaml").unwrap();
        assert_eq!(c.fd_mode, FdMode::Jacobson);
        assert!(!c.tcp_monitor && c.failure_leader && c.test_petition);
        assert!(!c.eligible(0) && c.eligible(1));
        assert_eq!(
            c.event_log_path(1),
            Some(PathBuf::from("logs/node_1.jsonl"))
        );
        assert_eq!(
            c.simulated_delays[&"10.0.2.2".parse::<IpAddr>().unwrap()],
            40.0
        );
    }

    #[test]
    fn fd_mode_is_case_insensitive() {
        for (s, m) in [
            ("CI", FdMode::Ci),
            ("jacobson", FdMode::Jacobson),
            ("RAFT", FdMode::Raft),
        ] {
            let c = Config::parse(&format!("{MINIMAL}  fdMode: {s}\n"), "t.yaml").unwrap();
            assert_eq!(c.fd_mode, m);
        }
        let err = Config::parse(&format!("{MINIMAL}  fdMode: paxos\n"), "t.yaml").unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown fdMode `paxos`"),
            "{err:#}"
        );
    }

    #[test]
    fn unknown_field_names_file_line_and_field() {
        let text = format!("{MINIMAL}  port: 7000\n  heartbeatInterval: 75\n");
        let err = format!("{:#}", Config::parse(&text, "exp.yaml").unwrap_err());
        assert!(err.starts_with("exp.yaml:4:"), "{err}");
        assert!(err.contains("heartbeatInterval"), "{err}");
    }

    #[test]
    fn unknown_top_level_section_is_an_error() {
        let err = format!(
            "{:#}",
            Config::parse("replicas:\n  ips: []\n", "x.yaml").unwrap_err()
        );
        assert!(err.starts_with("x.yaml:1:"), "{err}");
        assert!(err.contains("replicas"), "{err}");
    }

    #[test]
    fn invalid_values_are_explained() {
        let cases = [
            ("  timeoutLowerBound: 400\n", "timeoutLowerBound"),
            ("  linkLossRate: 1.5\n", "linkLossRate"),
            ("  eligibleLeaders: [7]\n", "eligibleLeaders names id 7"),
            ("  simulatedDelays: {\"127.0.0.9\": 5}\n", "not in `ips`"),
            (
                "  fdMode: CI\n  heartbeatIntervalMargin: 10\n",
                "between heartbeats",
            ),
        ];
        for (extra, needle) in cases {
            let err = format!(
                "{:#}",
                Config::parse(&format!("{MINIMAL}{extra}"), "c.yaml").unwrap_err()
            );
            assert!(err.contains(needle), "{extra}: {err}");
        }
        let dup = "replica:\n  ips: [127.0.0.2, 127.0.0.2]\n";
        assert!(format!("{:#}", Config::parse(dup, "c").unwrap_err()).contains("twice"));
        let c = Config::parse(MINIMAL, "c").unwrap();
        assert!(format!("{:#}", c.check_id(3).unwrap_err()).contains("use 0..2"));
    }
}
