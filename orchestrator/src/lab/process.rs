//! Processes the lab started, identified by pid *and* start time so that a recycled pid is never
//! signalled.

use std::collections::BTreeSet;
use std::fs;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long processes get to exit after SIGTERM before they are sent SIGKILL.
const GRACE: Duration = Duration::from_secs(2);
/// How long SIGKILLed processes get to disappear before they count as unkillable.
const KILL_WAIT: Duration = Duration::from_secs(1);

/// One process: its pid and its start time (field 22 of `/proc/<pid>/stat`, in clock ticks since
/// boot), which together never name two different processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(super) struct ProcId {
    pub pid: u32,
    pub start_time: u64,
}

/// The fields of `/proc/<pid>/stat` the lab needs.
struct Stat {
    state: char,
    ppid: u32,
    start_time: u64,
}

impl ProcId {
    /// The process that currently has `pid`, if any.
    pub(super) fn of(pid: u32) -> Option<ProcId> {
        read_stat(pid).map(|stat| ProcId {
            pid,
            start_time: stat.start_time,
        })
    }

    /// True while this very process exists and has not exited. A zombie counts as exited: its
    /// parent may never reap it (some container inits do not).
    pub(super) fn is_running(&self) -> bool {
        read_stat(self.pid)
            .is_some_and(|s| s.start_time == self.start_time && !matches!(s.state, 'Z' | 'X'))
    }

    /// The command name, for messages.
    pub(super) fn comm(&self) -> String {
        fs::read_to_string(format!("/proc/{}/comm", self.pid))
            .map(|c| c.trim().to_string())
            .unwrap_or_else(|_| "?".into())
    }
}

fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parses a `/proc/<pid>/stat` line; the command name may contain spaces and parentheses, so the
/// fields are counted from the last `)`.
fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// The running children of `parent`.
pub(super) fn children_of(parent: ProcId) -> Vec<ProcId> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| read_stat(pid).is_some_and(|s| s.ppid == parent.pid && s.state != 'Z'))
        .filter_map(ProcId::of)
        .collect()
}

/// True if `proc` is pid 1 of a pid namespace below ours (the last `NSpid` entry is 1).
pub(super) fn is_namespace_init(proc: ProcId) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{}/status", proc.pid)) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|ids| ids.split_whitespace().collect::<Vec<_>>())
        .is_some_and(|ids| ids.len() > 1 && ids.last() == Some(&"1"))
}

/// Stops `procs`: SIGTERM, up to 2 s to exit, then SIGKILL. Returns those still running.
pub(super) fn terminate(procs: &[ProcId]) -> Vec<ProcId> {
    let targets: BTreeSet<ProcId> = procs.iter().copied().filter(ProcId::is_running).collect();
    for p in &targets {
        signal(*p, "TERM");
    }
    let left = wait_exit(targets, GRACE);
    for p in &left {
        signal(*p, "KILL");
    }
    wait_exit(left, KILL_WAIT).into_iter().collect()
}

/// Sends `sig` to `proc` unless its pid now belongs to another process.
fn signal(proc: ProcId, sig: &str) {
    if !proc.is_running() {
        return;
    }
    tracing::debug!(pid = proc.pid, sig, "lab: signalling");
    let _ = Command::new("kill")
        .args(["-s", sig, &proc.pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Waits up to `limit` for `procs` to exit; returns those still running.
fn wait_exit(mut procs: BTreeSet<ProcId>, limit: Duration) -> BTreeSet<ProcId> {
    let deadline = Instant::now() + limit;
    loop {
        procs.retain(ProcId::is_running);
        if procs.is_empty() || Instant::now() >= deadline {
            return procs;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "42 (a (b) c) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1 2 3";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.ppid, 7);
        assert_eq!(stat.start_time, 98765);
    }

    #[test]
    fn this_process_is_running_and_a_wrong_start_time_is_not() {
        let me = ProcId::of(std::process::id()).unwrap();
        assert!(me.is_running());
        let recycled = ProcId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!recycled.is_running());
    }
}
