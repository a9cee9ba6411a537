//! The second pass of `orch setup`, on the hosts that need changes: the artifacts (relayed from
//! a seed host, or pushed), then the setup script.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;

use super::plan::{self, Action};
use super::push::{self, Payload};
use super::relay::{self, Candidate};
use super::HostOutcome;
use crate::artifacts::{self, Artifact};
use crate::inventory::{Arch, Host};
use crate::output::Progress;
use crate::remote::{self, Cmd, RemoteError};

/// What the second pass works on.
pub struct Work<'a> {
    pub hosts: &'a [&'a Host],
    pub plans: &'a HashMap<String, Vec<Action>>,
    /// The hosts that answered the inspection, the possible relay seeds.
    pub candidates: &'a [Candidate<'a>],
    pub node: &'a HashMap<Arch, Artifact>,
    pub parallel: usize,
    pub relay: relay::Mode,
}

/// Carries out the plans and records per host what was sent; returns the relay's fallbacks.
/// Every file to push is read once and checked against its hash first.
pub async fn apply(work: &Work<'_>, outcomes: &mut [HostOutcome]) -> anyhow::Result<Vec<String>> {
    let todo: Vec<&Host> = work
        .hosts
        .iter()
        .copied()
        .filter(|h| work.plans.get(&h.name).is_some_and(|p| !p.is_empty()))
        .collect();
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    let contents = tokio::task::block_in_place(|| read_contents(&todo, work.plans))?;
    let pushes_of = |name: &str| -> Vec<&Artifact> {
        work.plans[name]
            .iter()
            .filter_map(|a| match a {
                Action::Push(a) => Some(a),
                _ => None,
            })
            .collect()
    };
    let needing = todo
        .iter()
        .filter(|h| !pushes_of(&h.name).is_empty())
        .count();
    let total: u64 = todo
        .iter()
        .flat_map(|h| pushes_of(&h.name))
        .map(|a| contents[a.sha256.as_str()].wire_len())
        .sum();
    let progress = Progress::bytes("push", todo.len(), total);
    let relayed = if work.relay.wanted(needing) {
        relay::distribute(
            work.candidates,
            work.plans,
            work.node,
            &contents,
            &progress,
            work.parallel,
        )
        .await
    } else {
        relay::Outcome::default()
    };
    let delivered = |host: &str, a: &Artifact| {
        relayed
            .delivered
            .get(host)
            .is_some_and(|d| d.iter().any(|(name, _)| *name == a.remote_name()))
    };
    let bar = &progress;
    let contents = &contents;
    let delivered = &delivered;
    let results = remote::each(&todo, work.parallel, &progress, |conn| async move {
        let actions = &work.plans[conn.host()];
        let orch_dir = &work
            .hosts
            .iter()
            .find(|h| h.name == conn.host())
            .expect("a host of the selection")
            .orch_dir;
        let conn = &conn;
        let uploads = actions.iter().filter_map(|action| match action {
            Action::Push(a) if !delivered(conn.host(), a) => Some(push::push(
                conn,
                orch_dir,
                a,
                &contents[a.sha256.as_str()],
                bar,
            )),
            _ => None,
        });
        for action in actions {
            if let Action::InstallJava { package_manager } = action {
                install_java(conn, package_manager).await?;
            }
        }
        let sent: u64 = futures::future::try_join_all(uploads).await?.iter().sum();
        let out = conn
            .run(&Cmd::script(&plan::script(orch_dir, actions)))
            .await?;
        if !out.status.success() {
            return Err(RemoteError::Command {
                host: conn.host().to_string(),
                command: "setup script".into(),
                reason: format!("{}; stderr: {}", out.status, out.stderr.trim()),
            });
        }
        Ok(sent)
    })
    .await;
    progress.finish();
    for r in results {
        let outcome = outcomes
            .iter_mut()
            .find(|o| o.host == r.host)
            .expect("every host has an outcome");
        outcome.elapsed += r.elapsed;
        match r.result {
            Ok(sent) => {
                if let Ok(done) = &mut outcome.result {
                    done.bytes_sent = sent;
                    let lines = relayed.delivered.get(&r.host);
                    for a in pushes_of(&r.host) {
                        let planned = Action::Push(a.clone()).describe();
                        let how = lines
                            .and_then(|d| d.iter().find(|(name, _)| *name == a.remote_name()))
                            .map(|(_, line)| line.clone())
                            .unwrap_or_else(|| relay::push_line(a, &contents[a.sha256.as_str()]));
                        if let Some(change) = done.changes.iter_mut().find(|c| **c == planned) {
                            *change = how;
                        }
                    }
                }
            }
            Err(e) => outcome.result = Err(e.to_string()),
        }
    }
    // The seed may be a host without changes of its own.
    for outcome in outcomes.iter_mut() {
        if let Ok(done) = &mut outcome.result {
            done.bytes_sent += relayed.sent.get(&outcome.host).copied().unwrap_or(0);
            done.bytes_relayed = relayed.relayed.get(&outcome.host).copied().unwrap_or(0);
        }
    }
    Ok(relayed.fallbacks)
}

/// The content of every artifact to push, read once, checked against its hash, and
/// compressed where that pays.
fn read_contents<'p>(
    todo: &[&Host],
    plans: &'p HashMap<String, Vec<Action>>,
) -> anyhow::Result<HashMap<&'p str, Payload>> {
    let mut contents: HashMap<&str, Payload> = HashMap::new();
    for action in todo.iter().flat_map(|h| &plans[&h.name]) {
        if let Action::Push(a) = action {
            if !contents.contains_key(a.sha256.as_str()) {
                let bytes = std::fs::read(&a.path)
                    .with_context(|| format!("cannot read {}", a.path.display()))?;
                if artifacts::sha256_bytes(&bytes) != a.sha256 {
                    anyhow::bail!(
                        "{} changed while orch setup ran; run it again",
                        a.path.display()
                    );
                }
                contents.insert(&a.sha256, Payload::new(bytes));
            }
        }
    }
    Ok(contents)
}

async fn install_java(conn: &remote::Conn, package_manager: &str) -> Result<(), RemoteError> {
    let script = plan::java_install_script(package_manager).expect("checked");
    let cmd = Cmd::script(&script)
        .privileged()
        .timeout(Some(Duration::from_secs(900)));
    let out = conn.run(&cmd).await?;
    if !out.status.success() {
        return Err(RemoteError::Command {
            host: conn.host().to_string(),
            command: format!("install java with {package_manager}"),
            reason: format!("{}; stderr: {}", out.status, out.stderr.trim()),
        });
    }
    Ok(())
}
