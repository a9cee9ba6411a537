//! The hosts' clocks against the controller's, per run of the matrix: measured at its start
//! and at its end (Cristian's method, [`measure`]), written to `<label>/clocks.json`, and used
//! to put every interval between two hosts' readings onto the controller's clock, each with
//! the bound the clocks leave on it ([`correct`]). See docs/clocks.md.

pub mod chrony;
pub mod correct;
pub mod measure;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use orch_analysis::clock::HostOffset;
use serde::{Deserialize, Serialize};

use crate::remote::Conn;
use crate::results::faults::FaultRecord;
use crate::run::RunHost;
use crate::scenario::RunSpec;

/// The file of a run's clocks, in the run's directory.
pub const FILE: &str = "clocks.json";
/// The reference clock's name where a host name would stand (no inventory name has spaces).
pub const CONTROLLER: &str = "the controller";

/// One measurement of one host's clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// The host's clock minus the controller's, ms.
    pub offset_ms: f64,
    /// The true offset lies within `offset_ms ± bound_ms`: half the round trip of the sample
    /// used plus the two clocks' reading resolutions.
    pub bound_ms: f64,
    /// That sample's round trip (the smallest), ms.
    pub rtt_ms: f64,
    /// Exchanges made.
    pub samples: usize,
    /// When that sample's request left, the controller's clock, Unix ns.
    pub at_unix_ns: u64,
    /// The host's and the controller's CLOCK_REALTIME resolutions together, ns.
    pub resolution_ns: u64,
    /// chrony's own view of the host's clock just after (`chronyc -c tracking`); `null`
    /// without chronyc or chronyd.
    #[serde(default)]
    pub chrony: Option<chrony::Tracking>,
}

/// One host's clock over a run: measured at its start and at its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostClock {
    pub start: Measurement,
    pub end: Measurement,
    /// What the run uses for every reading of this host: the middle of the two offsets,
    /// within the larger bound plus half their difference (the drift over the run).
    pub run: HostOffset,
}

impl HostClock {
    fn new(host: &str, start: Measurement, end: Measurement) -> HostClock {
        let drift = (end.offset_ms - start.offset_ms).abs();
        let run = HostOffset {
            host: host.to_string(),
            offset_ms: (start.offset_ms + end.offset_ms) / 2.0,
            bound_ms: start.bound_ms.max(end.bound_ms) + drift / 2.0,
        };
        HostClock { start, end, run }
    }
}

/// `<label>/clocks.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clocks {
    /// The clock every offset is against: the controller's CLOCK_REALTIME (and its name).
    pub reference: String,
    /// `cristian`: the quickest of `samples` exchanges over one SSH channel.
    pub method: String,
    /// By inventory name.
    pub hosts: BTreeMap<String, HostClock>,
    /// The host of each election replica, by replica id (its event log's times are read on
    /// that host's clock); empty without an election phase.
    pub replicas: Vec<String>,
}

impl Clocks {
    /// The clock of `host`; the controller's own (0 ± 0) for [`CONTROLLER`]; `None` for a host
    /// that was not measured.
    pub fn of(&self, host: &str) -> Option<HostOffset> {
        if host == CONTROLLER {
            return Some(HostOffset {
                host: CONTROLLER.into(),
                offset_ms: 0.0,
                bound_ms: 0.0,
            });
        }
        self.hosts.get(host).map(|c| c.run.clone())
    }

    /// The clock of each replica's host, by replica id; `None` if one was not measured.
    pub fn replica_offsets(&self) -> Option<Vec<HostOffset>> {
        self.replicas.iter().map(|h| self.of(h)).collect()
    }

