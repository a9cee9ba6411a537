//! Every scenario shipped in scenarios/ is valid against the inventory it is written for.

use std::path::Path;
use std::process::Command;

use orch::inventory::Inventory;
use orch::scenario::Scenario;

use crate::util::{text as text_of, workspace, write, ORCH};

#[test]
fn cloudlab_scenario_expands_to_both_leaders() {
    let inv = Inventory::load(&workspace("inventory/cloudlab.yaml")).unwrap();
    let s = Scenario::load(&workspace("scenarios/zk-leader-placement.yaml"), &inv).unwrap();
    let leaders: Vec<_> = s
        .runs
        .iter()
        .map(|r| r.zookeeper.as_ref().unwrap().leader.clone().unwrap())
        .collect();
    assert_eq!(leaders, ["node2", "node1"]);
    let w = s.runs[0].workload.as_ref().unwrap();
    assert_eq!((w.client.as_str(), w.threads), ("node0", 1));
    assert_eq!(w.properties["updateproportion"], "0.9");
    // The seed: "node 0 serves as the client, without adding additional delay".
    let delayed: Vec<&str> = s.runs[0]
        .delays
        .as_ref()
        .unwrap()
        .hosts
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(delayed, ["node1", "node2", "node3", "node4"]);
}

#[test]
fn lab_scenario_fits_a_five_host_lab() {
    let mut text = String::from("hosts:\n");
    for i in 1..=5 {
        text.push_str(&format!(
            "  - name: host{i}\n    address: 10.0.{i}.2\n    experiment_ip: 10.0.{i}.2\n    \
             roles: [zookeeper, replica, traffic{}]\n    zk_id: {i}\n",
            if i == 1 { ", client" } else { "" }
        ));
    }
    let inv = Inventory::parse(&text, Path::new("lab.yaml")).unwrap();
    let s = Scenario::load(&workspace("scenarios/zk-leader-placement-lab.yaml"), &inv).unwrap();
    assert_eq!(s.runs.len(), 2);
    assert_eq!(s.runs[1].label(), "r02-leader=host2-rep1");
}

#[test]
fn election_scenarios_validate_for_the_lab_and_cloudlab() {
    let mut text = String::from("hosts:\n");
    for i in 1..=5 {
        text.push_str(&format!(
            "  - name: host{i}\n    address: 10.0.{i}.2\n    experiment_ip: 10.0.{i}.2\n    \
             roles: [replica, traffic]\n"
        ));
    }
    let lab = Inventory::parse(&text, Path::new("lab.yaml")).unwrap();
    let cloudlab = Inventory::load(&workspace("inventory/cloudlab.yaml")).unwrap();
    for (name, runs) in [
        ("election-detection", 21),
        ("election-false-positives", 3),
        ("election-petition", 3),
        ("election-kill", 6),
    ] {
        let s = Scenario::load(&workspace(&format!("scenarios/{name}-lab.yaml")), &lab).unwrap();
        assert_eq!(s.runs.len(), runs, "{name}-lab");
        let e = s.runs[0].election.as_ref().unwrap();
        assert_eq!(e.hosts.len(), 5);
        assert!(
            e.config.tcp_monitor && s.runs[0].traffic.is_some(),
            "{name}"
        );
        Scenario::load(&workspace(&format!("scenarios/{name}.yaml")), &cloudlab).unwrap();
    }
}

