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
