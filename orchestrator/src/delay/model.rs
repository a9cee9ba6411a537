//! What the declared delays give as emulated, in numbers: the distribution of one direction's
//! delay (netem's jitter distributions from `orch_common::dist`, cut at zero as netem and the
//! emulator cut them, pareto capped at its table's end) and of a pair's round trip (the
//! testbed's own base round trip plus one independent draw of each direction).
//!
//! The base enters as one number, its median, not as a distribution: a testbed whose own round
//! trips have a tail (a second delay, a congested switch) would otherwise pass that tail into the
//! model and certify it.
//!
//! Everything is computed on an even grid of quantiles, so the model is exact up to the grid's
//! resolution and the same on every run: no random numbers.

use orch_common::dist;

use super::spec::Link;

/// Quantiles per direction in a round trip's model: 800 x 800 sums.
const GRID: usize = 800;
/// Quantiles for one direction's moments (the truncation check).
const FINE: usize = 100_000;

/// How far cutting draws at zero moves a link's mean and standard deviation, relative to what
/// its jitter distribution alone gives (`delay + jitter * t` without the cut).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Truncation {
    /// The share of draws below zero, sent at once.
    pub below_zero: f64,
    pub declared_mean_ms: f64,
    pub declared_sd_ms: f64,
    pub realised_mean_ms: f64,
    pub realised_sd_ms: f64,
}

impl Truncation {
    pub fn of(link: &Link) -> Truncation {
        let uncut: Vec<f64> = grid(FINE)
            .map(|u| link.delay_ms + link.jitter_ms * dist::quantile(link.distribution, u))
            .collect();
        let cut: Vec<f64> = uncut.iter().map(|v| v.max(0.0)).collect();
        let (declared_mean_ms, declared_sd_ms) = moments(&uncut);
        let (realised_mean_ms, realised_sd_ms) = moments(&cut);
        let below = uncut.iter().filter(|v| **v < 0.0).count();
        Truncation {
            below_zero: if link.jitter_ms == 0.0 {
                0.0
            } else {
                below as f64 / FINE as f64
            },
            declared_mean_ms,
            declared_sd_ms,
            realised_mean_ms,
            realised_sd_ms,
        }
    }

    /// The larger of the relative changes of mean and standard deviation (0.08 is 8 %); a
    /// declared mean at or below zero with any draw cut counts as infinitely changed.
    pub fn change(&self) -> f64 {
        if self.below_zero == 0.0 {
            return 0.0;
        }
        let rel = |declared: f64, realised: f64| {
            if declared <= 0.0 {
                f64::INFINITY
            } else {
                (realised - declared).abs() / declared
            }
        };
        rel(self.declared_mean_ms, self.realised_mean_ms)
            .max(rel(self.declared_sd_ms, self.realised_sd_ms))
    }
}

/// A pair's round trip as the emulation makes it: sorted draws of forward + back, plus the base.
#[derive(Debug, Clone)]
pub struct RoundTrip {
    sorted: Vec<f64>,
}

impl RoundTrip {
    /// `base_ms`: the median round trip before any delay. A missing direction adds 0.
    pub fn new(forward: Option<&Link>, back: Option<&Link>, base_ms: f64) -> RoundTrip {
        let one_way = |l: Option<&Link>| -> Vec<f64> {
            match l {
                Some(l) => grid(GRID)
                    .map(|u| dist::one_way_ms(l.distribution, l.delay_ms, l.jitter_ms, u))
                    .collect(),
                None => vec![0.0],
            }
        };
        let (f, b) = (one_way(forward), one_way(back));
        let mut sorted = Vec::with_capacity(f.len() * b.len());
        for x in &f {
            sorted.extend(b.iter().map(|y| base_ms + x + y));
        }
        sorted.sort_by(f64::total_cmp);
        RoundTrip { sorted }
    }

    /// The `q` quantile (0..=1).
    pub fn quantile(&self, q: f64) -> f64 {
        quantile_of_sorted(&self.sorted, q)
    }

