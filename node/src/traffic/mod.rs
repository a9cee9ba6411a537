//! `orch-node traffic`: background TCP between the experiment addresses.
//!
//! The leader-election replicas read RTT statistics from the kernel's TCP connections, so
//! every pair of hosts needs some steady TCP traffic. `mesh` replaces the prototype's
//! `tcp_sim.py` (small messages on one persistent connection to every peer), `rate` and
//! `sink` replace `iperf3 -c IP -b 100K -l 1K` and its server. See docs/traffic.md.

mod listen;
mod send;
mod stats;
mod units;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::{interval, sleep, MissedTickBehavior};

use send::Pace;
use stats::{Reporter, Stats};

/// The `traffic` subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Listen on BIND:PORT and keep one connection to every peer's PORT, sending BYTES every
    /// INTERVAL-MS (tcp_sim.py).
    Mesh {
        /// This host's experiment address: listening and source address.
        #[arg(long)]
        bind: IpAddr,
        /// Addresses of the peers, comma-separated; --bind itself is skipped, so every host
        /// can be given the same list.
        #[arg(long, value_delimiter = ',', required = true)]
        peers: Vec<IpAddr>,
        /// Port every host listens on.
        #[arg(long)]
        port: u16,
        /// Bytes per message.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65536))]
        bytes: u32,
        /// Milliseconds between messages to one peer.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
        interval_ms: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Stream to PEER:PORT at a constant bit rate, paced (iperf3 -c PEER -b RATE -l LEN).
    Rate {
        /// Source address.
        #[arg(long)]
        bind: IpAddr,
        /// Receiver (running `traffic sink`).
        #[arg(long)]
        peer: IpAddr,
        /// Receiver's port.
        #[arg(long)]
        port: u16,
        /// Bits per second; K, M, G = 1000, 1000², 1000³ (as iperf3 -b).
        #[arg(long, default_value = "100K", value_parser = units::parse_rate)]
        rate: u64,
        /// Bytes per write; K, M = 1024, 1024² (as iperf3 -l).
        #[arg(long, default_value = "1K", value_parser = units::parse_len)]
        len: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Accept connections on BIND:PORT and discard what arrives (the receiver of `rate`).
    Sink {
        /// Listening address.
        #[arg(long)]
        bind: IpAddr,
        /// Listening port.
        #[arg(long)]
        port: u16,
        #[command(flatten)]
        common: Common,
    },
}

/// Options shared by every mode.
#[derive(Args)]
pub struct Common {
    /// Milliseconds to wait before connecting again after a failure.
    #[arg(long, default_value_t = 1000)]
    reconnect_ms: u64,
    /// Exit (with final stats) after this many seconds; default: until SIGTERM/SIGINT.
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
    /// Append stats records (JSON lines) to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Milliseconds between stats records.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(100..))]
    stats_ms: u64,
}

/// Runs one `traffic` mode until its duration passes or SIGTERM/SIGINT arrives, then writes
/// the final stats record and exits cleanly.
pub fn run(command: Command) -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run_async(command))
}

async fn run_async(command: Command) -> Result<()> {
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let (stats, common) = match command {
        Command::Mesh {
            bind,
            peers,
            port,
            bytes,
            interval_ms,
            common,
        } => {
            let mut peers: Vec<IpAddr> = peers.into_iter().filter(|&p| p != bind).collect();
            peers.sort();
            peers.dedup();
            let stats = Arc::new(Stats::new("mesh", bind, &peers));
            let listener = listen::listen(bind, port)?;
            tokio::spawn(listen::accept_all(listener, stats.clone()));
            let pace = Pace {
                len: bytes as usize,
                period: Duration::from_millis(interval_ms),
            };
            for peer in peers {
                let to = SocketAddr::new(peer, port);
                tokio::spawn(send::keep_sending(
                    bind,
                    to,
                    pace,
                    common.reconnect(),
                    stats.clone(),
                ));
            }
            (stats, common)
        }
        Command::Rate {
            bind,
            peer,
            port,
            rate,
            len,
            common,
        } => {
            if peer == bind {
                bail!("--peer and --bind are both {bind}: stream to another host's sink");
            }
            let stats = Arc::new(Stats::new("rate", bind, &[peer]));
            let pace = Pace {
                len,
                period: Duration::from_secs_f64(len as f64 * 8.0 / rate as f64),
            };
            let to = SocketAddr::new(peer, port);
            tokio::spawn(send::keep_sending(
                bind,
                to,
                pace,
                common.reconnect(),
                stats.clone(),
            ));
            (stats, common)
        }
        Command::Sink { bind, port, common } => {
            let stats = Arc::new(Stats::new("sink", bind, &[]));
            let listener = listen::listen(bind, port)?;
            tokio::spawn(listen::accept_all(listener, stats.clone()));
            (stats, common)
        }
    };

    let mut out = Reporter::open(common.log.as_deref())?;
    let mut tick = interval(Duration::from_millis(common.stats_ms));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick.tick().await;
    let end = sleep(common.duration.map_or(Duration::MAX, Duration::from_secs));
    tokio::pin!(end);
    loop {
        tokio::select! {
            _ = tick.tick() => out.write(&stats, false)?,
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            () = &mut end => break,
        }
    }
    out.write(&stats, true)
}

impl Common {
    fn reconnect(&self) -> Duration {
        Duration::from_millis(self.reconnect_ms)
    }
}
