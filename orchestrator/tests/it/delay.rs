//! `orch::delay` on a 3-host local lab: one-way delays of 5, 20 and 40 ms between the pairs,
//! measured with ping and with TCP's smoothed RTT, then removed, then applied again and the
//! emulators killed with SIGKILL. The scenario asks for `method: emulator`, so every host gets
//! the `orch-node delay` emulator on any kernel (netem is tested by tests/it/kernel.rs, in the VMs
//! of scripts/kernel-test.sh).
//!
//! Needs root, iproute2, iputils-ping and nftables (`nft`, only to look at the hosts' tables
//! independently of orch). The lab hosts share this machine's filesystem, so they run the
//! `orch-node` this test builds (`cargo build -p orch-node`, next to the test binary) through
//! `ORCH_NODE_BIN`.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use orch::config::Problems;
use orch::delay::{self, DelaySpec};
use orch::inventory::Inventory;

use crate::util::{in_netns, node_binary, procs, text, DelayHosts, Lab};

/// One-way delays of the matrix, both ways: (from, to, ms).
const MATRIX: [(usize, usize, f64); 3] = [(1, 2, 5.0), (1, 3, 20.0), (2, 3, 40.0)];

/// What the delay tests need to look at on the lab's hosts.
impl Lab {
    fn ip(&self, i: usize) -> IpAddr {
        format!("{}.{i}.2", self.net).parse().unwrap()
    }

    /// Mean ping RTT (ms) from host `a` to host `b` over 10 pings; panics if any is lost.
    fn ping(&self, a: usize, b: usize) -> f64 {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.netns(a),
                "ping",
                "-n",
                "-W",
                "2",
                "-c",
                "10",
            ])
            .args(["-i", "0.05", &self.ip(b).to_string()])
            .output()
            .unwrap();
        let rtts: Vec<f64> = text(&out.stdout)
            .lines()
            .filter_map(|l| l.split("time=").nth(1))
            .filter_map(|t| t.trim_end_matches(" ms").trim().parse().ok())
            .collect();
        assert_eq!(
            rtts.len(),
            10,
            "ping host{a} -> host{b}: {}",
            text(&out.stdout)
        );
        rtts.iter().sum::<f64>() / rtts.len() as f64
    }

    /// The nftables tables of host `i`.
    fn tables(&self, i: usize) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.netns(i), "nft", "list", "tables"])
            .output()
            .unwrap();
        assert!(out.status.success(), "nft: {}", text(&out.stderr));
        text(&out.stdout)
    }

    /// SIGKILLs every `orch-node` process of host `i`.
    fn kill_emulator(&self, i: usize) {
        let pids = Command::new("ip")
            .args(["netns", "pids", &self.netns(i)])
            .output()
            .unwrap();
        let mut killed = 0;
        for pid in text(&pids.stdout).split_whitespace() {
            if pid.parse().is_ok_and(|pid| procs::comm(pid) == "orch-node") {
                Command::new("kill").args(["-9", pid]).status().unwrap();
                killed += 1;
            }
        }
        assert_eq!(killed, 1, "host{i} should run exactly one emulator");
    }
}

/// `measured` is within 10% or 0.5 ms (whichever is larger) of `expected`.
fn close(measured: f64, expected: f64) -> bool {
    (measured - expected).abs() <= (0.1 * expected).max(0.5)
}

