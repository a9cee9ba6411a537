//! The intervals of a run's faults put on the controller's clock, and the intervals whose
//! clock bound is large. Which clocks each interval of faults.jsonl reads:
//!
//! - ZooKeeper faults: `write_ms` is the write's success on the surviving server's host minus
//!   the signal on `start_clock`'s host (two hosts: corrected); `new_leader_ms`, `left_ms` and
//!   `rejoined_ms` are instants of the controller's monotonic clock (bound 0).
//! - Replica faults: `detection_ms` and `new_leader_ms` come from the election analysis, on
//!   the reference already; `rejoined_ms` is an event on the replica's host minus the undo on
//!   the controller (corrected).

use orch_analysis::clock::{self, HostOffset};

use super::{Clocks, CONTROLLER};
use crate::results::faults::{ClockBounds, FaultRecord};
use crate::results::report::RunResult;

/// Corrects the cross-host intervals of every record not corrected yet and gives each
/// interval its bound ([`FaultRecord::clock_bounds`]).
pub fn faults(clocks: &Clocks, records: &mut [FaultRecord]) {
    let controller = clocks.of(CONTROLLER).expect("the reference is known");
    for r in records.iter_mut().filter(|r| r.clock_bounds.is_none()) {
        let mut b = ClockBounds::default();
        let at = |v: Option<f64>| v.map(|_| 0.0);
        if r.replica.is_some() {
            if let (Some(v), Some(host)) =
                (r.rejoined_ms, r.hosts.first().and_then(|h| clocks.of(h)))
            {
                r.rejoined_ms = Some(v + clock::correction_ms(&controller, &host));
                b.rejoined_ms = Some(clock::bound_ms(&controller, &host));
            }
        } else {
            (b.new_leader_ms, b.left_ms, b.rejoined_ms) =
                (at(r.new_leader_ms), at(r.left_ms), at(r.rejoined_ms));
            let of = |h: &Option<String>| h.as_deref().and_then(|h| clocks.of(h));
            if let (Some(v), Some(from), Some(to)) =
                (r.write_ms, of(&r.start_clock), of(&r.write_server))
            {
                r.write_ms = Some(v + clock::correction_ms(&from, &to));
                b.write_ms = Some(clock::bound_ms(&from, &to));
            }
        }
        r.clock_bounds = Some(b);
    }
}

/// Every interval the run reports whose clock bound is more than
/// [`clock::LARGE_BOUND_PCT`] % of it, one line each.
pub fn large_bounds(result: &RunResult) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |what: String, v: Option<f64>, b: Option<f64>| {
        if let (Some(v), Some(b)) = (v, b) {
            if clock::is_large(v, b) {
                out.push(format!(
                    "{what} {v:.1} ± {b:.2} ms: the clocks' bound is {:.1} % of it",
                    100.0 * b / v.abs().max(f64::MIN_POSITIVE)
                ));
            }
        }
    };
    for f in result.election.iter().flat_map(|s| &s.failures) {
        let which = format!("replica {}'s failure at {:.1} s:", f.node, f.at_s);
        check(
            format!("{which} detection"),
            f.detection_ms,
            f.detection_bound_ms,
        );
        check(
            format!("{which} failover"),
            f.failover_ms,
            f.failover_bound_ms,
        );
    }
    for r in &result.faults {
        let Some(b) = &r.clock_bounds else { continue };
        let which = format!("{} (entry {}):", r.what(), r.entry);
        check(format!("{which} write"), r.write_ms, b.write_ms);
        check(format!("{which} rejoined"), r.rejoined_ms, b.rejoined_ms);
        check(format!("{which} left"), r.left_ms, b.left_ms);
        if r.replica.is_none() {
            check(
                format!("{which} new leader"),
                r.new_leader_ms,
                b.new_leader_ms,
            );
        }
    }
    out
}

