//! A local lab for one test, driven through the `orch` binary. Needs root.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const ORCH: &str = env!("CARGO_BIN_EXE_orch");

/// A lab made for one test; `Drop` runs `orch lab down`.
pub struct Lab {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub inventory: PathBuf,
    pub net: String,
}

impl Lab {
    pub fn up(name: &str, net: &str, hosts: usize) -> Lab {
        Lab::up_with(name, net, hosts, &[])
    }

    /// `orch lab up` with more flags (`--user NAME`, `--control-net C.D`).
    pub fn up_with(name: &str, net: &str, hosts: usize, flags: &[&str]) -> Lab {
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let inventory = dir.path().join("lab.yaml");
        let lab = Lab {
            name: name.to_string(),
            dir,
            inventory,
            net: net.to_string(),
        };
        let hosts = hosts.to_string();
        let mut args = vec![
            "lab",
            "up",
            "--hosts",
            &hosts,
            "--name",
            name,
            "--net",
            net,
            "-i",
            lab.inventory.to_str().unwrap(),
        ];
        args.extend_from_slice(flags);
        let out = lab.orch(&args);
        assert!(out.status.success(), "lab up failed: {}", text(&out.stderr));
        lab
    }

    pub fn orch(&self, args: &[&str]) -> Output {
        Command::new(ORCH)
            .args(args)
            .env("ORCH_LAB_DIR", self.dir.path().join("state"))
            .env_remove("ORCH_INVENTORY")
            .output()
            .unwrap()
    }

    /// `orch -i LAB run --scenario SCENARIO --results RESULTS`.
    pub fn run(&self, scenario: &Path, results: &Path) -> Output {
        self.orch(&[
            "-i",
            self.inventory.to_str().unwrap(),
            "run",
            "--scenario",
            scenario.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
        ])
    }

    /// `orch -i LAB exec ARGS...`
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["-i", self.inventory.to_str().unwrap(), "exec"];
        all.extend_from_slice(args);
        self.orch(&all)
    }

    pub fn address(&self, i: usize) -> String {
        format!("{}.{i}.2", self.net)
    }

    pub fn netns(&self, i: usize) -> String {
        format!("orch-{}-h{i}", self.name)
    }

    /// Kills every process of lab host `i` (its sshd and all it started), as a crashed host.
    pub fn kill_host(&self, i: usize) {
        let pids = Command::new("ip")
            .args(["netns", "pids", &self.netns(i)])
            .output()
            .unwrap();
        for pid in text(&pids.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = self.orch(&["lab", "down", "--name", &self.name]);
        if !out.status.success() {
            eprintln!("lab down failed: {}", text(&out.stderr));
        }
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn lines_of<'a>(out: &'a str, host: &str) -> Vec<&'a str> {
    out.lines()
        .filter_map(|l| l.strip_prefix(host))
        .filter_map(|l| l.trim_start().strip_prefix("| "))
        .collect()
}

pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// A path inside the workspace.
pub fn workspace(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// `orch setup` with a ZooKeeper tarball made from Debian's package.
pub fn setup(lab: &Lab) {
    let tarball = lab.dir.path().join("zk.tar.gz");
    let made = Command::new(workspace("scripts/make-zk-tarball.sh"))
        .arg(&tarball)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    let inv = lab.inventory.to_str().unwrap();
    let out = lab.orch(&["-i", inv, "setup", "--zookeeper", tarball.to_str().unwrap()]);
    assert!(out.status.success(), "setup: {}", text(&out.stderr));
}

/// Processes on the lab's hosts that a run could have left: ZooKeeper, orch-node, ycsb.
pub fn leftovers(lab: &Lab) -> String {
    let inv = lab.inventory.to_str().unwrap();
    let out = lab.orch(&[
        "-i",
        inv,
        "exec",
        "--",
        "sh",
        "-c",
        "ps -eo pid,args | grep -E 'QuorumPeerMain|orch-node (traffic|ycsb|elect|delay)' | grep -v grep || true",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// Polls `done` every 100 ms until it holds; panics after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What /proc says about processes the tests started or must not touch (the procfs crate).
pub mod procs {
    use procfs::process::Process;

    /// (state, start time in clock ticks after boot) of `pid`: with the pid, a process's identity.
    pub fn stat(pid: u32) -> Option<(char, u64)> {
        let s = Process::new(pid as i32).ok()?.stat().ok()?;
        Some((s.state, s.starttime))
    }

    /// True while the process that had `start_time` still runs (a zombie does not: this
    /// machine's init may never reap it).
    pub fn running(pid: u32, start_time: u64) -> bool {
        stat(pid).is_some_and(|(state, start)| start == start_time && state != 'Z')
    }

    /// True if `pid` is pid 1 of a pid namespace below ours (a lab host's sshd).
    pub fn is_namespace_init(pid: u32) -> bool {
        Process::new(pid as i32)
            .and_then(|p| p.status())
            .ok()
            .and_then(|s| s.nspid)
            .is_some_and(|ids| ids.len() > 1 && ids.last() == Some(&1))
    }

    /// The command name of `pid`, empty if it is gone.
    pub fn comm(pid: u32) -> String {
        Process::new(pid as i32)
            .and_then(|p| p.stat())
            .map(|s| s.comm)
            .unwrap_or_default()
    }

    pub fn is_root() -> bool {
        procfs::process::Process::myself()
            .and_then(|p| p.status())
            .is_ok_and(|s| s.euid == 0)
    }
}
