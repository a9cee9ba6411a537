//! `orch-node proc`: the subcommands that start and stop the processes of a run, and the rows
//! `proc status --json` prints (which `orch status` reads).

use std::path::PathBuf;

use clap::Subcommand;
use serde::{Deserialize, Serialize};

use super::Args;

/// The `proc` subcommands.
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum Proc {
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
    /// Send SIGNAL (KILL, STOP, CONT, TERM) to the running processes of NAME; the record
    /// stays, so `stop` and `stop-all` still end them later. For the faults of a run.
    Signal {
        /// Directory given to `start`.
        #[arg(long)]
        dir: PathBuf,
        /// Name given to `start`.
        #[arg(long)]
        name: String,
        /// Signal name without the SIG prefix.
        #[arg(long)]
        signal: String,
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
        /// Print a JSON array of [`StatusRow`]s instead of a table.
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

impl Proc {
    /// The arguments after `orch-node proc`.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Proc::Start {
                dir,
                name,
                cwd,
                env,
                argv,
            } => {
                let mut a = Args::new(["start"]);
                a.flag("--dir", dir.display()).flag("--name", name);
                a.maybe("--cwd", cwd.as_ref().map(|c| c.display()));
                for (k, v) in env {
                    a.flag("--env", format!("{k}={v}"));
                }
                a.push("--");
                argv.iter().for_each(|w| {
                    a.push(w);
                });
                a.0
            }
            Proc::Stop { dir, name, grace } => {
                let mut a = Args::new(["stop"]);
                a.flag("--dir", dir.display()).flag("--name", name);
                a.flag("--grace", grace);
                a.0
            }
            Proc::Signal { dir, name, signal } => {
                let mut a = Args::new(["signal"]);
                a.flag("--dir", dir.display()).flag("--name", name);
                a.flag("--signal", signal);
                a.0
            }
            Proc::StopAll { dir, grace } => {
                let mut a = Args::new(["stop-all"]);
                a.flag("--dir", dir.display()).flag("--grace", grace);
                a.0
            }
            Proc::Status { dir, json } => {
                let mut a = Args::new(["status"]);
                a.flag("--dir", dir.display()).switch("--json", *json);
                a.0
            }
            Proc::Wait { dir, name, timeout } => {
                let mut a = Args::new(["wait"]);
                a.flag("--dir", dir.display()).flag("--name", name);
                a.maybe("--timeout", *timeout);
                a.0
            }
        }
    }
}

/// Parses `K=V` of `--env`.
fn parse_env(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .ok_or("expected K=V, e.g. --env JAVA_HOME=/opt/java")?;
    Ok((k.to_string(), v.to_string()))
}

/// One row of `proc status --json`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct StatusRow {
    pub name: String,
    pub pid: i32,
    pub pgid: i32,
    /// Whether the recorded command itself runs.
    pub alive: bool,
    /// How many of its processes run (the command and what it forked).
    pub processes: usize,
    pub uptime_s: Option<f64>,
    pub argv: Vec<String>,
    pub started_unix_ns: u64,
    pub log: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::super::tests::round_trip;
    use super::super::Agent;
    use super::*;

    #[test]
    fn every_subcommand_round_trips() {
        let dir = PathBuf::from("/h/.orch/runs/r/r01-rep1/proc");
        for command in [
            Proc::Start {
                dir: dir.clone(),
                name: "zookeeper".into(),
                cwd: Some("/h/.orch/runs/r/r01-rep1".into()),
                env: vec![("JAVA_HOME".into(), "/opt/j=1".into())],
                argv: ["java", "-cp", "a b", "--not-ours"]
                    .map(String::from)
                    .to_vec(),
            },
            Proc::Start {
                dir: dir.clone(),
                name: "x".into(),
                cwd: None,
                env: Vec::new(),
                argv: vec!["true".into()],
            },
            Proc::Stop {
                dir: dir.clone(),
                name: "traffic".into(),
                grace: 2,
            },
            Proc::StopAll {
                dir: dir.clone(),
                grace: 5,
            },
            Proc::Signal {
                dir: dir.clone(),
                name: "zookeeper".into(),
                signal: "STOP".into(),
            },
            Proc::Status {
                dir: dir.clone(),
                json: true,
            },
            Proc::Wait {
                dir: dir.clone(),
                name: "ycsb-run".into(),
                timeout: Some(90),
            },
            Proc::Wait {
                dir,
                name: "elect-0".into(),
                timeout: None,
            },
        ] {
            round_trip(Agent::Proc { command });
        }
    }

    #[test]
    fn env_needs_a_name() {
        assert!(parse_env("=x").is_err());
        assert_eq!(parse_env("A=b=c"), Ok(("A".into(), "b=c".into())));
    }
}
