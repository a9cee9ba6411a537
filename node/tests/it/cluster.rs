//! A local cluster of `orch-node elect` processes on 127.0.0.2.. for integration tests.
//!
//! Every test uses its own port so tests run in parallel; the guard kills the processes it
//! started (by handle) when dropped, also when a test panics.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::util::NODE;

/// Replicas of one test and the directory holding their config and logs.
pub struct Cluster {
    dir: tempfile::TempDir,
    config: PathBuf,
    children: Vec<Option<Child>>,
}

/// The address of replica `id` (127.0.0.2 is replica 0).
pub fn ip(id: usize) -> String {
    format!("127.0.0.{}", id + 2)
}

/// Wall-clock Unix time in ns, comparable with the `wall` field of events.
pub fn wall_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

impl Cluster {
    /// Writes a config for `n` replicas on `port` (plus `extra` YAML lines under `replica:`)
    /// without starting anything.
    pub fn configure(port: u16, n: usize, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ips: Vec<String> = (0..n).map(|i| format!("\"{}\"", ip(i))).collect();
        let config = dir.path().join("elect.yaml");
        let text = format!(
            "replica:\n  ips: [{}]\n  port: {port}\n  tcp_monitor: false\n  eventLog: {}/node_{{id}}.jsonl\n{extra}",
            ips.join(", "),
            dir.path().display()
        );
        std::fs::write(&config, text).unwrap();
        Self {
            dir,
            config,
            children: (0..n).map(|_| None).collect(),
        }
    }

    /// Configures and starts all `n` replicas.
    pub fn start(port: u16, n: usize, extra: &str) -> Self {
        let mut c = Self::configure(port, n, extra);
        for id in 0..n {
            c.spawn(id);
        }
        c
    }

    /// Starts replica `id`.
    pub fn spawn(&mut self, id: usize) {
        let err = std::fs::File::create(self.dir.path().join(format!("stderr_{id}.txt"))).unwrap();
        let child = Command::new(NODE)
            .args(["elect", "--config"])
            .arg(&self.config)
            .args(["--id", &id.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start orch-node elect");
        self.children[id] = Some(child);
    }

    /// Kills replica `id` (SIGKILL, by handle).
    pub fn kill(&mut self, id: usize) {
        if let Some(mut c) = self.children[id].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits until every started replica exited by itself; panics with their stderr otherwise.
    pub fn wait_exit(&mut self, timeout: Duration) {
        let end = Instant::now() + timeout;
        for id in 0..self.children.len() {
            let Some(c) = self.children[id].as_mut() else {
                continue;
            };
            loop {
                if let Some(status) = c.try_wait().unwrap() {
                    assert!(status.success(), "replica {id} failed: {}", self.stderr(id));
                    self.children[id] = None;
                    break;
                }
                assert!(Instant::now() < end, "replica {id} did not exit in time");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// The replica's stderr so far.
    pub fn stderr(&self, id: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("stderr_{id}.txt")))
            .unwrap_or_default()
    }

    /// Path of replica `id`'s event log.
    pub fn log_path(&self, id: usize) -> PathBuf {
        self.dir.path().join(format!("node_{id}.jsonl"))
    }

    /// All complete events of replica `id` so far.
    pub fn events(&self, id: usize) -> Vec<Value> {
        read_events(&self.log_path(id))
    }

    /// Events of every replica, in one list.
    pub fn all_events(&self) -> Vec<Value> {
        (0..self.children.len())
            .flat_map(|id| self.events(id))
            .collect()
    }

    /// (term, id, wall) of every `role -> leader` event, ordered by wall time.
    pub fn leader_elections(&self) -> Vec<(u64, usize, u64)> {
        let mut v: Vec<(u64, usize, u64)> = self
            .all_events()
            .iter()
            .filter(|e| e["event"] == "role" && e["to"] == "leader")
            .map(|e| {
                (
                    e["term"].as_u64().unwrap(),
                    e["id"].as_u64().unwrap() as usize,
                    e["wall"].as_u64().unwrap(),
                )
            })
            .collect();
        v.sort_by_key(|x| x.2);
        v
    }
}

/// Reads a JSON-lines log, ignoring a last line still being written.
pub fn read_events(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in 0..self.children.len() {
            self.kill(id);
        }
    }
}
