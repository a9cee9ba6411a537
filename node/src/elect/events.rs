//! Writing the replica's JSON-lines event log. The record types are the contract with the
//! analysis and live in `orch_common::events`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

pub use orch_common::events::{ElectionReason, Event, Record, Stats};

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
    use orch_common::events::{Fallback, Rejection, Role};
    use orch_common::replica::FdMode;
    use std::collections::BTreeMap;

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
                srtt_ms: None,
                rttvar_ms: None,
                rtt_bound_ms: None,
                heartbeat_margin_ms: None,
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
