//! What an experiment's replica event logs say about leadership.
//!
//! Replaces the prototype's `count_leader.py`, `detection_time_analysis.py` and
//! `extract_failure.py`: leaders per term, elections, failure detection and failover, false
//! positives, petitions and armed timeouts, computed from the structured events of all replicas
//! (aligned by `wall`). orch runs it over the logs of every run; `orch-node elect-summary`
//! prints it for logs at hand.

mod timeouts;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use orch_common::events::{ElectionReason, Event, Record, Role};
use serde::Serialize;

pub use timeouts::ModeTimeouts;

/// A replica whose log ends without `exit` counts as failed only if other logs go on this long.
const LOG_END_GRACE_NS: u64 = 1_000_000_000;

/// One term's leader(s); more than one would be a safety violation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TermLeaders {
    /// Term number.
    pub term: u64,
    /// Replicas that became leader in this term.
    pub leaders: Vec<usize>,
}

/// A leader that stopped, and how long the others took to notice and replace it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// The failed leader.
    pub node: usize,
    /// Its term.
    pub term: u64,
    /// `silent` (failure injection), `killed` (a fault of `orch run` sent SIGKILL; time of the
    /// signal) or `log_ended` (killed otherwise; time of its last event).
    pub how: String,
    /// When, seconds since the first event of the experiment.
    pub at_s: f64,
    /// When, Unix ns.
    pub wall_ns: u64,
    /// Failure to the first election timeout suspecting it, ms.
    pub detection_ms: Option<f64>,
    /// The next leader elected in a later term.
    pub new_leader: Option<usize>,
    /// That leader's term.
    pub new_term: Option<u64>,
    /// Failure to the new leader, ms.
    pub failover_ms: Option<f64>,
}

/// Everything the analysis reports about one experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Log files read.
    pub files: usize,
    /// Events read.
    pub events: usize,
    /// Lines that were not events (e.g. a line cut short by a kill).
    pub skipped_lines: usize,
    /// From the first event to the last, s.
    pub duration_s: f64,
    /// From the first replica's start to the first leader, ms.
    pub first_leader_ms: Option<f64>,
    /// Leaders by term.
    pub leaders: Vec<TermLeaders>,
    /// Terms in which more than one replica became leader (a safety violation: must be 0).
    pub terms_with_several_leaders: usize,
    /// The highest term any replica reached.
    pub max_term: u64,
    /// Elections started, all replicas together.
    pub elections: u64,
    /// Of which started by petitions.
    pub petition_elections: u64,
    /// Election timeouts that suspected a known leader.
    pub suspicions: u64,
    /// Suspicions of a leader that had not failed at that time.
    pub false_positives: u64,
    /// Time with a live leader (elected, not failed), s.
    pub live_leader_s: f64,
    /// `false_positives` per minute of `live_leader_s`.
    pub false_positives_per_min: Option<f64>,
    /// Leader failures and their detection.
    pub failures: Vec<Failure>,
    /// Petitions sent, all replicas together.
    pub petitions_sent: u64,
    /// Petition majorities that led to an election.
    pub petitions_accepted: u64,
    /// The leader of the highest term at the end.
    pub final_leader: Option<usize>,
    /// The replica whose last broadcast penalty score was the lowest.
    pub lowest_penalty: Option<usize>,
    /// Last penalty score of every replica that sent one, by id.
    pub penalty_scores: BTreeMap<usize, f64>,
    /// Armed election timeouts per mode, next to the RTT the replicas measured to the leader.
    pub timeouts: Vec<ModeTimeouts>,
    /// Datagrams dropped on receipt, all replicas together.
    pub dropped: u64,
}

