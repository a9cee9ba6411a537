//! The `faults:` checks, on small scenarios against a three-server inventory.

use std::path::Path;
use std::time::Duration;

use crate::config::ConfigError;
use crate::inventory::Inventory;
use crate::scenario::{FaultAction, FaultTarget, Scenario};

fn inventory() -> Inventory {
    let mut text = String::from("hosts:\n");
    for i in 0..3 {
        text.push_str(&format!(
            "  - name: node{i}\n    address: 10.10.1.{a}\n    experiment_ip: 10.0.{a}.2\n    roles: [zookeeper, client]\n    zk_id: {a}\n",
            a = i + 1
        ));
    }
    Inventory::parse(&text, Path::new("inv.yaml")).unwrap()
}

const BASE: &str = "\
name: f
zookeeper: {}
workload:
  client: node0
  connect: all
faults:
";

fn parse(faults: &str) -> Result<Scenario, ConfigError> {
    Scenario::parse(
        &format!("{BASE}{faults}"),
        Path::new("s.yaml"),
        &inventory(),
    )
}

fn problems(faults: &str) -> Vec<String> {
    parse(faults)
        .unwrap_err()
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn at_and_every_expand_into_firings_in_order() {
    let s = parse(
        "  - {every_s: 10, count: 3, duration_s: 2, action: kill, target: zookeeper-leader}\n  \
         - {at_s: 15, duration_s: 1.5, action: pause, target: node1}\n",
    )
    .unwrap();
    let f = &s.runs[0].faults;
    let at: Vec<f64> = f.iter().map(|f| f.at.as_secs_f64()).collect();
    assert_eq!(at, [10.0, 15.0, 20.0, 30.0]);
    assert_eq!(f[1].action, FaultAction::Pause);
    assert_eq!(
        f[1].target,
        FaultTarget::Hosts {
            spec: "node1".into(),
            hosts: vec!["node1".into()]
        }
    );
    assert_eq!(f[1].duration, Duration::from_millis(1500));
    assert_eq!((f[0].entry, f[1].entry, f[3].entry), (0, 1, 0));
    assert_eq!(f[0].target, FaultTarget::ZookeeperLeader);
}

#[test]
fn bad_fields_are_reported_at_their_line() {
    let p = problems("  - at_s: 5\n    duration_s: 0\n    action: explode\n    target: node9\n");
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(
        p[0].starts_with("s.yaml:8:17: faults[0].duration_s"),
        "{p:?}"
    );
    assert!(
        p[1].starts_with("s.yaml:9:") && p[1].contains("faults[0].action"),
        "{p:?}"
    );
    assert!(
        p[1].contains("`explode`: expected kill, pause, partition, loss or delay"),
        "{p:?}"
    );
    assert!(
        p[2].starts_with("s.yaml:10:") && p[2].contains("node0, node1, node2"),
        "{p:?}"
    );
}

#[test]
fn network_actions_take_their_one_value_and_sides_need_three_servers() {
    let s = parse(
        "  - {at_s: 1, duration_s: 5, action: partition, target: minority}\n  \
         - {at_s: 10, duration_s: 2, action: loss, percent: 25, target: majority}\n  \
         - {at_s: 20, duration_s: 2, action: delay, delay_ms: 40, target: zookeeper-leader}\n",
    )
    .unwrap();
    let f = &s.runs[0].faults;
    assert_eq!(
        (f[0].action, f[0].target.clone()),
        (FaultAction::Partition, FaultTarget::Minority)
    );
    assert_eq!(
        (f[1].action, f[1].target.clone()),
        (FaultAction::Loss(25.0), FaultTarget::Majority)
    );
    assert_eq!(f[2].action, FaultAction::Delay(40.0));
    assert!(f.iter().all(|f| f.action.is_network()));
    assert!(!FaultAction::Kill.is_network());

    let p = problems(
        "  - {at_s: 1, duration_s: 1, action: loss, target: node1}\n  \
         - {at_s: 1, duration_s: 1, action: loss, percent: 120, target: node1}\n  \
         - {at_s: 1, duration_s: 1, action: kill, delay_ms: 5, target: node1}\n",
    );
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(
        p[0].starts_with("s.yaml:7:") && p[0].contains("faults[0].percent: missing"),
        "{p:?}"
    );
    assert!(
        p[1].contains("faults[1].percent") && p[1].contains("at most 100"),
        "{p:?}"
    );
    assert!(
        p[2].contains("faults[2].delay_ms") && p[2].contains("only with `action: delay`"),
        "{p:?}"
    );
    let p = problems("  - {at_s: 1, duration_s: 1, action: delay, target: node1}\n");
    assert!(p[0].contains("needs `delay_ms`"), "{p:?}");

    let two = "name: f\nzookeeper: {servers: \"node0,node1\"}\nworkload: {client: node0, connect: all}\nfaults:\n  - {at_s: 1, duration_s: 1, action: partition, target: minority}\n";
    let e = Scenario::parse(two, Path::new("s.yaml"), &inventory()).unwrap_err();
    assert!(
        e.to_string()
            .contains("`minority` needs at least 3 ZooKeeper servers"),
        "{e}"
    );
}

#[test]
fn a_host_selection_targets_zookeeper_servers_only() {
    let s =
        parse("  - {at_s: 1, duration_s: 1, action: pause, target: \"role:zookeeper\"}\n").unwrap();
    let FaultTarget::Hosts { spec, hosts } = &s.runs[0].faults[0].target else {
        panic!("{:?}", s.runs[0].faults[0].target);
    };
    assert_eq!((spec.as_str(), hosts.len()), ("role:zookeeper", 3));
    let text = "name: f\nzookeeper: {servers: \"node0,node1,node2\"}\nworkload: {client: node0, connect: all}\nfaults:\n  - {at_s: 1, duration_s: 1, action: partition, target: \"node1,node0\"}\n";
    let s = Scenario::parse(text, Path::new("s.yaml"), &inventory()).unwrap();
    assert_eq!(s.runs[0].faults[0].target.name(), "node1,node0");
    let two = "name: f\nzookeeper: {servers: \"node0,node1\"}\nworkload: {client: node0, connect: all}\nfaults:\n  - {at_s: 1, duration_s: 1, action: kill, target: \"node1,node2\"}\n";
    let e = Scenario::parse(two, Path::new("s.yaml"), &inventory()).unwrap_err();
    assert!(
        e.to_string().contains(
            "`node1,node2` selects node2, not among the ZooKeeper servers (node0, node1)"
        ),
        "{e}"
    );
}

#[test]
fn timing_needs_a_start_a_count_and_room_for_the_undo() {
    let p = problems("  - {duration_s: 1, action: kill, target: node1}\n");
    assert!(
        p[0].contains("faults[0].at_s") && p[0].contains("missing"),
        "{p:?}"
    );
    let p = problems("  - {every_s: 5, duration_s: 1, action: kill, target: node1}\n");
    assert!(p[0].contains("`every_s` needs `count`"), "{p:?}");
    let p = problems("  - {every_s: 5, count: 2, duration_s: 5, action: kill, target: node1}\n");
    assert!(
        p[0].contains("faults[0].every_s") && p[0].contains("longer"),
        "{p:?}"
    );
    let p = problems("  - {at_s: 1, count: 2, duration_s: 1, action: kill, target: node1}\n");
    assert!(p[0].contains("only with `every_s`"), "{p:?}");
}

#[test]
fn faults_need_a_workload() {
    let text = "name: f\nzookeeper: {}\nfaults:\n  - {at_s: 1, duration_s: 1, action: kill, target: node1}\n";
    let e = Scenario::parse(text, Path::new("s.yaml"), &inventory()).unwrap_err();
    assert!(
        e.to_string()
            .contains("add a `workload:` or `election:` section"),
        "{e}"
    );
}

const ELECTION: &str = "\
name: f
election:
  hosts: node0,node1,node2
  duration_s: 30
faults:
";

#[test]
fn replica_targets_need_an_election_and_fit_in_it() {
    let s = Scenario::parse(
        &format!(
            "{ELECTION}  - {{every_s: 10, count: 2, duration_s: 3, action: kill, target: replica-leader}}\n"
        ),
        Path::new("s.yaml"),
        &inventory(),
    )
    .unwrap();
    let f = &s.runs[0].faults;
    assert_eq!(f.len(), 2);
    assert_eq!(f[1].at, Duration::from_secs(20));
    assert!(f[0].target.is_replica());
    assert_eq!(f[0].target, FaultTarget::ReplicaLeader);

    let e = Scenario::parse(
        &format!(
            "{ELECTION}  - {{every_s: 10, count: 3, duration_s: 3, action: kill, target: replica-follower}}\n"
        ),
        Path::new("s.yaml"),
        &inventory(),
    )
    .unwrap_err();
    let p: Vec<String> = e.problems.iter().map(ToString::to_string).collect();
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("s.yaml:6:5: faults[0].at_s")
            && p[0].contains("ends 33.0 s after the replicas start"),
        "{p:?}"
    );

    let p = problems("  - {at_s: 1, duration_s: 1, action: kill, target: replica-leader}\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("s.yaml:7:") && p[0].contains("needs an `election:` section"),
        "{p:?}"
    );
}
