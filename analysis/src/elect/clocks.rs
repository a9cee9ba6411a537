//! The replicas' times put on one reference clock. Each replica stamps its events (`wall`)
//! with its host's clock, and a kill's instant is the killed replica's host's clock; detection
//! and failover subtract times of two replicas, so two hosts' clocks. With the offset of every
//! replica's host, each time is mapped onto the reference before the analysis, and each
//! interval gets the bound the two clocks leave on it.

use orch_common::events::Record;

use super::{summarize_with, Kill, Summary};
use crate::clock::{self, HostOffset};

/// [`summarize_with`] on the reference clock: `clocks[i]` is the clock of replica `i`'s host.
/// A failure's `wall_ns` stays the failed replica's host's reading (it names a kill's signal);
/// every interval and `at_s` are on the reference, with their bounds.
///
/// # Panics
/// If a log or kill names a replica with no clock.
pub fn summarize_on_reference(
    logs: &[Vec<Record>],
    skipped_lines: usize,
    kills: &[Kill],
    clocks: &[HostOffset],
) -> Summary {
    let shifted: Vec<Vec<Record>> = logs
        .iter()
        .enumerate()
        .map(|(i, log)| {
            log.iter()
                .map(|r| Record {
                    wall: clocks[i].to_reference(r.wall),
                    ..r.clone()
                })
                .collect()
        })
        .collect();
    let kills: Vec<Kill> = kills
        .iter()
        .map(|k| Kill {
            node: k.node,
            wall: clocks[k.node].to_reference(k.wall),
        })
        .collect();
    let mut s = summarize_with(&shifted, skipped_lines, &kills);
    for f in &mut s.failures {
        let failed = &clocks[f.node];
        f.wall_ns = failed.from_reference(f.wall_ns);
        f.detection_bound_ms = f
            .detected_by
            .filter(|_| f.detection_ms.is_some())
            .map(|d| clock::bound_ms(failed, &clocks[d]));
        f.failover_bound_ms = f
            .new_leader
            .filter(|_| f.failover_ms.is_some())
            .map(|l| clock::bound_ms(failed, &clocks[l]));
    }
    s.clocks = clocks.to_vec();
    s
}

/// The clocks' lines of the text summary: each replica's host's offset, or that there were none.
pub(super) fn render(clocks: &[HostOffset]) -> String {
    if clocks.is_empty() {
        return "clocks: the hosts' own (offsets unknown)\n".to_string();
    }
    let mut t = "clocks (host - reference), by which the times above are corrected:\n".to_string();
    for (id, c) in clocks.iter().enumerate() {
        t += &format!(
            "  node {id} on {}: {:+.3} ± {:.3} ms\n",
            c.host, c.offset_ms, c.bound_ms
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use orch_common::events::{Event, Record, Role};

    use super::*;

    fn rec(id: usize, term: u64, wall_ms: u64, event: Event) -> Record {
        Record {
            mono_ns: wall_ms * 1_000_000,
            wall: wall_ms * 1_000_000,
            id,
            term,
            event,
        }
    }

    fn leader(id: usize, term: u64, wall_ms: u64) -> Record {
        let to = Role::Leader;
        rec(
            id,
            term,
            wall_ms,
            Event::Role {
                from: Role::Candidate,
                to,
            },
        )
    }

    fn suspect(id: usize, term: u64, wall_ms: u64) -> Record {
        let event = Event::ElectionTimeout {
            suspected_leader: Some(0),
            since_heartbeat_ms: None,
        };
        rec(id, term, wall_ms, event)
    }

    fn host(name: &str, offset_ms: f64, bound_ms: f64) -> HostOffset {
        HostOffset {
            host: name.into(),
            offset_ms,
            bound_ms,
        }
    }

    /// Replica 0 (leader) is killed at reference 1000 ms; replica 1 suspects it at reference
    /// 1080 ms and replica 2 leads at reference 1150 ms. Replica 1's host runs 40 ms ahead,
    /// replica 0's 5 ms behind, replica 2's on time.
    #[test]
    fn detection_and_failover_come_out_on_the_reference_with_their_bounds() {
        let clocks = [
            host("h0", -5.0, 0.25),
            host("h1", 40.0, 0.5),
            host("h2", 0.0, 0.125),
        ];
        let logs = vec![
            vec![leader(0, 3, 100 - 5)],
            vec![
                suspect(1, 3, 1080 + 40),
                rec(1, 4, 2500 + 40, Event::Leader { leader: Some(2) }),
            ],
            vec![
                leader(2, 4, 1150),
                rec(2, 4, 2500, Event::Leader { leader: Some(2) }),
            ],
        ];
        let kills = [Kill {
            node: 0,
            wall: (1000 - 5) * 1_000_000,
        }];
        let raw = summarize_with(&logs, 0, &kills);
        assert_eq!(
            raw.failures[0].detection_ms,
            Some(125.0),
            "the hosts' own clocks"
        );
        assert_eq!(raw.failures[0].detection_bound_ms, None);
        let s = summarize_on_reference(&logs, 0, &kills, &clocks);
        let f = &s.failures[0];
        assert_eq!(
            (f.node, f.how.as_str(), f.detected_by),
            (0, "killed", Some(1))
        );
        assert_eq!(
            (f.detection_ms, f.detection_bound_ms),
            (Some(80.0), Some(0.75))
        );
        assert_eq!(
            (f.new_leader, f.failover_ms, f.failover_bound_ms),
            (Some(2), Some(150.0), Some(0.375))
        );
        assert_eq!(
            f.wall_ns, kills[0].wall,
            "the kill's own reading, to match its fault"
        );
        assert_eq!(s.clocks, clocks);
        let text = super::super::render(&s);
        assert!(text.contains("detected after 80.0 ± 0.75 ms"), "{text}");
        assert!(text.contains("node 1 on h1: +40.000 ± 0.500 ms"), "{text}");
    }

    #[test]
    fn two_replicas_on_one_host_leave_no_clock_bound() {
        let clocks = [host("h0", 7.0, 0.5), host("h0", 7.0, 0.5)];
        let logs = vec![
            vec![
                leader(0, 1, 100),
                rec(0, 1, 1000, Event::Silent { heartbeats: 3 }),
            ],
            vec![
                suspect(1, 1, 1090),
                leader(1, 2, 1200),
                rec(1, 2, 3000, Event::Leader { leader: Some(1) }),
            ],
        ];
        let s = summarize_on_reference(&logs, 0, &[], &clocks);
        let f = &s.failures[0];
        assert_eq!(
            (f.detection_ms, f.detection_bound_ms),
            (Some(90.0), Some(0.0))
        );
        assert_eq!(
            (f.failover_ms, f.failover_bound_ms),
            (Some(200.0), Some(0.0))
        );
        assert_eq!(f.wall_ns, 1_000_000_000);
    }
}
