//! The faults of a run (the nemesis): each fires at its time after `ycsb run` started (or,
//! without a workload, after the replicas started), hits the ZooKeeper servers or replica its
//! target names at that instant (the leader as `srvr` says, a minority of the servers, or the
//! leader as the replicas' event logs say), and is undone after its duration: a killed server
//! or replica is started again, a paused one continued, a network fault's rules removed.
//! Signals go through `orch-node proc signal`, to exactly the recorded process group. A fault
//! still in force when the run stops is undone by teardown: `proc stop` sends SIGCONT after
//! SIGTERM, a killed process has nothing left to stop, and the fault emulator is stopped.

mod network;
mod replica;
mod sides;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use orch_common::agent::Agent;
use tokio::sync::oneshot;

use super::election::{self, Started};
use super::hosts::{must, RunHost};
use super::zookeeper::{parse_mode, server_argv, socket_ip, Ensemble, FOURLW_TIMEOUT_MS};
use crate::delay::AppliedDelays;
use crate::inventory::Inventory;
use crate::remote::{Cmd, Conn};
use crate::results::faults::{self, FaultRecord};
use crate::scenario::{ElectionPlan, Fault, FaultAction};

/// The `orch-node proc` record of a ZooKeeper server (as `zookeeper::start` names it).
const PROCESS: &str = "zookeeper";
/// How often `srvr` is asked while waiting for a new leader or a rejoin.
const POLL: Duration = Duration::from_millis(100);
/// How long to wait for a new leader or a rejoin before recording that none came.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

/// What the faults of a run need to reach the servers.
pub struct Nemesis<'a> {
    pub inventory: &'a Inventory,
    /// The ZooKeeper servers, if the run has them.
    pub ensemble: Option<&'a Ensemble>,
    /// The election replicas, if the run has them.
    pub replicas: Option<(&'a ElectionPlan, &'a Started)>,
    pub label: &'a str,
    pub conns: &'a BTreeMap<String, (Conn, RunHost)>,
    /// The workload's client host and the servers it talks to, which a minority spares.
    pub client_side: Vec<String>,
    /// The run's directory on the controller, for faults.jsonl.
    pub local: &'a Path,
    /// Each host's clock as measured at the run's start.
    pub clocks: &'a BTreeMap<String, crate::clock::Measurement>,
}

/// What undoes a fault in force.
enum Undo {
    /// Start the killed process again.
    Restart,
    /// SIGCONT to the paused process.
    Continue,
    /// Remove the network fault's rules.
    Heal(AppliedDelays),
}

