//! The command line of `orch-node` for everything orch starts on hosts, defined once: orch-node
//! parses it (these are its clap definitions) and orch builds it ([`Agent::argv`]), so a
//! renamed flag or a new field cannot drift apart on the two sides. A round-trip test parses
//! what `argv` prints back into the same value.
//!
//! - [`Agent`]: `elect`, `delay`, `chroot`, `fourlw`, `relay-serve`, `ycsb`, `clock`, `proc …`,
//!   `traffic …`;
//! - [`proc`]: `orch-node proc` (start, stop, stop-all, status, wait) and its `--json` rows;
//! - [`traffic`]: `orch-node traffic` (mesh, rate, sink);
//! - [`units`]: iperf3-style sizes and rates (`100K`, `1M`).

pub mod proc;
pub mod traffic;
pub mod units;

use std::path::PathBuf;

use clap::Subcommand;

pub use proc::Proc;
pub use traffic::Traffic;

/// `relay-serve` follows an artifact that is still arriving under this prefix and its name
/// (the controller's upload to the seed renames it when complete).
pub const RELAY_PARTIAL_PREFIX: &str = ".orch-partial.";

/// The subcommands of `orch-node` that orch starts; orch-node's own command line flattens them
/// in beside the ones only people type (`rtt`, `elect-summary`).
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum Agent {
    /// Run one latency-aware leader-election replica (see docs/elect.md).
    Elect {
        /// YAML config with a `replica:` section, shared by all replicas.
        #[arg(long)]
        config: PathBuf,
        /// This replica's index into `ips` (0-based).
        #[arg(long)]
        id: usize,
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
    /// Write to one ZooKeeper server (an ephemeral znode) until it works; print when it did.
    ZkWrite {
        /// The server's client address, HOST:PORT.
        #[arg(long)]
        server: String,
        /// Give up after this many milliseconds.
        #[arg(long)]
        limit_ms: u64,
        /// Milliseconds between attempts.
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
    },
    /// Serve this host's artifacts to the other hosts of an `orch setup` (token on stdin).
    RelayServe {
        /// The artifacts directory.
        #[arg(long)]
        dir: PathBuf,
        /// Address to listen on; port 0 picks a free one (printed as `port N`).
        #[arg(long, default_value = "0.0.0.0:0")]
        listen: String,
    },
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
    /// Read this host's clock for orch's offset measurement (docs/clocks.md): print the
    /// resolution of CLOCK_REALTIME in ns, then answer every line on stdin at once with
    /// CLOCK_REALTIME in ns since the Unix epoch, until stdin ends.
    Clock,
    /// Start and stop long-running processes exactly (see docs/proc.md).
    Proc {
        #[command(subcommand)]
        command: Proc,
    },
    /// Background TCP between the experiment addresses (see docs/traffic.md).
    Traffic {
        #[command(subcommand)]
        command: Traffic,
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

impl Agent {
    /// The arguments after `orch-node` that orch-node parses back into `self`.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Agent::Elect { config, id } => {
                let mut a = Args::new(["elect"]);
                a.flag("--config", config.display()).flag("--id", id);
                a.0
            }
            Agent::Chroot { connect } => {
                let mut a = Args::new(["chroot"]);
                a.flag("--connect", connect);
                a.0
            }
            Agent::Fourlw {
                server,
                word,
                timeout_ms,
            } => {
                let mut a = Args::new(["fourlw"]);
                a.flag("--server", server).flag("--timeout-ms", timeout_ms);
                a.push(word);
                a.0
            }
            Agent::ZkWrite {
                server,
                limit_ms,
                interval_ms,
            } => {
                let mut a = Args::new(["zk-write"]);
                a.flag("--server", server)
                    .flag("--limit-ms", limit_ms)
                    .flag("--interval-ms", interval_ms);
                a.0
            }
            Agent::RelayServe { dir, listen } => {
                let mut a = Args::new(["relay-serve"]);
                a.flag("--dir", dir.display()).flag("--listen", listen);
                a.0
            }
            Agent::Delay { rules, show } => {
                let mut a = Args::new(["delay"]);
                a.flag("--rules", rules.display()).switch("--show", *show);
                a.0
            }
            Agent::Clock => vec!["clock".to_string()],
            Agent::Proc { command } => [vec!["proc".to_string()], command.argv()].concat(),
            Agent::Traffic { command } => [vec!["traffic".to_string()], command.argv()].concat(),
            Agent::Ycsb { args } => [vec!["ycsb".to_string()], args.clone()].concat(),
        }
    }
}

/// An argument vector being built: `--flag value` pairs and plain words.
pub(crate) struct Args(pub(crate) Vec<String>);

impl Args {
    pub(crate) fn new<const N: usize>(words: [&str; N]) -> Args {
        Args(words.iter().map(|w| w.to_string()).collect())
    }

    pub(crate) fn flag(&mut self, name: &str, value: impl std::fmt::Display) -> &mut Args {
        self.0.push(name.to_string());
        self.0.push(value.to_string());
        self
    }

    pub(crate) fn maybe(&mut self, name: &str, value: Option<impl std::fmt::Display>) -> &mut Args {
        if let Some(v) = value {
            self.flag(name, v);
        }
        self
    }

    pub(crate) fn switch(&mut self, name: &str, on: bool) -> &mut Args {
        if on {
            self.0.push(name.to_string());
        }
        self
    }

    pub(crate) fn push(&mut self, word: impl std::fmt::Display) -> &mut Args {
        self.0.push(word.to_string());
        self
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        agent: Agent,
    }

    /// `argv` of `agent` parses back into `agent`.
    pub(crate) fn round_trip(agent: Agent) {
        let argv = agent.argv();
        let parsed =
            Cli::try_parse_from(std::iter::once("orch-node".to_string()).chain(argv.clone()))
                .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        assert_eq!(parsed.agent, agent, "{argv:?}");
    }

    #[test]
    fn the_small_commands_round_trip() {
        round_trip(Agent::Elect {
            config: "/h/.orch/runs/r/replica.yaml".into(),
            id: 3,
        });
        round_trip(Agent::Chroot {
            connect: "10.0.0.1:2181,10.0.0.2:2181/benchmark".into(),
        });
        round_trip(Agent::Fourlw {
            server: "10.0.0.1:2181".into(),
            word: "srvr".into(),
            timeout_ms: 1500,
        });
        round_trip(Agent::ZkWrite {
            server: "10.0.0.1:2181".into(),
            limit_ms: 10_000,
            interval_ms: 100,
        });
        round_trip(Agent::RelayServe {
            dir: ".".into(),
            listen: "0.0.0.0:0".into(),
        });
        for show in [false, true] {
            round_trip(Agent::Delay {
                rules: "/h/.orch/delay/rules.json".into(),
                show,
            });
        }
        round_trip(Agent::Clock);
        round_trip(Agent::Ycsb {
            args: ["run", "-P", "w", "-p", "a=b", "-threads", "4", "-s"]
                .map(String::from)
                .to_vec(),
        });
    }
}
