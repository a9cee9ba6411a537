//! Processes the lab started, identified by pid *and* start time so that a recycled pid is never
//! signalled.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use procfs::process::{Process, Stat};
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

impl ProcId {
    /// The process that currently has `pid`, if any.
    pub(super) fn of(pid: u32) -> Option<ProcId> {
        read_stat(pid).map(|stat| ProcId {
            pid,
            start_time: stat.starttime,
        })
    }

    /// True while this very process exists and has not exited. A zombie counts as exited: its
    /// parent may never reap it (some container inits do not).
    pub(super) fn is_running(&self) -> bool {
        read_stat(self.pid)
            .is_some_and(|s| s.starttime == self.start_time && !matches!(s.state, 'Z' | 'X'))
    }

    /// The command name, for messages.
    pub(super) fn comm(&self) -> String {
        read_stat(self.pid).map_or_else(|| "?".into(), |s| s.comm)
    }
}

fn read_stat(pid: u32) -> Option<Stat> {
    Process::new(i32::try_from(pid).ok()?).ok()?.stat().ok()
}

/// The running children of `parent`.
pub(super) fn children_of(parent: ProcId) -> Vec<ProcId> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    all.filter_map(|p| p.ok()?.stat().ok())
        .filter(|s| u32::try_from(s.ppid) == Ok(parent.pid) && s.state != 'Z')
        .filter_map(|s| ProcId::of(u32::try_from(s.pid).ok()?))
        .collect()
}

/// True if `proc` is pid 1 of a pid namespace below ours (the last `NSpid` entry is 1).
pub(super) fn is_namespace_init(proc: ProcId) -> bool {
    i32::try_from(proc.pid)
        .ok()
        .and_then(|pid| Process::new(pid).ok()?.status().ok()?.nspid)
        .is_some_and(|ids| ids.len() > 1 && ids.last() == Some(&1))
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
    fn a_child_is_found_and_is_no_namespace_init() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let me = ProcId::of(std::process::id()).unwrap();
        let found = children_of(me);
        let pid = child.id();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(found.iter().any(|c| c.pid == pid), "{found:?}");
        assert!(!is_namespace_init(me));
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
