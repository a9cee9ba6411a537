//! The election state machine. Pure: the runtime passes in the time, the received messages and
//! the RTT view, and carries out the returned sends and events, so elections are testable
//! without sockets or clocks.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::config::Config;
use super::events::{ElectionReason, Event};
use super::penalty::{best_replacement, penalty_score, rank, Petitions, Rejection};
use super::timeout::TimeoutPolicy;
use super::wire::{Envelope, Message};
use crate::rtt::RttHistory;
pub use orch_common::events::Role;

/// Something the runtime must do on the replica's behalf.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send `msg` to replica `to`, stamped with `term`.
    Send { to: usize, term: u64, msg: Message },
    /// Log `event`, which happened in `term`.
    Event { term: u64, event: Event },
}

/// The RTT history to one peer and the name of the source it came from.
#[derive(Debug, Clone, Copy)]
pub struct Path<'a> {
    /// Samples of the path.
    pub history: &'a RttHistory,
    /// `tcp`, `udp`, ...
    pub source: &'static str,
}

/// What the runtime knows about the paths to every replica (index = replica id).
#[derive(Debug, Clone, Default)]
pub struct Paths<'a>(pub Vec<Option<Path<'a>>>);

impl<'a> Paths<'a> {
    fn get(&self, peer: usize) -> Option<Path<'a>> {
        self.0.get(peer).copied().flatten()
    }

    fn mean_ms(&self, peer: usize) -> Option<f64> {
        self.get(peer).and_then(|p| p.history.mean_srtt_ms())
    }
}

/// One replica's election state.
pub struct Replica {
    id: usize,
    n: usize,
    eligible: bool,
    policy: TimeoutPolicy,
    heartbeat_interval: Duration,
    failure_leader: bool,
    max_heartbeats: u64,
    petitions_enabled: bool,
    latency_threshold_ms: f64,
    count_false_positives: bool,
    rng: StdRng,

    term: u64,
    role: Role,
    voted_for: Option<usize>,
    leader: Option<usize>,
    votes: BTreeSet<usize>,
    election_deadline: Duration,
    next_heartbeat: Duration,
    last_heartbeat: Option<Duration>,
    heartbeats_sent: u64,
    seq: u64,
    double_next_timeout: bool,
    silent: bool,
    scores: Vec<Option<f64>>,
    petitions: Petitions,
    elections: u64,
    false_positives: u64,
    out: Vec<Output>,
}

impl Replica {
    /// A follower in term 0; `seed` makes its random timeouts reproducible.
    pub fn new(cfg: &Config, id: usize, seed: u64) -> Self {
        Self {
            id,
            n: cfg.nodes(),
            eligible: cfg.eligible(id),
            policy: TimeoutPolicy::new(cfg),
            heartbeat_interval: cfg.heartbeat_interval(),
            failure_leader: cfg.failure_leader,
            max_heartbeats: cfg.max_heartbeats,
            petitions_enabled: cfg.test_petition,
            latency_threshold_ms: cfg.latency_threshold,
            count_false_positives: cfg.check_false_positive_rate,
            rng: StdRng::seed_from_u64(seed),
            term: 0,
            role: Role::Follower,
            voted_for: None,
            leader: None,
            votes: BTreeSet::new(),
            election_deadline: Duration::ZERO,
            next_heartbeat: Duration::ZERO,
            last_heartbeat: None,
            heartbeats_sent: 0,
            seq: 0,
            double_next_timeout: false,
            silent: false,
            scores: vec![None; cfg.nodes()],
            petitions: Petitions::default(),
            elections: 0,
            false_positives: 0,
            out: Vec::new(),
        }
    }

    /// Current term.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The leader as this replica sees it.
    pub fn leader(&self) -> Option<usize> {
        self.leader
    }

    /// Whether failure injection silenced this replica (it then ignores everything).
    pub fn is_silent(&self) -> bool {
        self.silent
    }

    /// Elections this replica started.
    pub fn elections(&self) -> u64 {
        self.elections
    }

    /// Election timeouts counted as false positives (`checkFalsePositiveRate`).
    pub fn false_positives(&self) -> u64 {
        self.false_positives
    }

