//! The real-kernel tier (docs/kernel-tier.md): what needs a kernel with sch_netem, run by
//! `scripts/kernel-test.sh` inside VMs booted on Debian's 6.1 and 6.12 kernels. The tests
//! that need netem are `#[ignore]`d, so `cargo test` on a kernel without it skips them; the
//! script runs this binary with `--include-ignored`.
//!
//! Under the VM's TCG emulation everything is about 10x slower, SSH handshakes included: the
//! labs here get a 30 s connect timeout instead of the lab's default 2 s.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use orch::config::Problems;
use orch::delay::{self, DelaySpec};
use orch::facts::{self, Facts, Kprobes};
use orch::inventory::Inventory;

use crate::util::{text, DelayHosts, Lab};

/// One-way delays of the matrix, both ways: (from, to, ms).
const MATRIX: [(usize, usize, f64); 3] = [(1, 2, 5.0), (1, 3, 20.0), (2, 3, 40.0)];

/// A lab for the emulated VM: `orch lab up`, tried up to three times, since the lab gives each
/// host's namespaces 10 s to start, which a busy machine under TCG may still miss ("sshd did
/// not start"); and an inventory that allows 30 s for an SSH connection (see the module doc).
fn slow_lab(name: &str, net: &str, hosts: usize) -> Lab {
    let lab = Lab::prepare(name, net);
    let up = lab.up_args(hosts);
    let up: Vec<&str> = up.iter().map(String::as_str).collect();
    for attempt in 1.. {
        let out = lab.orch(&up);
        if out.status.success() {
            break;
        }
        let err = text(&out.stderr);
        assert!(
            attempt < 3 && err.contains("sshd did not start"),
            "lab up failed: {err}"
        );
        eprintln!("lab up, attempt {attempt}: {err}");
    }
    let inventory = std::fs::read_to_string(&lab.inventory).unwrap();
    let patient = inventory.replace("connect_timeout_secs: 2\n", "connect_timeout_secs: 30\n");
    assert_ne!(inventory, patient, "the lab inventory sets no 2 s timeout");
    std::fs::write(&lab.inventory, patient).unwrap();
    lab
}

/// `orch check` on every host of `lab`, through the library.
fn check(rt: &tokio::runtime::Runtime, lab: &Lab) -> (Inventory, Vec<(String, Facts)>) {
    let inventory = Inventory::load(&lab.inventory).unwrap();
    let hosts: Vec<_> = inventory.hosts.iter().collect();
    let (facts, all) = rt.block_on(facts::check(&hosts, 8));
    assert!(all, "orch check failed");
    (inventory, facts)
}

/// Runs `args` in lab host `i`'s network namespace; panics if it fails.
fn on_host(lab: &Lab, i: usize, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.netns(i)])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "host{i}: {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Smallest ping RTT (ms) from host `a` to host `b` over 20 pings; panics if any is lost.
///
/// The smallest, as the usual estimate of a path's delay: in the emulated VM every ping also
/// waits for the host to run the VM's vCPU threads, by a few ms when the machine is busy (the
/// mean RTT between lab hosts without delays was 0.5 ms on a quieter machine, 3.6 ms on a loaded
/// one, with about the same minimum), and netem's timers fire late by as much.
fn ping(lab: &Lab, a: usize, b: usize) -> f64 {
    let to = lab.address(b);
    let out = on_host(
        lab,
        a,
        &["ping", "-n", "-W", "5", "-c", "20", "-i", "0.05", &to],
    );
    min_rtt(&out, 20)
}

/// Whether this kernel runs a netem qdisc, tried for real on a dummy interface in a scratch
/// namespace (independent of how `orch check` decides).
fn kernel_runs_netem() -> bool {
    let ns = format!("orch-k-netem-{}", std::process::id());
    let run = |args: &[&str]| Command::new("ip").args(args).output().unwrap();
    assert!(run(&["netns", "add", &ns]).status.success());
    let ok = run(&["-n", &ns, "link", "add", "d0", "type", "dummy"])
        .status
        .success()
        && run(&[
            "netns", "exec", &ns, "tc", "qdisc", "add", "dev", "d0", "root", "netem", "delay",
            "1ms",
        ])
        .status
        .success();
    run(&["netns", "del", &ns]);
    ok
}

