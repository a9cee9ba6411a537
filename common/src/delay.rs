//! The delay contract: the rule file orch writes for `orch-node delay` and the emulator reads,
//! the value ranges both sides check (a scenario's `delays:` section and the rule file), the
//! jitter distributions by netem's names, and what `orch-node delay --show` prints, which orch
//! reads back to verify what the kernel installed.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The emulator's nftables table (one per address family).
pub const TABLE: &str = "orch_delay";
/// First NFQUEUE number; rule `i` uses `QUEUE + i`.
pub const QUEUE: u16 = 4200;
/// The table of the emulator orch starts for a network fault (partition, loss, a delay spike):
/// a second instance beside the scenario's delays, with its own table and queues, so both are in
/// force at once (netfilter hands a packet the first instance released on to the second).
pub const FAULT_TABLE: &str = "orch_fault";
/// First NFQUEUE number of the fault emulator: above any scenario's `QUEUE + i`.
pub const FAULT_QUEUE: u16 = 5200;
/// Largest delay or jitter accepted, ms (a minute: anything longer is a typo).
pub const MAX_MS: f64 = 60_000.0;

/// Checks a delay or jitter in ms: finite, 0 to [`MAX_MS`].
pub fn check_ms(v: f64) -> Result<(), String> {
    if v.is_finite() && (0.0..=MAX_MS).contains(&v) {
        Ok(())
    } else {
        Err(format!("must be between 0 and {MAX_MS} ms, not {v}"))
    }
}

/// Checks a loss percentage: 0 to 100.
pub fn check_loss(v: f64) -> Result<(), String> {
    if (0.0..=100.0).contains(&v) {
        Ok(())
    } else {
        Err(format!("must be between 0 and 100, not {v}"))
    }
}

/// Shape of the jitter around the mean delay, with netem's names and definitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// netem's default when no distribution is named.
    #[default]
    Uniform,
    Normal,
    Pareto,
    Paretonormal,
}

impl Distribution {
    pub const ALL: [Distribution; 4] = [
        Distribution::Uniform,
        Distribution::Normal,
        Distribution::Pareto,
        Distribution::Paretonormal,
    ];

    /// The name netem, the emulator and scenarios use.
    pub fn as_str(self) -> &'static str {
        match self {
            Distribution::Uniform => "uniform",
            Distribution::Normal => "normal",
            Distribution::Pareto => "pareto",
            Distribution::Paretonormal => "paretonormal",
        }
    }

    /// The distribution called `name`, or an error listing the names.
    pub fn named(name: &str) -> Result<Distribution, String> {
        Distribution::ALL
            .into_iter()
            .find(|d| d.as_str() == name)
            .ok_or_else(|| {
                format!(
                    "unknown distribution `{name}`, expected one of {}",
                    Distribution::ALL.map(|d| d.as_str()).join(", ")
                )
            })
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything the emulator needs to know (YAML or JSON).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
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
    TABLE.into()
}