#[test]
fn zk_leader_kill_scenarios_fit_the_lab_and_cloudlab() {
    let mut text = String::from("hosts:\n");
    for i in 1..=5 {
        text.push_str(&format!(
            "  - name: host{i}\n    address: 10.0.{i}.2\n    experiment_ip: 10.0.{i}.2\n    \
             roles: [zookeeper{}]\n    zk_id: {i}\n",
            if i == 1 { ", client" } else { "" }
        ));
    }
    let lab = Inventory::parse(&text, Path::new("lab.yaml")).unwrap();
    let cloudlab = Inventory::load(&workspace("inventory/cloudlab.yaml")).unwrap();
    for (file, inv) in [
        ("scenarios/zk-leader-kill-lab.yaml", &lab),
        ("scenarios/zk-leader-kill.yaml", &cloudlab),
    ] {
        let s = Scenario::load(&workspace(file), inv).unwrap();
        let f = &s.runs[0].faults;
        assert_eq!(f.len(), 1, "{file}");
        assert_eq!(
            (f[0].at.as_secs(), f[0].duration.as_secs()),
            (20, 10),
            "{file}"
        );
        let w = s.runs[0].workload.as_ref().unwrap();
        assert_eq!(w.properties["maxexecutiontime"], "60", "{file}");
        assert_eq!(w.properties["status.interval"], "1", "{file}");
    }
}

#[test]
fn election_kill_scenarios_kill_the_replica_leader_often_enough() {
    let cloudlab = Inventory::load(&workspace("inventory/cloudlab.yaml")).unwrap();
    let s = Scenario::load(&workspace("scenarios/election-kill.yaml"), &cloudlab).unwrap();
    // raft and Jacobson, at least 10 kills of the leader per mode.
    let modes: std::collections::BTreeSet<_> = s.runs.iter().map(|r| r.matrix.clone()).collect();
    assert_eq!(modes.len(), 2);
    let kills: usize = s.runs.iter().map(|r| r.faults.len()).sum();
    assert!(kills / 2 >= 10, "{kills}");
    assert!(s.runs[0].faults.iter().all(|f| f.target.is_replica()));
}

/// `orch run --dry-run` warns about the seed's jittered links, which reorder one flow's packets
/// (delay/reorder.rs), and still lists the runs; a scenario of fixed delays gets no warning.
#[test]
fn dry_run_warns_about_links_whose_jitter_reorders_a_flow() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("hosts:\n");
    for i in 1..=5 {
        text.push_str(&format!(
            "  - name: host{i}\n    address: 10.0.{i}.2\n    experiment_ip: 10.0.{i}.2\n    \
             roles: [zookeeper{}]\n    zk_id: {i}\n",
            if i == 1 { ", client" } else { "" }
        ));
    }
    let inventory = write(dir.path(), "lab.yaml", &text);
    let dry_run = |scenario: &Path| {
        let out = Command::new(ORCH)
            .arg("-i")
            .arg(&inventory)
            .args(["run", "--dry-run", "--scenario"])
            .arg(scenario)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text_of(&out.stderr));
        (text_of(&out.stdout), text_of(&out.stderr))
    };

    let seed = workspace("scenarios/zk-leader-placement-lab.yaml");
    let (runs, warnings) = dry_run(&seed);
    assert_eq!(runs.lines().count(), 2, "{runs}");
    let warnings: Vec<&str> = warnings.lines().collect();
    assert_eq!(warnings.len(), 5, "{warnings:#?}");
    let first = format!(
        "warning: {}:11:46: delays.interfaces[0].jitter_ms: host1 -> every other host, \
         15 ms ± 5 ms normal: the jitter reorders packets of one flow: of two packets sent 1 ms \
         apart the second arrives first 44.4% of the time (10 ms apart: 7.9%)",
        seed.display()
    );
    assert!(warnings[0].starts_with(&first), "{}", warnings[0]);
    assert!(
        warnings[1].contains(
            ":12:45: delays.interfaces[1].jitter_ms: host2 -> every other host, 2 ms ± 1 ms normal"
        ),
        "{}",
        warnings[1]
    );

    let fixed = write(
        dir.path(),
        "fixed.yaml",
        "name: fixed\ndelays:\n  pairs:\n    - {from: host1, to: host2, delay_ms: 20, both_ways: true}\n",
    );
    let (runs, warnings) = dry_run(&fixed);
    assert_eq!(runs.trim(), "r01-rep1");
    assert_eq!(warnings, "");
}