/// The clock of each replica's host, by replica id, if the run's clocks know them all.
pub fn replicas(clocks: Option<&Clocks>) -> Option<Vec<HostOffset>> {
    clocks
        .and_then(Clocks::replica_offsets)
        .filter(|r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::clock::{HostClock, Measurement};

    fn clocks(hosts: &[(&str, f64, f64)]) -> Clocks {
        let m = |offset_ms, bound_ms| Measurement {
            offset_ms,
            bound_ms,
            rtt_ms: 2.0 * bound_ms,
            samples: 20,
            at_unix_ns: 0,
            resolution_ns: 2,
            chrony: None,
        };
        Clocks {
            reference: CONTROLLER.into(),
            method: "cristian, 20 samples".into(),
            hosts: hosts
                .iter()
                .map(|&(h, o, b)| (h.to_string(), HostClock::new(h, m(o, b), m(o, b))))
                .collect::<BTreeMap<_, _>>(),
            replicas: Vec::new(),
        }
    }

    fn record(action: &str, hosts: &[&str]) -> FaultRecord {
        let line = serde_json::json!({
            "entry": 0, "action": action, "target": "t", "hosts": hosts, "process": "p",
            "leader_before": null, "start_unix_ns": 1, "start_s": 1.0, "end_s": 2.0,
            "end_unix_ns": 2, "new_leader": null, "new_leader_ms": null, "rejoined_ms": null,
            "error": null
        });
        serde_json::from_value(line).unwrap()
    }

    #[test]
    fn a_write_across_two_hosts_is_corrected_once_and_controller_times_keep_bound_zero() {
        // The leader's host (signal) runs 40 ms ahead, the surviving server's 2 ms behind:
        // a write 900 ms after the signal reads as 900 - 2 - 40 = 858 ms.
        let c = clocks(&[("h1", 40.0, 0.5), ("h2", -2.0, 0.25)]);
        let mut r = record("kill", &["h1"]);
        (r.start_clock, r.write_server) = (Some("h1".into()), Some("h2".into()));
        (r.write_ms, r.new_leader_ms, r.rejoined_ms) = (Some(858.0), Some(700.0), Some(40.0));
        let mut records = [r];
        faults(&c, &mut records);
        let r = &records[0];
        assert_eq!(r.write_ms, Some(900.0));
        let b = r.clock_bounds.clone().unwrap();
        assert_eq!(b.write_ms, Some(0.75));
        assert_eq!((r.new_leader_ms, b.new_leader_ms), (Some(700.0), Some(0.0)));
        assert_eq!((r.rejoined_ms, b.rejoined_ms), (Some(40.0), Some(0.0)));
        assert_eq!((b.left_ms, b.detection_ms), (None, None));
        // Read back from faults.jsonl and corrected again: unchanged.
        faults(&c, &mut records);
        assert_eq!(records[0].write_ms, Some(900.0));
        // A host without a measured clock: the write stays as measured, without a bound.
        let mut r = record("kill", &["h1"]);
        (r.start_clock, r.write_server, r.write_ms) =
            (Some("h1".into()), Some("h9".into()), Some(5.0));
        let mut records = [r];
        faults(&c, &mut records);
        assert_eq!(records[0].write_ms, Some(5.0));
        assert_eq!(records[0].clock_bounds.as_ref().unwrap().write_ms, None);
    }

    #[test]
    fn a_replica_rejoin_is_its_host_against_the_controller() {
        // The undo at controller 0, the replica knows a leader at host 1040 = reference 1000.
        let c = clocks(&[("h3", 40.0, 0.3)]);
        let mut r = record("kill", &["h3"]);
        (r.replica, r.rejoined_ms) = (Some(2), Some(1040.0));
        let mut records = [r];
        faults(&c, &mut records);
        assert_eq!(records[0].rejoined_ms, Some(1000.0));
        assert_eq!(
            records[0].clock_bounds.as_ref().unwrap().rejoined_ms,
            Some(0.3)
        );
    }

    #[test]
    fn bounds_above_five_percent_are_named() {
        let c = clocks(&[("h1", 0.0, 2.0), ("h2", 0.0, 1.5)]);
        let mut r = record("pause", &["h1"]);
        (r.start_clock, r.write_server, r.write_ms) =
            (Some("h1".into()), Some("h2".into()), Some(60.0));
        let mut records = [r];
        faults(&c, &mut records);
        let result = RunResult {
            label: "r1".into(),
            matrix: Vec::new(),
            repetition: 1,
            leader: None,
            zk_modes: Vec::new(),
            threads: None,
            outputs: Vec::new(),
            election: None,
            failure: None,
            delays: None,
            faults: records.to_vec(),
            clocks: Some(c),
        };
        let said = large_bounds(&result);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains("write 60.0 ± 3.50 ms: the clocks' bound is 5.8 % of it"),
            "{said:?}"
        );
        let mut fine = result.clone();
        fine.faults[0].write_ms = Some(70.0);
        assert!(large_bounds(&fine).is_empty(), "3.5 of 70 is 5 %");
    }
}
