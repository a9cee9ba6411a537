//! `orch-node`: the agent `orch` pushes to every experiment host.

mod clock;
mod delay;
mod elect;
mod fourlw;
mod proc;
mod relay;
mod rtt;
mod traffic;
mod ycsb;
mod zkwrite;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use orch_common::agent::Agent;

/// Command line of the agent.
#[derive(Parser)]
#[command(name = "orch-node", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Summarise replica event logs: leaders per term, elections, detection times.
    ElectSummary {
        /// Event logs (JSON lines) of the replicas of one experiment.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Live RTT table per destination: eBPF, or netlink sock_diag as fallback (docs/rtt.md).
    Rtt(rtt::cmd::RttArgs),
    /// What orch starts on hosts; its command line is defined in orch-common, so that orch
    /// builds exactly what this parses.
    #[command(flatten)]
    Agent(Agent),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::ElectSummary { files, json } => elect::summary::run(&files, json),
        Command::Rtt(args) => rtt::cmd::run(&args),
        Command::Agent(agent) => run(agent),
    }
}

fn run(agent: Agent) -> anyhow::Result<()> {
    match agent {
        Agent::Elect { config, id } => elect::run(&config, id),
        Agent::Delay { rules, show } => delay::run(&rules, show),
        Agent::Proc { command } => proc::run(command),
        Agent::RelayServe { dir, listen } => relay::serve(&dir, &listen),
        Agent::Traffic { command } => traffic::run(command),
        Agent::Ycsb { args } => ycsb::main(&args),
        Agent::Clock => clock::serve(std::io::stdin().lock(), std::io::stdout().lock()),
        Agent::Chroot { connect } => ycsb::create_chroot(&connect),
        Agent::ZkWrite {
            server,
            limit_ms,
            interval_ms,
        } => zkwrite::run(
            &server,
            std::time::Duration::from_millis(limit_ms),
            std::time::Duration::from_millis(interval_ms),
        ),
        Agent::Fourlw {
            server,
            word,
            timeout_ms,
        } => {
            let answer = fourlw::ask(&server, &word, std::time::Duration::from_millis(timeout_ms))?;
            print!("{answer}");
            Ok(())
        }
    }
}
