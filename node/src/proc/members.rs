//! Which running processes belong to a record, and signalling exactly those.
//!
//! A process is ours when it is the recorded command (same pid and start time), or when it
//! started no earlier than that and either is in the command's process group, provided the
//! command was verifiably alive when we began looking (a group id cannot be reused while the
//! group has members), or carries the record's token in its environment (descendants that
//! outlived the command or left its group).

use super::lookup;
use super::record::Record;

/// One running process of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Its pid.
    pub pid: i32,
    /// Whether a signal to the process group reaches it.
    pub in_group: bool,
}

/// The running processes of `record`, found by scanning `/proc`. `group`: whether members
/// of its process group count as ours; pass [`Record::leader_alive`] as it was when the
/// caller began, and keep passing that while it waits for them to end.
pub fn find(record: &Record, group: bool) -> Vec<Member> {
    let token = record.token_entry();
    let me = std::process::id() as i32;
    lookup::pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let stat = lookup::stat(pid)?;
            if !stat.is_alive() || stat.start_time < record.start_time {
                return None;
            }
            let in_group = group && stat.pgrp == record.pgid;
            let leader = pid == record.pid && stat.start_time == record.start_time;
            let marked = || token.as_deref().is_some_and(|t| lookup::has_env(pid, t));
            (in_group || leader || marked()).then_some(Member { pid, in_group })
        })
        .collect()
}

/// Sends `signal` to every member: once to the whole group while its leader is verifiably
/// ours (this also reaches processes forked since the scan), individually to the others.
pub fn signal(record: &Record, members: &[Member], signal: libc::c_int) {
    let group = record.leader_alive();
    if group {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(-record.pgid, signal) };
    }
    for m in members.iter().filter(|m| !(group && m.in_group)) {
        // SAFETY: as above.
        unsafe { libc::kill(m.pid, signal) };
    }
}