/// How much later than declared a bare root netem delivers on this machine: the smallest ping
/// RTT across a veth pair with `tc qdisc add dev X root netem delay 5ms` on both ends, minus
/// the pair's RTT without it, minus 10 ms. It measures the kernel and the machine, not orch:
/// in the emulated VMs netem's timers fire about 0.5 ms late per hop.
fn bare_netem_lateness() -> f64 {
    let ns = ["orch-k-cal-a", "orch-k-cal-b"];
    let ip = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().unwrap();
        assert!(out.status.success(), "ip {args:?}: {}", text(&out.stderr));
    };
    let cleanup = || {
        for n in ns {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    };
    cleanup();
    for n in ns {
        ip(&["netns", "add", n]);
    }
    ip(&[
        "-n", ns[0], "link", "add", "cal0", "type", "veth", "peer", "name", "cal1", "netns", ns[1],
    ]);
    for (n, dev, addr) in [
        (ns[0], "cal0", "10.152.0.1/24"),
        (ns[1], "cal1", "10.152.0.2/24"),
    ] {
        ip(&["-n", n, "addr", "add", addr, "dev", dev]);
        ip(&["-n", n, "link", "set", dev, "up"]);
    }
    let min_ping = || {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns[0],
                "ping",
                "-n",
                "-c",
                "20",
                "-i",
                "0.05",
                "10.152.0.2",
            ])
            .output()
            .unwrap();
        min_rtt(&text(&out.stdout), 20)
    };
    let base = min_ping();
    for (n, dev) in [(ns[0], "cal0"), (ns[1], "cal1")] {
        ip(&[
            "netns", "exec", n, "tc", "qdisc", "add", "dev", dev, "root", "netem", "delay", "5ms",
        ]);
    }
    let delayed = min_ping();
    cleanup();
    delayed - base - 10.0
}

/// The smallest `time=` of ping's output; panics unless there are `count` of them.
fn min_rtt(out: &str, count: usize) -> f64 {
    let rtts: Vec<f64> = out
        .lines()
        .filter_map(|l| l.split("time=").nth(1))
        .filter_map(|t| t.trim_end_matches(" ms").trim().parse().ok())
        .collect();
    assert_eq!(rtts.len(), count, "ping: {out}");
    rtts.into_iter().fold(f64::INFINITY, f64::min)
}

/// Whether this kernel has kprobes: its symbol table lists `register_kprobe`.
fn kernel_has_kprobes() -> bool {
    std::fs::read_to_string("/proc/kallsyms")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("register_kprobe"))
}

