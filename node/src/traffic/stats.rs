//! Per-peer counters and the JSON-lines stats records built from them.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::Serialize;

/// Counters of the traffic with one peer (keyed by its address).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PeerStats {
    /// Bytes written on our connection to the peer.
    pub sent_bytes: u64,
    /// Bytes read from the peer, on any connection.
    pub recv_bytes: u64,
    /// Connections we established to the peer.
    pub connects: u64,
    /// Of those, the ones that replaced a lost connection.
    pub reconnects: u64,
    /// Failed connection attempts.
    pub connect_errors: u64,
    /// Established connections that broke.
    pub disconnects: u64,
    /// Connections the peer opened to us.
    pub accepts: u64,
    /// Whether our connection to the peer is up.
    pub connected: bool,
    /// How many of the peer's connections to us are open.
    pub inbound: u32,
}

/// The counters of one `traffic` process, shared by its tasks.
pub struct Stats {
    mode: &'static str,
    bind: IpAddr,
    started: Instant,
    peers: Mutex<BTreeMap<IpAddr, PeerStats>>,
}

/// One JSON line of output.
#[derive(Serialize)]
struct Line<'a> {
    ts_unix_ms: u64,
    elapsed_s: f64,
    mode: &'a str,
    bind: IpAddr,
    #[serde(rename = "final")]
    last: bool,
    sent_bytes: u64,
    recv_bytes: u64,
    peers: BTreeMap<String, PeerStats>,
}

impl Stats {
    /// Counters for `peers` (listed even before any traffic); others are added when seen.
    pub fn new(mode: &'static str, bind: IpAddr, peers: &[IpAddr]) -> Self {
        Self {
            mode,
            bind,
            started: Instant::now(),
            peers: Mutex::new(peers.iter().map(|&p| (p, PeerStats::default())).collect()),
        }
    }

    /// Changes the counters of `peer`.
    pub fn update(&self, peer: IpAddr, f: impl FnOnce(&mut PeerStats)) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        f(peers.entry(peer).or_default());
    }

    /// The stats record as one line of JSON; `last` marks the record written at exit.
    fn line(&self, last: bool) -> Result<String> {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let line = Line {
            ts_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            elapsed_s: (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            mode: self.mode,
            bind: self.bind,
            last,
            sent_bytes: peers.values().map(|p| p.sent_bytes).sum(),
            recv_bytes: peers.values().map(|p| p.recv_bytes).sum(),
            peers: peers.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        };
        Ok(serde_json::to_string(&line)?)
    }
}

/// Where stats records go: the `--log` file (appended) or stdout.
pub struct Reporter(Box<dyn Write>);

impl Reporter {
    /// Opens `--log`, or stdout without one.
    pub fn open(log: Option<&Path>) -> Result<Self> {
        Ok(Self(match log {
            Some(path) => Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("cannot open --log {}", path.display()))?,
            ),
            None => Box::new(io::stdout()),
        }))
    }

    /// Writes the current record of `stats` as one line and flushes it.
    pub fn write(&mut self, stats: &Stats, last: bool) -> Result<()> {
        let line = stats.line(last)?;
        writeln!(self.0, "{line}")
            .and_then(|()| self.0.flush())
            .context("cannot write stats")
    }
}
