//! Election timeouts: how long a follower waits for the leader before it suspects a failure.
//!
//! `raft` draws uniformly from fixed bounds. `jacobson` and `ci` derive the wait from the RTT
//! to the leader (half of it approximates the one-way heartbeat delay), add a margin covering
//! the heartbeat interval, and a rank-dependent safety margin so that well-placed replicas
//! time out, and therefore stand for election, first.

use orch_common::dist::normal_quantile;
use rand::{Rng, RngExt};

use super::config::{jacobson_bound_ms, Config, FdMode};
use crate::rtt::RttHistory;
pub use orch_common::events::Fallback;

/// One armed election timeout, as reported in `timeout_armed` events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Armed {
    /// Total wait, ms.
    pub ms: f64,
    /// Set when an RTT-based mode fell back to the raft bounds.
    pub fallback: Option<Fallback>,
    /// The safety-margin part of `ms`, for RTT-based modes.
    pub safety_margin_ms: Option<f64>,
    /// What an RTT-based mode computed from: the leader path's latest sample and the bound.
    pub rtt: Option<RttInputs>,
}

/// The RTT figures an RTT-based timeout was computed from, ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RttInputs {
    /// Latest srtt of the path to the leader.
    pub srtt_ms: f64,
    /// Latest rttvar of that path.
    pub rttvar_ms: f64,
    /// Jacobson: srtt + 4 rttvar (capped); CI: the upper end of the interval.
    pub bound_ms: f64,
    /// The heartbeat-interval margin added to half the bound.
    pub heartbeat_margin_ms: f64,
}

/// The timeout parameters of the config.
#[derive(Debug, Clone, Copy)]
pub struct TimeoutPolicy {
    /// Mode chosen by `fdMode`.
    pub mode: FdMode,
    lower_ms: f64,
    upper_ms: f64,
    heartbeat_margin_ms: f64,
    safety_lower_ms: f64,
    safety_step_ms: f64,
    confidence: f64,
}

impl TimeoutPolicy {
    /// Takes the relevant fields of the config.
    pub fn new(cfg: &Config) -> Self {
        Self {
            mode: cfg.fd_mode,
            lower_ms: cfg.timeout_lower_bound,
            upper_ms: cfg.timeout_upper_bound,
            heartbeat_margin_ms: cfg.heartbeat_interval_margin,
            safety_lower_ms: cfg.safety_margin_lower_bound,
            safety_step_ms: cfg.safety_margin_step_size,
            confidence: cfg.confidence_level,
        }
    }

    /// Draws a timeout. `leader_known` says whether a leader is known, `leader_path` is the RTT
    /// history to it, and `rank` this replica's position by penalty score (0 = best).
    pub fn draw(
        &self,
        leader_known: bool,
        leader_path: Option<&RttHistory>,
        rank: usize,
        rng: &mut impl Rng,
    ) -> Armed {
        let raft = |rng: &mut _, fallback| Armed {
            ms: uniform(rng, self.lower_ms, self.upper_ms),
            fallback,
            safety_margin_ms: None,
            rtt: None,
        };
        if self.mode == FdMode::Raft {
            return raft(rng, None);
        }
        if !leader_known {
            return raft(rng, Some(Fallback::NoLeader));
        }
        let Some(path) = leader_path.filter(|h| !h.is_empty()) else {
            return raft(rng, Some(Fallback::NoRttSamples));
        };
        let Some(latest) = path.latest() else {
            return raft(rng, Some(Fallback::NoRttSamples));
        };
        let rtt_bound_ms = match self.mode {
            FdMode::Jacobson => jacobson_bound_ms(latest.srtt_us, latest.rttvar_us),
            _ => match ci_upper_ms(path.srtt_ms(), self.confidence) {
                Some(v) => v,
                None => return raft(rng, Some(Fallback::TooFewRttSamples)),
            },
        };
        let safety = safety_margin(self.safety_lower_ms, self.safety_step_ms, rank, rng);
        Armed {
            ms: rtt_bound_ms / 2.0 + self.heartbeat_margin_ms + safety,
            fallback: None,
            safety_margin_ms: Some(safety),
            rtt: Some(RttInputs {
                srtt_ms: latest.srtt_us / 1000.0,
                rttvar_ms: latest.rttvar_us / 1000.0,
                bound_ms: rtt_bound_ms,
                heartbeat_margin_ms: self.heartbeat_margin_ms,
            }),
        }
    }
}

fn uniform(rng: &mut impl Rng, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        rng.random_range(lo..=hi)
    } else {
        lo
    }
}