#[test]
fn check_reports_netem_and_kprobes_as_the_kernel_has_them() {
    let lab = slow_lab("kchk", "10.150", 1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_, facts) = check(&rt, &lab);
    let f = &facts[0].1;
    let (netem, kprobes) = (kernel_runs_netem(), kernel_has_kprobes());
    eprintln!(
        "kernel {}: netem runs: {netem}, orch check: {}; kprobes: {kprobes}, orch check: {}",
        f.kernel, f.netem, f.kprobes
    );
    assert_eq!(f.netem.usable(), netem, "netem: {}", f.netem);
    let expected = if kprobes { Kprobes::Yes } else { Kprobes::No };
    assert_eq!(f.kprobes, expected);
    let out = lab.orch(&["-i", lab.inventory.to_str().unwrap(), "check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains("KPROBES"), "{table}");
}

/// The delays in force on lab host `i`'s eth0 as plain `tc qdisc show` prints them, sorted
/// (tc lists the newest qdisc first).
fn netem_delays(lab: &Lab, i: usize) -> Vec<String> {
    on_host(lab, i, &["tc", "qdisc", "show", "dev", "eth0"])
        .lines()
        .filter(|l| l.starts_with("qdisc netem"))
        .filter_map(|l| l.split(" delay ").nth(1))
        .map(|d| d.split_whitespace().next().unwrap_or_default().to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[test]
#[ignore = "needs a kernel with sch_netem: run scripts/kernel-test.sh"]
fn netem_delays_are_applied_read_back_measured_and_removed() {
    let lab = slow_lab("knet", "10.151", 3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let inventory = Inventory::load(&lab.inventory).unwrap();
    let hosts: Vec<_> = inventory.hosts.iter().collect();
    let on = rt.block_on(DelayHosts::connect(&hosts));
    for (host, f) in on.facts() {
        assert!(
            f.netem.usable(),
            "{host}: needs a kernel with sch_netem, orch check says netem: {}",
            f.netem
        );
    }
    let mut yaml = String::from("method: netem\npairs:\n");
    for (a, b, ms) in MATRIX {
        yaml.push_str(&format!(
            "  - {{from: host{a}, to: host{b}, delay_ms: {ms}, both_ways: true}}\n"
        ));
    }
    let spec: DelaySpec = serde_saphyr::from_str(&yaml).unwrap();
    let mut problems = Problems::new(Path::new("scenario.yaml"));
    let delays = spec
        .validate(&hosts, &mut problems)
        .expect("a valid delay section");
    let base: Vec<f64> = MATRIX.iter().map(|(a, b, _)| ping(&lab, *a, *b)).collect();
    let before: Vec<String> = (1..=3)
        .map(|i| on_host(&lab, i, &["tc", "qdisc", "show", "dev", "eth0"]))
        .collect();

    let applied = rt.block_on(delay::apply(&on.targets(), &delays)).unwrap();
    let report = applied.report();
    for i in 1..=3 {
        assert!(
            report.contains(&format!("host{i}: tc netem on eth0")),
            "{report}"
        );
    }
    // What the kernel holds, read with plain tc: host1 delays to host2 and host3, and so on.
    assert_eq!(netem_delays(&lab, 1), ["20ms", "5ms"]);
    assert_eq!(netem_delays(&lab, 2), ["40ms", "5ms"]);
    assert_eq!(netem_delays(&lab, 3), ["20ms", "40ms"]);
    // netem adds to the lab's own base RTT (0.3 to 0.6 ms in the emulated VM), and delivers
    // as late as a bare netem on the same machine does (about 1 ms per RTT in the VM).
    let late = bare_netem_lateness();
    eprintln!("a bare root netem of 5 ms each way delivers {late:.3} ms late per RTT here");
    let mut wrong = Vec::new();
    for (k, (a, b, ms)) in MATRIX.into_iter().enumerate() {
        let declared = 2.0 * ms;
        let rtt = ping(&lab, a, b);
        let added = rtt - base[k];
        let line = format!(
            "host{a}<->host{b}: declared RTT {declared} ms, ping {rtt:.3} ms = base {:.3} + {added:.3} ms",
            base[k]
        );
        eprintln!("{line}");
        if (added - late - declared).abs() > (0.1 * declared).max(1.0) {
            wrong.push(line);
        }
    }
    assert!(
        wrong.is_empty(),
        "not within 10% or 1 ms (after {late:.3} ms of bare netem lateness): {wrong:#?}"
    );

    rt.block_on(delay::remove(applied, &on.conns())).unwrap();
    for i in 1..=3 {
        let qdiscs = on_host(&lab, i, &["tc", "qdisc", "show", "dev", "eth0"]);
        assert_eq!(qdiscs, before[i - 1], "host{i}: qdiscs after teardown");
        for what in ["class", "filter"] {
            let left = on_host(&lab, i, &["tc", what, "show", "dev", "eth0"]);
            assert!(left.trim().is_empty(), "host{i}: {what}es left: {left}");
        }
    }
    for (k, (a, b, _)) in MATRIX.into_iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let rtt = ping(&lab, a, b);
            if rtt < base[k] + 1.0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "host{a}->host{b} still at {rtt:.3} ms after teardown"
            );
        }
    }
}

/// netem, as orch installs it (HTB + a netem per destination, through `delay::apply`), reorders
/// one flow's packets as the delay model predicts, and not with a fixed delay: the emulator's
/// measurement of tests/it/reorder.rs, with `method: netem`.
#[test]
#[ignore = "needs a kernel with sch_netem: run scripts/kernel-test.sh"]
fn netem_reorders_one_flow_as_the_model_predicts() {
    let lab = slow_lab("kro", "10.153", 3);
    crate::reorder::measure_and_check(&lab, "netem");
}
