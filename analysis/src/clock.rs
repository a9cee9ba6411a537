//! Hosts' clocks against one reference clock (orch's controller): what a reading of a host's
//! clock is on the reference, and how far off an interval between two hosts' readings can be.
//! The offsets themselves are measured by `orch run` (docs/clocks.md).

use serde::{Deserialize, Serialize};

/// A run's bound on an interval counts as large above this share of the interval, %.
pub const LARGE_BOUND_PCT: f64 = 5.0;

/// One host's clock against the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostOffset {
    /// The host (inventory name). Two readings on one host share its clock's error, which
    /// cancels in their difference.
    pub host: String,
    /// The host's clock minus the reference clock, ms.
    pub offset_ms: f64,
    /// The true offset lies within `offset_ms ± bound_ms`.
    pub bound_ms: f64,
}

impl HostOffset {
    /// A reading of this host's clock (Unix ns) as the reference clock would have read.
    pub fn to_reference(&self, wall_ns: u64) -> u64 {
        shift(wall_ns, -self.offset_ns())
    }

    /// The inverse of [`HostOffset::to_reference`].
    pub fn from_reference(&self, reference_ns: u64) -> u64 {
        shift(reference_ns, self.offset_ns())
    }

    fn offset_ns(&self) -> i128 {
        (self.offset_ms * 1e6).round() as i128
    }
}

fn shift(ns: u64, by: i128) -> u64 {
    (ns as i128 + by).clamp(0, u64::MAX as i128) as u64
}

/// What to add, ms, to an interval read as `to`'s reading minus `from`'s to put both on the
/// reference clock.
pub fn correction_ms(from: &HostOffset, to: &HostOffset) -> f64 {
    from.offset_ms - to.offset_ms
}

/// How far off, ms, the corrected interval from a reading on `from` to one on `to` can be
/// because of the clocks: the sum of their bounds, or 0 on one host.
pub fn bound_ms(from: &HostOffset, to: &HostOffset) -> f64 {
    if from.host == to.host {
        0.0
    } else {
        from.bound_ms + to.bound_ms
    }
}

/// Whether `bound` is more than [`LARGE_BOUND_PCT`] of `interval` (both ms).
pub fn is_large(interval_ms: f64, bound_ms: f64) -> bool {
    bound_ms > interval_ms.abs() * LARGE_BOUND_PCT / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, offset_ms: f64, bound_ms: f64) -> HostOffset {
        HostOffset {
            host: name.into(),
            offset_ms,
            bound_ms,
        }
    }

    #[test]
    fn readings_move_onto_the_reference_and_back() {
        let ahead = host("h1", 40.25, 0.3);
        assert_eq!(ahead.to_reference(1_000_040_250_000), 1_000_000_000_000);
        assert_eq!(ahead.from_reference(1_000_000_000_000), 1_000_040_250_000);
        let behind = host("h2", -3.0, 0.1);
        assert_eq!(behind.to_reference(10_000_000), 13_000_000);
        assert_eq!(behind.to_reference(u64::MAX), u64::MAX);
        assert_eq!(ahead.to_reference(5), 0);
    }

    #[test]
    fn an_interval_across_two_hosts_is_corrected_by_their_offsets() {
        // The true interval is 100 ms: sent at reference 0 from h1 (+40 ms), seen on h2 (-3 ms).
        let (h1, h2) = (host("h1", 40.0, 0.3), host("h2", -3.0, 0.2));
        let raw = (100.0 - 3.0) - 40.0;
        assert_eq!(raw + correction_ms(&h1, &h2), 100.0);
        assert!((bound_ms(&h1, &h2) - 0.5).abs() < 1e-12);
        assert_eq!(bound_ms(&h1, &h1.clone()), 0.0);
        assert_eq!(correction_ms(&h2, &h2), 0.0);
    }

    #[test]
    fn a_bound_is_large_above_five_percent() {
        assert!(!is_large(100.0, 5.0));
        assert!(is_large(100.0, 5.01));
        assert!(is_large(-10.0, 0.6));
        assert!(is_large(0.0, 0.001));
    }
}
