//! Packets waiting for their release time, and what happened to them per rule.
//!
//! One heap ordered by (release time, arrival): with a constant delay the release times of a
//! rule only grow, so its packets leave in arrival order; with jitter a packet drawn a shorter
//! delay overtakes earlier ones, which is what netem does too.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::queue::Packet;

/// A packet in the hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    release_ns: u64,
    order: u64,
    queue: u16,
    id: u32,
    arrived_ns: u64,
}

/// A packet whose time has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub packet: Packet,
    pub release_ns: u64,
    /// The delay it was drawn.
    pub added_ns: u64,
}

/// The packets held, earliest release first.
#[derive(Default)]
pub struct Hold {
    heap: BinaryHeap<Reverse<Held>>,
    arrivals: u64,
}

impl Hold {
    /// Holds `packet`, which arrived at `arrived_ns`, until `release_ns`.
    pub fn push(&mut self, packet: Packet, arrived_ns: u64, release_ns: u64) {
        self.arrivals += 1;
        self.heap.push(Reverse(Held {
            release_ns,
            order: self.arrivals,
            queue: packet.queue,
            id: packet.id,
            arrived_ns,
        }));
    }

    /// When the next packet is due.
    pub fn next_release(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(h)| h.release_ns)
    }

    /// Removes the next packet if it is due at `now_ns`.
    pub fn pop_due(&mut self, now_ns: u64) -> Option<Due> {
        if self.next_release()? > now_ns {
            return None;
        }
        let Reverse(h) = self.heap.pop()?;
        Some(Due {
            packet: Packet {
                queue: h.queue,
                id: h.id,
            },
            release_ns: h.release_ns,
            added_ns: h.release_ns - h.arrived_ns,
        })
    }

    /// Removes every packet regardless of time (at exit).
    pub fn drain(&mut self) -> Vec<Packet> {
        let mut out: Vec<Held> = self.heap.drain().map(|Reverse(h)| h).collect();
        out.sort();
        out.into_iter()
            .map(|h| Packet {
                queue: h.queue,
                id: h.id,
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

/// Counters of one rule.
pub struct Counters {
    pub delayed: u64,
    pub dropped: u64,
    added_ns: u128,
    /// How late each verdict went out after its release time, ns.
    late: Histogram<u64>,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            delayed: 0,
            dropped: 0,
            added_ns: 0,
            late: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
        }
    }
}

/// The counters as printed.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub delayed: u64,
    pub dropped: u64,
    /// Mean of the delays drawn for the released packets.
    pub mean_added_ms: f64,
    /// How late verdicts were, beyond the drawn delay: our own scheduling error.
    pub late_mean_us: f64,
    pub late_p99_us: f64,
    pub late_max_us: f64,
}

impl Counters {
    /// A packet released `late_ns` after its release time, having been held for `added_ns`.
    pub fn released(&mut self, added_ns: u64, late_ns: u64) {
        self.delayed += 1;
        self.added_ns += u128::from(added_ns);
        self.late.saturating_record(late_ns.max(1));
    }

    pub fn summary(&self) -> Summary {
        let us = |ns: f64| ns.round() / 1e3;
        Summary {
            delayed: self.delayed,
            dropped: self.dropped,
            mean_added_ms: if self.delayed == 0 {
                0.0
            } else {
                (self.added_ns as f64 / self.delayed as f64 / 1e6 * 1e3).round() / 1e3
            },
            late_mean_us: us(self.late.mean()),
            late_p99_us: us(self.late.value_at_quantile(0.99) as f64),
            late_max_us: us(self.late.max() as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: u32) -> Packet {
        Packet { queue: 1, id }
    }

    #[test]
    fn releases_in_time_order_and_keeps_arrival_order_on_ties() {
        let mut h = Hold::default();
        h.push(p(1), 0, 100);
        h.push(p(2), 10, 100);
        h.push(p(3), 20, 50);
        assert_eq!(h.next_release(), Some(50));
        assert_eq!(h.pop_due(49), None);
        let order: Vec<(u32, u64)> = std::iter::from_fn(|| h.pop_due(200))
            .map(|d| (d.packet.id, d.added_ns))
            .collect();
        assert_eq!(order, vec![(3, 30), (1, 100), (2, 90)]);
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn summary_reports_means_in_readable_units() {
        let mut c = Counters::default();
        c.released(20_000_000, 40_000);
        c.released(22_000_000, 60_000);
        let s = c.summary();
        assert_eq!(s.delayed, 2);
        assert!((s.mean_added_ms - 21.0).abs() < 1e-9);
        assert!((s.late_mean_us - 50.0).abs() < 0.1, "{}", s.late_mean_us);
    }
}