impl Summary {
    /// Why this experiment must count as failed, if it must: two leaders in one term.
    pub fn safety_violation(&self) -> Option<String> {
        let bad: Vec<String> = self
            .leaders
            .iter()
            .filter(|t| t.leaders.len() > 1)
            .map(|t| format!("term {} had leaders {:?}", t.term, t.leaders))
            .collect();
        (!bad.is_empty()).then(|| format!("SAFETY VIOLATION: {}", bad.join("; ")))
    }
}

/// A replica killed from outside at a known instant (a fault of `orch run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kill {
    pub node: usize,
    /// When the signal was sent, Unix ns (the replica host's clock).
    pub wall: u64,
}

/// Reads the event logs of one experiment (one file per replica) and summarizes them.
pub fn summarize_files(files: &[PathBuf]) -> Result<Summary, String> {
    summarize_files_with(files, &[])
}

/// [`summarize_files`], with the replicas that were killed from outside and when.
pub fn summarize_files_with(files: &[PathBuf], kills: &[Kill]) -> Result<Summary, String> {
    if files.is_empty() {
        return Err(
            "no event logs given: pass the files written by `orch-node elect` (eventLog)".into(),
        );
    }
    let mut logs = Vec::new();
    let mut skipped = 0;
    for path in files {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read event log {}: {e}", path.display()))?;
        let (records, bad) = parse(&text);
        if records.is_empty() {
            return Err(format!(
                "{} holds no `orch-node elect` events: pass the eventLog files of the replicas",
                path.display()
            ));
        }
        skipped += bad;
        logs.push(records);
    }
    Ok(summarize_with(&logs, skipped, kills))
}

/// Parses JSON lines into records; returns them and the number of other non-empty lines.
pub fn parse(text: &str) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut bad = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Record>(line) {
            Ok(r) => records.push(r),
            Err(_) => bad += 1,
        }
    }
    (records, bad)
}

/// Computes the summary of one experiment: one record list per replica log.
pub fn summarize(logs: &[Vec<Record>], skipped_lines: usize) -> Summary {
    summarize_with(logs, skipped_lines, &[])
}

