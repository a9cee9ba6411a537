//! `orch-node traffic`: mesh and rate modes on loopback addresses, through the built binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{turn, NODE};

/// One `orch-node traffic` process writing stats to its own log; killed by pid when dropped.
struct Traffic {
    child: Option<Child>,
    log: PathBuf,
    stderr: PathBuf,
    args: Vec<String>,
}

impl Traffic {
    fn spawn(dir: &Path, label: &str, args: &[&str]) -> Self {
        let log = dir.join(format!("{label}.jsonl"));
        let stderr = dir.join(format!("{label}.err"));
        let mut t = Self {
            child: None,
            log,
            stderr,
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        t.start();
        t
    }

    /// (Re)starts the process with the arguments it was made with.
    fn start(&mut self) {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .unwrap();
        let child = Command::new(NODE)
            .arg("traffic")
            .args(&self.args)
            .arg("--log")
            .arg(&self.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start orch-node traffic");
        self.child = Some(child);
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: plain kill of our own, not yet reaped child.
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }

    /// SIGTERM, then waits for a clean exit.
    fn terminate(&mut self) {
        self.signal(libc::SIGTERM);
        self.wait_exit(Duration::from_secs(5));
    }

    /// Waits for the process to exit by itself and checks it succeeded.
    fn wait_exit(&mut self, timeout: Duration) {
        let mut c = self.child.take().expect("running");
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                assert!(status.success(), "{status}: {}", self.stderr_text());
                return;
            }
            if Instant::now() > end {
                let _ = c.kill();
                let _ = c.wait();
                panic!("did not exit in time: {}", self.stderr_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, like a crash.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The last complete stats record.
    fn last(&self) -> Option<Value> {
        std::fs::read_to_string(&self.log)
            .ok()?
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .next_back()
    }

    /// Counter `field` for `peer` in the last record (0 if none yet).
    fn peer(&self, peer: &str, field: &str) -> u64 {
        self.last()
            .and_then(|r| r["peers"][peer][field].as_u64())
            .unwrap_or(0)
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

const IPS: [&str; 3] = ["127.0.0.31", "127.0.0.32", "127.0.0.33"];

/// Three mesh processes on [`IPS`], all listening on `port`.
fn mesh(dir: &Path, port: u16) -> Vec<Traffic> {
    let peers = IPS.join(",");
    let port = port.to_string();
    IPS.iter()
        .map(|ip| {
            Traffic::spawn(
                dir,
                ip,
                &[
                    "mesh",
                    "--bind",
                    ip,
                    "--peers",
                    &peers,
                    "--port",
                    &port,
                    "--interval-ms",
                    "50",
                    "--reconnect-ms",
                    "200",
                    "--stats-ms",
                    "200",
                ],
            )
        })
        .collect()
}

fn all_connected(nodes: &[Traffic]) -> bool {
    nodes.iter().enumerate().all(|(i, n)| {
        IPS.iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .all(|(_, peer)| {
                let last = n.last().unwrap_or_default();
                last["peers"][peer]["connected"] == true && last["peers"][peer]["inbound"] == 1
            })
    })
}

#[test]
fn mesh_connects_every_pair_and_counts_agree() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = mesh(dir.path(), 47311);
    assert!(
        wait_until(Duration::from_secs(10), || all_connected(&nodes)),
        "not all connected: {:?}",
        nodes.iter().map(|n| n.last()).collect::<Vec<_>>()
    );
    std::thread::sleep(Duration::from_secs(2));
    for n in &mut nodes {
        n.terminate();
    }
    let finals: Vec<Value> = nodes.iter().map(|n| n.last().unwrap()).collect();
    for (i, f) in finals.iter().enumerate() {
        assert_eq!(f["final"], true);
        assert_eq!(f["mode"], "mesh");
        for (j, peer) in IPS.iter().enumerate().filter(|&(j, _)| j != i) {
            let sent = f["peers"][peer]["sent_bytes"].as_u64().unwrap();
            let received = finals[j]["peers"][IPS[i]]["recv_bytes"].as_u64().unwrap();
            println!("{} -> {peer}: sent {sent}, received {received}", IPS[i]);
            assert!(sent >= 64 * 30, "{} -> {peer}: only {sent} bytes", IPS[i]);
            assert_eq!(sent % 64, 0);
            // Processes stop one after another: a few messages may be in flight.
            assert!(sent.abs_diff(received) <= 64 * 10, "{sent} vs {received}");
            assert!(f["peers"][peer]["accepts"].as_u64().unwrap() >= 1);
            assert_eq!(f["peers"][peer]["reconnects"], 0);
        }
        assert!(f.as_object().unwrap().contains_key("ts_unix_ms"));
    }
}

#[test]
fn mesh_reconnects_to_a_restarted_peer() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = mesh(dir.path(), 47312);
    assert!(wait_until(Duration::from_secs(10), || all_connected(
        &nodes
    )));
    let before = [
        nodes[0].peer(IPS[2], "sent_bytes"),
        nodes[1].peer(IPS[2], "sent_bytes"),
    ];

    nodes[2].kill();
    assert!(wait_until(Duration::from_secs(5), || {
        nodes[..2]
            .iter()
            .all(|n| n.peer(IPS[2], "disconnects") >= 1 && n.peer(IPS[2], "connect_errors") >= 1)
    }));
    std::fs::remove_file(&nodes[2].log).unwrap();
    nodes[2].start();

    assert!(
        wait_until(Duration::from_secs(10), || all_connected(&nodes)),
        "not reconnected: {:?}",
        nodes.iter().map(|n| n.last()).collect::<Vec<_>>()
    );
    for (n, before) in nodes[..2].iter().zip(before) {
        assert!(n.peer(IPS[2], "reconnects") >= 1);
        assert!(n.peer(IPS[2], "connects") >= 2);
        assert!(wait_until(Duration::from_secs(5), || {
            n.peer(IPS[2], "sent_bytes") > before + 64 * 5
        }));
    }
    assert!(wait_until(Duration::from_secs(5), || {
        IPS[..2].iter().all(|p| nodes[2].peer(p, "recv_bytes") > 0)
    }));
}

#[test]
fn rate_mode_delivers_the_configured_bit_rate() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let mut sink = Traffic::spawn(
        dir.path(),
        "sink",
        &["sink", "--bind", "127.0.0.34", "--port", "47313"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let mut rate = Traffic::spawn(
        dir.path(),
        "rate",
        &[
            "rate",
            "--bind",
            "127.0.0.35",
            "--peer",
            "127.0.0.34",
            "--port",
            "47313",
            "--rate",
            "800K",
            "--len",
            "1K",
            "--duration",
            "3",
        ],
    );
    rate.wait_exit(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    sink.terminate();

    let sent = rate.last().unwrap()["sent_bytes"].as_u64().unwrap();
    let got = sink.last().unwrap()["peers"]["127.0.0.35"]["recv_bytes"]
        .as_u64()
        .unwrap();
    println!("rate 800K for 3 s: sent {sent} bytes, sink received {got}");
    assert_eq!(sent, got);
    assert_eq!(sent % 1024, 0);
    assert!((270_000..=330_000).contains(&got), "{got} bytes");
}

#[test]
fn an_address_of_another_host_is_refused_clearly() {
    let _turn = turn();
    let out = Command::new(NODE)
        .args(["traffic", "sink", "--bind", "192.0.2.1", "--port", "47314"])
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen on 192.0.2.1:47314"), "{err}");
}
