//! `orch-node proc`: start and stop long-running processes on a host without an agent.
//!
//! Hosts are shared, so orch must stop exactly what it started and nothing else: every start
//! leaves a pid record identifying the process by pid *and* start time, its process group and
//! a token in its environment (see [`members`]). `start` returns at once, so the SSH command
//! that runs it does too. See docs/proc.md.

mod members;
mod procfs;
mod record;
mod start;
mod status;
mod stop;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::Subcommand;

/// The `proc` subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Start CMD detached (own session, stdin /dev/null, output appended to DIR/NAME.log),
    /// record it in DIR/NAME.pid and print its pid.
    Start {
        /// Directory of pid records and logs (created if missing).
        #[arg(long)]
        dir: PathBuf,
        /// Name of the record: letters, digits, '_', '.', '-'.
        #[arg(long)]
        name: String,
        /// Working directory of the command.
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// Extra environment variable, repeatable.
        #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
        env: Vec<(String, String)>,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "CMD")]
        argv: Vec<String>,
    },
    /// Stop NAME: SIGTERM to its process group, SIGKILL after the grace period.
    Stop {
        /// Directory given to `start`.
        #[arg(long)]
        dir: PathBuf,
        /// Name given to `start`.
        #[arg(long)]
        name: String,
        /// Seconds between SIGTERM and SIGKILL.
        #[arg(long, default_value_t = 5, value_name = "SECS")]
        grace: u64,
    },
    /// Stop every record in DIR, most recently started first.
    StopAll {
        /// Directory given to `start`.
        #[arg(long)]
        dir: PathBuf,
        /// Seconds between SIGTERM and SIGKILL, per record.
        #[arg(long, default_value_t = 5, value_name = "SECS")]
        grace: u64,
    },
    /// One row per record in DIR: name, pid, alive, uptime, command.
    Status {
        /// Directory given to `start`.
        #[arg(long)]
        dir: PathBuf,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Wait until NAME exits and print how it ended, if known.
    Wait {
        /// Directory given to `start`.
        #[arg(long)]
        dir: PathBuf,
        /// Name given to `start`.
        #[arg(long)]
        name: String,
        /// Give up (exit 1) after this many seconds; default: wait forever.
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
    },
}

/// Runs one `proc` subcommand.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Start {
            dir,
            name,
            cwd,
            env,
            argv,
        } => start::run(&start::Start {
            dir: &dir,
            name: &name,
            cwd: cwd.as_deref(),
            env: &env,
            argv: &argv,
        }),
        Command::Stop { dir, name, grace } => stop::run(&dir, &name, Duration::from_secs(grace)),
        Command::StopAll { dir, grace } => stop::run_all(&dir, Duration::from_secs(grace)),
        Command::Status { dir, json } => status::status(&dir, json),
        Command::Wait { dir, name, timeout } => {
            status::wait(&dir, &name, timeout.map(Duration::from_secs))
        }
    }
}

/// Parses `K=V` of `--env`.
fn parse_env(s: &str) -> Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| anyhow!("expected K=V, e.g. --env JAVA_HOME=/opt/java"))?;
    Ok((k.to_string(), v.to_string()))
}