/// [`summarize`], with the replicas killed from outside: each kill of a replica that was
/// leader then is a failure at the signal's instant. A replica's log may hold several
/// incarnations (killed, started again), one after the other.
pub fn summarize_with(logs: &[Vec<Record>], skipped_lines: usize, kills: &[Kill]) -> Summary {
    let mut all: Vec<&Record> = logs.iter().flatten().collect();
    all.sort_by_key(|r| r.wall);
    let origin = all.first().map_or(0, |r| r.wall);
    let last_wall = all.last().map_or(0, |r| r.wall);
    let ms_since = |from: u64, to: u64| to.saturating_sub(from) as f64 / 1e6;

    let mut leaders: BTreeMap<u64, BTreeSet<usize>> = BTreeMap::new();
    let (mut elections, mut petition_elections) = (0, 0);
    let (mut petitions_sent, mut petitions_accepted) = (0, 0);
    let mut dropped_by_node: HashMap<usize, u64> = HashMap::new();
    let mut penalty_scores = BTreeMap::new();
    let mut first_leader = None;
    for r in &all {
        match &r.event {
            Event::Role {
                to: Role::Leader, ..
            } => {
                leaders.entry(r.term).or_default().insert(r.id);
                first_leader.get_or_insert(r.wall);
            }
            Event::ElectionStarted { reason } => {
                elections += 1;
                if *reason == ElectionReason::Petition {
                    petition_elections += 1;
                }
            }
            Event::PetitionSent { .. } => petitions_sent += 1,
            Event::PetitionAccepted { .. } => petitions_accepted += 1,
            Event::Penalty { score, .. } => {
                penalty_scores.insert(r.id, *score);
            }
            Event::Stats(s) | Event::Exit { stats: s, .. } => {
                let d = dropped_by_node.entry(r.id).or_default();
                *d = (*d).max(s.dropped);
            }
            _ => {}
        }
    }

    let failed_at = failures_of(logs, last_wall, kills);
    let mut failures: Vec<Failure> = failed_at
        .iter()
        .map(|&(node, term, wall, how)| {
            let elected = all.iter().find(|r| {
                r.wall > wall && r.term > term && matches!(r.event, Event::Role { to: Role::Leader, .. })
            });
            // A suspicion after the replica started again is of its next incarnation.
            let restarted = all
                .iter()
                .find(|r| r.id == node && r.wall > wall && matches!(r.event, Event::Start { .. }))
                .map_or(u64::MAX, |r| r.wall);
            let suspected = all.iter().find(|r| {
                r.wall > wall
                    && r.wall < restarted
                    && matches!(r.event, Event::ElectionTimeout { suspected_leader: Some(l), .. } if l == node)
            });
            Failure {
                node,
                term,
                how: how.to_string(),
                at_s: ms_since(origin, wall) / 1e3,
                wall_ns: wall,
                detection_ms: suspected.map(|r| ms_since(wall, r.wall)),
                new_leader: elected.map(|r| r.id),
                new_term: elected.map(|r| r.term),
                failover_ms: elected.map(|r| ms_since(wall, r.wall)),
            }
        })
        .collect();
    failures.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));

    let mut suspicions = 0;
    let mut false_positives = 0;
    for r in &all {
        if let Event::ElectionTimeout {
            suspected_leader: Some(l),
            ..
        } = r.event
        {
            suspicions += 1;
            let failed_before = failed_at.iter().any(|&(n, _, w, _)| n == l && w <= r.wall);
            if !failed_before {
                false_positives += 1;
            }
        }
    }

    // A leader is live from the first election to the end, except between each failure and
    // its replacement (or the end, if none came).
    let live_leader_s = first_leader.map_or(0.0, |first| {
        let outage: f64 = failures
            .iter()
            .map(|f| {
                f.failover_ms
                    .unwrap_or_else(|| ms_since(origin, last_wall) - f.at_s * 1e3)
            })
            .sum();
        ((ms_since(first, last_wall) - outage) / 1e3).max(0.0)
    });
    let final_leader = leaders
        .iter()
        .next_back()
        .and_then(|(_, l)| l.iter().next().copied());
    let lowest_penalty = penalty_scores
        .iter()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(&id, _)| id);

    Summary {
        files: logs.len(),
        events: all.len(),
        skipped_lines,
        duration_s: ms_since(origin, last_wall) / 1e3,
        first_leader_ms: first_leader.map(|w| ms_since(origin, w)),
        terms_with_several_leaders: leaders.values().filter(|l| l.len() > 1).count(),
        max_term: all.iter().map(|r| r.term).max().unwrap_or(0),
        leaders: leaders
            .into_iter()
            .map(|(term, l)| TermLeaders {
                term,
                leaders: l.into_iter().collect(),
            })
            .collect(),
        elections,
        petition_elections,
        suspicions,
        false_positives,
        live_leader_s,
        false_positives_per_min: (live_leader_s > 0.0)
            .then(|| false_positives as f64 / (live_leader_s / 60.0)),
        failures,
        petitions_sent,
        petitions_accepted,
        final_leader,
        lowest_penalty,
        penalty_scores,
        timeouts: timeouts::per_mode(&all),
        dropped: dropped_by_node.values().sum(),
    }
}

