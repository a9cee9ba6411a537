//! What `/proc` says about a process (read with the `procfs` crate): enough to recognise it
//! again after its pid may have been reused, and to find the members of its process group.

use procfs::process::Process;
use procfs::Current;

/// The fields of `/proc/PID/stat` that identify a process and its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Process state letter (`R`, `S`, `Z`, ...).
    pub state: char,
    /// Process group id.
    pub pgrp: i32,
    /// Start time in clock ticks after boot (field 22): with the pid, a unique identity.
    pub start_time: u64,
}

impl Stat {
    /// Whether the process still runs: zombies have exited, only nobody reaped them yet.
    pub fn is_alive(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads `/proc/PID/stat`; `None` when there is no such process.
pub fn stat(pid: i32) -> Option<Stat> {
    let stat = Process::new(pid).ok()?.stat().ok()?;
    Some(Stat {
        state: stat.state,
        pgrp: stat.pgrp,
        start_time: stat.starttime,
    })
}

/// The process's command name, for messages.
pub fn comm(pid: i32) -> String {
    Process::new(pid)
        .and_then(|p| p.stat())
        .map_or_else(|_| "?".into(), |s| s.comm)
}

/// Whether the environment the process started with contains exactly `entry` (`K=V`).
/// Processes of other users cannot be read and count as not containing it.
pub fn has_env(pid: i32, entry: &str) -> bool {
    let Some((key, value)) = entry.split_once('=') else {
        return false;
    };
    Process::new(pid)
        .and_then(|p| p.environ())
        .is_ok_and(|env| {
            env.get(std::ffi::OsStr::new(key))
                .is_some_and(|v| v == value)
        })
}

/// Every process id currently in `/proc`.
pub fn pids() -> Vec<i32> {
    procfs::process::all_processes()
        .map(|all| all.filter_map(|p| Some(p.ok()?.pid())).collect())
        .unwrap_or_default()
}

/// Seconds a process that started at `start_time` (clock ticks after boot) has been running.
pub fn uptime_secs(start_time: u64) -> Option<f64> {
    let since_boot = procfs::Uptime::current().ok()?.uptime;
    let ticks = procfs::ticks_per_second() as f64;
    (ticks > 0.0).then(|| (since_boot - start_time as f64 / ticks).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_known() {
        let pid = std::process::id() as i32;
        let me = stat(pid).unwrap();
        assert!(me.is_alive());
        assert!(uptime_secs(me.start_time).is_some());
        assert!(pids().contains(&pid));
        assert_ne!(comm(pid), "?");
    }

    #[test]
    fn environment_entries_match_exactly() {
        let pid = std::process::id() as i32;
        let path = std::env::var("PATH").expect("tests run with a PATH");
        assert!(has_env(pid, &format!("PATH={path}")));
        assert!(!has_env(pid, &format!("PATH={path}x")));
        assert!(!has_env(pid, "PATH"));
    }
}
