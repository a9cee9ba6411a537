//! `orch exec`: one command on many hosts, output prefixed by host, a status per host.

use std::time::{Duration, Instant};

use crate::inventory::Host;
use crate::output::Progress;
use crate::remote::{self, Cmd, RemoteError, Stream};

/// What to run and how.
pub struct ExecOptions {
    pub argv: Vec<String>,
    pub sudo: bool,
    pub timeout: Option<Duration>,
    pub parallel: usize,
}

/// How each host fared.
#[derive(Debug, Default)]
pub struct ExecSummary {
    pub ok: Vec<String>,
    pub failed: Vec<(String, i32)>,
    pub unreachable: Vec<(String, String)>,
}

impl ExecSummary {
    /// True when the command exited 0 on every host.
    pub fn all_ok(&self) -> bool {
        self.failed.is_empty() && self.unreachable.is_empty()
    }
}

/// Runs the command on every host and prints its output as it arrives.
pub async fn exec(hosts: &[&Host], opts: &ExecOptions) -> ExecSummary {
    let started = Instant::now();
    let width = hosts.iter().map(|h| h.name.len()).max().unwrap_or(0);
    let progress = Progress::new("exec", hosts.len());
    let mut cmd = Cmd::new(&opts.argv).timeout(opts.timeout);
    if opts.sudo {
        cmd = cmd.privileged();
    }
    let cmd = &cmd;
    let progress_ref = &progress;
    let results = remote::each(hosts, opts.parallel, &progress, |conn| async move {
        let name = format!("{:<width$}", conn.host());
        conn.stream(cmd, |stream, line| match stream {
            Stream::Stdout => progress_ref.println(&format!("{name} | {line}")),
            Stream::Stderr => progress_ref.eprintln(&format!("{name} ! {line}")),
        })
        .await
    })
    .await;
    progress.finish();

    let mut summary = ExecSummary::default();
    for r in results {
        match r.result {
            Ok(status) if status.success() => summary.ok.push(r.host),
            Ok(status) => {
                let code = status.code().unwrap_or(-1);
                eprintln!("{:<width$} : exit status {code}", r.host);
                summary.failed.push((r.host, code));
            }
            Err(RemoteError::Unreachable { host, reason }) => {
                eprintln!(
                    "{host:<width$} : unreachable after {:.1} s: {reason}",
                    r.elapsed.as_secs_f64()
                );
                summary.unreachable.push((host, reason));
            }
            Err(e) => {
                eprintln!("{e}");
                summary.failed.push((r.host, -1));
            }
        }
    }
    eprintln!(
        "exec: {} hosts: {} ok, {} failed, {} unreachable in {:.2} s",
        hosts.len(),
        summary.ok.len(),
        summary.failed.len(),
        summary.unreachable.len(),
        started.elapsed().as_secs_f64()
    );
    summary
}
