//! A CloudLab-like lab: orch logs in as a normal user with passwordless sudo, SSH is on a control
//! network and the experiment IPs on a second interface. `orch setup`, the shipped lab scenario
//! and `orch fetch-logs` must work as that user (real sshd, real sudo, real ZooKeeper), delays
//! must slow only the experiment network, and every run must record declared vs measured round
//! trips. `lab down` must remove exactly the user things `up` made. Needs root, Debian's
//! zookeeper package, sudo and the musl target (.ci/run).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{self, setup, text, workspace, Lab, ORCH};

fn user_exists(name: &str) -> bool {
    Command::new("getent")
        .args(["passwd", name])
        .output()
        .unwrap()
        .status
        .success()
}

/// Removes an account a killed earlier run of these tests may have left.
fn remove_user(name: &str) {
    if user_exists(name) {
        let out = Command::new("userdel").arg(name).output().unwrap();
        assert!(out.status.success(), "userdel: {}", text(&out.stderr));
    }
}

/// `orch exec` on every host; every host's output lines, in host order.
fn exec_all(lab: &Lab, script: &str) -> Vec<String> {
    let out = lab.exec(&["--", "sh", "-c", script]);
    assert!(out.status.success(), "{script}: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    (1..=5)
        .map(|i| util::lines_of(&stdout, &format!("host{i}")).join("\n"))
        .collect()
}

/// The median of ping's reply times (`time=X ms`): one stall of a busy machine moves it less
/// than the average.
fn ping_median(output: &str) -> f64 {
    let mut times: Vec<f64> = output
        .lines()
        .filter_map(|l| l.split("time=").nth(1))
        .filter_map(|t| t.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(times.len() >= 10, "too few replies: {output}");
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Median RTT from host1 to `addr` (on host1, from its address `from`), through `orch exec`.
fn host1_ping(lab: &Lab, from: &str, addr: &str) -> f64 {
    let out = lab.exec(&[
        "--hosts", "host1", "--", "ping", "-n", "-c", "20", "-i", "0.2", "-I", from, addr,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    ping_median(&util::lines_of(&text(&out.stdout), "host1").join("\n"))
}

/// Median RTT from the controller to `addr`.
fn controller_ping(addr: &str) -> f64 {
    let out = Command::new("ping")
        .args(["-n", "-c", "20", "-i", "0.2", addr])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    ping_median(&text(&out.stdout))
}

/// Checks one run's delays.txt, delays.json, samples and plots: all 10 pairs of the lab
/// scenario, declared as the scenario says (host2 sends with 2 ms, everyone else with 15 ms),
/// each with its base round trip, 1000 pings and all five statistics certified.
fn check_delays(run: &Path) -> serde_json::Value {
    let txt = std::fs::read_to_string(run.join("delays.txt")).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("delays.json")).unwrap()).unwrap();
    let pairs = json["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 10, "{json:#}");
    for p in pairs {
        let (from, to) = (p["from"].as_str().unwrap(), p["to"].as_str().unwrap());
        let declared = if from == "host2" || to == "host2" {
            17.0
        } else {
            30.0
        };
        assert_eq!(p["declared_rtt_ms"], declared, "{p}");
        assert_eq!(p["ok"], true, "{p}");
        let checks = p["checks"].as_array().unwrap();
        let stats: Vec<&str> = checks.iter().map(|c| c["stat"].as_str().unwrap()).collect();
        assert_eq!(stats, ["p10", "p50", "p90", "p99", "sd"], "{p}");
        assert!(checks.iter().all(|c| c["ok"] == true), "{p}");
        // The model's median is the declared round trip plus the base (normal jitter).
        let p50 = checks[1]["declared_ms"].as_f64().unwrap();
        let base = p["base"]["p50_ms"].as_f64().unwrap();
        assert!(
            base < 1.0,
            "a lab's base round trip is well under 1 ms: {p}"
        );
        assert!((p50 - declared - base).abs() < 0.2, "{p}");
        assert!(p["delayed"]["received"].as_u64().unwrap() >= 900, "{p}");
        let row = txt
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{from} <-> {to} ")))
            .unwrap_or_else(|| panic!("no row for {from} <-> {to} in {txt}"));
        assert!(row.ends_with(" ok") || row.ends_with(" ok, 2nd"), "{row}");
        assert!(row.contains(&format!("{declared:.2}")), "{row}");
        for ext in ["svg", "png"] {
            let plot = run.join(format!("delays-{from}-{to}.{ext}"));
            assert!(plot.is_file(), "{} is missing", plot.display());
        }
    }
    let gz = std::fs::File::open(run.join("delays-samples.json.gz")).unwrap();
    let samples: serde_json::Value =
        serde_json::from_reader(flate2::read::GzDecoder::new(gz)).unwrap();
    let samples = samples.as_array().unwrap();
    assert_eq!(samples.len(), 10);
    for (s, p) in samples.iter().zip(pairs) {
        assert_eq!((&s["from"], &s["to"]), (&p["from"], &p["to"]));
        assert_eq!(
            s["delayed_ms"].as_array().unwrap().len() as u64,
            p["delayed"]["received"].as_u64().unwrap()
        );
        assert!(s["base_ms"].as_array().unwrap().len() >= 100);
    }
    json
}

#[test]
fn a_sudo_user_runs_setup_the_lab_scenario_and_fetch_logs_over_split_networks() {
    let user = "uorch";
    remove_user(user);
    let lab = Lab::up_with(
        "ucl",
        "10.162",
        5,
        &["--user", user, "--control-net", "10.163"],
    );
    let inventory = std::fs::read_to_string(&lab.inventory).unwrap();
    assert!(inventory.contains("  user: uorch\n") && inventory.contains("  sudo: true\n"));
    assert!(inventory.contains("    address: 10.163.3.2\n    experiment_ip: 10.162.3.2\n"));

    // Logged in as the user, in its own home, with passwordless sudo; SSH on eth0 (control),
    // the experiment address on eth1.
    let who = exec_all(
        &lab,
        "id -un; stat -c %U:%a \"$HOME\"; sudo -n id -un; ip -o -4 addr show eth1 | awk '{print $4}'; \
         echo \"$SSH_CONNECTION\" | awk '{print $3}'",
    );
    for (i, w) in who.iter().enumerate() {
        let n = i + 1;
        assert_eq!(
            w,
            &format!("uorch\nuorch:700\nroot\n10.162.{n}.2/16\n10.163.{n}.2"),
            "host{n}"
        );
    }

    setup(&lab);
    let results = lab.dir.path().join("results");
    let inv = lab.inventory.to_str().unwrap();
    let scenario = workspace("scenarios/zk-leader-placement-lab.yaml");
    let out = lab.run(&scenario, &results);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("zookeeper: leader host3 (srvr: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("zookeeper: leader host2 (srvr: "),
        "{stderr}"
    );
    let latest = results.join("zk-leader-placement-lab/latest");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(latest.join("summary.json")).unwrap()).unwrap();
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for run in runs {
        let label = run["label"].as_str().unwrap();
        let measured = check_delays(&latest.join(label));
        assert_eq!(run["delays"], measured, "summary.json carries delays.json");
        assert_eq!(run["errors"], 0);
    }

    // Everything under the user's orch directory belongs to the user, also what sudo made.
    let foreign = exec_all(&lab, "find ~/.orch ! -user uorch");
    assert!(foreign.iter().all(String::is_empty), "{foreign:#?}");

    let tarball = lab.dir.path().join("logs.tar.gz");
    let out = lab.orch(&[
        "-i",
        inv,
        "fetch-logs",
        "--results",
        results.to_str().unwrap(),
        "-o",
        tarball.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "fetch-logs: {}", text(&out.stderr));
    let manifest = orch::logs::read_manifest(&tarball).unwrap();
    assert_eq!(manifest.hosts.len(), 5);
    assert!(
        manifest.hosts.iter().all(|h| h.status == "ok"),
        "{manifest:?}"
    );
    orch::logs::verify(&tarball, &manifest).unwrap();

    slowed_only_on_the_experiment_network(&lab);
    a_pair_without_replies_fails_the_run_before_the_workload(&lab, &results);
}

/// A pair whose delay drops every packet answers no ping: the run fails right after the delays,
/// naming the pair, before ZooKeeper or the workload start, and its delays are removed.
fn a_pair_without_replies_fails_the_run_before_the_workload(lab: &Lab, results: &Path) {
    let scenario = lab.dir.path().join("deaf.yaml");
    std::fs::write(
        &scenario,
        "name: deaf\ndelays:\n  pairs:\n    - {from: host1, to: host2, delay_ms: 5, loss_pct: \
         100}\nzookeeper:\n  leader: host3\n\
         workload:\n  client: host1\n",
    )
    .unwrap();
    let out = lab.run(&scenario, results);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("host1 (10.162.1.2) <-> host2 (10.162.2.2): no reply to any ping"),
        "{stderr}"
    );
    assert!(!stderr.contains("zookeeper: leader"), "{stderr}");
    let txt = std::fs::read_to_string(results.join("deaf/latest/r01-rep1/delays.txt")).unwrap();
    let row = txt.lines().find(|l| l.contains("host1 <-> host2")).unwrap();
    // With no reply, ping sends until its deadline: 0 of at least the 1000 asked for.
    let replies = row.split_whitespace().rev().nth(1).unwrap();
    let (received, sent) = replies.split_once('/').unwrap();
    assert_eq!(received, "0", "{row}");
    assert!(sent.parse::<u32>().unwrap() >= 1000, "{row}");
    assert!(row.ends_with("FAILED"), "{txt}");
    let left = exec_all(
        lab,
        "ps -eo args | grep -E 'orch-node (delay|proc)|QuorumPeerMain' | grep -v grep || true",
    );
    assert!(left.iter().all(String::is_empty), "{left:#?}");
}

/// While a run holds its delays (host1 and host3 send with 15 ms, so their round trip is
/// 30 ms), the control addresses that SSH uses answer as fast as before the delays.
fn slowed_only_on_the_experiment_network(lab: &Lab) {
    let before_ssh = controller_ping("10.163.3.2");
    let before_ctl = host1_ping(lab, "10.163.1.2", "10.163.3.2");
    let before_exp = host1_ping(lab, "10.162.1.2", "10.162.3.2");
    let scenario = lab.dir.path().join("hold.yaml");
    std::fs::write(
        &scenario,
        "name: hold\ndelays:\n  interfaces:\n    - {host: host1, delay_ms: 15}\n    - {host: host3, \
         delay_ms: 15}\nzookeeper:\n  leader: host3\nworkload:\n  client: host1\n  properties:\n    \
         recordcount: 100\n    operationcount: 100000000\n",
    )
    .unwrap();
    let mut child = lab.spawn_run(&scenario, &lab.dir.path().join("results"));
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let started = Instant::now();
    while !seen.contains("ycsb load: done") {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 || started.elapsed() > Duration::from_secs(180)
        {
            let _ = child.kill();
            panic!("orch run ended or hung before the workload: {seen}");
        }
        seen.push_str(&line);
    }
    let during_ssh = controller_ping("10.163.3.2");
    let during_ctl = host1_ping(lab, "10.163.1.2", "10.163.3.2");
    let during_exp = host1_ping(lab, "10.162.1.2", "10.162.3.2");
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(
        !status.success() && rest.contains("interrupted (Ctrl-C)"),
        "{rest}"
    );
    eprintln!(
        "RTT ms before/while delayed: controller->host3 control {before_ssh:.3}/{during_ssh:.3}, \
         host1->host3 control {before_ctl:.3}/{during_ctl:.3}, host1->host3 experiment \
         {before_exp:.3}/{during_exp:.3}"
    );
    assert!(
        during_ssh < before_ssh + 1.0,
        "SSH path slowed: {during_ssh} ms"
    );
    assert!(
        during_ctl < before_ctl + 1.0,
        "control network slowed: {during_ctl} ms"
    );
    assert!(
        before_exp < 2.0,
        "experiment network before the delays: {before_exp} ms"
    );
    assert!(
        (during_exp - 30.0).abs() < 6.0,
        "experiment round trip while delayed: {during_exp} ms, declared 30 ms"
    );
    // The emulator is gone again: the experiment network is fast.
    let after_exp = host1_ping(lab, "10.162.1.2", "10.162.3.2");
    assert!(
        after_exp < 2.0,
        "experiment network after the run: {after_exp} ms"
    );
}

#[test]
fn lab_down_removes_the_user_up_created_and_keeps_one_that_existed() {
    let sudoers = Path::new("/etc/sudoers.d/orch-lab-unew");
    remove_user("unew");
    {
        let lab = Lab::up_with("unew", "10.164", 2, &["--user", "unew", "--control-net"]);
        assert!(user_exists("unew"));
        assert!(sudoers.exists());
        let homes = lab.exec(&[
            "--",
            "stat",
            "-c",
            "%U %a %n",
            "/home/unew",
            "/home/unew/.ssh",
        ]);
        let homes = text(&homes.stdout);
        assert_eq!(homes.matches("unew 700 /home/unew").count(), 4, "{homes}");
        // The default control network is the next /16; SSH goes there.
        let inventory = std::fs::read_to_string(&lab.inventory).unwrap();
        assert!(inventory.contains("address: 10.165.2.2\n    experiment_ip: 10.164.2.2"));
        // Each host has its own home: a file made on host1 is not on host2.
        assert!(lab
            .exec(&["--hosts", "host1", "--", "touch", "/home/unew/mine"])
            .status
            .success());
        let other = lab.exec(&["--hosts", "host2", "--", "test", "-e", "/home/unew/mine"]);
        assert!(!other.status.success());
    }
    assert!(!user_exists("unew"), "the user up created is still there");
    assert!(!sudoers.exists());
    assert!(!Path::new("/home/unew").exists());

    remove_user("uprev");
    let made = Command::new("useradd")
        .args(["--no-create-home", "--password", "*", "uprev"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    {
        let lab = Lab::up_with("uprev", "10.166", 1, &["--user", "uprev"]);
        let id = lab.exec(&["--", "sh", "-c", "id -un; sudo -n id -un"]);
        assert_eq!(
            util::lines_of(&text(&id.stdout), "host1"),
            ["uprev", "root"]
        );
    }
    assert!(
        user_exists("uprev"),
        "lab down removed a user that existed before"
    );
    assert!(!Path::new("/etc/sudoers.d/orch-lab-uprev").exists());
    remove_user("uprev");

    remove_user("ulock");
    let made = Command::new("useradd").arg("ulock").output().unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let out = Command::new(ORCH)
        .args([
            "lab", "up", "--hosts", "1", "--name", "ulock", "--net", "10.168",
        ])
        .args(["--user", "ulock"])
        .env("ORCH_LAB_DIR", dir.path())
        .output()
        .unwrap();
    remove_user("ulock");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("password is locked"),
        "{}",
        text(&out.stderr)
    );
    assert!(!Path::new("/etc/sudoers.d/orch-lab-ulock").exists());
}