fn default_queue() -> u16 {
    QUEUE
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
    /// The file orch writes: `table` and `queue` ([`TABLE`] and [`QUEUE`] for the scenario's
    /// delays, [`FAULT_TABLE`] and [`FAULT_QUEUE`] for a fault's), the rest at their defaults.
    pub fn new(table: &str, queue: u16, rules: Vec<Rule>) -> RuleFile {
        RuleFile {
            table: table.into(),
            queue,
            limit: default_limit(),
            stats_secs: default_stats_secs(),
            realtime_priority: default_realtime_priority(),
            rules,
        }
    }

    /// Parses and checks a rule file's text.
    pub fn parse(text: &str) -> anyhow::Result<RuleFile> {
        let file: RuleFile = serde_saphyr::from_str(text)?;
        file.check().map_err(anyhow::Error::msg)?;
        Ok(file)
    }

    /// Every value in range; the first problem, naming its field.
    pub fn check(&self) -> Result<(), String> {
        if self.table.is_empty()
            || self.table.len() > 64
            || !self
                .table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(format!(
                "table `{}` must be 1 to 64 of [A-Za-z0-9_]",
                self.table
            ));
        }
        if self.realtime_priority > 99 {
            return Err(format!(
                "realtime_priority must be 0 to 99, not {}",
                self.realtime_priority
            ));
        }
        if self.rules.is_empty() {
            return Err("no rules".into());
        }
        if u32::from(self.queue) + self.rules.len() as u32 > 65536 {
            return Err(format!(
                "queue {} + {} rules passes 65535",
                self.queue,
                self.rules.len()
            ));
        }
        let mut seen = HashSet::new();
        for (i, r) in self.rules.iter().enumerate() {
            let what = format!("rules[{i}] ({})", r.dst);
            if !seen.insert((r.dst, r.interface.clone())) {
                return Err(format!(
                    "{what}: a second rule for the same destination and interface"
                ));
            }
            for (name, v) in [("delay_ms", r.delay_ms), ("jitter_ms", r.jitter_ms)] {
                check_ms(v).map_err(|e| format!("{what}: {name} {e}"))?;
            }
            check_loss(r.loss_pct).map_err(|e| format!("{what}: loss_pct {e}"))?;
            if let Some(name) = &r.interface {
                if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', '\0']) {
                    return Err(format!("{what}: `{name}` is not an interface name"));
                }
            }
        }
        Ok(())
    }

    /// The queue of rule `i`.
    pub fn queue_of(&self, i: usize) -> u16 {
        self.queue + i as u16
    }
}

/// Address families the emulator installs a table in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ip,
    Ip6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ip,
            IpAddr::V6(_) => Family::Ip6,
        }
    }

    /// The name nft uses.
    pub fn name(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
        }
    }
}

/// What `orch-node delay --show` prints: the rule file's tables as the kernel reports them.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Shown {
    pub table: String,
    pub installed: Vec<Installed>,
}

/// A table as the kernel reports it back.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Installed {
    pub family: Family,
    pub table: String,
    /// The owner flag: the table disappears with the process.
    pub owner: bool,
    pub rules: Vec<InstalledRule>,
}

/// One rule as the kernel reports it back.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct InstalledRule {
    pub dst: Option<IpAddr>,
    pub interface: Option<String>,
    pub queue: Option<u16>,
    pub bypass: bool,
    pub packets: u64,
}

