//! `proc stop` and `proc stop-all`: end exactly the processes a record describes.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::lookup;
use super::members::{self, Member};
use super::record::{self, Record, Stopped};

/// How often the process table is checked while waiting for processes to end.
const POLL: Duration = Duration::from_millis(50);
/// How long processes get to disappear after SIGKILL before stop reports failure.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// Stops `NAME` (SIGTERM to its group, SIGKILL after `grace`) and renames its record to
/// `NAME.pid.stopped`. Succeeds when nothing of it runs any more.
pub fn run(dir: &Path, name: &str, grace: Duration) -> Result<()> {
    record::check_name(name)?;
    let Some(rec) = record::read(&record::pid_path(dir, name))? else {
        if record::stopped_path(dir, name).exists() {
            println!("{name}: already stopped");
            return Ok(());
        }
        bail!(
            "no {}: nothing named {name} was started with this --dir; \
             `orch-node proc status --dir {}` lists what was",
            record::pid_path(dir, name).display(),
            dir.display()
        );
    };
    stop(dir, rec, grace)
}

/// Stops every `NAME.pid` in `dir`, newest first, so later processes that depend on earlier
/// ones go before them. Carries on past failures and reports them at the end.
pub fn run_all(dir: &Path, grace: Duration) -> Result<()> {
    let records = record::list(dir)?;
    if records.is_empty() {
        println!("nothing to stop in {}", dir.display());
    }
    let mut failed = Vec::new();
    for rec in records.into_iter().rev() {
        let name = rec.name.clone();
        if let Err(e) = stop(dir, rec, grace) {
            eprintln!("{name}: {e:#}");
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        bail!("could not stop {}", failed.join(", "));
    }
    Ok(())
}

fn stop(dir: &Path, mut rec: Record, grace: Duration) -> Result<()> {
    let name = rec.name.clone();
    let started = Instant::now();
    let group = rec.leader_alive();
    let first = members::find(&rec, group);
    let (outcome, processes) = if first.is_empty() {
        let reused = lookup::stat(rec.pid).filter(|s| s.is_alive());
        match reused {
            Some(_) => {
                println!(
                    "{name}: pid {} had exited and now belongs to another process ({}); \
                     left alone",
                    rec.pid,
                    lookup::comm(rec.pid)
                );
                ("pid-reused", 0)
            }
            None => {
                println!(
                    "{name}: pid {} had already exited; nothing to stop",
                    rec.pid
                );
                ("already-gone", 0)
            }
        }
    } else {
        members::signal(&rec, &first, libc::SIGTERM);
        // A process paused by a fault (SIGSTOP) only acts on SIGTERM once it runs again.
        members::signal(&rec, &first, libc::SIGCONT);
        if wait_gone(&rec, group, grace).is_empty() {
            println!(
                "{name}: stopped pid {} ({} process(es)) with SIGTERM in {:.2} s",
                rec.pid,
                first.len(),
                started.elapsed().as_secs_f64()
            );
            ("terminated", first.len())
        } else {
            let left = members::find(&rec, group);
            members::signal(&rec, &left, libc::SIGKILL);
            let survivors = wait_gone(&rec, group, KILL_WAIT);
            if !survivors.is_empty() {
                let pids: Vec<String> = survivors.iter().map(|m| m.pid.to_string()).collect();
                bail!(
                    "pids {} survived SIGKILL (uninterruptible sleep, or owned by another \
                     user: run stop as that user or root); record kept",
                    pids.join(" ")
                );
            }
            println!(
                "{name}: stopped pid {} ({} process(es)); {} needed SIGKILL after the {} s grace",
                rec.pid,
                first.len(),
                left.len(),
                grace.as_secs()
            );
            ("killed", first.len())
        }
    };
    rec.stopped = Some(Stopped {
        at_unix_ns: record::now_unix_ns(),
        outcome: outcome.into(),
        processes,
    });
    record::write(&record::stopped_path(dir, &name), &rec)?;
    std::fs::remove_file(record::pid_path(dir, &name))?;
    Ok(())
}

/// Polls until no member of `rec` runs or `limit` passes; returns those still running.
fn wait_gone(rec: &Record, group: bool, limit: Duration) -> Vec<Member> {
    let end = Instant::now() + limit;
    loop {
        let left = members::find(rec, group);
        if left.is_empty() || Instant::now() >= end {
            return left;
        }
        sleep(POLL);
    }
}
