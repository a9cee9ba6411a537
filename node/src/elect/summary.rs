//! `orch-node elect-summary`: what an experiment's event logs say about leadership.
//!
//! Replaces the prototype's `count_leader.py`, `detection_time_analysis.py` and
//! `extract_failure.py`: leaders per term, elections, failure-detection times and false
//! positives, computed from the structured events of all replicas (aligned by `wall`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::events::{ElectionReason, Event, Record};
use super::replica::Role;

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
    /// `silent` (failure injection) or `log_ended` (killed; time of its last event).
    pub how: String,
    /// When, seconds since the first event of the experiment.
    pub at_s: f64,
    /// First election timeout suspecting it, ms after the failure.
    pub first_suspicion_ms: Option<f64>,
    /// The next leader elected in a later term.
    pub new_leader: Option<usize>,
    /// That leader's term.
    pub new_term: Option<u64>,
    /// Failure to new leader, ms.
    pub detection_ms: Option<f64>,
}

/// Everything `elect-summary` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Log files read.
    pub files: usize,
    /// Events read.
    pub events: usize,
    /// Lines that were not events (e.g. a line cut short by a kill).
    pub skipped_lines: usize,
    /// Leaders by term.
    pub leaders: Vec<TermLeaders>,
    /// Terms in which more than one replica became leader (must be 0).
    pub terms_with_several_leaders: usize,
    /// Elections started, all replicas together.
    pub elections: u64,
    /// Of which started by petitions.
    pub petition_elections: u64,
    /// Election timeouts that suspected a known leader.
    pub suspicions: u64,
    /// Suspicions of a leader that had not failed at that time.
    pub false_positives: u64,
    /// Leader failures and their detection.
    pub failures: Vec<Failure>,
    /// Datagrams dropped on receipt, all replicas together.
    pub dropped: u64,
}