impl Shown {
    /// Compares the read-back with `file`: an owned table whose rules queue each destination
    /// (with bypass) to its queue, and nothing else. Returns every difference; rule `i` is
    /// named by `name(i)`.
    pub fn differences(&self, file: &RuleFile, name: impl Fn(usize) -> String) -> Vec<String> {
        if self.installed.is_empty() {
            return vec![format!("no nftables table {} is installed", file.table)];
        }
        let mut wrong: Vec<String> = self
            .installed
            .iter()
            .filter(|t| !t.owner)
            .map(|t| format!("table {} {} lacks the owner flag", t.family.name(), t.table))
            .collect();
        let installed: Vec<&InstalledRule> = self.installed.iter().flat_map(|t| &t.rules).collect();
        for (i, rule) in file.rules.iter().enumerate() {
            let queue = file.queue_of(i);
            let found = installed.iter().any(|r| {
                r.dst == Some(rule.dst)
                    && r.interface == rule.interface
                    && r.queue == Some(queue)
                    && r.bypass
            });
            if !found {
                wrong.push(format!(
                    "{}: no rule queueing it to {queue} with bypass",
                    name(i)
                ));
            }
        }
        if installed.len() != file.rules.len() {
            wrong.push(format!(
                "{} rules installed, {} expected",
                installed.len(),
                file.rules.len()
            ));
        }
        wrong
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_distributions() {
        let f = RuleFile::parse(
            "rules:\n  - {dst: 10.0.2.2, delay_ms: 20}\n  - {dst: 'fd00::2', interface: eth1, delay_ms: 6, jitter_ms: 3, distribution: pareto, loss_pct: 1}\n",
        )
        .unwrap();
        assert_eq!(
            f,
            RuleFile {
                rules: f.rules.clone(),
                ..RuleFile::new(TABLE, QUEUE, Vec::new())
            }
        );
        assert_eq!(f.rules[0].distribution, Distribution::Uniform);
        assert_eq!(f.rules[1].distribution, Distribution::Pareto);
        assert_eq!(f.rules[1].interface.as_deref(), Some("eth1"));
        assert_eq!(Distribution::named("normal"), Ok(Distribution::Normal));
        assert!(Distribution::named("gauss")
            .unwrap_err()
            .contains("uniform, normal"));
    }

    #[test]
    fn written_file_reads_back() {
        let f = RuleFile::new(
            TABLE,
            QUEUE,
            vec![Rule {
                dst: "10.0.2.2".parse().unwrap(),
                interface: None,
                delay_ms: 5.0,
                jitter_ms: 1.0,
                distribution: Distribution::Paretonormal,
                loss_pct: 0.5,
            }],
        );
        let text = serde_json::to_string_pretty(&f).unwrap();
        assert!(!text.contains("interface"), "{text}");
        assert_eq!(RuleFile::parse(&text).unwrap(), f);
    }

    #[test]
    fn rejects_bad_values() {
        let bad = [
            "rules: []\n",
            "rules:\n  - {dst: 10.0.2.2, delay_ms: -1}\n",
            "rules:\n  - {dst: 10.0.2.2, delay_ms: 1, loss_pct: 101}\n",
            "table: 'a b'\nrules:\n  - {dst: 10.0.2.2, delay_ms: 1}\n",
            "rules:\n  - {dst: 10.0.2.2, delay_ms: 1, jitter_ms: .nan}\n",
        ];
        for text in bad {
            assert!(RuleFile::parse(text).is_err(), "{text}");
        }
        let dup = "rules:\n  - {dst: 10.0.2.2, delay_ms: 1}\n  - {dst: 10.0.2.2, delay_ms: 2}\n";
        let e = RuleFile::parse(dup).unwrap_err().to_string();
        assert!(e.contains("second rule"), "{e}");
        assert!(check_ms(60_001.0).is_err() && check_ms(0.0).is_ok());
        assert!(check_loss(-0.1).is_err() && check_loss(100.0).is_ok());
    }

    const SHOWN: &str = r#"{"installed":[{"family":"ip","owner":true,"rules":[
        {"bypass":true,"dst":"10.0.2.2","interface":null,"packets":5,"queue":4200},
        {"bypass":true,"dst":"10.0.3.2","interface":null,"packets":0,"queue":4201}],"table":"orch_delay"}],"table":"orch_delay"}"#;

    fn rule(dst: &str) -> Rule {
        Rule {
            dst: dst.parse().unwrap(),
            interface: None,
            delay_ms: 5.0,
            jitter_ms: 0.0,
            distribution: Distribution::Uniform,
            loss_pct: 0.0,
        }
    }

    #[test]
    fn read_back_matches_and_names_differences() {
        let shown: Shown = serde_json::from_str(SHOWN).unwrap();
        let both = RuleFile::new(TABLE, QUEUE, vec![rule("10.0.2.2"), rule("10.0.3.2")]);
        assert!(shown.differences(&both, |i| i.to_string()).is_empty());
        let one = RuleFile::new(TABLE, QUEUE, vec![rule("10.0.3.2")]);
        let wrong = shown.differences(&one, |_| "host3".into());
        assert_eq!(
            wrong,
            [
                "host3: no rule queueing it to 4200 with bypass",
                "2 rules installed, 1 expected"
            ]
        );
        let none: Shown = serde_json::from_str(r#"{"installed":[],"table":"orch_delay"}"#).unwrap();
        assert_eq!(
            none.differences(&both, |i| i.to_string()),
            ["no nftables table orch_delay is installed"]
        );
    }
}
