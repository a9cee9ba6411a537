//! What the test modules share: a local lab for one test driven through the `orch` binary
//! (needs root), the binaries, helpers for their output, and orch-testkit's waits, /proc and
//! turns.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub use orch_testkit::{alone, procs, root, turn, wait_until, Turn};

/// The `orch` binary under test.
pub const ORCH: &str = env!("CARGO_BIN_EXE_orch");

/// A lab made for one test; `Drop` runs `orch lab down`. Making one declares the test
/// root-only and takes the turn of the calling file (see orch_testkit::turn).
pub struct Lab {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub inventory: PathBuf,
    pub net: String,
    _turn: Turn,
}

impl Lab {
    #[track_caller]
    pub fn up(name: &str, net: &str, hosts: usize) -> Lab {
        Lab::up_with(name, net, hosts, &[])
    }

    /// `orch lab up` with more flags (`--user NAME`, `--control-net C.D`).
    #[track_caller]
    pub fn up_with(name: &str, net: &str, hosts: usize, flags: &[&str]) -> Lab {
        let lab = Lab::prepare(name, net);
        let mut args = lab.up_args(hosts);
        args.extend(flags.iter().map(|f| f.to_string()));
        let out = lab.orch(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.status.success(), "lab up failed: {}", text(&out.stderr));
        lab
    }

    /// A lab not yet up: its state directory and inventory path, the test's turn.
    #[track_caller]
    pub fn prepare(name: &str, net: &str) -> Lab {
        root::require("a lab is network namespaces with their own sshd");
        let turn = turn();
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let inventory = dir.path().join("lab.yaml");
        Lab {
            name: name.to_string(),
            dir,
            inventory,
            net: net.to_string(),
            _turn: turn,
        }
    }

    /// The arguments of `orch lab up` for this lab with `hosts` hosts.
    pub fn up_args(&self, hosts: usize) -> Vec<String> {
        let hosts = hosts.to_string();
        let inventory = self.inventory.to_str().unwrap();
        [
            "lab", "up", "--hosts", &hosts, "--name", &self.name, "--net", &self.net,
        ]
        .into_iter()
        .chain(["-i", inventory])
        .map(String::from)
        .collect()
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

    /// `orch -i LAB run --scenario SCENARIO --results RESULTS` in the background, stderr piped,
    /// for tests that interrupt it.
    pub fn spawn_run(&self, scenario: &Path, results: &Path) -> Child {
        Command::new(ORCH)
            .args(["-i", self.inventory.to_str().unwrap(), "run", "--scenario"])
            .arg(scenario)
            .arg("--results")
            .arg(results)
            .env("ORCH_LAB_DIR", self.dir.path().join("state"))
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Writes `text` as `<name>.yaml` in the lab's folder and runs it, which must succeed; the
    /// scenario's latest results directory.
    pub fn run_ok(&self, name: &str, text: &str) -> PathBuf {
        let scenario = write(self.dir.path(), &format!("{name}.yaml"), text);
        let results = self.dir.path().join("results");
        let out = self.run(&scenario, &results);
        assert!(out.status.success(), "{}", crate::util::text(&out.stderr));
        results.join(name).join("latest")
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

/// Runs `f` on a thread that has entered network namespace `ns`; sockets it creates stay there.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
            // SAFETY: setns on a valid namespace fd; it affects only this thread.
            let rc =
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    })
}

/// Builds `orch-node` into the target directory of this test and returns its path.
pub fn node_binary() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "-p", "orch-node", "--bin", "orch-node"])
        .current_dir(workspace)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building orch-node: {}",
        text(&out.stderr)
    );
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("orch-node");
    assert!(bin.exists(), "no {}", bin.display());
    bin
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

/// Lab hosts as `orch run` holds them for the delay API: an open connection per host, its
/// orch directory with `~` expanded, and its facts (`orch check`).
pub struct DelayHosts {
    hosts: Vec<orch::inventory::Host>,
    conns: Vec<orch::remote::Conn>,
    dirs: Vec<String>,
    facts: Vec<orch::facts::Facts>,
}

impl DelayHosts {
    pub async fn connect(hosts: &[&orch::inventory::Host]) -> DelayHosts {
        let (facts, all) = orch::facts::check(hosts, 8).await;
        assert!(all, "orch check failed");
        let mut d = DelayHosts {
            hosts: Vec::new(),
            conns: Vec::new(),
            dirs: Vec::new(),
            facts: facts.into_iter().map(|(_, f)| f).collect(),
        };
        for h in hosts {
            let conn = orch::remote::Conn::open(h).await.unwrap();
            let cmd = orch::remote::Cmd::script("printf %s \"$HOME\"");
            let out = conn.run(&cmd).await.unwrap().stdout;
            let home = out.trim_end_matches('\n');
            let dir = orch::setup::absolute(&h.orch_dir, home);
            d.hosts.push((*h).clone());
            d.conns.push(conn);
            d.dirs.push(dir);
        }
        d
    }

    pub fn targets(&self) -> Vec<orch::delay::Target<'_>> {
        (0..self.hosts.len())
            .map(|i| orch::delay::Target {
                host: &self.hosts[i],
                conn: &self.conns[i],
                orch_dir: &self.dirs[i],
                facts: &self.facts[i],
            })
            .collect()
    }

    pub fn conns(&self) -> Vec<&orch::remote::Conn> {
        self.conns.iter().collect()
    }

    /// Each host's name and the facts `connect` probed.
    pub fn facts(&self) -> impl Iterator<Item = (&str, &orch::facts::Facts)> {
        self.hosts.iter().map(|h| h.name.as_str()).zip(&self.facts)
    }
}
