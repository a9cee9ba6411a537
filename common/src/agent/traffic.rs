//! `orch-node traffic`: background TCP between the experiment addresses (tcp_sim.py's mesh, or
//! iperf3-like constant-rate streams).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args as ClapArgs, Subcommand};

use super::units;
use super::Args;

/// The `traffic` subcommands.
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum Traffic {
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
#[derive(ClapArgs, Debug, Clone, PartialEq)]
pub struct Common {
    /// Milliseconds to wait before connecting again after a failure.
    #[arg(long, default_value_t = 1000)]
    pub reconnect_ms: u64,
    /// Exit (with final stats) after this many seconds; default: until SIGTERM/SIGINT.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    /// Append stats records (JSON lines) to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Milliseconds between stats records.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(100..))]
    pub stats_ms: u64,
}

impl Default for Common {
    /// The defaults of the command line: what a run that sets nothing gets.
    fn default() -> Common {
        Common {
            reconnect_ms: 1000,
            duration: None,
            log: None,
            stats_ms: 5000,
        }
    }
}

impl Traffic {
    /// The arguments after `orch-node traffic`.
    pub fn argv(&self) -> Vec<String> {
        let (mut a, common) = match self {
            Traffic::Mesh {
                bind,
                peers,
                port,
                bytes,
                interval_ms,
                common,
            } => {
                let peers: Vec<String> = peers.iter().map(IpAddr::to_string).collect();
                let mut a = Args::new(["mesh"]);
                a.flag("--bind", bind).flag("--peers", peers.join(","));
                a.flag("--port", port).flag("--bytes", bytes);
                a.flag("--interval-ms", interval_ms);
                (a, common)
            }
            Traffic::Rate {
                bind,
                peer,
                port,
                rate,
                len,
                common,
            } => {
                let mut a = Args::new(["rate"]);
                a.flag("--bind", bind)
                    .flag("--peer", peer)
                    .flag("--port", port);
                a.flag("--rate", rate).flag("--len", len);
                (a, common)
            }
            Traffic::Sink { bind, port, common } => {
                let mut a = Args::new(["sink"]);
                a.flag("--bind", bind).flag("--port", port);
                (a, common)
            }
        };
        a.flag("--reconnect-ms", common.reconnect_ms);
        a.maybe("--duration", common.duration);
        a.maybe("--log", common.log.as_ref().map(|l| l.display()));
        a.flag("--stats-ms", common.stats_ms);
        a.0
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::round_trip;
    use super::super::Agent;
    use super::*;

    #[test]
    fn every_mode_round_trips() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let logged = Common {
            duration: Some(30),
            log: Some("/tmp/t.jsonl".into()),
            ..Common::default()
        };
        for command in [
            Traffic::Mesh {
                bind: ip("10.0.0.1"),
                peers: vec![ip("10.0.0.2"), ip("fd00::3")],
                port: 5001,
                bytes: 64,
                interval_ms: 500,
                common: Common::default(),
            },
            Traffic::Rate {
                bind: ip("10.0.0.1"),
                peer: ip("10.0.0.2"),
                port: 5002,
                rate: 1_500_000,
                len: 1024,
                common: logged.clone(),
            },
            Traffic::Sink {
                bind: ip("10.0.0.2"),
                port: 5002,
                common: logged,
            },
        ] {
            round_trip(Agent::Traffic { command });
        }
    }
}
