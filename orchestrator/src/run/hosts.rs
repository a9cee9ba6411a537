//! The hosts of a run as the run sees them: absolute paths under each host's orch directory,
//! and the `orch-node proc` calls that start and stop its processes exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use orch_common::agent::{Agent, Proc};

use crate::facts::Facts;
use crate::inventory::Host;
use crate::remote::{Cmd, Conn, RemoteError};

/// A host taking part in a run.
#[derive(Debug, Clone)]
pub struct RunHost {
    pub host: Host,
    /// The orch directory with `~` expanded (templates and processes need absolute paths).
    pub orch_dir: String,
    /// `<orch_dir>/runs/<run-id>`.
    pub run_dir: String,
    /// What `orch check` would say of it, probed once per scenario on the hosts that get
    /// delays (the delay method depends on it); `None` elsewhere.
    pub facts: Option<Facts>,
}

impl RunHost {
    /// `host`'s view of run `run_id`, given its `$HOME`.
    pub fn new(host: &Host, home: &str, run_id: &str) -> RunHost {
        let orch_dir = crate::setup::absolute(&host.orch_dir, home);
        let orch_dir = orch_dir.trim_end_matches('/').to_string();
        RunHost {
            host: host.clone(),
            run_dir: format!("{orch_dir}/runs/{run_id}"),
            orch_dir,
            facts: None,
        }
    }

    /// The `orch-node` that `orch setup` installed.
    /// This host as the delay API takes it, with `conn` (the run's connection to it); an error
    /// naming `what` needs it if its facts were not probed.
    pub fn delay_target<'a>(
        &'a self,
        conn: &'a Conn,
        what: &str,
    ) -> anyhow::Result<crate::delay::Target<'a>> {
        let Some(facts) = &self.facts else {
            anyhow::bail!(
                "{}: has {what} but its facts were not probed",
                self.host.name
            );
        };
        Ok(crate::delay::Target {
            host: &self.host,
            conn,
            orch_dir: &self.orch_dir,
            facts,
        })
    }

    pub fn node(&self) -> String {
        format!("{}/bin/orch-node", self.orch_dir)
    }

    /// The command line of `agent` on this host: orch-node and the arguments it parses back.
    pub fn agent(&self, agent: Agent) -> Vec<String> {
        [vec![self.node()], agent.argv()].concat()
    }

    fn proc(&self, command: Proc) -> Cmd {
        Cmd::new(&self.agent(Agent::Proc { command }))
    }

    /// The directory of one run of the scenario (a matrix combination and repetition).
    pub fn dir(&self, label: &str) -> String {
        format!("{}/{label}", self.run_dir)
    }

    /// Where `orch-node proc` keeps the pid records and logs of one run.
    pub fn proc_dir(&self, label: &str) -> String {
        format!("{}/proc", self.dir(label))
    }

    /// `orch-node proc start`: `argv` runs detached in its own process group.
    pub fn start(
        &self,
        label: &str,
        name: &str,
        env: &BTreeMap<String, String>,
        argv: &[String],
    ) -> Cmd {
        self.proc(Proc::Start {
            dir: self.proc_dir(label).into(),
            name: name.into(),
            cwd: Some(self.dir(label).into()),
            env: env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            argv: argv.to_vec(),
        })
    }

    /// `orch-node proc wait`: until `name` exits, at most `limit`.
    pub fn wait(&self, label: &str, name: &str, limit: Duration) -> Cmd {
        self.proc(Proc::Wait {
            dir: self.proc_dir(label).into(),
            name: name.into(),
            timeout: Some(limit.as_secs().max(1)),
        })
        .timeout(Some(limit + Duration::from_secs(10)))
    }

    /// `orch-node proc signal`: `signal` (KILL, STOP, CONT) to the processes of `name`.
    pub fn signal(&self, label: &str, name: &str, signal: &str) -> Cmd {
        self.proc(Proc::Signal {
            dir: self.proc_dir(label).into(),
            name: name.into(),
            signal: signal.into(),
        })
    }

    /// `orch-node proc stop-all`: every process of the run, newest first.
    pub fn stop_all(&self, label: &str) -> Cmd {
        self.proc(Proc::StopAll {
            dir: self.proc_dir(label).into(),
            grace: 5,
        })
        .timeout(Some(Duration::from_secs(120)))
    }
}

/// Runs `cmd` and turns a non-zero exit into an error carrying its output.
pub async fn must(conn: &Conn, cmd: &Cmd, what: &str) -> Result<String, RemoteError> {
    let out = conn.run(cmd).await?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(RemoteError::Command {
            host: conn.host().to_string(),
            command: what.to_string(),
            reason: format!(
                "exit status {}: {}{}",
                out.status.code().unwrap_or(-1),
                out.stderr.trim(),
                if out.stdout.trim().is_empty() {
                    String::new()
                } else {
                    format!(" (stdout: {})", out.stdout.trim())
                }
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;

    #[test]
    fn paths_are_absolute_under_the_home() {
        let inv = Inventory::parse(
            "hosts:\n  - name: h1\n    address: 10.0.0.1\n    experiment_ip: 10.0.1.2\n",
            std::path::Path::new("i.yaml"),
        )
        .unwrap();
        let h = RunHost::new(&inv.hosts[0], "/home/me/", "20261125-201500-zk");
        assert_eq!(h.orch_dir, "/home/me/.orch");
        assert_eq!(h.node(), "/home/me/.orch/bin/orch-node");
        assert_eq!(
            h.proc_dir("r01"),
            "/home/me/.orch/runs/20261125-201500-zk/r01/proc"
        );
        let line = h
            .start(
                "r01",
                "zk",
                &BTreeMap::new(),
                &["java".into(), "a b".into()],
            )
            .render(false);
        assert!(
            line.ends_with(
                "--name zk --cwd /home/me/.orch/runs/20261125-201500-zk/r01 -- java 'a b'"
            ),
            "{line}"
        );
    }
}