/// (node, term, wall ns, how) of every leader that went silent, was killed while leader, or
/// whose log ended while it was leader and other replicas kept running.
fn failures_of(
    logs: &[Vec<Record>],
    last_wall: u64,
    kills: &[Kill],
) -> Vec<(usize, u64, u64, &'static str)> {
    let mut out = Vec::new();
    for k in kills {
        let Some(log) = logs.get(k.node) else {
            continue;
        };
        let last_role = log
            .iter()
            .filter(|r| r.wall <= k.wall && matches!(r.event, Event::Role { .. }))
            .max_by_key(|r| r.wall);
        if let Some(r) = last_role.filter(|r| {
            matches!(
                r.event,
                Event::Role {
                    to: Role::Leader,
                    ..
                }
            )
        }) {
            out.push((k.node, r.term, k.wall, "killed"));
        }
    }
    for log in logs {
        for r in log {
            if let Event::Silent { .. } = r.event {
                out.push((r.id, r.term, r.wall, "silent"));
            }
        }
        let Some(last) = log.iter().max_by_key(|r| r.wall) else {
            continue;
        };
        let exited = log
            .iter()
            .any(|r| matches!(r.event, Event::Exit { .. } | Event::Silent { .. }));
        let leader_at_end = log
            .iter()
            .filter(|r| matches!(r.event, Event::Role { .. }))
            .max_by_key(|r| r.wall)
            .is_some_and(|r| {
                matches!(
                    r.event,
                    Event::Role {
                        to: Role::Leader,
                        ..
                    }
                )
            });
        let killed = kills
            .iter()
            .any(|k| k.node == last.id && k.wall >= last.wall);
        if !exited && !killed && leader_at_end && last_wall >= last.wall + LOG_END_GRACE_NS {
            out.push((last.id, last.term, last.wall, "log_ended"));
        }
    }
    out
}

