//! The second pass of `orch setup`, on the hosts that need changes: the artifacts (relayed from
//! a seed host, or pushed), then the setup script.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::plan::{self, Action};
use super::push::{self, Payload};
use super::relay::{self, Candidate};
use super::zookeeper::{self, Install};
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
    pub zookeeper: Option<&'a Install>,
}

/// Carries out the plans and records per host what was sent, and each phase's time in
/// `phases`; returns the relay's fallbacks. Every file to push is read once and checked against
/// its hash first.
///
/// With the relay, the seed gets its own orch-node and starts its server first; then the rest
/// of its pushes and every other host's work run at once: a host fetches from the seed (which
/// passes each artifact on as it arrives), is pushed directly what it could not fetch, and puts
/// everything in place, without waiting for the other hosts.
pub async fn apply(
    work: &Work<'_>,
    outcomes: &mut [HostOutcome],
    phases: &mut Vec<(&'static str, Duration)>,
) -> anyhow::Result<Vec<String>> {
    let todo: Vec<&Host> = work
        .hosts
        .iter()
        .copied()
        .filter(|h| work.plans.get(&h.name).is_some_and(|p| !p.is_empty()))
        .collect();
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    let mut phase = Instant::now();
    let contents =
        tokio::task::block_in_place(|| read_contents(&todo, work.plans, work.zookeeper))?;
    phases.push(("read", phase.elapsed()));
    phase = Instant::now();
    let needing = todo
        .iter()
        .filter(|h| !relay::pushes(work.plans, &h.name).is_empty())
        .count();
    let total: u64 = todo
        .iter()
        .flat_map(|h| relay::pushes(work.plans, &h.name))
        .map(|a| contents[a.sha256.as_str()].wire_len())
        .sum();
    let progress = Progress::bytes("push", todo.len(), total);
    let mut notes = Vec::new();
    let choice = work
        .relay
        .wanted(needing)
        .then(|| relay::choose(work.candidates, work.plans, work.node))
        .flatten();
    let seed_conn = match &choice {
        Some(c) => match remote::Conn::open(c.seed.host).await {
            Ok(conn) => Some(conn),
            Err(e) => {
                notes.push(format!("relay: seed {e}; pushing directly"));
                None
            }
        },
        None => None,
    };
    let relay = match (&choice, &seed_conn) {
        (Some(choice), Some(conn)) => {
            match relay::Relay::start(conn, choice, work.node, &contents, &progress).await {
                Ok(r) => Some(r),
                Err(e) => {
                    notes.push(e);
                    None
                }
            }
        }
        _ => None,
    };
    if choice.is_some() {
        phases.push(("seed", phase.elapsed()));
    }
    phase = Instant::now();

    // What the seed received, once all of it did.
    let (seeded_tx, seeded_rx) = tokio::sync::watch::channel(None::<Vec<String>>);
    let seeding = async {
        let (mut done, failed) = match (&relay, &choice) {
            (Some(r), Some(choice)) => r.seed_rest(choice, &contents, &progress).await,
            _ => (relay::Delivered::default(), None),
        };
        if let Some(r) = &relay {
            done.artifacts.splice(0..0, r.first.artifacts.clone());
            done.bytes += r.first.bytes;
        }
        let names = done.artifacts.iter().map(|(n, _)| n.clone()).collect();
        let _ = seeded_tx.send(Some(names));
        (done, failed)
    };
    let (bar, contents, relay_ref) = (&progress, &contents, &relay);
    let hosts = remote::each(&todo, work.parallel, &progress, |conn| {
        let mut seeded = seeded_rx.clone();
        async move {
            let host = work
                .hosts
                .iter()
                .find(|h| h.name == conn.host())
                .expect("a host of the selection");
            let actions = &work.plans[conn.host()];
            let list = relay::pushes(work.plans, conn.host());
            let mut got = HostWork::default();
            for action in actions {
                if let Action::InstallJava { package_manager } = action {
                    install_java(&conn, package_manager).await?;
                }
            }
            let script = plan::script(&host.orch_dir, actions);
            let mut installed = None;
            match relay_ref {
                Some(r) if r.seed == host.name => {
                    // Its pushes are the seeding; only what did not arrive is pushed below.
                    let names = seeded
                        .wait_for(Option::is_some)
                        .await
                        .map(|n| n.clone().unwrap_or_default())
                        .unwrap_or_default();
                    got.delivered = names.into_iter().map(|n| (n, None)).collect();
                }
                Some(r) if !list.is_empty() => {
                    let fetched = r
                        .fetch(&conn, &host.orch_dir, &list, &script, contents, bar)
                        .await;
                    got.relayed = fetched.delivered.bytes;
                    got.delivered = fetched
                        .delivered
                        .artifacts
                        .into_iter()
                        .map(|(n, line)| (n, Some(line)))
                        .collect();
                    got.notes = fetched.fallbacks;
                    installed = fetched.installed;
                }
                _ => {}
            }
            let conn = &conn;
            let delivered = &got.delivered;
            let uploads = list
                .iter()
                .filter(|a| !delivered.iter().any(|(n, _)| *n == a.remote_name()))
                .map(|a| {
                    let payload = &contents[a.sha256.as_str()];
                    push::push(conn, &host.orch_dir, a, payload, false, bar)
                });
            got.sent = futures::future::try_join_all(uploads).await?.iter().sum();
            let installed = match installed {
                Some(done) => done,
                None => {
                    let out = conn.run(&Cmd::script(&script)).await?;
                    if out.status.success() {
                        Ok(())
                    } else {
                        Err(format!("{}; stderr: {}", out.status, out.stderr.trim()))
                    }
                }
            };
            installed.map_err(|reason| RemoteError::Command {
                host: conn.host().to_string(),
                command: "setup script".into(),
                reason,
            })?;
            Ok(got)
        }
    });
    let ((seeded, seed_failed), results) = futures::future::join(seeding, hosts).await;
    progress.finish();
    phases.push(("fan-out", phase.elapsed()));
    notes.extend(seed_failed.map(|why| format!("{why}; pushing directly")));
    for r in results {
        let outcome = outcomes
            .iter_mut()
            .find(|o| o.host == r.host)
            .expect("every host has an outcome");
        outcome.elapsed += r.elapsed;
        match r.result {
            Ok(got) => {
                notes.extend(got.notes);
                if let Ok(done) = &mut outcome.result {
                    done.bytes_sent = got.sent;
                    done.bytes_relayed = got.relayed;
                    for a in relay::pushes(work.plans, &r.host) {
                        let delivered = got.delivered.iter().find(|(n, _)| *n == a.remote_name());
                        match delivered {
                            // The seed's line is set from what seeding did.
                            Some((_, None)) => {}
                            Some((_, Some(line))) => set_line(done, &a, line),
                            None => {
                                let line = relay::push_line(&a, &contents[a.sha256.as_str()]);
                                set_line(done, &a, &line);
                            }
                        }
                    }
                }
            }
            Err(e) => outcome.result = Err(e.to_string()),
        }
    }
    if let Some(r) = relay {
        let seed = r.seed.clone();
        if let Err(e) = r.stop().await {
            notes.push(e);
        }
        if let Some(o) = outcomes.iter_mut().find(|o| o.host == seed) {
            if let Ok(done) = &mut o.result {
                // The seed may be a host without changes of its own.
                done.bytes_sent += seeded.bytes;
                for a in relay::pushes(work.plans, &seed) {
                    if let Some((_, line)) =
                        seeded.artifacts.iter().find(|(n, _)| *n == a.remote_name())
                    {
                        set_line(done, &a, line);
                    }
                }
            }
        }
    }
    Ok(notes)
}

/// What one host's part of the second pass did.
#[derive(Default)]
struct HostWork {
    /// Bytes the controller pushed to it directly.
    sent: u64,
    /// Bytes it fetched from the seed.
    relayed: u64,
    /// Artifacts it got from the relay (the seed: by seeding), with the change line of a fetch.
    delivered: Vec<(String, Option<String>)>,
    /// Why artifacts were pushed directly after all.
    notes: Vec<String>,
}

/// Replaces the planned `push` line of artifact `a` with how it got there.
fn set_line(done: &mut super::Done, a: &Artifact, line: &str) {
    let planned = Action::Push(a.clone()).describe();
    if let Some(change) = done.changes.iter_mut().find(|c| **c == planned) {
        *change = line.to_string();
    }
}

/// The content of every artifact to push, read once, checked against its hash, and
/// compressed where that pays. ZooKeeper's plain tar goes as the `.tar.gz` it came from.
fn read_contents<'p>(
    todo: &[&Host],
    plans: &'p HashMap<String, Vec<Action>>,
    zookeeper: Option<&Install>,
) -> anyhow::Result<HashMap<&'p str, Payload>> {
    let mut contents: HashMap<&str, Payload> = HashMap::new();
    let cache = push::cache_dir();
    for action in todo.iter().flat_map(|h| &plans[&h.name]) {
        if let Action::Push(a) = action {
            if contents.contains_key(a.sha256.as_str()) {
                continue;
            }
            let changed = |path: &std::path::Path| {
                anyhow::anyhow!(
                    "{} changed while orch setup ran; run it again",
                    path.display()
                )
            };
            let read = |path: &std::path::Path| {
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
            };
            let payload = match zookeeper {
                Some(Install::Tarball {
                    artifact, origin, ..
                }) if artifact == a => {
                    let gz = read(&origin.path)?;
                    if artifacts::sha256_bytes(&gz) != origin.sha256 {
                        return Err(changed(&origin.path));
                    }
                    let bytes = zookeeper::gunzip(&gz)
                        .with_context(|| format!("cannot decompress {}", origin.path.display()))?;
                    if artifacts::sha256_bytes(&bytes) != a.sha256 {
                        anyhow::bail!(
                            "{} does not decompress to the tar whose hash is cached in {}; \
                             delete that file and run orch setup again",
                            origin.path.display(),
                            cache
                                .as_deref()
                                .unwrap_or(std::path::Path::new("?"))
                                .display()
                        );
                    }
                    Payload {
                        bytes,
                        gzip: Some(gz),
                    }
                }
                _ => {
                    let bytes = read(&a.path)?;
                    if artifacts::sha256_bytes(&bytes) != a.sha256 {
                        return Err(changed(&a.path));
                    }
                    Payload::cached(bytes, &a.sha256, cache.as_deref())
                }
            };
            contents.insert(&a.sha256, payload);
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
