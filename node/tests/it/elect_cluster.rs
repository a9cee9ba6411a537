//! Five real `orch-node elect` processes talking UDP on 127.0.0.2-6.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cluster::{ip, wall_now, Cluster};
use rand::{RngExt, SeedableRng};
use serde_json::Value;

use crate::util::{turn, wait_for, NODE};

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Asserts that no term had two leaders.
fn assert_one_leader_per_term(c: &Cluster) {
    let mut by_term: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (term, id, _) in c.leader_elections() {
        by_term.entry(term).or_default().push(id);
    }
    for (term, ids) in by_term {
        assert_eq!(ids.len(), 1, "term {term} had leaders {ids:?}");
    }
}

#[test]
fn five_replicas_elect_one_leader_per_term_within_two_seconds() {
    let _turn = turn();
    let started = wall_now();
    let c = Cluster::start(7301, 5, "");
    let first = wait_for(Duration::from_secs(2), || {
        c.leader_elections().first().copied()
    })
    .expect("a leader within 2 s");
    eprintln!(
        "first leader: node {} term {} after {:.1} ms",
        first.1,
        first.0,
        ms(first.2 - started)
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_one_leader_per_term(&c);
    let (term, leader, _) = *c.leader_elections().last().unwrap();
    for id in 0..5 {
        let followed = c
            .events(id)
            .iter()
            .rev()
            .find(|e| e["event"] == "leader")
            .map(|e| {
                (
                    e["term"].as_u64().unwrap(),
                    e["leader"].as_u64().unwrap() as usize,
                )
            });
        assert_eq!(
            followed,
            Some((term, leader)),
            "replica {id} follows the leader"
        );
    }
}

#[test]
fn killed_leader_is_replaced_within_one_second() {
    let _turn = turn();
    let mut c = Cluster::start(7302, 5, "");
    let (term, leader, _) = wait_for(Duration::from_secs(2), || {
        c.leader_elections().first().copied()
    })
    .expect("a first leader");
    std::thread::sleep(Duration::from_millis(500));
    let killed_at = wall_now();
    c.kill(leader);
    let next = wait_for(Duration::from_secs(3), || {
        c.leader_elections()
            .into_iter()
            .find(|&(t, _, w)| t > term && w > killed_at)
    })
    .expect("a new leader after the kill");
    let took = ms(next.2 - killed_at);
    eprintln!(
        "failover: node {leader} killed, node {} leader of term {} after {took:.1} ms",
        next.1, next.0
    );
    assert!(took < 1000.0, "new leader after {took:.1} ms");
    assert_ne!(next.1, leader);
    assert_one_leader_per_term(&c);
}

/// Replica 4 (127.0.0.6) is closest to everyone; it joins after the others elected a leader,
/// and petitions must hand leadership to it.
#[test]
fn petitions_move_leadership_to_the_lowest_penalty_replica() {
    let _turn = turn();
    let extra = "  useSimulatedLinks: true
  simulatedDelays: {\"127.0.0.2\": 60, \"127.0.0.3\": 30, \"127.0.0.4\": 20, \"127.0.0.5\": 10}
  testPetition: true
  latencyThreshold: 25
  penaltyIntervalMs: 300
";
    let mut c = Cluster::configure(7303, 5, extra);
    for id in 0..4 {
        c.spawn(id);
    }
    let (_, first, _) = wait_for(Duration::from_secs(3), || {
        c.leader_elections().first().copied()
    })
    .expect("a leader among replicas 0-3");
    std::thread::sleep(Duration::from_millis(700));
    let joined = Instant::now();
    c.spawn(4);
    let moved = wait_for(Duration::from_secs(10), || {
        c.leader_elections().into_iter().find(|&(_, id, _)| id == 4)
    })
    .expect("replica 4 becomes leader");
    eprintln!(
        "petition: first leader node {first}, node 4 leader of term {} {:.1} ms after joining",
        moved.0,
        joined.elapsed().as_secs_f64() * 1000.0
    );
    let accepted: Vec<Value> = c
        .events(4)
        .into_iter()
        .filter(|e| e["event"] == "petition_accepted")
        .collect();
    assert!(
        !accepted.is_empty(),
        "replica 4 was elected through a petition"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        c.leader_elections().last().unwrap().1,
        4,
        "leadership stays at replica 4"
    );
    assert_one_leader_per_term(&c);
    let latest_score = |id: usize| {
        c.events(id)
            .iter()
            .rev()
            .find(|e| e["event"] == "penalty")
            .and_then(|e| e["score"].as_f64())
            .unwrap()
    };
    let best = latest_score(4);
    for id in 0..4 {
        assert!(
            latest_score(id) > best,
            "replica {id} scores above replica 4 ({best})"
        );
    }
}

#[test]
fn random_datagrams_only_raise_the_drop_counter() {
    let _turn = turn();
    let mut c = Cluster::start(7304, 5, "  runtimeSeconds: 5\n");
    let (term, leader, _) = wait_for(Duration::from_secs(2), || {
        c.leader_elections().first().copied()
    })
    .expect("a leader");
    std::thread::sleep(Duration::from_millis(500));
    let (term, leader) = c
        .leader_elections()
        .last()
        .map(|&(t, l, _)| (t, l))
        .unwrap_or((term, leader));
    let flood_start = wall_now();
    let target = (leader + 1) % 5;
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    for i in 0..10_000 {
        let len = rng.random_range(0..80usize);
        let buf: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        socket.send_to(&buf, (ip(target).as_str(), 7304)).unwrap();
        // Paced well below what the socket buffer holds, so the kernel drops none of them.
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    c.wait_exit(Duration::from_secs(8));
    let changed: Vec<Value> = c
        .all_events()
        .into_iter()
        .filter(|e| e["wall"].as_u64().unwrap() >= flood_start)
        .filter(|e| ["role", "leader", "election_started"].contains(&e["event"].as_str().unwrap()))
        .collect();
    assert!(
        changed.is_empty(),
        "state changed during the flood: {changed:?}"
    );
    let exit = c
        .events(target)
        .into_iter()
        .find(|e| e["event"] == "exit")
        .expect("exit event");
    assert_eq!(exit["term"], term);
    assert_eq!(exit["stats"]["leader"], leader);
    assert_eq!(exit["stats"]["dropped"], 10_000, "{exit}");
}

#[test]
fn silent_leaders_are_detected_and_summarised() {
    let _turn = turn();
    let mut c = Cluster::start(
        7305,
        5,
        "  runtimeSeconds: 4\n  failureLeader: true\n  maxHeartbeats: 10\n",
    );
    c.wait_exit(Duration::from_secs(8));
    let logs: Vec<_> = (0..5).map(|id| c.log_path(id)).collect();
    let out = Command::new(NODE)
        .arg("elect-summary")
        .arg("--json")
        .args(&logs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["terms_with_several_leaders"], 0);
    let failures = s["failures"].as_array().unwrap();
    assert!(failures.len() >= 2, "{s}");
    for f in failures.iter().filter(|f| !f["new_leader"].is_null()) {
        let d = f["detection_ms"].as_f64().unwrap();
        eprintln!("detection after silent leader {}: {d:.1} ms", f["node"]);
        assert!(d < 1000.0, "{f}");
        assert_eq!(f["how"], "silent");
    }
    let text = Command::new(NODE)
        .arg("elect-summary")
        .args(&logs)
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("leaders per term:") && text.contains("silent at"),
        "{text}"
    );
}

/// In CI mode the timeout comes from RTT samples to the leader once probes measured them.
#[test]
fn ci_mode_uses_rtt_samples_and_stays_stable() {
    let _turn = turn();
    let c = Cluster::start(7306, 5, "  fdMode: CI\n  penaltyIntervalMs: 300\n");
    wait_for(Duration::from_secs(2), || {
        c.leader_elections().first().copied()
    })
    .expect("a leader");
    std::thread::sleep(Duration::from_millis(2500));
    let armed: Vec<Value> = c
        .all_events()
        .into_iter()
        .filter(|e| e["event"] == "timeout_armed" && e["mode"] == "ci" && e["fallback"].is_null())
        .collect();
    assert!(!armed.is_empty(), "some timeouts derive from RTT samples");
    assert!(armed
        .iter()
        .all(|e| e["safety_margin_ms"].as_f64().unwrap() >= 10.0));
    let elections = c.leader_elections();
    assert_eq!(
        elections.len(),
        1,
        "no further elections while the leader lives: {elections:?}"
    );
}
