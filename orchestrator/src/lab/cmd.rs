//! Running the external tools the lab is made of (`ip`, `ssh-keygen`, `kill`, ...).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Runs `cmd` to completion and returns its stdout; the error names the command and carries its
/// stderr, so the user can rerun it by hand.
pub(super) fn run(cmd: &mut Command) -> Result<String> {
    let line = describe(cmd);
    tracing::debug!(command = %line, "lab: running");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("`{line}` failed ({}): {}", out.status, stderr.trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip` with `args`.
pub(super) fn ip<S: AsRef<OsStr>>(args: &[S]) -> Result<String> {
    run(Command::new("ip").args(args))
}

/// Runs `cmd` with its output discarded, killing it after `limit`; true if it exited successfully.
pub(super) fn run_with_timeout(cmd: &mut Command, limit: Duration) -> bool {
    let spawned = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = spawned else {
        return false;
    };
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// The command line of `cmd` as the user would type it (without quoting).
pub(super) fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where `tool` is found in `PATH`, if anywhere.
pub(super) fn find_in_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}