/// The human-readable form.
pub fn render(s: &Summary) -> String {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
    let mut t = format!(
        "{} logs, {} events over {:.1} s{}\n",
        s.files,
        s.events,
        s.duration_s,
        if s.skipped_lines > 0 {
            format!(" ({} lines skipped: not events)", s.skipped_lines)
        } else {
            String::new()
        }
    );
    if let Some(v) = s.safety_violation() {
        t += &format!("!! {v}\n");
    }
    t += &format!("first leader after {}\n", opt(s.first_leader_ms));
    t += "leaders per term:\n";
    for tl in &s.leaders {
        let ids: Vec<String> = tl.leaders.iter().map(usize::to_string).collect();
        t += &format!("  term {:>4}: node {}\n", tl.term, ids.join(", node "));
    }
    if s.leaders.is_empty() {
        t += "  (no leader was elected)\n";
    }
    t += &format!(
        "elections started: {} ({} by petition); highest term {}; terms with several leaders: {}\n",
        s.elections, s.petition_elections, s.max_term, s.terms_with_several_leaders
    );
    t += &format!(
        "suspicions: {}, false positives: {} ({} per minute of {:.1} s with a live leader)\n",
        s.suspicions,
        s.false_positives,
        s.false_positives_per_min
            .map_or("-".to_string(), |v| format!("{v:.2}")),
        s.live_leader_s
    );
    t += "leader failures:\n";
    for f in &s.failures {
        t += &format!(
            "  node {} (term {}) {} at {:.3} s: detected after {}, ",
            f.node,
            f.term,
            f.how,
            f.at_s,
            opt(f.detection_ms)
        );
        t += &match (f.new_leader, f.new_term) {
            (Some(l), Some(term)) => format!(
                "new leader node {l} (term {term}) after {}\n",
                opt(f.failover_ms)
            ),
            _ => "no new leader before the logs end\n".to_string(),
        };
    }
    if s.failures.is_empty() {
        t += "  (none)\n";
    }
    let node = |v: Option<usize>| v.map_or("-".to_string(), |n| format!("node {n}"));
    t += &format!(
        "petitions sent: {}, accepted: {}; final leader {}, lowest penalty score {}\n",
        s.petitions_sent,
        s.petitions_accepted,
        node(s.final_leader),
        node(s.lowest_penalty)
    );
    for m in &s.timeouts {
        t += &format!("{}\n", m.render());
    }
    t += &format!("datagrams dropped: {}\n", s.dropped);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use orch_common::events::Stats;

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
        rec(
            id,
            term,
            wall_ms,
            Event::Role {
                from: Role::Candidate,
                to: Role::Leader,
            },
        )
    }

    fn timeout(id: usize, term: u64, wall_ms: u64, suspected: usize) -> Record {
        rec(
            id,
            term,
            wall_ms,
            Event::ElectionTimeout {
                suspected_leader: Some(suspected),
                since_heartbeat_ms: None,
            },
        )
    }

    #[test]
    fn silent_leader_is_detected_and_early_suspicion_is_a_false_positive() {
        let started = |id, term, ms| {
            rec(
                id,
                term,
                ms,
                Event::ElectionStarted {
                    reason: ElectionReason::Timeout,
                },
            )
        };
        let logs = vec![
            vec![
                started(0, 1, 100),
                leader(0, 1, 110),
                rec(0, 1, 1000, Event::Silent { heartbeats: 12 }),
            ],
            vec![
                timeout(1, 1, 500, 0),
                timeout(1, 1, 1200, 0),
                started(1, 2, 1200),
                leader(1, 2, 1250),
                rec(
                    1,
                    2,
                    2000,
                    Event::Stats(Stats {
                        dropped: 7,
                        ..Stats::default()
                    }),
                ),
                rec(
                    1,
                    2,
                    3000,
                    Event::Exit {
                        reason: "runtime".into(),
                        stats: Stats {
                            dropped: 9,
                            ..Stats::default()
                        },
                    },
                ),
            ],
        ];
        let s = summarize(&logs, 1);
        assert_eq!(
            s.leaders,
            vec![
                TermLeaders {
                    term: 1,
                    leaders: vec![0]
                },
                TermLeaders {
                    term: 2,
                    leaders: vec![1]
                },
            ]
        );
        assert_eq!(
            (s.elections, s.suspicions, s.false_positives, s.dropped),
            (2, 2, 1, 9)
        );
        assert_eq!(s.failures.len(), 1);
        let f = &s.failures[0];
        assert_eq!((f.node, f.term, f.how.as_str()), (0, 1, "silent"));
        assert_eq!(
            (f.detection_ms, f.failover_ms, f.new_leader),
            (Some(200.0), Some(250.0), Some(1))
        );
        assert_eq!(s.first_leader_ms, Some(10.0));
        assert_eq!(s.final_leader, Some(1));
        assert_eq!(s.max_term, 2);
        // Live from 110 ms to 3000 ms, minus 250 ms without a leader.
        assert!((s.live_leader_s - 2.64).abs() < 1e-9, "{}", s.live_leader_s);
        let text = render(&s);
        assert!(
            text.contains("new leader node 1 (term 2) after 250.0 ms"),
            "{text}"
        );
    }

    #[test]
    fn killed_leader_counts_from_its_last_event_only_if_others_go_on() {
        let logs = vec![
            vec![
                leader(0, 3, 100),
                rec(0, 3, 900, Event::Stats(Stats::default())),
            ],
            vec![
                timeout(1, 3, 1100, 0),
                leader(1, 4, 1150),
                rec(1, 4, 2500, Event::Stats(Stats::default())),
            ],
        ];
        let s = summarize(&logs, 0);
        assert_eq!(s.failures[0].how, "log_ended");
        assert_eq!(s.failures[0].failover_ms, Some(250.0));
        assert_eq!(s.false_positives, 0);
        // Everyone killed at once at the end: no failure.
        let logs = vec![
            vec![leader(0, 1, 100)],
            vec![rec(1, 1, 200, Event::Leader { leader: Some(0) })],
        ];
        assert!(summarize(&logs, 0).failures.is_empty());
    }

    #[test]
    fn a_kill_of_the_leader_counts_from_the_signal_and_its_restart_is_no_failure() {
        let logs = vec![
            vec![
                leader(0, 3, 100),
                rec(0, 3, 900, Event::Stats(Stats::default())),
                // Started again after the kill: a follower of the new leader.
                rec(0, 4, 3000, Event::Leader { leader: Some(1) }),
                rec(0, 4, 4000, Event::Stats(Stats::default())),
            ],
            vec![
                timeout(1, 3, 1100, 0),
                leader(1, 4, 1150),
                rec(1, 4, 4000, Event::Stats(Stats::default())),
            ],
        ];
        let kills = [
            Kill {
                node: 0,
                wall: 1_000_000_000,
            },
            Kill {
                node: 1,
                wall: 500_000_000,
            },
        ];
        let s = summarize_with(&logs, 0, &kills);
        // Replica 1 was a follower when it was killed: no leader failure.
        assert_eq!(s.failures.len(), 1, "{:?}", s.failures);
        let f = &s.failures[0];
        assert_eq!((f.node, f.term, f.how.as_str()), (0, 3, "killed"));
        assert_eq!((f.detection_ms, f.failover_ms), (Some(100.0), Some(150.0)));
        assert_eq!(f.new_leader, Some(1));
        assert_eq!(s.false_positives, 0);
        // Suspicions of the next incarnation (after its start) are not the kill's detection.
        let start = Event::Start {
            ip: "10.0.0.1".parse().unwrap(),
            port: 5000,
            nodes: 2,
            fd_mode: orch_common::replica::FdMode::Raft,
            rtt_source: "none".into(),
            interfaces: Vec::new(),
        };
        let logs = vec![
            vec![leader(0, 3, 100), rec(0, 0, 2900, start)],
            vec![leader(1, 4, 1150), timeout(1, 4, 3500, 0)],
        ];
        let s = summarize_with(&logs, 0, &kills[..1]);
        assert_eq!(s.failures[0].detection_ms, None, "{:?}", s.failures);
        assert_eq!(s.failures[0].failover_ms, Some(150.0));
    }

    #[test]
    fn two_leaders_in_a_term_are_reported() {
        let s = summarize(&[vec![leader(0, 1, 1)], vec![leader(1, 1, 2)]], 0);
        assert_eq!(s.terms_with_several_leaders, 1);
        let v = s.safety_violation().unwrap();
        assert!(v.contains("term 1 had leaders [0, 1]"), "{v}");
        assert!(render(&s).contains("SAFETY VIOLATION"));
        let one = summarize(&[vec![leader(0, 1, 1)], vec![leader(1, 2, 2)]], 0);
        assert_eq!(one.safety_violation(), None);
    }

    #[test]
    fn petitions_and_the_lowest_penalty_replica() {
        let penalty = |id, ms, score| {
            rec(
                id,
                1,
                ms,
                Event::Penalty {
                    score,
                    source: "tcp".into(),
                    latencies_ms: vec![],
                    rank: 0,
                },
            )
        };
        let logs = vec![
            vec![
                leader(0, 1, 10),
                penalty(0, 100, 80.0),
                penalty(0, 900, 130.0),
            ],
            vec![
                penalty(1, 100, 90.0),
                penalty(1, 900, 20.0),
                rec(
                    1,
                    1,
                    950,
                    Event::PetitionAccepted {
                        petitioners: vec![2],
                    },
                ),
                leader(1, 2, 1000),
            ],
            vec![rec(
                2,
                1,
                920,
                Event::PetitionSent {
                    to: 1,
                    leader: 0,
                    latency_ms: 120.0,
                },
            )],
        ];
        let s = summarize(&logs, 0);
        assert_eq!((s.petitions_sent, s.petitions_accepted), (1, 1));
        assert_eq!((s.final_leader, s.lowest_penalty), (Some(1), Some(1)));
        assert_eq!(s.penalty_scores[&0], 130.0);
    }

    #[test]
    fn parse_skips_non_event_lines() {
        let line = serde_json::to_string(&leader(2, 5, 1)).unwrap();
        let (records, bad) = parse(&format!("{line}\nnot json\n{{\"mono_ns\":1\n\n"));
        assert_eq!((records.len(), bad), (1, 2));
    }
}