/// Safety margin of a replica of rank `rank`: uniform in [lb + step*r, lb + step*(r+1)] ms.
pub fn safety_margin(lower_ms: f64, step_ms: f64, rank: usize, rng: &mut impl Rng) -> f64 {
    let lo = lower_ms + step_ms * rank as f64;
    uniform(rng, lo, lo + step_ms)
}

/// Upper bound of the two-sided confidence interval of the mean of `samples` at `confidence`
/// (normal approximation: mean + z * s / sqrt(n)); `None` with fewer than two samples.
pub fn ci_upper_ms(samples: impl Iterator<Item = f64> + Clone, confidence: f64) -> Option<f64> {
    let n = samples.clone().count();
    if n < 2 {
        return None;
    }
    let mean = samples.clone().sum::<f64>() / n as f64;
    let var = samples.map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let z = normal_quantile(0.5 + confidence / 2.0);
    Some(mean + z * (var / n as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtt::RttSample;
    use rand::SeedableRng;

    fn policy(mode: &str) -> TimeoutPolicy {
        let text = format!(
            "replica:\n  ips: [127.0.0.2]\n  fdMode: {mode}\n  heartbeatIntervalMargin: 100\n  \
             safetyMarginLowerBound: 10\n  safetyMarginStepSize: 20\n  confidenceLevel: 0.95\n"
        );
        TimeoutPolicy::new(&Config::parse(&text, "t").unwrap())
    }

    fn history(srtt_ms: &[f64], rttvar_ms: f64) -> RttHistory {
        let mut h = RttHistory::default();
        for &s in srtt_ms {
            h.push(RttSample {
                srtt_us: s * 1000.0,
                rttvar_us: rttvar_ms * 1000.0,
            });
        }
        h
    }

    #[test]
    fn raft_mode_is_uniform_in_bounds() {
        let p = policy("raft");
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let draws: Vec<f64> = (0..2000)
            .map(|_| p.draw(false, None, 0, &mut rng).ms)
            .collect();
        assert!(draws.iter().all(|&d| (150.0..=300.0).contains(&d)));
        assert!(draws.iter().any(|&d| d < 160.0) && draws.iter().any(|&d| d > 290.0));
    }

    #[test]
    fn safety_margin_bands_follow_rank() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        for rank in 0..5 {
            for _ in 0..200 {
                let m = safety_margin(10.0, 20.0, rank, &mut rng);
                let lo = 10.0 + 20.0 * rank as f64;
                assert!((lo..=lo + 20.0).contains(&m), "rank {rank}: {m}");
            }
        }
    }

    #[test]
    fn jacobson_uses_latest_sample_and_caps() {
        assert_eq!(jacobson_bound_ms(20_000.0, 5_000.0), 40.0);
        assert_eq!(
            jacobson_bound_ms(700_000.0, 100_000.0),
            orch_common::replica::JACOBSON_CAP_MS
        );
        let p = policy("Jacobson");
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let h = history(&[50.0, 20.0], 5.0);
        let a = p.draw(true, Some(&h), 1, &mut rng);
        let sm = a.safety_margin_ms.unwrap();
        assert!((30.0..=50.0).contains(&sm));
        assert!((a.ms - (20.0 + 100.0 + sm)).abs() < 1e-9, "{a:?}");
        assert_eq!(a.fallback, None);
    }

    #[test]
    fn rtt_modes_fall_back_to_raft_bounds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let empty = RttHistory::default();
        let one = history(&[10.0], 1.0);
        for (mode, known, path, why) in [
            ("Jacobson", false, None, Fallback::NoLeader),
            ("CI", true, None, Fallback::NoRttSamples),
            ("CI", true, Some(&empty), Fallback::NoRttSamples),
            ("CI", true, Some(&one), Fallback::TooFewRttSamples),
        ] {
            let a = policy(mode).draw(known, path, 0, &mut rng);
            assert_eq!(a.fallback, Some(why));
            assert!((150.0..=300.0).contains(&a.ms));
        }
    }

    #[test]
    fn ci_is_mean_plus_z_standard_error() {
        let xs = [10.0, 12.0, 14.0, 16.0];
        let mean = 13.0;
        let sd = (20.0f64 / 3.0).sqrt();
        let want = mean + 1.959_964 * sd / 2.0;
        let got = ci_upper_ms(xs.iter().copied(), 0.95).unwrap();
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
        let p = policy("CI");
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let a = p.draw(true, Some(&history(&xs, 0.0)), 0, &mut rng);
        let sm = a.safety_margin_ms.unwrap();
        assert!((a.ms - (got / 2.0 + 100.0 + sm)).abs() < 1e-9);
    }
}
