//! Network faults: a partition, packet loss or a delay spike, made of egress rules of the fault
//! emulator (`orch-node delay` with its own nftables table and queues beside the scenario's
//! delays: `delay::Layer::Fault`). Its table has the `owner` flag, so the rules die with the
//! emulator even on `kill -9`; the fault's end removes them (and checks they are gone), and
//! teardown clears whatever an interrupted run left (`delay::clear`).
//!
//! A partition drops every packet between the hit hosts and the run's other hosts, on both
//! sides (each side's egress), so neither TCP nor UDP nor ICMP crosses it; the hit hosts still
//! reach each other, as in Jepsen's two-component partitions. Loss and delay act on what the hit
//! hosts send to the others (so a round trip sees the delay once), as netem on their egress would.

use std::net::IpAddr;

use crate::delay::{self, AppliedDelays, Distribution, Egress, Link};
use crate::remote::Conn;
use crate::scenario::FaultAction;

use super::Nemesis;

/// Every host's egress rules for `action` on the hosts `hit`; `all` is every host of the run
/// with its experiment IP. Hosts without rules are left out; none at all for process faults.
pub fn rules(
    action: FaultAction,
    hit: &[String],
    all: &[(String, IpAddr)],
) -> Vec<(String, Vec<Egress>)> {
    let (delay_ms, loss_pct, both_sides) = match action {
        FaultAction::Partition => (0.0, 100.0, true),
        FaultAction::Loss(pct) => (0.0, pct, false),
        FaultAction::Delay(ms) => (ms, 0.0, false),
        FaultAction::Kill | FaultAction::Pause => return Vec::new(),
    };
    let link = Link {
        delay_ms,
        jitter_ms: 0.0,
        distribution: Distribution::Uniform,
        loss_pct,
    };
    let is_hit = |n: &String| hit.contains(n);
    all.iter()
        .filter(|(n, _)| both_sides || is_hit(n))
        .map(|(from, _)| {
            let egress: Vec<Egress> = all
                .iter()
                .filter(|(to, _)| is_hit(to) != is_hit(from))
                .map(|(to, ip)| Egress {
                    to: to.clone(),
                    dst: *ip,
                    interface: None,
                    link,
                })
                .collect();
            (from.clone(), egress)
        })
        .filter(|(_, egress)| !egress.is_empty())
        .collect()
}

impl Nemesis<'_> {
    /// Puts `action` on the hosts `hit` in force and verified; what [`Nemesis::heal`] removes.
    pub(super) async fn cut(
        &self,
        action: FaultAction,
        hit: &[String],
    ) -> anyhow::Result<AppliedDelays> {
        let all: Vec<(String, IpAddr)> = self
            .conns
            .iter()
            .map(|(n, (_, rh))| (n.clone(), rh.host.experiment_ip))
            .collect();
        let hosts = rules(action, hit, &all);
        if hosts.is_empty() {
            anyhow::bail!(
                "no other host of the run to cut {} off from",
                hit.join(", ")
            );
        }
        let targets = self
            .conns
            .values()
            .map(|(conn, rh)| rh.delay_target(conn, "network faults"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        delay::apply_fault(&targets, &hosts).await
    }

    /// Removes a network fault and checks that its tables are gone.
    pub(super) async fn heal(&self, cut: AppliedDelays) -> anyhow::Result<()> {
        let conns: Vec<&Conn> = self.conns.values().map(|(c, _)| c).collect();
        delay::remove(cut, &conns).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<(String, IpAddr)> {
        (1..=4)
            .map(|i| (format!("h{i}"), format!("10.0.{i}.2").parse().unwrap()))
            .collect()
    }

    fn shape(rules: &[(String, Vec<Egress>)]) -> Vec<(String, Vec<String>)> {
        rules
            .iter()
            .map(|(h, e)| (h.clone(), e.iter().map(|e| e.to.clone()).collect()))
            .collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_partition_drops_on_both_sides_and_spares_each_side_itself() {
        let r = rules(FaultAction::Partition, &s(&["h2", "h3"]), &all());
        assert_eq!(
            shape(&r),
            [
                ("h1".to_string(), s(&["h2", "h3"])),
                ("h2".to_string(), s(&["h1", "h4"])),
                ("h3".to_string(), s(&["h1", "h4"])),
                ("h4".to_string(), s(&["h2", "h3"])),
            ]
        );
        assert!(r
            .iter()
            .flat_map(|(_, e)| e)
            .all(|e| e.link.loss_pct == 100.0));
        assert_eq!(r[0].1[0].dst.to_string(), "10.0.2.2");
    }

    #[test]
    fn loss_and_delay_act_on_what_the_target_sends() {
        let r = rules(FaultAction::Loss(30.0), &s(&["h1"]), &all());
        assert_eq!(shape(&r), [("h1".to_string(), s(&["h2", "h3", "h4"]))]);
        assert!(r[0]
            .1
            .iter()
            .all(|e| e.link.loss_pct == 30.0 && e.link.delay_ms == 0.0));
        let r = rules(FaultAction::Delay(50.0), &s(&["h4"]), &all());
        assert!(r[0]
            .1
            .iter()
            .all(|e| e.link.delay_ms == 50.0 && e.link.loss_pct == 0.0));
        assert!(rules(FaultAction::Kill, &s(&["h1"]), &all()).is_empty());
        assert!(rules(
            FaultAction::Partition,
            &s(&["h1", "h2", "h3", "h4"]),
            &all()
        )
        .is_empty());
    }
}
