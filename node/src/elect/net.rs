//! The replica's UDP socket: validated receive, and sends through optional simulated links.
//!
//! Simulated links live in the sender, as in the prototype: each datagram is dropped with
//! `linkLossRate` or delayed by uniform [delayLowerBound, delayUpperBound] ms plus the
//! destination's `simulatedDelays` entry, so latency experiments run on a single host.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::RngExt;
use tokio::net::UdpSocket;

use super::config::Config;
use super::events::Stats;
use super::wire::{self, Envelope};

/// Largest datagram read; anything longer is truncated and then rejected by length.
const RECV_BUF: usize = 2048;

/// Per-destination delay and loss applied before sending.
struct Links {
    lower_ms: f64,
    upper_ms: f64,
    loss: f64,
    extra_ms: Vec<f64>,
}

/// The socket plus counters of what went through it.
pub struct Net {
    socket: Arc<UdpSocket>,
    id: usize,
    peers: Vec<SocketAddr>,
    links: Option<Links>,
    rng: StdRng,
    buf: Vec<u8>,
    received: u64,
    sent: u64,
    sim_lost: u64,
    drops: BTreeMap<&'static str, u64>,
    send_errors: Arc<AtomicU64>,
}

impl Net {
    /// Binds `ips[id]:port`.
    pub async fn bind(cfg: &Config, id: usize) -> Result<Self> {
        let addr = cfg.addr(id);
        let socket = UdpSocket::bind(addr).await.with_context(|| {
            format!(
                "cannot bind UDP {addr} for replica {id}: check that {} is an address of this \
                 host (`ip addr`) and that no other replica uses port {}",
                addr.ip(),
                addr.port()
            )
        })?;
        let links = cfg.use_simulated_links.then(|| Links {
            lower_ms: cfg.delay_lower_bound,
            upper_ms: cfg.delay_upper_bound,
            loss: cfg.link_loss_rate,
            extra_ms: cfg
                .ips
                .iter()
                .map(|ip| cfg.simulated_delays.get(ip).copied().unwrap_or(0.0))
                .collect(),
        });
        Ok(Self {
            socket: Arc::new(socket),
            id,
            peers: (0..cfg.nodes()).map(|j| cfg.addr(j)).collect(),
            links,
            rng: rand::make_rng(),
            buf: vec![0; RECV_BUF],
            received: 0,
            sent: 0,
            sim_lost: 0,
            drops: BTreeMap::new(),
            send_errors: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Waits for the next valid datagram from a peer; everything else is counted and dropped.
    pub async fn recv(&mut self) -> Envelope {
        loop {
            let (len, src) = match self.socket.recv_from(&mut self.buf).await {
                Ok(r) => r,
                Err(_) => {
                    self.drop_one("recv_error");
                    continue;
                }
            };
            match wire::decode(&self.buf[..len]) {
                Err(e) => self.drop_one(e.name()),
                Ok(env) => {
                    let from = usize::from(env.from);
                    if from == self.id || self.peers.get(from) != Some(&src) {
                        self.drop_one("sender");
                    } else {
                        self.received += 1;
                        return env;
                    }
                }
            }
        }
    }

    /// Counts a datagram dropped for `reason` (also used by the runtime for bad probe echoes).
    pub fn drop_one(&mut self, reason: &'static str) {
        *self.drops.entry(reason).or_default() += 1;
    }

    /// Sends `env` to replica `to` through the simulated link, if configured.
    pub fn send(&mut self, to: usize, env: &Envelope) {
        let bytes = wire::encode(env);
        let addr = self.peers[to];
        let mut delay_ms = 0.0;
        if let Some(links) = &self.links {
            if links.loss > 0.0 && self.rng.random_bool(links.loss) {
                self.sim_lost += 1;
                return;
            }
            delay_ms = links.extra_ms[to];
            if links.upper_ms > links.lower_ms {
                delay_ms += self.rng.random_range(links.lower_ms..=links.upper_ms);
            } else {
                delay_ms += links.lower_ms;
            }
        }
        self.sent += 1;
        if delay_ms <= 0.0 {
            if self.socket.try_send_to(&bytes, addr).is_err() {
                self.send_errors.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let socket = Arc::clone(&self.socket);
        let errors = Arc::clone(&self.send_errors);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(delay_ms / 1000.0)).await;
            if socket.send_to(&bytes, addr).await.is_err() {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    /// Counters so far; the replica fills in its own fields.
    pub fn stats(&self) -> Stats {
        Stats {
            received: self.received,
            sent: self.sent,
            dropped: self.drops.values().sum(),
            drop_reasons: self
                .drops
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            sim_lost: self.sim_lost,
            send_errors: self.send_errors.load(Ordering::Relaxed),
            ..Stats::default()
        }
    }
}