    /// When [`Replica::tick`] must next run, or `None` once silent.
    pub fn next_deadline(&self) -> Option<Duration> {
        match (self.silent, self.role) {
            (true, _) => None,
            (false, Role::Leader) => Some(self.next_heartbeat),
            (false, _) => Some(self.election_deadline),
        }
    }

    fn majority(&self) -> usize {
        self.n / 2 + 1
    }

    fn emit(&mut self, event: Event) {
        self.out.push(Output::Event {
            term: self.term,
            event,
        });
    }

    fn send(&mut self, to: usize, msg: Message) {
        self.out.push(Output::Send {
            to,
            term: self.term,
            msg,
        });
    }

    fn broadcast(&mut self, msg: Message) {
        let me = self.id;
        for to in (0..self.n).filter(|&j| j != me) {
            self.send(to, msg);
        }
    }

    fn finish(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    /// Arms the first election timeout.
    pub fn start(&mut self, now: Duration, paths: &Paths) -> Vec<Output> {
        self.arm_timeout(now, paths);
        self.finish()
    }

    /// Handles a validated message from replica `env.from`.
    pub fn handle(&mut self, now: Duration, env: Envelope, paths: &Paths) -> Vec<Output> {
        if self.silent {
            return Vec::new();
        }
        let from = usize::from(env.from);
        let raft_message = matches!(
            env.msg,
            Message::RequestVote
                | Message::VoteResponse { .. }
                | Message::AppendEntries { .. }
                | Message::AppendEntriesResponse { .. }
        );
        if raft_message && env.term > self.term {
            self.step_down(now, env.term, paths);
        }
        match env.msg {
            Message::RequestVote => self.on_request_vote(now, from, env.term, paths),
            Message::VoteResponse { granted } => {
                if granted && self.role == Role::Candidate && env.term == self.term {
                    self.votes.insert(from);
                    self.emit(Event::VoteReceived {
                        from,
                        votes: self.votes.len(),
                        needed: self.majority(),
                    });
                    if self.votes.len() >= self.majority() {
                        self.become_leader(now);
                    }
                }
            }
            Message::AppendEntries { seq } => self.on_heartbeat(now, from, env.term, seq, paths),
            Message::PenaltyScore { score } => {
                if let Some(slot) = self.scores.get_mut(from) {
                    *slot = Some(score);
                }
            }
            Message::Petition {
                leader,
                proposed,
                latency_ms,
            } => {
                let leader = usize::from(leader);
                if env.term == self.term
                    && usize::from(proposed) == self.id
                    && self.role == Role::Follower
                    && self.leader == Some(leader)
                {
                    self.on_petition(now, from, leader, latency_ms, paths);
                }
            }
            Message::AppendEntriesResponse { .. }
            | Message::Probe { .. }
            | Message::ProbeAck { .. } => {}
        }
        self.finish()
    }

    /// Runs due timers: heartbeats for a leader, the election timeout otherwise.
    pub fn tick(&mut self, now: Duration, paths: &Paths) -> Vec<Output> {
        if self.silent {
            return Vec::new();
        }
        if self.role == Role::Leader {
            if now >= self.next_heartbeat {
                self.heartbeat(now);
            }
        } else if now >= self.election_deadline {
            let suspected_leader = self.leader.filter(|&l| l != self.id);
            self.emit(Event::ElectionTimeout {
                suspected_leader,
                since_heartbeat_ms: self.last_heartbeat.map(|t| ms(now.saturating_sub(t))),
            });
            if self.count_false_positives && suspected_leader.is_some() {
                self.false_positives += 1;
            }
            if self.eligible {
                self.start_election(now, ElectionReason::Timeout, paths);
            } else {
                self.set_leader(None);
                self.arm_timeout(now, paths);
            }
        }
        self.finish()
    }

    /// Computes and broadcasts this replica's penalty score, then petitions if the leader is
    /// too far away.
    pub fn penalty_round(&mut self, now: Duration, paths: &Paths) -> Vec<Output> {
        if self.silent {
            return Vec::new();
        }
        let latencies_ms: Vec<Option<f64>> = (0..self.n)
            .map(|j| if j == self.id { None } else { paths.mean_ms(j) })
            .collect();
        if let Some(score) = penalty_score(latencies_ms.iter().flatten().copied()) {
            self.scores[self.id] = Some(score);
            self.broadcast(Message::PenaltyScore { score });
            let mut sources: Vec<&str> = (0..self.n)
                .filter(|&j| latencies_ms[j].is_some())
                .filter_map(|j| paths.get(j).map(|p| p.source))
                .collect();
            sources.sort_unstable();
            sources.dedup();
            self.emit(Event::Penalty {
                score,
                source: sources.join("+"),
                latencies_ms: latencies_ms.clone(),
                rank: rank(&self.scores, self.id),
            });
        }
        if let (true, Role::Follower, Some(leader)) =
            (self.petitions_enabled, self.role, self.leader)
        {
            if let Some(latency_ms) = latencies_ms.get(leader).copied().flatten() {
                if latency_ms > self.latency_threshold_ms {
                    self.petition(now, leader, latency_ms, paths);
                }
            }
        }
        self.finish()
    }

    fn petition(&mut self, now: Duration, leader: usize, latency_ms: f64, paths: &Paths) {
        let Some(proposed) = best_replacement(&self.scores, leader) else {
            return;
        };
        if proposed == self.id {
            self.on_petition(now, self.id, leader, latency_ms, paths);
        } else {
            self.send(
                proposed,
                Message::Petition {
                    leader: leader as u16,
                    proposed: proposed as u16,
                    latency_ms,
                },
            );
            self.emit(Event::PetitionSent {
                to: proposed,
                leader,
                latency_ms,
            });
        }
    }

    fn on_petition(
        &mut self,
        now: Duration,
        from: usize,
        leader: usize,
        latency_ms: f64,
        paths: &Paths,
    ) {
        let petitions = self.petitions.record(self.term, leader, from, latency_ms);
        self.emit(Event::PetitionReceived {
            from,
            leader,
            latency_ms,
            petitions,
            needed: self.majority(),
        });
        if petitions < self.majority() {
            return;
        }
        let verdict = if self.eligible {
            let id = self.id;
            self.petitions
                .verify(|p| if p == id { Some(0.0) } else { paths.mean_ms(p) })
        } else {
            Err(Rejection::NotEligible)
        };
        match verdict {
            Ok(()) => {
                self.emit(Event::PetitionAccepted {
                    petitioners: self.petitions.petitioners(),
                });
                self.start_election(now, ElectionReason::Petition, paths);
            }
            Err(rejection) => self.emit(Event::PetitionRejected { rejection }),
        }
    }

    fn on_request_vote(&mut self, now: Duration, candidate: usize, term: u64, paths: &Paths) {
        let granted = term == self.term && self.voted_for.is_none_or(|v| v == candidate);
        if granted {
            self.voted_for = Some(candidate);
            self.emit(Event::VoteGranted { candidate });
            self.double_next_timeout = true;
            self.arm_timeout(now, paths);
        }
        self.send(candidate, Message::VoteResponse { granted });
    }

    fn on_heartbeat(&mut self, now: Duration, from: usize, term: u64, seq: u64, paths: &Paths) {
        if term < self.term || self.role == Role::Leader {
            self.send(
                from,
                Message::AppendEntriesResponse {
                    seq,
                    success: false,
                },
            );
            return;
        }
        if self.role == Role::Candidate {
            self.set_role(Role::Follower);
        }
        self.set_leader(Some(from));
        self.last_heartbeat = Some(now);
        self.arm_timeout(now, paths);
        self.send(from, Message::AppendEntriesResponse { seq, success: true });
    }

    fn step_down(&mut self, now: Duration, term: u64, paths: &Paths) {
        self.term = term;
        self.voted_for = None;
        self.votes.clear();
        self.set_leader(None);
        if self.role != Role::Follower {
            self.set_role(Role::Follower);
            self.arm_timeout(now, paths);
        }
    }

    fn start_election(&mut self, now: Duration, reason: ElectionReason, paths: &Paths) {
        self.term += 1;
        self.elections += 1;
        self.set_role(Role::Candidate);
        self.set_leader(None);
        self.voted_for = Some(self.id);
        self.votes = BTreeSet::from([self.id]);
        self.emit(Event::ElectionStarted { reason });
        self.broadcast(Message::RequestVote);
        self.arm_timeout(now, paths);
        if self.votes.len() >= self.majority() {
            self.become_leader(now);
        }
    }

    fn become_leader(&mut self, now: Duration) {
        self.set_role(Role::Leader);
        self.set_leader(Some(self.id));
        self.heartbeats_sent = 0;
        self.heartbeat(now);
    }

    fn heartbeat(&mut self, now: Duration) {
        if self.failure_leader && self.heartbeats_sent >= self.max_heartbeats {
            self.silent = true;
            self.emit(Event::Silent {
                heartbeats: self.heartbeats_sent,
            });
            return;
        }
        self.seq += 1;
        self.heartbeats_sent += 1;
        self.broadcast(Message::AppendEntries { seq: self.seq });
        self.next_heartbeat = now + self.heartbeat_interval;
    }

    fn set_role(&mut self, to: Role) {
        if self.role != to {
            let from = std::mem::replace(&mut self.role, to);
            self.emit(Event::Role { from, to });
        }
    }

    fn set_leader(&mut self, leader: Option<usize>) {
        if self.leader != leader {
            self.leader = leader;
            self.emit(Event::Leader { leader });
        }
    }

    fn arm_timeout(&mut self, now: Duration, paths: &Paths) {
        let leader = self.leader.filter(|&l| l != self.id);
        let path = leader.and_then(|l| paths.get(l)).map(|p| p.history);
        let rank = rank(&self.scores, self.id);
        let armed = self
            .policy
            .draw(leader.is_some(), path, rank, &mut self.rng);
        let doubled = std::mem::take(&mut self.double_next_timeout);
        let total_ms = if doubled { armed.ms * 2.0 } else { armed.ms };
        self.election_deadline = now + Duration::from_secs_f64(total_ms / 1000.0);
        self.emit(Event::TimeoutArmed {
            ms: total_ms,
            mode: self.policy.mode,
            fallback: armed.fallback,
            safety_margin_ms: armed.safety_margin_ms,
            rank,
            doubled,
            srtt_ms: armed.rtt.map(|r| r.srtt_ms),
            rttvar_ms: armed.rtt.map(|r| r.rttvar_ms),
            rtt_bound_ms: armed.rtt.map(|r| r.bound_ms),
            heartbeat_margin_ms: armed.rtt.map(|r| r.heartbeat_margin_ms),
        });
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtt::RttSample;

    fn config(extra: &str) -> Config {
        let text = format!(
            "replica:\n  ips: [127.0.0.2, 127.0.0.3, 127.0.0.4, 127.0.0.5, 127.0.0.6]\n{extra}"
        );
        Config::parse(&text, "t").unwrap()
    }

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn env(from: u16, term: u64, msg: Message) -> Envelope {
        Envelope { from, term, msg }
    }

    fn sends(out: &[Output]) -> Vec<(usize, u64, Message)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send { to, term, msg } => Some((*to, *term, *msg)),
                Output::Event { .. } => None,
            })
            .collect()
    }

    fn events(out: &[Output]) -> Vec<Event> {
        out.iter()
            .filter_map(|o| match o {
                Output::Event { event, .. } => Some(event.clone()),
                Output::Send { .. } => None,
            })
            .collect()
    }

    fn armed_ms(out: &[Output]) -> Vec<(f64, bool)> {
        events(out)
            .into_iter()
            .filter_map(|e| match e {
                Event::TimeoutArmed { ms, doubled, .. } => Some((ms, doubled)),
                _ => None,
            })
            .collect()
    }

    /// Drives replica 0 to leadership of term 1.
    fn elected(cfg: &Config) -> Replica {
        let none = Paths::default();
        let mut r = Replica::new(cfg, 0, 7);
        r.start(at(0), &none);
        let out = r.tick(at(1000), &none);
        assert_eq!(sends(&out).len(), 4, "RequestVote to every peer");
        r.handle(
            at(1001),
            env(1, 1, Message::VoteResponse { granted: true }),
            &none,
        );
        let out = r.handle(
            at(1002),
            env(2, 1, Message::VoteResponse { granted: true }),
            &none,
        );
        assert_eq!(r.role(), Role::Leader);
        assert!(sends(&out)
            .iter()
            .all(|(_, t, m)| *t == 1 && matches!(m, Message::AppendEntries { .. })));
        r
    }

    #[test]
    fn timeout_starts_election_and_majority_elects() {
        let r = elected(&config(""));
        assert_eq!((r.term(), r.leader(), r.elections()), (1, Some(0), 1));
    }

    #[test]
    fn one_vote_per_term_and_doubled_timeout_after_granting() {
        let none = Paths::default();
        let mut r = Replica::new(&config(""), 4, 1);
        r.start(at(0), &none);
        let out = r.handle(at(10), env(1, 3, Message::RequestVote), &none);
        assert_eq!(
            sends(&out),
            vec![(1, 3, Message::VoteResponse { granted: true })]
        );
        let (ms, doubled) = armed_ms(&out)[0];
        assert!(doubled && (300.0..=600.0).contains(&ms), "{ms}");
        let out = r.handle(at(11), env(2, 3, Message::RequestVote), &none);
        assert_eq!(
            sends(&out),
            vec![(2, 3, Message::VoteResponse { granted: false })]
        );
        let out = r.handle(at(12), env(1, 3, Message::RequestVote), &none);
        assert_eq!(
            sends(&out),
            vec![(1, 3, Message::VoteResponse { granted: true })]
        );
        let out = r.handle(at(13), env(2, 2, Message::RequestVote), &none);
        assert_eq!(
            sends(&out),
            vec![(2, 3, Message::VoteResponse { granted: false })]
        );
    }

    #[test]
    fn higher_term_makes_leader_step_down() {
        let none = Paths::default();
        let mut r = elected(&config(""));
        let out = r.handle(
            at(2000),
            env(3, 5, Message::AppendEntries { seq: 1 }),
            &none,
        );
        assert_eq!(
            (r.role(), r.term(), r.leader()),
            (Role::Follower, 5, Some(3))
        );
        assert!(events(&out).contains(&Event::Role {
            from: Role::Leader,
            to: Role::Follower
        }));
        let out = r.handle(
            at(2001),
            env(1, 4, Message::AppendEntries { seq: 9 }),
            &none,
        );
        assert_eq!(
            sends(&out),
            vec![(
                1,
                5,
                Message::AppendEntriesResponse {
                    seq: 9,
                    success: false
                }
            )]
        );
    }

    #[test]
    fn leader_heartbeats_on_schedule_and_goes_silent_after_max() {
        let none = Paths::default();
        let mut r = elected(&config("  failureLeader: true\n  maxHeartbeats: 3\n"));
        assert_eq!(r.next_deadline(), Some(at(1002 + 75)));
        assert_eq!(sends(&r.tick(at(1050), &none)).len(), 0);
        assert_eq!(sends(&r.tick(at(1077), &none)).len(), 4);
        assert_eq!(sends(&r.tick(at(1152), &none)).len(), 4);
        let out = r.tick(at(1227), &none);
        assert_eq!(events(&out), vec![Event::Silent { heartbeats: 3 }]);
        assert!(r.is_silent() && r.next_deadline().is_none());
        assert!(r
            .handle(at(1300), env(1, 9, Message::RequestVote), &none)
            .is_empty());
    }

    #[test]
    fn ineligible_replica_never_stands() {
        let none = Paths::default();
        let mut r = Replica::new(&config("  eligibleLeaders: [0, 1]\n"), 3, 1);
        r.start(at(0), &none);
        let out = r.tick(at(1000), &none);
        assert!(sends(&out).is_empty());
        assert_eq!((r.term(), r.role()), (0, Role::Follower));
    }

    #[test]
    fn false_positives_count_timeouts_while_a_leader_is_known() {
        let none = Paths::default();
        let mut r = Replica::new(&config("  checkFalsePositiveRate: true\n"), 1, 1);
        r.start(at(0), &none);
        r.handle(at(10), env(0, 1, Message::AppendEntries { seq: 1 }), &none);
        let out = r.tick(at(1000), &none);
        assert!(events(&out).iter().any(|e| matches!(
            e,
            Event::ElectionTimeout { suspected_leader: Some(0), since_heartbeat_ms: Some(ms) }
                if (ms - 990.0).abs() < 1e-6
        )));
        assert_eq!(r.false_positives(), 1);
    }

    fn history(ms: f64) -> RttHistory {
        let mut h = RttHistory::default();
        h.push(RttSample {
            srtt_us: ms * 1000.0,
            rttvar_us: 0.0,
        });
        h
    }

    /// Replica 4 is close to everyone, leader 0 far: petitions from a majority move leadership.
    #[test]
    fn majority_of_petitions_starts_an_election_at_the_best_replica() {
        let cfg = config("  testPetition: true\n  latencyThreshold: 25\n");
        let hs: Vec<RttHistory> = [60.0, 30.0, 20.0, 10.0, 0.0].map(history).to_vec();
        let paths = Paths(
            (0..5)
                .map(|j| {
                    (j != 4).then(|| Path {
                        history: &hs[j],
                        source: "udp",
                    })
                })
                .collect(),
        );
        let mut r = Replica::new(&cfg, 4, 1);
        r.start(at(0), &paths);
        r.handle(at(1), env(0, 2, Message::AppendEntries { seq: 1 }), &paths);
        for (j, s) in [(0u16, 75.0), (1, 37.5), (2, 35.0), (3, 32.5)] {
            r.handle(at(2), env(j, 2, Message::PenaltyScore { score: s }), &paths);
        }
        let petition = |from: u16, latency_ms: f64| {
            env(
                from,
                2,
                Message::Petition {
                    leader: 0,
                    proposed: 4,
                    latency_ms,
                },
            )
        };
        // The replica's own round: 60 ms to the leader, it is the best replacement.
        let out = r.penalty_round(at(3), &paths);
        assert!(events(&out)
            .iter()
            .any(|e| matches!(e, Event::PetitionReceived { from: 4, .. })));
        r.handle(at(4), petition(1, 90.0), &paths);
        assert_eq!(r.term(), 2);
        let out = r.handle(at(5), petition(2, 80.0), &paths);
        assert!(events(&out).contains(&Event::PetitionAccepted {
            petitioners: vec![1, 2, 4]
        }));
        assert_eq!((r.term(), r.role()), (3, Role::Candidate));
        assert_eq!(
            sends(&out)
                .iter()
                .filter(|s| s.2 == Message::RequestVote)
                .count(),
            4
        );
    }

    #[test]
    fn petition_is_rejected_when_farther_than_the_leader() {
        let cfg = config("  testPetition: true\n");
        let hs: Vec<RttHistory> = [5.0, 200.0, 200.0, 200.0, 0.0].map(history).to_vec();
        let paths = Paths(
            (0..5)
                .map(|j| {
                    (j != 4).then(|| Path {
                        history: &hs[j],
                        source: "udp",
                    })
                })
                .collect(),
        );
        let mut r = Replica::new(&cfg, 4, 1);
        r.start(at(0), &paths);
        r.handle(at(1), env(0, 1, Message::AppendEntries { seq: 1 }), &paths);
        for from in 1..=3u16 {
            let p = Message::Petition {
                leader: 0,
                proposed: 4,
                latency_ms: 10.0,
            };
            let out = r.handle(at(2), env(from, 1, p), &paths);
            if from == 3 {
                assert!(matches!(
                    events(&out).last(),
                    Some(Event::PetitionRejected {
                        rejection: Rejection::Farther { petitioner: 1, .. }
                    })
                ));
            }
        }
        assert_eq!((r.term(), r.role()), (1, Role::Follower));
    }

    #[test]
    fn penalty_round_broadcasts_score_and_reports_source() {
        let hs: Vec<RttHistory> = [0.0, 10.0, 30.0, 0.0, 0.0].map(history).to_vec();
        let paths = Paths(vec![
            None,
            Some(Path {
                history: &hs[1],
                source: "tcp",
            }),
            Some(Path {
                history: &hs[2],
                source: "udp",
            }),
            None,
            None,
        ]);
        let mut r = Replica::new(&config(""), 0, 1);
        let out = r.penalty_round(at(0), &paths);
        assert_eq!(sends(&out).len(), 4);
        assert!(matches!(
            &events(&out)[0],
            Event::Penalty { score, source, rank: 0, .. } if *score == 20.0 && source == "tcp+udp"
        ));
    }
}