/// Opens a TCP connection from host `a` to an echo server on host `b`, exchanges 64-byte
/// messages every 20 ms for `rounds` rounds, and returns the connection's srtt (ms) as
/// `ss -ti` reports it on host `a`.
fn tcp_srtt(lab: &Lab, a: usize, b: usize, rounds: usize) -> f64 {
    let server_ip = lab.ip(b);
    let listener = in_netns(&lab.netns(b), || TcpListener::bind((server_ip, 0)).unwrap());
    let addr: SocketAddr = listener.local_addr().unwrap();
    let echo = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        while s.read_exact(&mut buf).is_ok() {
            if s.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let mut client = in_netns(&lab.netns(a), || TcpStream::connect(addr).unwrap());
    client.set_nodelay(true).unwrap();
    let local = client.local_addr().unwrap();
    let mut buf = [7u8; 64];
    for _ in 0..rounds {
        client.write_all(&buf).unwrap();
        client.read_exact(&mut buf).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.netns(a), "ss", "-tin", "src"])
        .arg(local.to_string())
        .output()
        .unwrap();
    drop(client);
    echo.join().unwrap();
    let ss = text(&out.stdout);
    ss.split_whitespace()
        .find_map(|w| w.strip_prefix("rtt:"))
        .and_then(|v| v.split('/').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no rtt in `ss -tin`: {ss}"))
}

fn spec() -> DelaySpec {
    let mut yaml = String::from("method: emulator\npairs:\n");
    for (a, b, ms) in MATRIX {
        yaml.push_str(&format!(
            "  - {{from: host{a}, to: host{b}, delay_ms: {ms}, both_ways: true}}\n"
        ));
    }
    serde_saphyr::from_str(&yaml).unwrap()
}

/// Every pair's ping RTT and TCP srtt is twice its one-way delay (plus the lab's base RTT)
/// within 10% or 0.5 ms.
fn check_matrix(lab: &Lab, base: &[f64]) {
    let mut pings = Vec::new();
    for (k, (a, b, ms)) in MATRIX.into_iter().enumerate() {
        let expected = 2.0 * ms + base[k];
        let rtt = lab.ping(a, b);
        assert!(
            close(rtt, expected),
            "ping host{a}->host{b}: {rtt:.3} ms, expected {expected:.3}"
        );
        pings.push(rtt);
    }
    let srtts: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = MATRIX
            .iter()
            .map(|(a, b, _)| s.spawn(move || tcp_srtt(lab, *a, *b, 40)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (k, (a, b, ms)) in MATRIX.into_iter().enumerate() {
        let expected = 2.0 * ms + base[k];
        eprintln!(
            "host{a}<->host{b}: configured RTT {:.3} ms, ping {:.3} ms, TCP srtt {:.3} ms",
            2.0 * ms,
            pings[k],
            srtts[k]
        );
        assert!(
            close(srtts[k], expected),
            "TCP srtt host{a}->host{b}: {:.3} ms, expected {expected:.3}",
            srtts[k]
        );
    }
}

/// Every pair is back to its base RTT and no host has the emulator's table.
fn check_normal(lab: &Lab, base: &[f64]) {
    for (k, (a, b, _)) in MATRIX.into_iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let rtt = lab.ping(a, b);
            if rtt < base[k] + 1.0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "host{a}->host{b} still at {rtt:.3} ms"
            );
        }
    }
    for i in 1..=3 {
        assert!(
            !lab.tables(i).contains("orch_delay"),
            "host{i}: {}",
            lab.tables(i)
        );
    }
}

#[test]
fn matrix_of_one_way_delays_is_applied_measured_and_removed() {
    let lab = Lab::up("da", "10.131", 3);
    std::env::set_var(delay::NODE_BIN_ENV, node_binary());
    let inventory = Inventory::load(&lab.inventory).unwrap();
    let hosts: Vec<_> = inventory.hosts.iter().collect();
    let mut problems = Problems::new(Path::new("scenario.yaml"));
    let delays = spec()
        .validate(&hosts, &mut problems)
        .expect("a valid delay section");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let on = rt.block_on(DelayHosts::connect(&hosts));
    let (targets, conns) = (on.targets(), on.conns());
    let base: Vec<f64> = MATRIX.iter().map(|(a, b, _)| lab.ping(*a, *b)).collect();

    let applied = rt.block_on(delay::apply(&targets, &delays)).unwrap();
    let report = applied.report();
    for i in 1..=3 {
        assert!(
            report.contains(&format!("host{i}: orch-node delay emulator, pid ")),
            "{report}"
        );
    }
    assert!(
        report.contains(&format!("-> host3 ({}): 40 ms", lab.ip(3))),
        "{report}"
    );
    check_matrix(&lab, &base);
    rt.block_on(delay::remove(applied, &conns)).unwrap();
    check_normal(&lab, &base);

    let interrupted = rt.block_on(delay::apply(&targets, &delays)).unwrap();
    drop(interrupted);
    let applied = rt.block_on(delay::apply(&targets, &delays)).unwrap();
    assert!(lab.ping(1, 3) > 40.0);
    for i in 1..=3 {
        lab.kill_emulator(i);
    }
    check_normal(&lab, &base);
    rt.block_on(delay::remove(applied, &conns)).unwrap();
}
