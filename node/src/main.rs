//! `orch-node`: the agent `orch` pushes to every experiment host.

mod elect;
mod rtt;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Command line of the agent.
#[derive(Parser)]
#[command(name = "orch-node", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one latency-aware leader-election replica (see docs/elect.md).
    Elect {
        /// YAML config with a `replica:` section, shared by all replicas.
        #[arg(long)]
        config: PathBuf,
        /// This replica's index into `ips` (0-based).
        #[arg(long)]
        id: usize,
    },
    /// Summarise replica event logs: leaders per term, elections, detection times.
    ElectSummary {
        /// Event logs (JSON lines) of the replicas of one experiment.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Elect { config, id } => elect::run(&config, id),
        Command::ElectSummary { files, json } => elect::summary::run(&files, json),
    }
}
