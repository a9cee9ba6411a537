//! `orch-node elect`: the latency-aware leader-election replica of the frugal-leader-election
//! prototype, and `elect-summary`, which analyses its event logs.
//!
//! This module is the runtime: it owns the socket, clocks and RTT sources, feeds the pure
//! [`replica::Replica`] and carries out what it asks for.

pub use orch_common::replica as config;
pub mod events;
pub mod net;
pub mod penalty;
pub mod replica;
pub mod summary;
pub mod timeout;
pub mod wire;

use std::net::IpAddr;
use std::path::Path as FsPath;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::{interval_at, sleep_until, MissedTickBehavior};

use crate::rtt::source::{self, SourceKind};
use crate::rtt::{RttSource, Smoothed};
use config::Config;
use events::{Event, EventLog, Stats};
use net::Net;
use replica::{Output, Path, Paths, Replica};
use wire::{Envelope, Message};

/// How often counters are logged as a `stats` event.
const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// Probe echoes claiming a longer round trip than this are treated as corrupt.
const MAX_PROBE_RTT: Duration = Duration::from_secs(60);
/// A peer that answered no probe for this long is left out (it is probably down), so a
/// dead replica's last RTT does not linger in penalty scores.
const PROBE_STALE: Duration = Duration::from_secs(2);

/// Everything the running replica owns.
struct Runtime {
    cfg: Config,
    id: usize,
    start: Instant,
    log: EventLog,
    net: Net,
    latency: Latency,
    replica: Replica,
}

/// The two latency sources: kernel TCP statistics and our own UDP probes.
struct Latency {
    id: usize,
    ips: Vec<IpAddr>,
    tcp: Option<Box<dyn RttSource>>,
    probes: Vec<Smoothed>,
    /// When each peer last answered a probe (time since start).
    last_ack: Vec<Option<Duration>>,
    start: Instant,
}

impl Latency {
    /// Per peer: TCP statistics when the kernel has some, otherwise UDP probe round trips of
    /// a peer that still answers.
    fn paths(&self) -> Paths<'_> {
        Paths(
            (0..self.ips.len())
                .map(|j| {
                    if j == self.id {
                        return None;
                    }
                    let tcp = self.tcp.as_ref().and_then(|t| {
                        t.history(self.ips[j]).map(|history| Path {
                            history,
                            source: t.name(),
                        })
                    });
                    let fresh = self.last_ack[j]
                        .is_some_and(|t| self.start.elapsed().saturating_sub(t) <= PROBE_STALE);
                    tcp.or_else(|| {
                        fresh.then_some(Path {
                            history: self.probes[j].history(),
                            source: "udp",
                        })
                    })
                })
                .collect(),
        )
    }
}

/// Loads the config and runs replica `id` until `runtimeSeconds` pass or a signal arrives.
pub fn run(config_path: &FsPath, id: usize) -> Result<()> {
    let cfg = Config::load(config_path)?;
    cfg.check_id(id)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move { Runtime::new(cfg, id).await?.run().await })
}

impl Runtime {
    async fn new(cfg: Config, id: usize) -> Result<Self> {
        let start = Instant::now();
        let mut log = EventLog::open(cfg.event_log_path(id).as_deref(), id, start)?;
        let net = Net::bind(&cfg, id).await?;
        let ip = cfg.ips[id];
        let (tcp, rtt_source) = if cfg.tcp_monitor {
            match source::open(SourceKind::Auto, ip) {
                Ok(opened) => {
                    if let Some(reason) = opened.fallback {
                        log.write(
                            0,
                            Event::RttSourceError {
                                source: "ebpf".into(),
                                error: reason,
                            },
                        )?;
                    }
                    let name = opened.source.name().to_string();
                    (Some(opened.source), name)
                }
                Err(e) => {
                    log.write(
                        0,
                        Event::RttSourceError {
                            source: "tcp".into(),
                            error: format!("{e:#}"),
                        },
                    )?;
                    (None, "none".to_string())
                }
            }
        } else {
            (None, "none".to_string())
        };
        log.write(
            0,
            Event::Start {
                ip,
                port: cfg.port,
                nodes: cfg.nodes(),
                fd_mode: cfg.fd_mode,
                rtt_source,
                interfaces: cfg.interfaces.clone(),
            },
        )?;
        let replica = Replica::new(&cfg, id, rand::random());
        Ok(Self {
            latency: Latency {
                id,
                ips: cfg.ips.clone(),
                tcp,
                probes: vec![Smoothed::default(); cfg.nodes()],
                last_ack: vec![None; cfg.nodes()],
                start,
            },
            cfg,
            id,
            start,
            log,
            net,
            replica,
        })
    }

