//! `orch lab up --uplink RATE` on a real lab: what this machine sends into the lab is limited
//! to RATE, traffic between the hosts is not, and `lab down` removes the limit. Needs root.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Instant;

use crate::util::{self, text, Lab};

/// Moves the calling thread into network namespace `ns` (a thread's sockets live there).
fn enter(ns: &str) {
    let file = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    // SAFETY: setns on a namespace file we opened; it affects only this thread.
    let entered = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(entered, 0, "setns {ns}");
}

/// Mbit/s of `bytes` sent over TCP to `addr` (listening in `listen_ns`), sent from `from_ns`
/// (None: this machine), timed until the receiver has read the last byte.
fn throughput(listen_ns: String, addr: &str, from_ns: Option<String>, bytes: usize) -> f64 {
    let (tx, rx) = std::sync::mpsc::channel();
    let bind = addr.to_string();
    let receiver = std::thread::spawn(move || {
        enter(&listen_ns);
        let listener = TcpListener::bind(&bind).unwrap();
        tx.send(()).unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        let mut got = 0;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match conn.read(&mut buf).unwrap() {
                0 => break,
                n => got += n,
            }
        }
        (got, Instant::now())
    });
    rx.recv().unwrap();
    let target = addr.to_string();
    let sender = std::thread::spawn(move || {
        if let Some(ns) = from_ns {
            enter(&ns);
        }
        let started = Instant::now();
        let mut conn = TcpStream::connect(&target).unwrap();
        conn.write_all(&vec![7u8; bytes]).unwrap();
        drop(conn);
        started
    });
    let started = sender.join().unwrap();
    let (got, done) = receiver.join().unwrap();
    assert_eq!(got, bytes);
    bytes as f64 * 8.0 / (done - started).as_secs_f64() / 1e6
}

#[test]
fn the_uplink_limits_the_controller_and_not_the_hosts() {
    let _alone = util::alone();
    let lab = Lab::up_with("sd", "10.113", 2, &["--uplink", "20mbit"]);
    let bridge = "olbr-sd";
    let qdisc = Command::new("tc")
        .args(["qdisc", "show", "dev", bridge, "root"])
        .output()
        .unwrap();
    assert!(
        text(&qdisc.stdout).contains("htb 1:"),
        "{}",
        text(&qdisc.stdout)
    );
    let status = lab.orch(&["lab", "status", "--name", "sd"]);
    assert!(
        text(&status.stdout).contains("uplink: 20mbit on olbr-sd"),
        "{}",
        text(&status.stdout)
    );

    // 2.5 MB is one second at 20 Mbit/s.
    let up = throughput(lab.netns(1), "10.113.1.2:5001", None, 2_500_000);
    assert!(
        (12.0..=21.0).contains(&up),
        "controller -> host1: {up:.1} Mbit/s"
    );
    let lan = throughput(
        lab.netns(1),
        "10.113.1.2:5002",
        Some(lab.netns(2)),
        25_000_000,
    );
    assert!(lan > 200.0, "host2 -> host1: {lan:.1} Mbit/s, limited too");

    drop(lab);
    let gone = Command::new("ip")
        .args(["link", "show", bridge])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "{bridge} is left after lab down");
}

#[test]
fn a_rate_without_a_unit_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let out = Command::new(util::ORCH)
        .args([
            "lab", "up", "--hosts", "1", "--name", "sd", "--net", "10.113",
        ])
        .args(["--uplink", "20"])
        .env("ORCH_LAB_DIR", dir.path().join("state"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("--uplink \"20\" is not a rate"), "{err}");
    assert!(!dir.path().join("state/sd").exists(), "state was created");
}