impl Nemesis<'_> {
    /// Waits for the faults' time origin (`started`: `ycsb run` started, or the replicas), then
    /// runs every fault in order; returns what happened. Returns at once, with nothing, if the
    /// origin never came.
    pub async fn run(&self, faults: &[Fault], started: oneshot::Receiver<()>) -> Vec<FaultRecord> {
        let mut records = Vec::new();
        if faults.is_empty() || started.await.is_err() {
            return records;
        }
        let t0 = Instant::now();
        for f in faults {
            tokio::time::sleep_until((t0 + f.at).into()).await;
            let i = records.len();
            records.push(FaultRecord {
                entry: f.entry,
                action: f.action.name().into(),
                target: f.target.name(),
                hosts: Vec::new(),
                process: if f.action.is_network() {
                    crate::delay::Layer::Fault.name()
                } else if f.target.is_replica() {
                    election::PROC
                } else {
                    PROCESS
                }
                .into(),
                replica: None,
                leader_before: None,
                start_unix_ns: None,
                start_s: None,
                end_s: None,
                end_unix_ns: None,
                new_leader: None,
                new_leader_ms: None,
                write_server: None,
                write_ms: None,
                detection_ms: None,
                left_ms: None,
                rejoined_ms: None,
                start_clock: None,
                clock_bounds: None,
                error: None,
            });
            let done = if f.target.is_replica() {
                self.replica(f, t0, &mut records, i).await
            } else {
                self.one(f, t0, &mut records, i).await
            };
            if let Err(e) = done {
                records[i].error = Some(format!("{e:#}"));
            }
            let r = &records[i];
            let start = r.start_s.unwrap_or(f.at.as_secs_f64());
            eprintln!("   {} at {start:.1} s: {}", r.what(), r.outcome());
            self.save(&records);
        }
        records
    }

    /// The controller's reading `ns` as `host`'s clock reads it, made earlier by the offset's
    /// bound, so that no event on the host after that instant is taken for one before it.
    fn on_host_clock(&self, host: &str, ns: u64) -> u64 {
        self.clocks.get(host).map_or(ns, |m| {
            let shift = ((m.offset_ms - m.bound_ms) * 1e6).round() as i128;
            (ns as i128 + shift).clamp(0, u64::MAX as i128) as u64
        })
    }

    fn save(&self, records: &[FaultRecord]) {
        if let Err(e) = faults::write(self.local, records) {
            eprintln!("warning: {e:#}");
        }
    }

    /// Resolves, fires, waits, undoes one fault on ZooKeeper servers, filling `records[i]` as
    /// it goes.
    async fn one(
        &self,
        f: &Fault,
        t0: Instant,
        records: &mut [FaultRecord],
        i: usize,
    ) -> anyhow::Result<()> {
        let Some(ensemble) = self.ensemble else {
            anyhow::bail!("the run has no ZooKeeper servers");
        };
        let modes = self.modes(ensemble).await;
        let leader = sides::leader(&modes).map(String::from);
        records[i].leader_before = leader.clone();
        let hit = sides::zookeeper_hosts(&f.target, &modes, &self.client_side);
        if hit.is_empty() {
            anyhow::bail!(
                "no server is {} now (srvr: {})",
                f.target.name(),
                show(&modes)
            );
        }
        records[i].hosts = hit.clone();
        self.save(records);
        let (undo, fired, at) = self.strike(f.action, &hit, PROCESS).await?;
        (records[i].start_unix_ns, records[i].start_clock) = at.unzip();
        records[i].start_s = Some(fired.duration_since(t0).as_secs_f64());
        self.save(records);

        let end = fired + f.duration;
        let leader_hit = leader.as_ref().is_some_and(|l| hit.contains(l));
        if leader_hit && hit.len() < ensemble.modes.len() {
            let (new, wrote) = tokio::join!(
                self.new_leader(ensemble, &hit, end),
                self.first_write(ensemble, &hit, end)
            );
            if let Some((new, at)) = new {
                records[i].new_leader = Some(new);
                records[i].new_leader_ms = Some(at.duration_since(fired).as_secs_f64() * 1e3);
            }
            match wrote {
                Ok((server, ns)) => {
                    records[i].write_server = Some(server);
                    records[i].write_ms = records[i]
                        .start_unix_ns
                        .map(|start| ns.saturating_sub(start) as f64 / 1e6);
                }
                Err(e) => eprintln!("   fault {} {}: {e:#}", f.action.name(), hit.join(",")),
            }
            self.save(records);
        } else if !leader_hit {
            if let Some(at) = self.stopped_serving(&hit, end).await {
                records[i].left_ms = Some(at.duration_since(fired).as_secs_f64() * 1e3);
                self.save(records);
            }
        }
        tokio::time::sleep_until(end.into()).await;
        let undone_ns = now_ns();
        self.undo(undo, &hit, PROCESS).await?;
        let undone = Instant::now();
        records[i].end_s = Some(undone.duration_since(t0).as_secs_f64());
        records[i].end_unix_ns = Some(undone_ns);
        self.save(records);
        let rejoin_limit = undone + SETTLE_LIMIT;
        let mut waiting = hit;
        loop {
            let serving = futures::future::join_all(waiting.iter().map(|h| self.mode(h))).await;
            let mut modes = serving.into_iter();
            waiting.retain(|_| {
                let m = modes.next().flatten();
                !matches!(m.as_deref(), Some("leader" | "follower" | "standalone"))
            });
            if waiting.is_empty() {
                records[i].rejoined_ms = Some(undone.elapsed().as_secs_f64() * 1e3);
                return Ok(());
            }
            if Instant::now() > rejoin_limit {
                anyhow::bail!(
                    "{} did not serve again within {SETTLE_LIMIT:?} of the undo",
                    waiting.join(", ")
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Puts `action` in force on the hosts `hit` (their `process`, for kill and pause); how to
    /// undo it, and when it started: the controller's instant (as the signals leave; for a
    /// network fault once its rules are read back, a few round trips later) and the wall clock
    /// with whose clock it is (the hosts': the first signal; the controller's for a network
    /// fault). If a signal fails, the hosts already hit are undone before the error returns.
    async fn strike(
        &self,
        action: FaultAction,
        hit: &[String],
        process: &str,
    ) -> anyhow::Result<(Undo, Instant, Option<(u64, String)>)> {
        let (signal, undo) = match action {
            FaultAction::Kill => ("KILL", Undo::Restart),
            FaultAction::Pause => ("STOP", Undo::Continue),
            FaultAction::Partition | FaultAction::Loss(_) | FaultAction::Delay(_) => {
                let cut = self.cut(action, hit).await?;
                let at = (now_ns(), crate::clock::CONTROLLER.to_string());
                return Ok((Undo::Heal(cut), Instant::now(), Some(at)));
            }
        };
        let fired = Instant::now();
        let said =
            futures::future::join_all(hit.iter().map(|h| self.signal_to(h, process, signal))).await;
        let mut done = Vec::new();
        let mut failed = Vec::new();
        let mut first = None::<(u64, String)>;
        for (h, r) in hit.iter().zip(said) {
            match r {
                Ok(text) => {
                    let at = sent_at(&text).map(|ns| (ns, h.clone()));
                    first = first.into_iter().chain(at).min();
                    done.push(h.clone());
                }
                Err(e) => failed.push(format!("{h}: {e:#}")),
            }
        }
        if failed.is_empty() {
            return Ok((undo, fired, first));
        }
        if let Err(e) = self.undo(undo, &done, process).await {
            failed.push(format!("undoing it on the others: {e:#}"));
        }
        anyhow::bail!("{}", failed.join("; "))
    }

    /// Undoes a fault on the hosts `hit`: every host is tried, the error names each that failed.
    async fn undo(&self, undo: Undo, hit: &[String], process: &str) -> anyhow::Result<()> {
        let results = match undo {
            Undo::Heal(cut) => return self.heal(cut).await,
            Undo::Restart => {
                futures::future::join_all(hit.iter().map(|h| self.restart(h, process))).await
            }
            Undo::Continue => {
                let said = futures::future::join_all(
                    hit.iter().map(|h| self.signal_to(h, process, "CONT")),
                )
                .await;
                said.into_iter().map(|r| r.map(|_| ())).collect()
            }
        };
        let failed: Vec<String> = hit
            .iter()
            .zip(results)
            .filter_map(|(h, r)| r.err().map(|e| format!("{h}: {e:#}")))
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("{}", failed.join("; "))
        }
    }

    /// When every server of `hit` had stopped serving (`srvr` unanswered or refused), asked
    /// until `limit`; `None` if one served throughout.
    async fn stopped_serving(&self, hit: &[String], limit: Instant) -> Option<Instant> {
        loop {
            let modes = futures::future::join_all(hit.iter().map(|h| self.mode(h))).await;
            let at = Instant::now();
            if modes.iter().all(Option::is_none) {
                return Some(at);
            }
            if at > limit {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The first server outside `hit` that calls itself leader while every other server
    /// outside it calls itself follower, and when `srvr` said so; `None` if that did not happen
    /// before `limit` (the fault's end, or [`SETTLE_LIMIT`] if that is sooner).
    async fn new_leader(
        &self,
        ensemble: &Ensemble,
        hit: &[String],
        limit: Instant,
    ) -> Option<(String, Instant)> {
        let limit = limit.min(Instant::now() + SETTLE_LIMIT);
        loop {
            let modes = self.modes(ensemble).await;
            let at = Instant::now();
            let others: Vec<_> = modes.iter().filter(|(n, _)| !hit.contains(n)).collect();
            let leader = others
                .iter()
                .find(|(_, m)| m.as_deref() == Some("leader"))
                .map(|(n, _)| n.clone());
            let settled = others
                .iter()
                .all(|(_, m)| matches!(m.as_deref(), Some("leader" | "follower")));
            if let (Some(l), true) = (leader, settled) {
                return Some((l, at));
            }
            if at > limit {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The first server outside `hit` (inventory order), and when (its host's clock, Unix ns) a
    /// write through it succeeded (`orch-node zk-write`, an attempt every 100 ms), before
    /// `limit` or [`SETTLE_LIMIT`].
    async fn first_write(
        &self,
        ensemble: &Ensemble,
        hit: &[String],
        limit: Instant,
    ) -> anyhow::Result<(String, u64)> {
        let Some((name, _)) = ensemble.ids.iter().find(|(n, _)| !hit.contains(n)) else {
            anyhow::bail!("no other server to write through");
        };
        let (conn, rh) = &self.conns[name];
        let left = limit
            .saturating_duration_since(Instant::now())
            .min(SETTLE_LIMIT);
        let server = format!(
            "{}:{}",
            socket_ip(&rh.host.experiment_ip),
            self.inventory.zookeeper.client_port
        );
        let cmd = Cmd::new(&rh.agent(Agent::ZkWrite {
            server,
            limit_ms: left.as_millis() as u64,
            interval_ms: POLL.as_millis() as u64,
        }))
        .timeout(Some(left + Duration::from_secs(10)));
        let said = must(conn, &cmd, "write through a surviving ZooKeeper server").await?;
        let ns = sent_at(&said)
            .ok_or_else(|| anyhow::anyhow!("{name}: no write instant in `{}`", said.trim()))?;
        Ok((name.clone(), ns))
    }

    /// `srvr` mode of every server (`None`: no answer, not serving).
    async fn modes(&self, ensemble: &Ensemble) -> Vec<(String, Option<String>)> {
        let names: Vec<&String> = ensemble.ids.iter().map(|(n, _)| n).collect();
        let answers = futures::future::join_all(names.iter().map(|n| self.mode(n))).await;
        names.into_iter().cloned().zip(answers).collect()
    }

    async fn mode(&self, name: &str) -> Option<String> {
        let (conn, rh) = &self.conns[name];
        let server = format!(
            "{}:{}",
            socket_ip(&rh.host.experiment_ip),
            self.inventory.zookeeper.client_port
        );
        let cmd = Cmd::new(&rh.agent(Agent::Fourlw {
            server,
            word: "srvr".into(),
            timeout_ms: FOURLW_TIMEOUT_MS,
        }))
        .timeout(Some(Duration::from_secs(5)));
        conn.run(&cmd)
            .await
            .ok()
            .and_then(|o| parse_mode(&o.stdout))
    }

    /// `orch-node proc signal` to the record `process` on `host`; what it printed.
    async fn signal_to(&self, host: &str, process: &str, signal: &str) -> anyhow::Result<String> {
        let (conn, rh) = &self.conns[host];
        let cmd = rh.signal(self.label, process, signal);
        Ok(must(conn, &cmd, &format!("send SIG{signal} to {process}")).await?)
    }

    /// Starts the killed server again, as `zookeeper::start` did (same configuration and data).
    /// Only ZooKeeper servers are restarted here: a replica restarts with its own log
    /// (`election::restart`), and replica faults hit one replica, so never get here.
    async fn restart(&self, host: &str, process: &str) -> anyhow::Result<()> {
        anyhow::ensure!(process == PROCESS, "{host}: cannot restart {process} here");
        let (conn, rh) = &self.conns[host];
        let argv = server_argv(
            &format!("{}/zookeeper/current", rh.orch_dir),
            &format!("{}/zk", rh.dir(self.label)),
        );
        must(
            conn,
            &rh.start(self.label, PROCESS, &BTreeMap::new(), &argv),
            "restart ZooKeeper",
        )
        .await?;
        Ok(())
    }
}

/// Once the replicas' logs are analysed: each replica kill's detection and failover into its
/// record (and faults.jsonl), with a line about it.
pub fn add_election(
    local: &Path,
    records: &mut [FaultRecord],
    summary: &orch_analysis::elect::Summary,
    hosts: &[String],
) {
    if !records.iter().any(|r| r.replica.is_some()) {
        return;
    }
    faults::add_election(records, summary, Some(hosts));
    for r in records.iter().filter(|r| r.replica.is_some()) {
        let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0} ms"));
        eprintln!(
            "   fault {} replica {} at {:.1} s: detected after {}, new leader {} after {}",
            r.action,
            r.replica.expect("filtered"),
            r.start_s.unwrap_or_default(),
            ms(r.detection_ms),
            r.new_leader.as_deref().unwrap_or("-"),
            ms(r.new_leader_ms)
        );
    }
    if let Err(e) = faults::write(local, records) {
        eprintln!("warning: {e:#}");
    }
}

/// The host's `at N ns` from `orch-node proc signal`.
fn sent_at(said: &str) -> Option<u64> {
    said.split_once(" at ")?
        .1
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn show(modes: &[(String, Option<String>)]) -> String {
    modes
        .iter()
        .map(|(n, m)| format!("{n}={}", m.as_deref().unwrap_or("not serving")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signal_instant_is_read_from_orch_node() {
        let said = "zookeeper: SIGKILL to pid 42 (3 process(es)) at 1764681600123456789 ns\n";
        assert_eq!(super::sent_at(said), Some(1_764_681_600_123_456_789));
        assert_eq!(super::sent_at("nothing"), None);
    }
}