    async fn run(mut self) -> Result<()> {
        let now = self.now();
        let out = self.replica.start(now, &self.latency.paths());
        self.apply(out)?;

        let t0 = tokio::time::Instant::from_std(self.start);
        let every = |period: Duration| {
            let mut i = interval_at(t0 + period, period);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        };
        let mut probe_tick = every(self.cfg.heartbeat_interval());
        let mut penalty_tick = every(self.cfg.penalty_interval());
        let mut stats_tick = every(STATS_INTERVAL);
        let stop_at = (self.cfg.runtime_seconds > 0)
            .then(|| t0 + Duration::from_secs(self.cfg.runtime_seconds));
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let far_future = t0 + Duration::from_secs(100 * 365 * 24 * 3600);

        let reason = loop {
            let deadline = self.replica.next_deadline().map_or(far_future, |d| t0 + d);
            tokio::select! {
                _ = sleep_until(stop_at.unwrap_or(far_future)) => break "runtime",
                _ = sigterm.recv() => break "sigterm",
                _ = sigint.recv() => break "sigint",
                env = self.net.recv() => self.on_datagram(env)?,
                _ = sleep_until(deadline) => {
                    let now = self.now();
                    let out = self.replica.tick(now, &self.latency.paths());
                    self.apply(out)?;
                }
                _ = probe_tick.tick() => self.probe_round()?,
                _ = penalty_tick.tick() => {
                    let now = self.now();
                    let out = self.replica.penalty_round(now, &self.latency.paths());
                    self.apply(out)?;
                }
                _ = stats_tick.tick() => {
                    let stats = self.stats();
                    self.log.write(self.replica.term(), Event::Stats(stats))?;
                }
            }
        };
        let stats = self.stats();
        self.log.write(
            self.replica.term(),
            Event::Exit {
                reason: reason.into(),
                stats,
            },
        )
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn stats(&self) -> Stats {
        Stats {
            role: self.replica.role(),
            leader: self.replica.leader(),
            elections: self.replica.elections(),
            false_positives: self.replica.false_positives(),
            ..self.net.stats()
        }
    }

    fn envelope(&self, term: u64, msg: Message) -> Envelope {
        Envelope {
            from: self.id as u16,
            term,
            msg,
        }
    }

    fn on_datagram(&mut self, env: Envelope) -> Result<()> {
        if self.replica.is_silent() {
            return Ok(());
        }
        let from = usize::from(env.from);
        match env.msg {
            Message::Probe { nonce } => {
                let reply = self.envelope(self.replica.term(), Message::ProbeAck { nonce });
                self.net.send(from, &reply);
            }
            Message::ProbeAck { nonce } => {
                let sent = Duration::from_micros(nonce);
                match self.now().checked_sub(sent) {
                    Some(rtt) if rtt <= MAX_PROBE_RTT => {
                        self.latency.probes[from].observe(rtt.as_secs_f64() * 1e6);
                        self.latency.last_ack[from] = Some(self.now());
                    }
                    _ => self.net.drop_one("probe"),
                }
            }
            _ => {
                let now = self.now();
                let out = self.replica.handle(now, env, &self.latency.paths());
                self.apply(out)?;
            }
        }
        Ok(())
    }

    /// Sends an RTT probe to every peer and takes a round of TCP statistics.
    fn probe_round(&mut self) -> Result<()> {
        if self.replica.is_silent() {
            return Ok(());
        }
        let nonce = u64::try_from(self.now().as_micros()).unwrap_or(u64::MAX);
        let probe = self.envelope(self.replica.term(), Message::Probe { nonce });
        for j in (0..self.cfg.nodes()).filter(|&j| j != self.id) {
            self.net.send(j, &probe);
        }
        if let Some(tcp) = &mut self.latency.tcp {
            if let Err(e) = tcp.refresh() {
                let source = tcp.name().to_string();
                self.latency.tcp = None;
                self.log.write(
                    self.replica.term(),
                    Event::RttSourceError {
                        source,
                        error: format!("{e:#}"),
                    },
                )?;
            }
        }
        Ok(())
    }

    fn apply(&mut self, outputs: Vec<Output>) -> Result<()> {
        for o in outputs {
            match o {
                Output::Send { to, term, msg } => {
                    let env = self.envelope(term, msg);
                    self.net.send(to, &env);
                }
                Output::Event { term, event } => self.log.write(term, event)?,
            }
        }
        Ok(())
    }
}
