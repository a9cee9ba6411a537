//! Penalty scores and petitions: how replicas agree which of them is best placed to lead.
//!
//! Each replica scores its own placement from its latencies to the others (lower is better),
//! broadcasts the score, and ranks everyone by it. A follower far from the leader petitions the
//! best-ranked replica, which takes over once a majority asked and it is closer to them.

use std::collections::BTreeMap;

pub use orch_common::events::Rejection;

/// Weight of the excess latency over [`PENALTY_THRESHOLD_MS`].
pub const PENALTY_WEIGHT: f64 = 1.0;
/// Latencies above this (ms) are penalised extra.
pub const PENALTY_THRESHOLD_MS: f64 = 100.0;
/// Slack (ms) when a petitioned replica compares its latency to a petitioner with the
/// petitioner's latency to the leader, so equal paths do not block a petition.
pub const PETITION_MARGIN_MS: f64 = 5.0;

/// Penalty score: mean over peers j of L_j + w * max(0, L_j - T); `None` without latencies.
pub fn penalty_score(latencies_ms: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = latencies_ms.fold((0.0, 0usize), |(sum, n), l| {
        (
            sum + l + PENALTY_WEIGHT * (l - PENALTY_THRESHOLD_MS).max(0.0),
            n + 1,
        )
    });
    (n > 0).then(|| sum / n as f64)
}

/// Rank of `me` among all replicas by score (0 = lowest score). Unknown scores rank last and
/// ties go to the lower id; while its own score is unknown a replica takes the worst rank.
pub fn rank(scores: &[Option<f64>], me: usize) -> usize {
    let Some(mine) = scores[me] else {
        return scores.len().saturating_sub(1);
    };
    scores
        .iter()
        .enumerate()
        .filter(|&(j, s)| match s {
            Some(s) => *s < mine || (*s == mine && j < me),
            None => false,
        })
        .count()
}

/// The replica with the lowest known score other than `leader` (ties to the lower id).
pub fn best_replacement(scores: &[Option<f64>], leader: usize) -> Option<usize> {
    scores
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != leader)
        .filter_map(|(j, s)| s.map(|s| (j, s)))
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
        .map(|(j, _)| j)
}

/// Petitions collected for this replica in one term against one leader.
#[derive(Debug, Clone, Default)]
pub struct Petitions {
    term: u64,
    leader: usize,
    latency_to_leader_ms: BTreeMap<usize, f64>,
}

impl Petitions {
    /// Records that `petitioner` (latency `latency_ms` to `leader`) asks us to lead; petitions
    /// of an older term or against another leader are discarded. Returns the count held.
    pub fn record(
        &mut self,
        term: u64,
        leader: usize,
        petitioner: usize,
        latency_ms: f64,
    ) -> usize {
        if term != self.term || leader != self.leader {
            self.term = term;
            self.leader = leader;
            self.latency_to_leader_ms.clear();
        }
        self.latency_to_leader_ms.insert(petitioner, latency_ms);
        self.latency_to_leader_ms.len()
    }

    /// Petitioners held, in id order.
    pub fn petitioners(&self) -> Vec<usize> {
        self.latency_to_leader_ms.keys().copied().collect()
    }

    /// Checks that our latency to every petitioner (`my_latency_ms(p)`) is not worse than the
    /// petitioner's to the leader, plus [`PETITION_MARGIN_MS`].
    pub fn verify(&self, my_latency_ms: impl Fn(usize) -> Option<f64>) -> Result<(), Rejection> {
        for (&petitioner, &theirs_ms) in &self.latency_to_leader_ms {
            let mine_ms =
                my_latency_ms(petitioner).ok_or(Rejection::UnknownLatency { petitioner })?;
            if mine_ms > theirs_ms + PETITION_MARGIN_MS {
                return Err(Rejection::Farther {
                    petitioner,
                    mine_ms,
                    theirs_ms,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_penalises_latency_above_threshold() {
        assert_eq!(penalty_score([].into_iter()), None);
        assert_eq!(penalty_score([10.0, 30.0].into_iter()), Some(20.0));
        // 150 ms costs 150 + (150 - 100) = 200; mean with 0 is 100.
        assert_eq!(penalty_score([150.0, 0.0].into_iter()), Some(100.0));
    }

    #[test]
    fn rank_orders_by_score_with_unknowns_last() {
        let scores = [Some(30.0), None, Some(10.0), Some(30.0), Some(20.0)];
        assert_eq!(rank(&scores, 2), 0);
        assert_eq!(rank(&scores, 4), 1);
        assert_eq!(rank(&scores, 0), 2);
        assert_eq!(rank(&scores, 3), 3);
        assert_eq!(rank(&scores, 1), 4);
    }

    #[test]
    fn replacement_is_lowest_score_except_leader() {
        let scores = [Some(30.0), None, Some(10.0), Some(10.0), Some(20.0)];
        assert_eq!(best_replacement(&scores, 0), Some(2));
        assert_eq!(best_replacement(&scores, 2), Some(3));
        assert_eq!(best_replacement(&[Some(1.0), None], 0), None);
    }

    #[test]
    fn petitions_reset_on_new_term_or_leader_and_verify_latency() {
        let mut p = Petitions::default();
        assert_eq!(p.record(3, 0, 1, 80.0), 1);
        assert_eq!(p.record(3, 0, 2, 60.0), 2);
        assert_eq!(p.record(3, 0, 2, 61.0), 2);
        assert_eq!(p.record(4, 0, 3, 70.0), 1);
        assert_eq!(p.record(4, 0, 4, 70.0), 2);
        assert_eq!(p.petitioners(), vec![3, 4]);
        assert_eq!(p.verify(|_| Some(74.0)), Ok(()));
        assert_eq!(
            p.verify(|j| (j == 3).then_some(10.0)),
            Err(Rejection::UnknownLatency { petitioner: 4 })
        );
        assert_eq!(
            p.verify(|_| Some(90.0)),
            Err(Rejection::Farther {
                petitioner: 3,
                mine_ms: 90.0,
                theirs_ms: 70.0
            })
        );
    }
}
