//! The records of the replica's JSON-lines event log: the only output experiments are analysed
//! from. orch-node writes them (`elect --config`, `eventLog`); the analysis reads them back.
//!
//! Each line is a [`Record`]: `mono_ns` (monotonic ns since the replica started), `wall` (Unix
//! time, ns, to line up logs of different replicas), `id`, `term`, `event` (the kind) and the
//! kind's fields.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::replica::FdMode;

/// Raft roles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Follows a leader and times out when it goes quiet.
    #[default]
    Follower,
    /// Asks for votes.
    Candidate,
    /// Sends heartbeats.
    Leader,
}

/// Why an RTT-based mode used the raft bounds instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// No leader is known yet (start-up, candidates).
    NoLeader,
    /// The RTT source has nothing for the path to the leader.
    NoRttSamples,
    /// A confidence interval needs at least two samples.
    TooFewRttSamples,
}

/// Why a replica holding a majority of petitions did not start an election.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "why")]
pub enum Rejection {
    /// This replica is not in `eligibleLeaders`.
    NotEligible,
    /// No latency measurement to the petitioner yet.
    UnknownLatency { petitioner: usize },
    /// This replica is farther from the petitioner than the petitioner is from the leader.
    Farther {
        petitioner: usize,
        mine_ms: f64,
        theirs_ms: f64,
    },
}

/// Why a replica started an election.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElectionReason {
    /// Its election timeout expired.
    Timeout,
    /// A majority petitioned it to replace the leader.
    Petition,
}

/// Counters and current state, reported periodically and at exit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Current role.
    pub role: Role,
    /// Current leader as this replica sees it.
    pub leader: Option<usize>,
    /// Valid datagrams received.
    pub received: u64,
    /// Datagrams handed to the network (after simulated loss).
    pub sent: u64,
    /// Datagrams dropped on receipt (malformed, foreign, or from an unexpected address).
    pub dropped: u64,
    /// `dropped` by reason.
    pub drop_reasons: BTreeMap<String, u64>,
    /// Datagrams discarded by the simulated link loss.
    pub sim_lost: u64,
    /// Sends the kernel refused.
    pub send_errors: u64,
    /// Elections this replica started.
    pub elections: u64,
    /// Election timeouts while a leader was known (with `checkFalsePositiveRate`).
    pub false_positives: u64,
}

/// What happened. The serialized `event` field is the snake_case variant name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The replica is up and listening.
    Start {
        ip: IpAddr,
        port: u16,
        nodes: usize,
        fd_mode: FdMode,
        /// Where TCP RTT statistics come from (`tcp`), or `none` with `tcp_monitor` off.
        rtt_source: String,
        interfaces: Vec<String>,
    },
    /// The RTT source failed; latencies now come from UDP probes only.
    RttSourceError { source: String, error: String },
    /// This replica's role changed.
    Role { from: Role, to: Role },
    /// The leader as seen by this replica changed (`null`: unknown).
    Leader { leader: Option<usize> },
    /// The election timeout expired: the known leader (if any) is suspected to have failed.
    ElectionTimeout {
        suspected_leader: Option<usize>,
        since_heartbeat_ms: Option<f64>,
    },
    /// This replica became a candidate for `term`.
    ElectionStarted { reason: ElectionReason },
    /// This replica voted for `candidate` in `term`.
    VoteGranted { candidate: usize },
    /// A vote for this candidate arrived.
    VoteReceived {
        from: usize,
        votes: usize,
        needed: usize,
    },
    /// An election timeout was armed.
    TimeoutArmed {
        ms: f64,
        mode: FdMode,
        fallback: Option<Fallback>,
        safety_margin_ms: Option<f64>,
        rank: usize,
        doubled: bool,
        /// The leader path's latest srtt, ms, when an RTT-based mode used it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        srtt_ms: Option<f64>,
        /// The leader path's latest rttvar, ms, when an RTT-based mode used it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rttvar_ms: Option<f64>,
        /// The RTT bound the mode computed (Jacobson: srtt + 4 rttvar; CI: the interval's
        /// upper end), ms; the timeout is half of it plus the margins.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtt_bound_ms: Option<f64>,
        /// The heartbeat-interval margin the RTT-based timeout added, ms.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heartbeat_margin_ms: Option<f64>,
    },
    /// This replica's penalty score, the latencies (ms, by id) it came from, and its rank.
    Penalty {
        score: f64,
        source: String,
        latencies_ms: Vec<Option<f64>>,
        rank: usize,
    },
    /// A petition to replace `leader` was sent to `to`.
    PetitionSent {
        to: usize,
        leader: usize,
        latency_ms: f64,
    },
    /// A petition for this replica arrived (or it petitioned itself).
    PetitionReceived {
        from: usize,
        leader: usize,
        latency_ms: f64,
        petitions: usize,
        needed: usize,
    },
    /// A majority petitioned and latencies check out: an election follows.
    PetitionAccepted { petitioners: Vec<usize> },
    /// A majority petitioned but this replica declined.
    PetitionRejected { rejection: Rejection },
    /// Failure injection: the leader stopped after `heartbeats` heartbeats.
    Silent { heartbeats: u64 },
    /// Periodic counters.
    Stats(Stats),
    /// Clean exit.
    Exit { reason: String, stats: Stats },
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Monotonic time since the replica started, ns.
    pub mono_ns: u64,
    /// Wall-clock Unix time, ns.
    pub wall: u64,
    /// Replica id.
    pub id: usize,
    /// The replica's term when the event happened.
    pub term: u64,
    /// The event and its fields.
    #[serde(flatten)]
    pub event: Event,
}
