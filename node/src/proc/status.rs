//! `proc status` and `proc wait`: what the records describe and whether it still runs.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use orch_common::agent::proc::StatusRow;

use super::record::{self, Record};
use super::{lookup, members};

/// How often `wait` looks at the process.
const POLL: Duration = Duration::from_millis(100);

/// Prints one row per `NAME.pid` in `dir`, oldest first, as a table or a JSON array.
pub fn status(dir: &Path, json: bool) -> Result<()> {
    let records = record::list(dir)?;
    let rows: Vec<StatusRow> = records.iter().map(row).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<20} {:>8} {:<5} {:>5} {:>8}  COMMAND",
        "NAME", "PID", "ALIVE", "PROCS", "UPTIME"
    );
    for r in &rows {
        println!(
            "{:<20} {:>8} {:<5} {:>5} {:>8}  {}",
            r.name,
            r.pid,
            if r.alive { "yes" } else { "no" },
            r.processes,
            r.uptime_s.map_or("-".into(), human_secs),
            shell_words(&r.argv)
        );
    }
    Ok(())
}

fn row(rec: &Record) -> StatusRow {
    let alive = rec.leader_alive();
    StatusRow {
        name: rec.name.clone(),
        pid: rec.pid,
        pgid: rec.pgid,
        alive,
        processes: members::find(rec, alive).len(),
        uptime_s: alive
            .then(|| lookup::uptime_secs(rec.start_time))
            .flatten()
            .map(|s| (s * 100.0).round() / 100.0),
        argv: rec.argv.clone(),
        started_unix_ns: rec.started_unix_ns,
        log: rec.log.clone(),
    }
}

/// Waits until the recorded command exits (or `timeout` passes) and says how it ended, as
/// far as that is known: it is not our child, so its exit status is known only when
/// `proc stop` ended it.
pub fn wait(dir: &Path, name: &str, timeout: Option<Duration>) -> Result<()> {
    record::check_name(name)?;
    let pid_path = record::pid_path(dir, name);
    let stopped_path = record::stopped_path(dir, name);
    let Some(rec) = record::read(&pid_path)?.or(record::read(&stopped_path)?) else {
        bail!(
            "no {}: nothing named {name} was started with this --dir",
            pid_path.display()
        );
    };
    let start = Instant::now();
    while rec.leader_alive() {
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            bail!(
                "{name} (pid {}) is still running after {:.0} s",
                rec.pid,
                start.elapsed().as_secs_f64()
            );
        }
        sleep(POLL);
    }
    let stopped = record::read(&stopped_path)?
        .filter(|r| r.pid == rec.pid && r.start_time == rec.start_time)
        .and_then(|r| r.stopped);
    match stopped.as_ref().map(|s| s.outcome.as_str()) {
        Some("terminated") => println!("{name}: pid {} was ended by SIGTERM (proc stop)", rec.pid),
        Some("killed") => println!(
            "{name}: pid {} was killed with SIGKILL after the grace period (proc stop)",
            rec.pid
        ),
        _ => println!(
            "{name}: pid {} exited; exit status unknown (not a child of orch-node; see {})",
            rec.pid,
            rec.log.display()
        ),
    }
    Ok(())
}

/// `12.3s`, `4m05s`, `2h07m`.
fn human_secs(s: f64) -> String {
    let whole = s as u64;
    match whole {
        0..60 => format!("{s:.1}s"),
        60..3600 => format!("{}m{:02}s", whole / 60, whole % 60),
        _ => format!("{}h{:02}m", whole / 3600, whole % 3600 / 60),
    }
}

/// The command line as a shell would read it back: arguments with special characters quoted.
fn shell_words(argv: &[String]) -> String {
    let plain = |a: &str| {
        !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    };
    argv.iter()
        .map(|a| {
            if plain(a) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(human_secs(3.21), "3.2s");
        assert_eq!(human_secs(245.0), "4m05s");
        assert_eq!(human_secs(7620.0), "2h07m");
        let argv = ["sh", "-c", "echo 'hi' &"].map(String::from);
        assert_eq!(shell_words(&argv), r"sh -c 'echo '\''hi'\'' &'");
    }
}
