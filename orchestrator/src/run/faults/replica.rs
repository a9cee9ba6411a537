//! Faults on the election replicas. The target is resolved from the replicas' live event logs
//! on their hosts when the fault fires: the leader is the replica whose latest `role` event
//! made it leader, in the highest such term. A killed replica is started again after the
//! duration (for the rest of the phase, with a log of its own); detection and failover are
//! measured from the signal's instant by the election analysis once the logs are copied
//! (`results::faults::add_election`).

use std::time::{Duration, Instant};

use orch_common::events::{Event, Record, Role};

use super::{now_ns, Nemesis, Undo, POLL};
use crate::remote::quote;
use crate::remote::Cmd;
use crate::results::faults::FaultRecord;
use crate::run::election::{self, Started};
use crate::run::hosts::must;
use crate::scenario::{ElectionPlan, Fault, FaultTarget};

/// How long a fault waits for the replicas to have a leader (an election after the previous
/// fault may still be going on).
const RESOLVE_LIMIT: Duration = Duration::from_secs(5);
/// How long a replica may take, after the undo, to know a leader again (its start, with the
/// TCP RTT source, takes seconds on a loaded machine).
const REJOIN_LIMIT: Duration = Duration::from_secs(15);
/// The last lines of a replica's log read to see whether it knows a leader (a `stats` event
/// comes every second, among at most a few hundred others).
const TAIL_LINES: usize = 400;

impl Nemesis<'_> {
    /// Resolves, fires, waits, undoes one fault on a replica, filling `records[i]`.
    pub(super) async fn replica(
        &self,
        f: &Fault,
        t0: Instant,
        records: &mut [FaultRecord],
        i: usize,
    ) -> anyhow::Result<()> {
        let Some((plan, started)) = self.replicas else {
            anyhow::bail!("the run has no election replicas");
        };
        let (leader, id) = self.resolve(plan, started, &f.target).await?;
        let host = &plan.hosts[id];
        records[i].leader_before = Some(plan.hosts[leader].clone());
        let hit = std::slice::from_ref(host);
        records[i].hosts = hit.to_vec();
        records[i].replica = Some(id);
        self.save(records);
        let (undo, fired, at) = self.strike(f.action, hit, election::PROC).await?;
        (records[i].start_unix_ns, records[i].start_clock) = at.unzip();
        records[i].start_s = Some(fired.duration_since(t0).as_secs_f64());
        self.save(records);

        tokio::time::sleep_until((fired + f.duration).into()).await;
        let undone_ns = now_ns();
        match undo {
            Undo::Restart => election::restart(plan, started, id, self.label, self.conns).await?,
            other => self.undo(other, hit, election::PROC).await?,
        }
        let undone = Instant::now();
        records[i].end_s = Some(undone.duration_since(t0).as_secs_f64());
        records[i].end_unix_ns = Some(undone_ns);
        self.save(records);
        // The phase may end first: then the replica had no time to rejoin, which is no error.
        let phase_end = started.at + plan.duration;
        let limit = (undone + REJOIN_LIMIT).min(phase_end);
        loop {
            let since = self.on_host_clock(host, undone_ns);
            if let Some(wall) = self.knows_leader_since(plan, started, id, since).await {
                // The host's clock against the controller's: corrected by the run's clocks.
                let ns = wall as i128 - undone_ns as i128;
                records[i].rejoined_ms = Some(ns as f64 / 1e6);
                return Ok(());
            }
            if Instant::now() > limit {
                if limit == phase_end {
                    return Ok(());
                }
                anyhow::bail!(
                    "replica {id} on {host} knew no leader within {REJOIN_LIMIT:?} of the undo"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// (the leading replica, the target replica), asking the logs until a leader is known or
    /// [`RESOLVE_LIMIT`] passed.
    async fn resolve(
        &self,
        plan: &ElectionPlan,
        started: &Started,
        target: &FaultTarget,
    ) -> anyhow::Result<(usize, usize)> {
        let limit = Instant::now() + RESOLVE_LIMIT;
        loop {
            let roles = self.last_roles(plan, started).await;
            if let Some(leader) = leader_of(&roles) {
                let id = match target {
                    FaultTarget::ReplicaLeader => leader,
                    _ => (0..plan.hosts.len())
                        .find(|&r| r != leader)
                        .expect("the scenario check asks for two replicas"),
                };
                return Ok((leader, id));
            }
            if Instant::now() > limit {
                anyhow::bail!(
                    "no replica led within {RESOLVE_LIMIT:?} (their latest role events: {})",
                    show(&roles)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The latest `role` event of every replica's current log (`None`: none yet).
    async fn last_roles(&self, plan: &ElectionPlan, started: &Started) -> Vec<Option<Record>> {
        let reads = plan.hosts.iter().enumerate().map(|(id, host)| {
            let script = format!(
                "grep -h -- '\"event\":\"role\"' {} | tail -n 1; true",
                quote::path(&started.log(id))
            );
            async move { self.records(host, &script).await.pop() }
        });
        futures::future::join_all(reads).await
    }

    /// When, at or after `since_ns`, replica `id`'s current log first shows it knowing a
    /// leader (a `leader` or `stats` event naming one), host clock.
    async fn knows_leader_since(
        &self,
        plan: &ElectionPlan,
        started: &Started,
        id: usize,
        since_ns: u64,
    ) -> Option<u64> {
        let script = format!("tail -n {TAIL_LINES} -- {}", quote::path(&started.log(id)));
        let records = self.records(&plan.hosts[id], &script).await;
        records
            .iter()
            .filter(|r| r.wall >= since_ns)
            .find(|r| match &r.event {
                Event::Leader { leader } => leader.is_some(),
                Event::Stats(s) => s.leader.is_some(),
                _ => false,
            })
            .map(|r| r.wall)
    }

    /// The events among the output of `script` on `host`; none if it failed.
    async fn records(&self, host: &str, script: &str) -> Vec<Record> {
        let (conn, _) = &self.conns[host];
        match must(conn, &Cmd::script(script), "read a replica's event log").await {
            Ok(out) => orch_analysis::elect::parse(&out).0,
            Err(_) => Vec::new(),
        }
    }
}

/// The replica whose latest role event made it leader, in the highest term of those.
fn leader_of(roles: &[Option<Record>]) -> Option<usize> {
    roles
        .iter()
        .flatten()
        .filter(|r| {
            matches!(
                r.event,
                Event::Role {
                    to: Role::Leader,
                    ..
                }
            )
        })
        .max_by_key(|r| r.term)
        .map(|r| r.id)
}

fn show(roles: &[Option<Record>]) -> String {
    roles
        .iter()
        .enumerate()
        .map(|(id, r)| match r.as_ref().map(|r| (&r.event, r.term)) {
            Some((Event::Role { to, .. }, term)) => format!("{id}={to:?}@{term}"),
            _ => format!("{id}=none"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use orch_common::events::{Event, Record, Role};

    fn role(id: usize, term: u64, to: Role) -> Option<Record> {
        Some(Record {
            mono_ns: 0,
            wall: 0,
            id,
            term,
            event: Event::Role {
                from: Role::Candidate,
                to,
            },
        })
    }

    #[test]
    fn the_leader_is_the_latest_terms_not_a_stale_one() {
        // Replica 0 led term 2 and was not told yet; replica 2 leads term 3.
        let roles = [
            role(0, 2, Role::Leader),
            None,
            role(2, 3, Role::Leader),
            role(3, 3, Role::Follower),
        ];
        assert_eq!(super::leader_of(&roles), Some(2));
        assert_eq!(super::leader_of(&[None, role(1, 4, Role::Follower)]), None);
    }
}
