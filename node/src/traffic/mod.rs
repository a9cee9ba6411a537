//! `orch-node traffic`: background TCP between the experiment addresses.
//!
//! The leader-election replicas read RTT statistics from the kernel's TCP connections, so
//! every pair of hosts needs some steady TCP traffic. `mesh` replaces the prototype's
//! `tcp_sim.py` (small messages on one persistent connection to every peer), `rate` and
//! `sink` replace `iperf3 -c IP -b 100K -l 1K` and its server. See docs/traffic.md.

mod listen;
mod send;
mod stats;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use orch_common::agent::traffic::{Common, Traffic};
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::{interval, sleep, MissedTickBehavior};

use send::Pace;
use stats::{Reporter, Stats};

/// Runs one `traffic` mode until its duration passes or SIGTERM/SIGINT arrives, then writes
/// the final stats record and exits cleanly.
pub fn run(command: Traffic) -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run_async(command))
}

async fn run_async(command: Traffic) -> Result<()> {
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let (stats, common) = match command {
        Traffic::Mesh {
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
                    reconnect(&common),
                    stats.clone(),
                ));
            }
            (stats, common)
        }
        Traffic::Rate {
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
                reconnect(&common),
                stats.clone(),
            ));
            (stats, common)
        }
        Traffic::Sink { bind, port, common } => {
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

fn reconnect(common: &Common) -> Duration {
    Duration::from_millis(common.reconnect_ms)
}
