//! `orch-node`: the agent `orch` pushes to every experiment host.

mod delay;
mod elect;
mod fourlw;
mod proc;
mod rtt;
mod stats;
mod traffic;
mod ycsb;

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
    /// Delay this host's outgoing packets per destination in user space, where the kernel has
    /// no netem (see docs/delay.md).
    Delay {
        /// Rule file (YAML or JSON): destinations with delay, jitter, distribution and loss.
        #[arg(long)]
        rules: PathBuf,
        /// Print the rule file's nftables table as the kernel reports it (JSON) and exit.
        #[arg(long)]
        show: bool,
    },
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
    /// Create a ZooKeeper znode and its parents if missing (the chroot real YCSB's ZooKeeper
    /// binding needs before `load`, what the seed did with `create /benchmark` in zkCli.sh).
    Chroot {
        /// A YCSB connect string with the znode as its chroot: `h1:2181,h2:2181/benchmark`.
        #[arg(long)]
        connect: String,
    },
    /// Ask a ZooKeeper server a four-letter word (srvr, ruok, mntr, stat) and print the answer.
    Fourlw {
        /// The server's client address, HOST:PORT.
        #[arg(long)]
        server: String,
        /// The word to send.
        word: String,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
    /// Start and stop long-running processes exactly (see docs/proc.md).
    Proc {
        #[command(subcommand)]
        command: proc::Command,
    },
    /// Live RTT table per destination: eBPF, or netlink sock_diag as fallback (docs/rtt.md).
    Rtt(rtt::cmd::RttArgs),
    /// Background TCP between the experiment addresses (see docs/traffic.md).
    Traffic {
        #[command(subcommand)]
        command: traffic::Command,
    },
    /// YCSB-compatible ZooKeeper driver: `ycsb load|run [-P FILE]... [-p NAME=VALUE]...
    /// [-threads N] [-target N] [-s] [--out FILE]`, YCSB's text output (see docs/ycsb.md).
    #[command(disable_help_flag = true)]
    Ycsb {
        /// `load` or `run`, then YCSB's options (`orch-node ycsb --help` lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Delay { rules, show } => delay::run(&rules, show),
        Command::Elect { config, id } => elect::run(&config, id),
        Command::ElectSummary { files, json } => elect::summary::run(&files, json),
        Command::Proc { command } => proc::run(command),
        Command::Rtt(args) => rtt::cmd::run(&args),
        Command::Traffic { command } => traffic::run(command),
        Command::Ycsb { args } => ycsb::main(&args),
        Command::Chroot { connect } => ycsb::create_chroot(&connect),
        Command::Fourlw {
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
