//! What an experiment's replica event logs say about leadership.
//!
//! Replaces the prototype's `count_leader.py`, `detection_time_analysis.py` and
//! `extract_failure.py`: leaders per term, elections, failure detection and failover, false
//! positives, petitions and armed timeouts, computed from the structured events of all replicas
//! (aligned by `wall`). orch runs it over the logs of every run; `orch-node elect-summary`
//! prints it for logs at hand.

mod clocks;
mod timeouts;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use orch_common::events::{ElectionReason, Event, Record, Role};
use serde::Serialize;

use crate::clock::HostOffset;

pub use clocks::summarize_on_reference;
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
    /// When, Unix ns, as the failed replica's host's clock read.
    pub wall_ns: u64,
    /// Failure to the first election timeout suspecting it, ms.
    pub detection_ms: Option<f64>,
    /// The replica whose election timeout that was.
    pub detected_by: Option<usize>,
    /// How far off `detection_ms` can be because of the two hosts' clocks, ms (`None`: the
    /// clocks' offsets are unknown, the times are the hosts' own).
    pub detection_bound_ms: Option<f64>,
    /// The next leader elected in a later term.
    pub new_leader: Option<usize>,
    /// That leader's term.
    pub new_term: Option<u64>,
    /// Failure to the new leader, ms.
    pub failover_ms: Option<f64>,
    /// How far off `failover_ms` can be because of the two hosts' clocks, ms.
    pub failover_bound_ms: Option<f64>,
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
    /// The clock of each replica's host against the reference, by replica id, by which every
    /// time above was put on the reference clock; empty: the times are the hosts' own.
    pub clocks: Vec<HostOffset>,
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
    summarize_files_with(files, &[], &[])
}

/// [`summarize_files`], with the replicas that were killed from outside and when, and the
/// clock of each replica's host ([`summarize_on_reference`]; empty: the hosts' own clocks).
pub fn summarize_files_with(
    files: &[PathBuf],
    kills: &[Kill],
    clocks: &[HostOffset],
) -> Result<Summary, String> {
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
    if clocks.is_empty() {
        return Ok(summarize_with(&logs, skipped, kills));
    }
    if clocks.len() != logs.len() {
        return Err(format!(
            "{} event logs but the clocks of {} replicas' hosts",
            logs.len(),
            clocks.len()
        ));
    }
    Ok(summarize_on_reference(&logs, skipped, kills, clocks))
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
                detected_by: suspected.map(|r| r.id),
                detection_bound_ms: None,
                new_leader: elected.map(|r| r.id),
                new_term: elected.map(|r| r.term),
                failover_ms: elected.map(|r| ms_since(wall, r.wall)),
                failover_bound_ms: None,
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
        clocks: Vec::new(),
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
    let pm = |v: Option<f64>, b: Option<f64>| match (v, b) {
        (Some(v), Some(b)) => format!("{v:.1} ± {b:.2} ms"),
        _ => opt(v),
    };
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
            pm(f.detection_ms, f.detection_bound_ms)
        );
        t += &match (f.new_leader, f.new_term) {
            (Some(l), Some(term)) => format!(
                "new leader node {l} (term {term}) after {}\n",
                pm(f.failover_ms, f.failover_bound_ms)
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
    t += &clocks::render(&s.clocks);
    t
}

#[cfg(test)]
mod tests;
