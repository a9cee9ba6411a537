//! The pid file: what `proc start` launched, written so that `stop` can later recognise
//! exactly those processes and nothing else.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::lookup;

/// Environment variable carrying [`Record::token`] into the started process and everything it
/// forks, so `stop` finds descendants that outlived the group leader.
pub const TOKEN_VAR: &str = "ORCH_NODE_PROC";

/// Contents of `DIR/NAME.pid` (and, after `stop`, of `DIR/NAME.pid.stopped`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The `--name` it was started under.
    pub name: String,
    /// Pid of the started command.
    pub pid: i32,
    /// Its process group (and session): the command is their leader, so this equals `pid`.
    pub pgid: i32,
    /// Field 22 of `/proc/PID/stat` (clock ticks after boot): tells the process apart from a
    /// later one that reuses the pid.
    pub start_time: u64,
    /// The command line as given.
    pub argv: Vec<String>,
    /// Where stdout and stderr are appended.
    pub log: PathBuf,
    /// Wall-clock start, nanoseconds since the Unix epoch; orders `stop-all`.
    pub started_unix_ns: u64,
    /// Random value exported as [`TOKEN_VAR`]; absent in hand-written records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// How `stop` ended it; only in `NAME.pid.stopped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
}

/// What `stop` did, kept in the `.stopped` record so `wait` can report an exit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stopped {
    /// When the stop finished, nanoseconds since the Unix epoch.
    pub at_unix_ns: u64,
    /// `terminated` (ended after SIGTERM), `killed` (needed SIGKILL), `already-gone` or
    /// `pid-reused` (nothing of ours was running).
    pub outcome: String,
    /// How many of its processes were signalled.
    pub processes: usize,
}

impl Record {
    /// Whether the recorded command itself is running (same pid and start time).
    pub fn leader_alive(&self) -> bool {
        lookup::stat(self.pid).is_some_and(|s| s.is_alive() && s.start_time == self.start_time)
    }

    /// The `K=V` entry marking its processes, if the record has a token.
    pub fn token_entry(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("{TOKEN_VAR}={t}"))
    }
}

/// Refuses names that could escape DIR or clash with our own file suffixes.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        bail!("invalid --name {name:?}: use letters, digits, '_', '.' and '-' (not starting with '.')");
    }
    Ok(())
}

/// `DIR/NAME.pid`: the record of a started, not yet stopped process.
pub fn pid_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.pid"))
}

/// `DIR/NAME.pid.stopped`: the record after `stop`.
pub fn stopped_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.pid.stopped"))
}

/// `DIR/NAME.log`: stdout and stderr of the process, appended across restarts.
pub fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

/// Reads a record; `None` if the file does not exist.
pub fn read(path: &Path) -> Result<Option<Record>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a pid record of orch-node proc", path.display()))
        .map(Some)
}

/// Writes a record atomically (temporary file + rename), so a reader never sees half of it.
pub fn write(path: &Path, record: &Record) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(record)?)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Every `NAME.pid` record in `dir`, oldest start first; none if `dir` does not exist.
/// Other programs' `.pid` files there are skipped with a warning.
pub fn list(dir: &Path) -> Result<Vec<Record>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list --dir {}", dir.display())),
    };
    let mut records = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "pid") {
            match read(&path) {
                Ok(r) => records.extend(r),
                Err(e) => eprintln!("warning: {e:#}; skipped"),
            }
        }
    }
    records.sort_by_key(|r| (r.started_unix_ns, r.start_time, r.pid));
    Ok(records)
}

/// Nanoseconds since the Unix epoch.
pub fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["zk", "replica-1", "a.b_c"] {
            check_name(good).unwrap();
        }
        for bad in ["", ".hidden", "a/b", "..", "x y", "é"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
