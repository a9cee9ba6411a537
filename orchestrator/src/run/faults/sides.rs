//! Which ZooKeeper servers a fault hits, from what `srvr` says at the instant it fires: the
//! leader, a follower, servers by name or role, or a minority or majority of the ensemble.
//!
//! The minority is chosen to leave the leader and the workload's client (its host and the
//! servers it talks to) on the other side when there are enough other servers, so a partition
//! of a minority measures what its name promises (the ensemble goes on) instead of a leader
//! election or a lost client session. The majority is the complement.

use crate::scenario::FaultTarget;

/// The servers `target` names now, in inventory order. `modes` holds every server (inventory
/// order) with its `srvr` mode (`None`: not serving); `client_side` the workload's client host
/// and the servers it connects to. Empty: no server fits (no follower serves, say).
pub fn zookeeper_hosts(
    target: &FaultTarget,
    modes: &[(String, Option<String>)],
    client_side: &[String],
) -> Vec<String> {
    let leader = leader(modes);
    match target {
        FaultTarget::ZookeeperLeader => leader.into_iter().map(String::from).collect(),
        FaultTarget::ZookeeperFollower => modes
            .iter()
            .find(|(_, m)| m.as_deref() == Some("follower"))
            .map(|(n, _)| n.clone())
            .into_iter()
            .collect(),
        FaultTarget::Hosts { hosts, .. } => hosts.clone(),
        FaultTarget::Minority | FaultTarget::Majority => {
            let minority = minority(modes, leader, client_side);
            let side = |n: &String| minority.contains(n) == (*target == FaultTarget::Minority);
            modes
                .iter()
                .map(|(n, _)| n)
                .filter(|n| side(n))
                .cloned()
                .collect()
        }
        FaultTarget::ReplicaLeader | FaultTarget::ReplicaFollower => {
            unreachable!("replica targets are resolved from the replicas' logs")
        }
    }
}

/// The server `srvr` calls leader (or standalone) in `modes`, if one does.
pub fn leader(modes: &[(String, Option<String>)]) -> Option<&str> {
    modes
        .iter()
        .find(|(_, m)| matches!(m.as_deref(), Some("leader" | "standalone")))
        .map(|(n, _)| n.as_str())
}

/// ⌊(n−1)/2⌋ servers: first those that are neither the leader nor on the client's side, then
/// client-side ones, the leader last; inventory order within each.
fn minority(
    modes: &[(String, Option<String>)],
    leader: Option<&str>,
    client_side: &[String],
) -> Vec<String> {
    let cost = |n: &str| match (Some(n) == leader, client_side.iter().any(|c| c == n)) {
        (true, _) => 2,
        (false, true) => 1,
        (false, false) => 0,
    };
    let mut names: Vec<&String> = modes.iter().map(|(n, _)| n).collect();
    names.sort_by_key(|n| cost(n));
    names
        .into_iter()
        .take((modes.len().saturating_sub(1)) / 2)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modes(leader: usize, n: usize) -> Vec<(String, Option<String>)> {
        (1..=n)
            .map(|i| {
                let m = if i == leader { "leader" } else { "follower" };
                (format!("host{i}"), Some(m.to_string()))
            })
            .collect()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_minority_spares_the_leader_and_the_client() {
        // Five servers, host3 leads, the client runs on host1 and talks to host3.
        let m = modes(3, 5);
        let client = names(&["host1", "host3"]);
        let minority = zookeeper_hosts(&FaultTarget::Minority, &m, &client);
        assert_eq!(minority, names(&["host2", "host4"]));
        let majority = zookeeper_hosts(&FaultTarget::Majority, &m, &client);
        assert_eq!(majority, names(&["host1", "host3", "host5"]));
        // Three servers, the client on both followers: one of them goes, never the leader.
        let m = modes(1, 3);
        let minority = zookeeper_hosts(&FaultTarget::Minority, &m, &names(&["host2", "host3"]));
        assert_eq!(minority, names(&["host2"]));
        // Four servers: a minority of one, a majority of three.
        let m = modes(4, 4);
        assert_eq!(
            zookeeper_hosts(&FaultTarget::Minority, &m, &[]),
            names(&["host1"])
        );
        assert_eq!(zookeeper_hosts(&FaultTarget::Majority, &m, &[]).len(), 3);
    }

    #[test]
    fn roles_resolve_from_srvr_and_may_find_nobody() {
        let m = modes(2, 3);
        let leader = zookeeper_hosts(&FaultTarget::ZookeeperLeader, &m, &[]);
        assert_eq!(leader, names(&["host2"]));
        let follower = zookeeper_hosts(&FaultTarget::ZookeeperFollower, &m, &[]);
        assert_eq!(follower, names(&["host1"]));
        let electing: Vec<(String, Option<String>)> =
            m.iter().map(|(n, _)| (n.clone(), None)).collect();
        assert!(zookeeper_hosts(&FaultTarget::ZookeeperLeader, &electing, &[]).is_empty());
        let hosts = FaultTarget::Hosts {
            spec: "host3,host1".into(),
            hosts: names(&["host1", "host3"]),
        };
        assert_eq!(
            zookeeper_hosts(&hosts, &electing, &[]),
            names(&["host1", "host3"])
        );
    }
}
