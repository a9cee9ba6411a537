//! The rule file `orch delay` writes for a host: which destinations get which one-way delay on
//! this host's egress. YAML (or JSON, which is YAML too).

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::dist::Distribution;

/// Everything the emulator needs to know.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// Name of the nftables table the emulator owns (one per family).
    #[serde(default = "default_table")]
    pub table: String,
    /// First NFQUEUE number; rule `i` uses queue `queue + i`, so the queue a packet arrives on
    /// says which rule matched it.
    #[serde(default = "default_queue")]
    pub queue: u16,
    /// Most packets the kernel holds per queue for us; beyond it new packets are dropped
    /// (netem's `limit`).
    #[serde(default = "default_limit")]
    pub limit: u32,
    /// Seconds between statistics lines on stderr; 0 = only on SIGUSR1 and at exit.
    #[serde(default = "default_stats_secs")]
    pub stats_secs: u64,
    /// SCHED_FIFO priority (1-99) of the emulator, so a busy host (a compiler, the experiment
    /// itself) cannot delay a release the way it cannot delay netem's softirq; 0 keeps the
    /// normal scheduler.
    #[serde(default = "default_realtime_priority")]
    pub realtime_priority: u8,
    pub rules: Vec<Rule>,
}

/// Packets to `dst` (leaving through `interface`, if given) wait `delay_ms` plus a draw of the
/// distribution scaled by `jitter_ms`; `loss_pct` of them are dropped instead.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub dst: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    pub delay_ms: f64,
    #[serde(default)]
    pub jitter_ms: f64,
    #[serde(default)]
    pub distribution: Distribution,
    #[serde(default)]
    pub loss_pct: f64,
}

fn default_table() -> String {
    "orch_delay".into()
}

fn default_queue() -> u16 {
    4200
}

fn default_limit() -> u32 {
    10_000
}

fn default_stats_secs() -> u64 {
    10
}

fn default_realtime_priority() -> u8 {
    10
}

impl RuleFile {
    pub fn load(path: &Path) -> Result<RuleFile> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: RuleFile =
            serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        file.check()
            .with_context(|| format!("checking {}", path.display()))?;
        Ok(file)
    }

    fn check(&self) -> Result<()> {
        if self.table.is_empty()
            || self.table.len() > 64
            || !self
                .table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            bail!("table `{}` must be 1 to 64 of [A-Za-z0-9_]", self.table);
        }
        if self.realtime_priority > 99 {
            bail!(
                "realtime_priority must be 0 to 99, not {}",
                self.realtime_priority
            );
        }
        if self.rules.is_empty() {
            bail!("no rules");
        }
        if u32::from(self.queue) + self.rules.len() as u32 > 65536 {
            bail!(
                "queue {} + {} rules passes 65535",
                self.queue,
                self.rules.len()
            );
        }
        let mut seen = HashSet::new();
        for (i, r) in self.rules.iter().enumerate() {
            let what = format!("rules[{i}] ({})", r.dst);
            if !seen.insert((r.dst, r.interface.clone())) {
                bail!("{what}: a second rule for the same destination and interface");
            }
            for (name, v) in [("delay_ms", r.delay_ms), ("jitter_ms", r.jitter_ms)] {
                if !(v.is_finite() && (0.0..=60_000.0).contains(&v)) {
                    bail!("{what}: {name} must be between 0 and 60000, not {v}");
                }
            }
            if !(0.0..=100.0).contains(&r.loss_pct) {
                bail!(
                    "{what}: loss_pct must be between 0 and 100, not {}",
                    r.loss_pct
                );
            }
            if let Some(name) = &r.interface {
                if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', '\0']) {
                    bail!("{what}: `{name}` is not an interface name");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RuleFile> {
        let f: RuleFile = serde_saphyr::from_str(text)?;
        f.check()?;
        Ok(f)
    }

    #[test]
    fn defaults_and_distributions() {
        let f = parse(
            "rules:\n  - {dst: 10.0.2.2, delay_ms: 20}\n  - {dst: 'fd00::2', interface: eth1, delay_ms: 6, jitter_ms: 3, distribution: pareto, loss_pct: 1}\n",
        )
        .unwrap();
        assert_eq!(f.table, "orch_delay");
        assert_eq!(f.queue, 4200);
        assert_eq!(f.rules[0].distribution, Distribution::Uniform);
        assert_eq!(f.rules[1].distribution, Distribution::Pareto);
        assert_eq!(f.rules[1].interface.as_deref(), Some("eth1"));
    }

    #[test]
    fn rejects_bad_values() {
        assert!(parse("rules: []\n").is_err());
        assert!(parse("rules:\n  - {dst: 10.0.2.2, delay_ms: -1}\n").is_err());
        assert!(parse("rules:\n  - {dst: 10.0.2.2, delay_ms: 1, loss_pct: 101}\n").is_err());
        assert!(parse("table: 'a b'\nrules:\n  - {dst: 10.0.2.2, delay_ms: 1}\n").is_err());
        let dup = "rules:\n  - {dst: 10.0.2.2, delay_ms: 1}\n  - {dst: 10.0.2.2, delay_ms: 2}\n";
        assert!(parse(dup).unwrap_err().to_string().contains("second rule"));
    }
}