    /// One line per host, for the run's progress output.
    pub fn report(&self) -> String {
        self.hosts
            .iter()
            .map(|(name, c)| {
                format!(
                    "{name}: {:+.3} ± {:.3} ms (start {:+.3} ± {:.3}, end {:+.3} ± {:.3}, rtt {:.3} ms)",
                    c.run.offset_ms,
                    c.run.bound_ms,
                    c.start.offset_ms,
                    c.start.bound_ms,
                    c.end.offset_ms,
                    c.end.bound_ms,
                    c.start.rtt_ms.min(c.end.rtt_ms)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Measures every host's clock at the start of a run.
pub async fn start(
    conns: &BTreeMap<String, (Conn, RunHost)>,
) -> anyhow::Result<BTreeMap<String, Measurement>> {
    measure::all(conns).await
}

/// At the end of a run (before its intervals are computed): measures every host again, writes
/// `local/clocks.json`, and corrects the cross-host intervals of `faults` (written back to
/// faults.jsonl).
pub async fn end(
    conns: &BTreeMap<String, (Conn, RunHost)>,
    start: BTreeMap<String, Measurement>,
    spec: &RunSpec,
    local: &Path,
    faults: &mut [FaultRecord],
) -> anyhow::Result<Clocks> {
    let end = measure::all(conns).await?;
    let replicas = spec.election.as_ref().map_or(&[][..], |e| &e.hosts[..]);
    let clocks = combine(start, end, replicas)?;
    save(local, &clocks)?;
    eprintln!("   clocks (host - controller):");
    for line in clocks.report().lines() {
        eprintln!("     {line}");
    }
    if !faults.is_empty() {
        correct::faults(&clocks, faults);
        crate::results::faults::write(local, faults)?;
    }
    Ok(clocks)
}

/// The clocks of a run from its two measurements (each host must have both); `replicas`: the
/// host of each election replica.
pub fn combine(
    start: BTreeMap<String, Measurement>,
    mut end: BTreeMap<String, Measurement>,
    replicas: &[String],
) -> anyhow::Result<Clocks> {
    let mut hosts = BTreeMap::new();
    for (name, s) in start {
        let e = end
            .remove(&name)
            .with_context(|| format!("{name}: its clock was measured at the start only"))?;
        hosts.insert(name.clone(), HostClock::new(&name, s, e));
    }
    Ok(Clocks {
        reference: format!("{CONTROLLER} ({})", controller_name()),
        method: format!("cristian, {} samples", measure::SAMPLES),
        hosts,
        replicas: replicas.to_vec(),
    })
}

fn controller_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|n| n.trim().to_string())
        .unwrap_or_else(|_| "unknown host name".into())
}

/// Writes `dir/clocks.json`.
pub fn save(dir: &Path, clocks: &Clocks) -> anyhow::Result<()> {
    let path = dir.join(FILE);
    std::fs::write(&path, serde_json::to_vec_pretty(clocks)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `dir/clocks.json`, or `None` for a run recorded before clocks were measured.
pub fn load(dir: &Path) -> anyhow::Result<Option<Clocks>> {
    let path = dir.join(FILE);
    match std::fs::read(&path) {
        Ok(b) => Ok(Some(serde_json::from_slice(&b).with_context(|| {
            format!("{}: not the clocks of a run", path.display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(offset_ms: f64, bound_ms: f64) -> Measurement {
        Measurement {
            offset_ms,
            bound_ms,
            rtt_ms: bound_ms * 2.0,
            samples: 20,
            at_unix_ns: 1,
            resolution_ns: 2,
            chrony: None,
        }
    }

    #[test]
    fn a_run_uses_the_middle_of_its_two_measurements_within_their_drift() {
        let start = BTreeMap::from([
            ("h1".to_string(), m(40.0, 0.2)),
            ("h2".into(), m(-1.0, 0.1)),
        ]);
        let end = BTreeMap::from([
            ("h1".to_string(), m(40.6, 0.3)),
            ("h2".into(), m(-1.0, 0.1)),
        ]);
        let clocks = combine(start.clone(), end, &["h2".into(), "h1".into()]).unwrap();
        let h1 = clocks.of("h1").unwrap();
        assert!((h1.offset_ms - 40.3).abs() < 1e-9, "{h1:?}");
        assert!((h1.bound_ms - 0.6).abs() < 1e-9, "0.3 + 0.6 / 2: {h1:?}");
        // Both measurements lie within the run's offset and bound.
        for o in [40.0, 40.6] {
            assert!((o - h1.offset_ms).abs() <= h1.bound_ms);
        }
        assert_eq!(clocks.of("h2").unwrap().bound_ms, 0.1);
        assert_eq!(clocks.of(CONTROLLER).unwrap().offset_ms, 0.0);
        assert_eq!(clocks.of("h3"), None);
        let replicas = clocks.replica_offsets().unwrap();
        assert_eq!(
            (replicas[0].host.as_str(), replicas[1].host.as_str()),
            ("h2", "h1")
        );
        let only_start = combine(start, BTreeMap::new(), &[]).unwrap_err();
        assert!(format!("{only_start:#}").contains("h1: its clock was measured at the start only"));
    }

    #[test]
    fn clocks_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        // Offsets as the lab gives them, whose sums need every bit of an f64 (`orch report`
        // must give the summary `orch run` gave, to the last digit).
        let start = BTreeMap::from([("h1".to_string(), m(0.002097, 0.0967))]);
        let end = BTreeMap::from([("h1".to_string(), m(0.034812, 0.09673000000000001))]);
        let clocks = combine(start, end, &["h1".into()]).unwrap();
        save(dir.path(), &clocks).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(clocks));
        std::fs::write(dir.path().join(FILE), "{}").unwrap();
        let bad = load(dir.path()).unwrap_err();
        assert!(
            format!("{bad:#}").contains("not the clocks of a run"),
            "{bad:#}"
        );
    }
}
