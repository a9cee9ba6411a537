//! The replica's JSON-lines event log: the only output experiments are analysed from.
//!
//! Each line is a [`Record`]: `mono_ns` (monotonic ns since the replica started), `wall` (Unix
//! time, ns, to line up logs of different replicas), `id`, `term`, `event` (the kind) and the
//! kind's fields. `elect-summary` reads the same types back.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::config::FdMode;
use super::penalty::Rejection;
use super::replica::Role;
use super::timeout::Fallback;

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

/// Writes records as JSON lines, flushing each so logs are complete when a replica is killed.
pub struct EventLog {
    out: Box<dyn Write + Send>,
    start: Instant,
    id: usize,
    target: String,
}

impl EventLog {
    /// Opens (truncating) `path`, or stdout when `None`.
    pub fn open(path: Option<&Path>, id: usize, start: Instant) -> Result<Self> {
        let (out, target): (Box<dyn Write + Send>, String) = match path {
            Some(p) => {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| {
                        format!("cannot create the event log directory {}", dir.display())
                    })?;
                }
                let f = File::create(p)
                    .with_context(|| format!("cannot create event log {}", p.display()))?;
                (Box::new(BufWriter::new(f)), p.display().to_string())
            }
            None => (Box::new(io::stdout()), "stdout".to_string()),
        };
        Ok(Self {
            out,
            start,
            id,
            target,
        })
    }

    /// Appends one event.
    pub fn write(&mut self, term: u64, event: Event) -> Result<()> {
        let record = Record {
            mono_ns: u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX),
            wall: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            id: self.id,
            term,
            event,
        };
        let mut line = serde_json::to_vec(&record).context("cannot serialize an event")?;
        line.push(b'\n');
        self.out
            .write_all(&line)
            .and_then(|()| self.out.flush())
            .with_context(|| format!("cannot write the event log {} (disk full?)", self.target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_roundtrip_through_json_with_flat_fields() {
        let events = vec![
            Event::Role {
                from: Role::Candidate,
                to: Role::Leader,
            },
            Event::TimeoutArmed {
                ms: 210.5,
                mode: FdMode::Ci,
                fallback: Some(Fallback::NoRttSamples),
                safety_margin_ms: None,
                rank: 4,
                doubled: true,
            },
            Event::Penalty {
                score: 12.5,
                source: "udp".into(),
                latencies_ms: vec![None, Some(10.0), Some(15.0)],
                rank: 0,
            },
            Event::PetitionRejected {
                rejection: Rejection::Farther {
                    petitioner: 2,
                    mine_ms: 9.0,
                    theirs_ms: 1.0,
                },
            },
            Event::Stats(Stats {
                dropped: 3,
                drop_reasons: BTreeMap::from([("magic".to_string(), 3)]),
                ..Stats::default()
            }),
        ];
        for event in events {
            let r = Record {
                mono_ns: 1,
                wall: 2,
                id: 3,
                term: 4,
                event,
            };
            let line = serde_json::to_string(&r).unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert!(v["event"].is_string() && v["term"] == 4, "{line}");
            assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), r, "{line}");
        }
    }

    #[test]
    fn log_file_gets_one_line_per_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/node_0.jsonl");
        let mut log = EventLog::open(Some(&path), 0, Instant::now()).unwrap();
        log.write(1, Event::Leader { leader: Some(2) }).unwrap();
        log.write(1, Event::Silent { heartbeats: 5 }).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("\"event\":\"leader\""), "{}", lines[0]);
    }
}
