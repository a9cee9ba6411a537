//! `orch-node proc`: start and stop long-running processes on a host without an agent.
//!
//! Hosts are shared, so orch must stop exactly what it started and nothing else: every start
//! leaves a pid record identifying the process by pid *and* start time, its process group and
//! a token in its environment (see [`members`]). `start` returns at once, so the SSH command
//! that runs it does too. See docs/proc.md.

mod lookup;
mod members;
mod record;
mod signal;
mod start;
mod status;
mod stop;

use std::time::Duration;

use anyhow::Result;
use orch_common::agent::Proc;

/// Runs one `proc` subcommand.
pub fn run(command: Proc) -> Result<()> {
    match command {
        Proc::Start {
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
        Proc::Stop { dir, name, grace } => stop::run(&dir, &name, Duration::from_secs(grace)),
        Proc::Signal { dir, name, signal } => signal::run(&dir, &name, &signal),
        Proc::StopAll { dir, grace } => stop::run_all(&dir, Duration::from_secs(grace)),
        Proc::Status { dir, json } => status::status(&dir, json),
        Proc::Wait { dir, name, timeout } => {
            status::wait(&dir, &name, timeout.map(Duration::from_secs))
        }
    }
}
