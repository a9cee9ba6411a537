//! Armed election timeouts per mode, next to the RTT the replicas measured to their leader and
//! the mode's formula applied to the medians of those measurements: whether the Jacobson and CI
//! timeouts really follow the network, or sit at their margins.

use orch_common::events::{Event, Record};
use orch_common::replica::{jacobson_bound_ms, FdMode};
use serde::Serialize;

use crate::stats::quantile;

/// The armed timeouts of one mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModeTimeouts {
    pub mode: FdMode,
    /// Timeouts armed from the mode's own rule (no fallback, not doubled after a vote).
    pub armed: usize,
    /// Timeouts that fell back to the raft bounds (no leader, no RTT samples yet).
    pub fallbacks: usize,
    pub median_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Median of the leader path's srtt the replicas measured when arming, ms.
    pub median_srtt_ms: Option<f64>,
    /// Median of that path's rttvar, ms.
    pub median_rttvar_ms: Option<f64>,
    /// The mode's formula at those medians (plus the median safety margin), ms: Jacobson
    /// `min(srtt + 4 rttvar, cap) / 2 + margin + safety`; CI `srtt / 2 + margin + safety` (the
    /// interval of the mean of up to 1000 samples is narrow around it).
    pub formula_ms: Option<f64>,
}

impl ModeTimeouts {
    /// One line for the text summary.
    pub fn render(&self) -> String {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        format!(
            "timeouts ({}): {} armed ({} fallbacks), median {} ms, p99 {} ms; leader srtt median {} ms, \
             rttvar {} ms -> formula {} ms",
            self.mode,
            self.armed,
            self.fallbacks,
            f(self.median_ms),
            f(self.p99_ms),
            f(self.median_srtt_ms),
            f(self.median_rttvar_ms),
            f(self.formula_ms)
        )
    }
}

/// Groups the `timeout_armed` events by mode (in the order raft, Jacobson, CI).
pub(super) fn per_mode(all: &[&Record]) -> Vec<ModeTimeouts> {
    [FdMode::Raft, FdMode::Jacobson, FdMode::Ci]
        .into_iter()
        .filter_map(|mode| one_mode(all, mode))
        .collect()
}

fn one_mode(all: &[&Record], mode: FdMode) -> Option<ModeTimeouts> {
    let mut ms = Vec::new();
    let (mut srtt, mut rttvar, mut safety, mut margin) = (vec![], vec![], vec![], vec![]);
    let mut fallbacks = 0;
    let mut seen = false;
    for r in all {
        let Event::TimeoutArmed {
            ms: armed,
            mode: m,
            fallback,
            safety_margin_ms,
            doubled,
            srtt_ms,
            rttvar_ms,
            heartbeat_margin_ms,
            ..
        } = &r.event
        else {
            continue;
        };
        if *m != mode {
            continue;
        }
        seen = true;
        if fallback.is_some() {
            fallbacks += 1;
            continue;
        }
        if *doubled {
            continue;
        }
        ms.push(*armed);
        srtt.extend(*srtt_ms);
        rttvar.extend(*rttvar_ms);
        safety.extend(*safety_margin_ms);
        margin.extend(*heartbeat_margin_ms);
    }
    if !seen {
        return None;
    }
    let (median_srtt_ms, median_rttvar_ms) = (quantile(&srtt, 0.5), quantile(&rttvar, 0.5));
    let bound = match mode {
        FdMode::Raft => None,
        FdMode::Jacobson => median_srtt_ms
            .zip(median_rttvar_ms)
            .map(|(s, v)| jacobson_bound_ms(s * 1000.0, v * 1000.0)),
        FdMode::Ci => median_srtt_ms,
    };
    let formula_ms = bound
        .zip(quantile(&margin, 0.5))
        .zip(quantile(&safety, 0.5))
        .map(|((b, m), s)| b / 2.0 + m + s);
    Some(ModeTimeouts {
        mode,
        armed: ms.len(),
        fallbacks,
        median_ms: quantile(&ms, 0.5),
        p99_ms: quantile(&ms, 0.99),
        median_srtt_ms,
        median_rttvar_ms,
        formula_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use orch_common::events::Fallback;

    fn armed(mode: FdMode, ms: f64, rtt: Option<(f64, f64)>, fallback: Option<Fallback>) -> Record {
        Record {
            mono_ns: 0,
            wall: 0,
            id: 1,
            term: 1,
            event: Event::TimeoutArmed {
                ms,
                mode,
                fallback,
                safety_margin_ms: rtt.map(|_| 10.0),
                rank: 0,
                doubled: false,
                srtt_ms: rtt.map(|r| r.0),
                rttvar_ms: rtt.map(|r| r.1),
                rtt_bound_ms: None,
                heartbeat_margin_ms: rtt.map(|_| 100.0),
            },
        }
    }

    #[test]
    fn jacobson_formula_at_the_medians() {
        let records = [
            armed(FdMode::Jacobson, 150.0, Some((30.0, 5.0)), None),
            armed(FdMode::Jacobson, 160.0, Some((40.0, 5.0)), None),
            armed(FdMode::Jacobson, 170.0, Some((50.0, 5.0)), None),
            armed(FdMode::Jacobson, 200.0, None, Some(Fallback::NoLeader)),
        ];
        let all: Vec<&Record> = records.iter().collect();
        let m = &per_mode(&all)[0];
        assert_eq!((m.mode, m.armed, m.fallbacks), (FdMode::Jacobson, 3, 1));
        assert_eq!(m.median_ms, Some(160.0));
        assert_eq!(m.median_srtt_ms, Some(40.0));
        // (40 + 4*5) / 2 + 100 + 10
        assert_eq!(m.formula_ms, Some(140.0));
    }

    #[test]
    fn raft_has_no_formula_and_absent_modes_are_left_out() {
        let records = [armed(FdMode::Raft, 210.0, None, None)];
        let all: Vec<&Record> = records.iter().collect();
        let modes = per_mode(&all);
        assert_eq!(modes.len(), 1);
        assert_eq!(
            (modes[0].median_ms, modes[0].formula_ms),
            (Some(210.0), None)
        );
    }
}
