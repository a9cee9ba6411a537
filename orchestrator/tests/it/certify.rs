//! Delay certification on a 5-host lab (real sshd, real nftables and NFQUEUE): a testbed whose
//! delays differ from the declared ones without orch knowing fails every run, naming exactly the
//! pairs it touches; `delays.compensate` takes a raised base round trip out of the delays.
//!
//! The testbed's own misbehaviour is a second `orch-node delay`, started by hand in one host's
//! network namespace with its own nftables table and queues: the emulator orch applies knows
//! nothing of it, and a packet passes through both. Needs root, nftables and iputils-ping.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use orch_common::delay::{Distribution, Rule, RuleFile};

use crate::util::{alone, node_binary, setup, text, wait_until, workspace, Lab};

/// A delay emulator outside orch's knowledge on one lab host, killed (by pid) when dropped; its
/// table is owner-flagged, so the kernel removes its rules with it.
struct Intruder {
    child: Child,
}

impl Intruder {
    /// Delays everything host `host` sends to the lab's other hosts by `rule` (its `dst` is
    /// replaced per peer), through table `intruder` and queues from 5300.
    fn start(lab: &Lab, hosts: usize, host: usize, rule: Rule) -> Intruder {
        let rules = (1..=hosts)
            .filter(|&i| i != host)
            .map(|i| Rule {
                dst: lab.address(i).parse().unwrap(),
                ..rule.clone()
            })
            .collect();
        let file = lab.dir.path().join(format!("intruder-{host}.json"));
        let rules = RuleFile::new("intruder", 5300, rules);
        std::fs::write(&file, serde_json::to_vec(&rules).unwrap()).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.netns(host)])
            .arg(node_binary())
            .args(["delay", "--rules"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Ready once its table is in the namespace's ruleset; dropped (killed) if it never is.
        let intruder = Intruder { child };
        let has_table = || {
            let out = Command::new("ip")
                .args(["netns", "exec", &lab.netns(host), "nft", "list", "tables"])
                .output()
                .unwrap();
            text(&out.stdout).contains("intruder")
        };
        wait_until(
            "the intruder's nftables table",
            Duration::from_secs(20),
            has_table,
        );
        intruder
    }
}

impl Drop for Intruder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rule(delay_ms: f64, jitter_ms: f64, distribution: Distribution) -> Rule {
    Rule {
        dst: "0.0.0.0".parse().unwrap(),
        interface: None,
        delay_ms,
        jitter_ms,
        distribution,
        loss_pct: 0.0,
    }
}

/// Each run directory under `results` with its delays.json.
fn certificates(results: &Path) -> Vec<(String, serde_json::Value)> {
    let mut runs: Vec<(String, serde_json::Value)> = std::fs::read_dir(results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("delays.json").is_file())
        .map(|p| {
            let json = serde_json::from_slice(&std::fs::read(p.join("delays.json")).unwrap());
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                json.unwrap(),
            )
        })
        .collect();
    runs.sort_by(|a, b| a.0.cmp(&b.0));
    runs
}

/// The pairs a certificate failed, as `a-b`.
fn failed_pairs(certificate: &serde_json::Value) -> BTreeSet<String> {
    certificate["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["ok"] == false)
        .map(|p| {
            format!(
                "{}-{}",
                p["from"].as_str().unwrap(),
                p["to"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn delays_the_testbed_distorts_fail_every_run_naming_exactly_their_pairs() {
    // Alone: certification judges tails, which a machine busy with other tests' labs lengthens.
    let _alone = alone();
    let lab = Lab::up("cert", "10.172", 5);
    setup(&lab);
    // What the issue found by hand: 0 ms with 20 ms pareto jitter on host3's packets. Its median
    // is 0, so a median check passes it; its tail reaches 80 ms.
    let _intruder = Intruder::start(&lab, 5, 3, rule(0.0, 20.0, Distribution::Pareto));
    let results = lab.dir.path().join("results");
    let out = lab.run(
        &workspace("scenarios/zk-leader-placement-lab.yaml"),
        &results,
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(!stderr.contains("zookeeper: leader"), "{stderr}");
    let runs = certificates(&results.join("zk-leader-placement-lab/latest"));
    assert_eq!(
        runs.len(),
        2,
        "both runs of the matrix were certified: {stderr}"
    );
    let host3: BTreeSet<String> = ["host1-host3", "host2-host3", "host3-host4", "host3-host5"]
        .map(String::from)
        .into();
    for (label, certificate) in &runs {
        assert_eq!(failed_pairs(certificate), host3, "{label}: {certificate:#}");
        assert!(stderr.contains(&format!("run {label} failed")), "{stderr}");
        // The reason names the pair with declared against realised quantiles.
        assert!(
            stderr.contains("host1 (10.172.1.2) <-> host3 (10.172.3.2): ")
                && stderr.contains("[declared/realised: p10 "),
            "{stderr}"
        );
    }
}

#[test]
fn compensate_takes_a_raised_base_round_trip_out_of_the_delays() {
    let _alone = alone();
    let lab = Lab::up("comp", "10.174", 3);
    setup(&lab);
    // The testbed's own round trip, raised by 4 ms on everything host1 sends.
    let _base = Intruder::start(&lab, 3, 1, rule(4.0, 0.0, Distribution::Uniform));
    let scenario = |compensate: bool| {
        format!(
            "name: comp-{compensate}\ndelays:\n  method: emulator\n  compensate: {compensate}\n  \
             interfaces:\n    - {{host: host1, delay_ms: 10}}\n    - {{host: host2, delay_ms: \
             10}}\n  tolerance_ms: 10\n"
        )
    };
    // host1 <-> host2: 10 + 10 declared; host1 -> host3: 10 (no delay back); host2 -> host3: 10.
    // Fixed delays are a step: with 10 ms of tolerance a busy machine's tail still certifies,
    // and the medians are what this test is about.
    let declared = [
        ("host1", "host2", 20.0),
        ("host1", "host3", 10.0),
        ("host2", "host3", 10.0),
    ];
    for compensate in [false, true] {
        let dir = lab.run_ok(&format!("comp-{compensate}"), &scenario(compensate));
        let (_, certificate) = certificates(&dir).pop().unwrap();
        let pairs = certificate["pairs"].as_array().unwrap();
        for (p, (from, to, rtt)) in pairs.iter().zip(declared) {
            assert_eq!(
                (p["from"].as_str(), p["to"].as_str()),
                (Some(from), Some(to))
            );
            assert_eq!(p["ok"], true, "{p:#}");
            let base = p["base"]["p50_ms"].as_f64().unwrap();
            let median = p["delayed"]["p50_ms"].as_f64().unwrap();
            if from == "host1" {
                assert!((base - 4.0).abs() < 0.5, "host1's base is raised: {p:#}");
            }
            // Without compensation the base comes on top; with it, the declared round trip.
            let expected = if compensate { rtt } else { rtt + base };
            assert!((median - expected).abs() <= 1.0, "{p:#}");
            let subtracted = p["compensated_ms"].as_f64().unwrap();
            assert_eq!(subtracted > 0.0, compensate, "{p:#}");
        }
    }
}
