//! `proc signal`: one signal to exactly the processes of a record, for the faults of a run
//! (`KILL` crashes a server, `STOP`/`CONT` pause and resume it). Unlike `stop` it leaves the
//! record in place, so `stop-all` at teardown still finds whatever is left.

use std::path::Path;

use anyhow::{bail, Result};

use super::members;
use super::record;

/// The signals a fault may send, by the names `kill -l` prints.
const SIGNALS: &[(&str, libc::c_int)] = &[
    ("KILL", libc::SIGKILL),
    ("STOP", libc::SIGSTOP),
    ("CONT", libc::SIGCONT),
    ("TERM", libc::SIGTERM),
];

/// Sends `signal` to the running processes of `NAME`; prints how many were signalled.
pub fn run(dir: &Path, name: &str, signal: &str) -> Result<()> {
    record::check_name(name)?;
    let Some(&(_, number)) = SIGNALS.iter().find(|(n, _)| *n == signal) else {
        let names: Vec<&str> = SIGNALS.iter().map(|(n, _)| *n).collect();
        bail!("--signal {signal}: use one of {}", names.join(", "));
    };
    let Some(rec) = record::read(&record::pid_path(dir, name))? else {
        bail!(
            "no {}: nothing named {name} runs with this --dir",
            record::pid_path(dir, name).display()
        );
    };
    let found = members::find(&rec, rec.leader_alive());
    if found.is_empty() {
        bail!("{name}: pid {} is not running; nothing signalled", rec.pid);
    }
    members::signal(&rec, &found, number);
    println!(
        "{name}: SIG{signal} to pid {} ({} process(es)) at {} ns",
        rec.pid,
        found.len(),
        record::now_unix_ns()
    );
    Ok(())
}
