//! What /proc says about processes the tests started or must not touch (the procfs crate).

use procfs::process::Process;

/// (state, start time in clock ticks after boot) of `pid`: with the pid, a process's identity.
pub fn stat(pid: u32) -> Option<(char, u64)> {
    let s = Process::new(pid as i32).ok()?.stat().ok()?;
    Some((s.state, s.starttime))
}

/// True while the process that had `start_time` still runs (a zombie does not: this
/// machine's init may never reap it).
pub fn running(pid: u32, start_time: u64) -> bool {
    stat(pid).is_some_and(|(state, start)| start == start_time && state != 'Z')
}

/// True if `pid` is pid 1 of a pid namespace below ours (a lab host's sshd).
pub fn is_namespace_init(pid: u32) -> bool {
    Process::new(pid as i32)
        .and_then(|p| p.status())
        .ok()
        .and_then(|s| s.nspid)
        .is_some_and(|ids| ids.len() > 1 && ids.last() == Some(&1))
}

/// The command name of `pid`, empty if it is gone.
pub fn comm(pid: u32) -> String {
    Process::new(pid as i32)
        .and_then(|p| p.stat())
        .map(|s| s.comm)
        .unwrap_or_default()
}

/// True if this process runs with effective uid 0.
pub fn is_root() -> bool {
    Process::myself()
        .and_then(|p| p.status())
        .is_ok_and(|s| s.euid == 0)
}