    pub fn mean_sd(&self) -> (f64, f64) {
        moments(&self.sorted)
    }
}

/// The `q` quantile of sorted values, interpolated between neighbours (Hyndman and Fan's type 7,
/// what numpy and R give by default).
pub fn quantile_of_sorted(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let h = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let (lo, frac) = (h.floor() as usize, h.fract());
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + frac * (sorted[hi] - sorted[lo])
        }
    }
}

/// Mean and (population) standard deviation.
pub fn moments(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// `n` quantile levels evenly inside (0, 1).
fn grid(n: usize) -> impl Iterator<Item = f64> {
    (0..n).map(move |i| (i as f64 + 0.5) / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delay::Distribution;

    fn link(delay_ms: f64, jitter_ms: f64, distribution: Distribution) -> Link {
        Link {
            delay_ms,
            jitter_ms,
            distribution,
            loss_pct: 0.0,
        }
    }

    #[test]
    fn truncation_of_the_seeds_profiles() {
        // 100 +- 100 ms normal: 15.9 % of draws below zero, the mean moves by 8.3 %.
        let t = Truncation::of(&link(100.0, 100.0, Distribution::Normal));
        assert!((t.below_zero - 0.1587).abs() < 1e-3, "{t:?}");
        assert!((t.realised_mean_ms - 108.33).abs() < 0.05, "{t:?}");
        assert!(t.change() > 0.08, "{t:?}");
        // 2 +- 1 ms normal: under 0.5 % on the mean, 2.0 % on the standard deviation.
        let t = Truncation::of(&link(2.0, 1.0, Distribution::Normal));
        assert!((t.realised_mean_ms - 2.0) / 2.0 < 0.005, "{t:?}");
        assert!((t.change() - 0.020).abs() < 0.001, "{t:?}");
        // 5 +- 50 ms uniform: a mean of about 15 ms.
        let t = Truncation::of(&link(5.0, 50.0, Distribution::Uniform));
        assert!((t.realised_mean_ms - 15.125).abs() < 0.05, "{t:?}");
        // Pareto's smallest draw is 2/3 of a jitter below the delay.
        assert_eq!(
            Truncation::of(&link(20.0, 30.0, Distribution::Pareto)).change(),
            0.0
        );
        assert!(Truncation::of(&link(0.0, 20.0, Distribution::Pareto))
            .change()
            .is_infinite());
    }

    #[test]
    fn a_round_trip_adds_base_and_both_directions() {
        let fixed = RoundTrip::new(
            Some(&link(10.0, 0.0, Distribution::Uniform)),
            Some(&link(5.0, 0.0, Distribution::Uniform)),
            0.5,
        );
        assert_eq!((fixed.quantile(0.0), fixed.quantile(1.0)), (15.5, 15.5));
        // 15 +- 5 ms normal both ways: mean 30, sd 5 * sqrt(2).
        let normal = link(15.0, 5.0, Distribution::Normal);
        let rt = RoundTrip::new(Some(&normal), Some(&normal), 0.0);
        let (mean, sd) = rt.mean_sd();
        assert!((mean - 30.0).abs() < 0.01, "{mean}");
        assert!((sd - 50f64.sqrt()).abs() < 0.05, "{sd}");
        assert!((rt.quantile(0.9) - (30.0 + 1.2816 * 50f64.sqrt())).abs() < 0.1);
        // One direction only.
        let one = RoundTrip::new(Some(&normal), None, 0.0);
        assert!((one.quantile(0.5) - 15.0).abs() < 0.05);
    }

    #[test]
    fn quantiles_interpolate() {
        let xs = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_of_sorted(&xs, 0.0), 1.0);
        assert_eq!(quantile_of_sorted(&xs, 0.5), 2.5);
        assert_eq!(quantile_of_sorted(&xs, 1.0), 4.0);
        assert!(quantile_of_sorted(&[], 0.5).is_nan());
    }
}
