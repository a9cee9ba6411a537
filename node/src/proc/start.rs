//! `proc start`: launch a command detached from the SSH session and record it.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::record::{self, Record, TOKEN_VAR};
use super::{lookup, members};

/// What to start and where to keep its record and log.
pub struct Start<'a> {
    /// Directory of pid files and logs.
    pub dir: &'a Path,
    /// Name of the record.
    pub name: &'a str,
    /// Working directory of the command.
    pub cwd: Option<&'a Path>,
    /// Extra environment.
    pub env: &'a [(String, String)],
    /// Command and arguments.
    pub argv: &'a [String],
}

/// Starts the command in its own session with stdin from /dev/null and output appended to
/// `DIR/NAME.log`, writes `DIR/NAME.pid` and prints the pid. Returns once the command has
/// been executed: an exec failure (missing or not executable) is reported here, through the
/// standard library's close-on-exec error pipe.
pub fn run(s: &Start) -> Result<()> {
    record::check_name(s.name)?;
    let Some(program) = s.argv.first() else {
        bail!("no command given: put it after `--`, e.g. `proc start ... -- sleep 10`");
    };
    if let Some(cwd) = s.cwd {
        if !cwd.is_dir() {
            bail!("--cwd {}: no such directory on this host", cwd.display());
        }
    }
    fs::create_dir_all(s.dir)
        .with_context(|| format!("cannot create --dir {}", s.dir.display()))?;
    let pid_path = record::pid_path(s.dir, s.name);
    if let Some(old) = record::read(&pid_path)? {
        let running = members::find(&old, old.leader_alive());
        if !running.is_empty() {
            bail!(
                "{} is already running (pid {}, {} process(es)); stop it first with \
                 `orch-node proc stop --dir {} --name {}`",
                s.name,
                old.pid,
                running.len(),
                s.dir.display(),
                s.name
            );
        }
    }
    let log_path = record::log_path(s.dir, s.name);
    let new_log = !log_path.exists();
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open log {}", log_path.display()))?;
    let token = format!("{:032x}", rand::random::<u128>());

    let mut cmd = Command::new(program);
    cmd.args(&s.argv[1..])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .env(TOKEN_VAR, &token)
        .envs(s.env.iter().map(|(k, v)| (k, v)));
    if let Some(cwd) = s.cwd {
        cmd.current_dir(cwd);
    }
    // SAFETY: `detach` only makes async-signal-safe system calls.
    unsafe { cmd.pre_exec(detach) };
    let child = cmd.spawn().map_err(|e| {
        if new_log {
            let _ = fs::remove_file(&log_path);
        }
        anyhow::anyhow!(
            "cannot execute {program:?}: {e}; check that it is installed on this host and \
             executable (PATH={})",
            std::env::var("PATH").unwrap_or_default()
        )
    })?;
    let pid = child.id() as i32;
    // The child is not reaped before we exit, so its /proc entry exists even if it already
    // ended.
    let stat = lookup::stat(pid).context("the started process vanished from /proc")?;
    let rec = Record {
        name: s.name.to_string(),
        pid,
        pgid: pid,
        start_time: stat.start_time,
        argv: s.argv.to_vec(),
        log: log_path,
        started_unix_ns: record::now_unix_ns(),
        token: Some(token),
        stopped: None,
    };
    if let Err(e) = record::write(&pid_path, &rec) {
        // SAFETY: kill has no memory-safety preconditions; the group is the one just made.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        return Err(e.context("the process was killed again so that nothing runs unrecorded"));
    }
    println!("{pid}");
    Ok(())
}

/// Runs in the forked child before exec: a new session (own process group, no controlling
/// terminal, so hang-ups of the SSH session do not reach it) and close-on-exec on every
/// inherited descriptor above stderr, so no end of the SSH channel stays open in it.
fn detach() -> io::Result<()> {
    // SAFETY: setsid and close_range/fcntl are async-signal-safe and touch no Rust state.
    unsafe {
        if libc::setsid() < 0 {
            return Err(io::Error::last_os_error());
        }
        let all = libc::c_uint::MAX;
        if libc::syscall(libc::SYS_close_range, 3, all, libc::CLOSE_RANGE_CLOEXEC) != 0 {
            let max = libc::sysconf(libc::_SC_OPEN_MAX).clamp(0, 1 << 20) as libc::c_int;
            for fd in 3..max {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
    }
    Ok(())
}