/// Reads the logs and prints the summary, as text or JSON.
pub fn run(files: &[PathBuf], json: bool) -> Result<()> {
    if files.is_empty() {
        bail!("no event logs given: pass the files written by `orch-node elect` (eventLog)");
    }
    let mut logs = Vec::new();
    let mut skipped = 0;
    for path in files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read event log {}", path.display()))?;
        let (records, bad) = parse(&text);
        if records.is_empty() {
            bail!(
                "{} holds no `orch-node elect` events: pass the eventLog files of the replicas",
                path.display()
            );
        }
        skipped += bad;
        logs.push(records);
    }
    let summary = summarize(&logs, skipped);
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", render(&summary));
    }
    Ok(())
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
    let mut all: Vec<&Record> = logs.iter().flatten().collect();
    all.sort_by_key(|r| r.wall);
    let origin = all.first().map_or(0, |r| r.wall);
    let last_wall = all.last().map_or(0, |r| r.wall);

    let mut leaders: BTreeMap<u64, BTreeSet<usize>> = BTreeMap::new();
    let (mut elections, mut petition_elections) = (0, 0);
    let mut dropped_by_node: HashMap<usize, u64> = HashMap::new();
    for r in &all {
        match &r.event {
            Event::Role {
                to: Role::Leader, ..
            } => {
                leaders.entry(r.term).or_default().insert(r.id);
            }
            Event::ElectionStarted { reason } => {
                elections += 1;
                if *reason == ElectionReason::Petition {
                    petition_elections += 1;
                }
            }
            Event::Stats(s) | Event::Exit { stats: s, .. } => {
                let d = dropped_by_node.entry(r.id).or_default();
                *d = (*d).max(s.dropped);
            }
            _ => {}
        }
    }

    let failed_at = failures_of(logs, last_wall);
    let mut failures: Vec<Failure> = failed_at
        .iter()
        .map(|&(node, term, wall, how)| {
            let elected = all.iter().find(|r| {
                r.wall > wall && r.term > term && matches!(r.event, Event::Role { to: Role::Leader, .. })
            });
            let suspected = all.iter().find(|r| {
                r.wall > wall
                    && matches!(r.event, Event::ElectionTimeout { suspected_leader: Some(l), .. } if l == node)
            });
            let after_ms = |r: &&&Record| (r.wall - wall) as f64 / 1e6;
            Failure {
                node,
                term,
                how: how.to_string(),
                at_s: (wall - origin) as f64 / 1e9,
                first_suspicion_ms: suspected.as_ref().map(after_ms),
                new_leader: elected.map(|r| r.id),
                new_term: elected.map(|r| r.term),
                detection_ms: elected.as_ref().map(after_ms),
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

    Summary {
        files: logs.len(),
        events: all.len(),
        skipped_lines,
        terms_with_several_leaders: leaders.values().filter(|l| l.len() > 1).count(),
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
        failures,
        dropped: dropped_by_node.values().sum(),
    }
}

/// (node, term, wall ns, how) of every leader that went silent or whose log ended while
/// it was leader and other replicas kept running.
fn failures_of(logs: &[Vec<Record>], last_wall: u64) -> Vec<(usize, u64, u64, &'static str)> {
    let mut out = Vec::new();
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
        if !exited && leader_at_end && last_wall >= last.wall + LOG_END_GRACE_NS {
            out.push((last.id, last.term, last.wall, "log_ended"));
        }
    }
    out
}

/// The human-readable form.
pub fn render(s: &Summary) -> String {
    let mut t = format!(
        "{} logs, {} events{}\n",
        s.files,
        s.events,
        if s.skipped_lines > 0 {
            format!(" ({} lines skipped: not events)", s.skipped_lines)
        } else {
            String::new()
        }
    );
    t += "leaders per term:\n";
    for tl in &s.leaders {
        let ids: Vec<String> = tl.leaders.iter().map(usize::to_string).collect();
        t += &format!("  term {:>4}: node {}\n", tl.term, ids.join(", node "));
    }
    if s.leaders.is_empty() {
        t += "  (no leader was elected)\n";
    }
    t += &format!(
        "elections started: {} ({} by petition); terms with several leaders: {}\n",
        s.elections, s.petition_elections, s.terms_with_several_leaders
    );
    t += &format!(
        "suspicions: {}, false positives: {}\n",
        s.suspicions, s.false_positives
    );
    t += "leader failures:\n";
    for f in &s.failures {
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
        t += &format!(
            "  node {} (term {}) {} at {:.3} s: first suspicion after {}, ",
            f.node,
            f.term,
            f.how,
            f.at_s,
            opt(f.first_suspicion_ms)
        );
        t += &match (f.new_leader, f.new_term) {
            (Some(l), Some(term)) => format!(
                "new leader node {l} (term {term}) after {}\n",
                opt(f.detection_ms)
            ),
            _ => "no new leader before the logs end\n".to_string(),
        };
    }
    if s.failures.is_empty() {
        t += "  (none)\n";
    }
    t += &format!("datagrams dropped: {}\n", s.dropped);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elect::events::Stats;

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
            (f.first_suspicion_ms, f.detection_ms, f.new_leader),
            (Some(200.0), Some(250.0), Some(1))
        );
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
        assert_eq!(s.failures[0].detection_ms, Some(250.0));
        assert_eq!(s.false_positives, 0);
        // Everyone killed at once at the end: no failure.
        let logs = vec![
            vec![leader(0, 1, 100)],
            vec![rec(1, 1, 200, Event::Leader { leader: Some(0) })],
        ];
        assert!(summarize(&logs, 0).failures.is_empty());
    }

    #[test]
    fn two_leaders_in_a_term_are_reported() {
        let s = summarize(&[vec![leader(0, 1, 1)], vec![leader(1, 1, 2)]], 0);
        assert_eq!(s.terms_with_several_leaders, 1);
    }

    #[test]
    fn parse_skips_non_event_lines() {
        let line = serde_json::to_string(&leader(2, 5, 1)).unwrap();
        let (records, bad) = parse(&format!("{line}\nnot json\n{{\"mono_ns\":1\n\n"));
        assert_eq!((records.len(), bad), (1, 2));
    }
}
