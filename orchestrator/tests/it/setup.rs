//! `orch setup` against real sshd processes on a local lab (network namespaces). Needs root,
//! Debian's `zookeeper` package (the tests build a ZooKeeper tarball from it with
//! scripts/make-zk-tarball.sh), `qemu-user-static` and the musl targets (see .ci/run).
//!
//! Every test makes its own lab and tears it down when it ends, also when an assertion fails.
//! The first test to run builds orch-node (minutes); the others find it in the build cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{text, Lab, ORCH};

/// What these tests do with a lab beyond `util::Lab`.
trait SetupLab {
    /// `orch ARGS...` for this lab, not yet started.
    fn command(&self, args: &[&str]) -> Command;
    /// Writes an inventory: the lab's plus `extra` (top-level sections), returns its path.
    fn inventory_with(&self, extra: &str) -> PathBuf;
    /// `orch -i INVENTORY setup ARGS...`
    fn setup(&self, inventory: &Path, args: &[&str]) -> Output;
    /// `orch exec --hosts HOST -- sh -c SCRIPT`: the host's stdout lines.
    fn sh(&self, host: &str, script: &str) -> Vec<String>;
    /// Host `i`'s orch directory, as seen from this machine (the lab mounts it over /root).
    fn orch_dir(&self, i: usize) -> PathBuf;
    /// Runs `argv` in host `i`'s mount namespace (where its sshd and sessions live).
    fn in_mounts_of(&self, i: usize, argv: &[&str]);
    /// Host `i`'s end of the bridge, where traffic to it can be shaped.
    fn veth(&self, i: usize) -> String;
}

impl SetupLab for Lab {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(ORCH);
        cmd.args(args)
            .env("ORCH_LAB_DIR", self.dir.path().join("state"))
            .env_remove("ORCH_INVENTORY");
        cmd
    }

    fn inventory_with(&self, extra: &str) -> PathBuf {
        let path = self.dir.path().join("setup.yaml");
        let lab = std::fs::read_to_string(&self.inventory).unwrap();
        std::fs::write(&path, format!("{lab}{extra}")).unwrap();
        path
    }

    fn setup(&self, inventory: &Path, args: &[&str]) -> Output {
        let mut all = vec!["-i", inventory.to_str().unwrap(), "setup"];
        all.extend_from_slice(args);
        self.orch(&all)
    }

    fn sh(&self, host: &str, script: &str) -> Vec<String> {
        let out = self.exec(&["--hosts", host, "--", "sh", "-c", script]);
        assert!(
            out.status.success(),
            "{host}: `{script}` failed: {}",
            text(&out.stderr)
        );
        let prefix = format!("{host} | ");
        text(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }

    fn orch_dir(&self, i: usize) -> PathBuf {
        self.dir
            .path()
            .join(format!("state/{}/hosts/h{i}/home/.orch", self.name))
    }

    fn in_mounts_of(&self, i: usize, argv: &[&str]) {
        let pids = Command::new("ip")
            .args(["netns", "pids", &self.netns(i)])
            .output()
            .unwrap();
        let pid = text(&pids.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_else(|| panic!("no process in {}", self.netns(i)))
            .to_string();
        let status = Command::new("nsenter")
            .args(["-t", &pid, "-m", "--"])
            .args(argv)
            .status()
            .unwrap();
        assert!(status.success(), "nsenter {argv:?} failed");
    }

    fn veth(&self, i: usize) -> String {
        format!("ol-{}-{i}", self.name)
    }
}

/// A ZooKeeper tarball in Apache's layout, made from Debian's package.
fn zk_tarball(dir: &Path) -> PathBuf {
    let out = dir.join("apache-zookeeper-3.8.0-bin.tar.gz");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-zk-tarball.sh");
    let made = Command::new(script).arg(&out).output().unwrap();
    assert!(
        made.status.success(),
        "make-zk-tarball.sh failed: {}",
        text(&made.stderr)
    );
    out
}

/// Asserts success and returns stdout and stderr together, for messages.
fn ok(out: &Output, what: &str) -> String {
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{what} failed:\n{all}");
    all
}

/// The summary line's byte count: `setup: 5 hosts, 5 ok, 0 failed; 123 bytes (...) sent`.
fn bytes_sent(out: &Output) -> u64 {
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("setup: "))
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"));
    let (_, rest) = line.split_once("failed; ").unwrap();
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn cold_setup_installs_everything_and_a_rerun_only_verifies() {
    let lab = Lab::up("seta", "10.225", 5);
    let zk = zk_tarball(lab.dir.path());
    let inv = lab.inventory_with(&format!("zookeeper:\n  tarball: {}\n", zk.display()));

    let dry = lab.setup(&inv, &["--dry-run"]);
    let plan = ok(&dry, "setup --dry-run");
    for i in 1..=5 {
        let host = format!("host{i}  ");
        let push = format!("{host}push    apache-zookeeper-3.8.0-bin.tar (9.3 MB");
        assert!(plan.contains(&push), "{plan}");
        assert!(
            plan.contains(&format!("{host}write   conf/zoo.cfg (new)")),
            "{plan}"
        );
        assert!(
            !lab.orch_dir(i).exists(),
            "--dry-run created host{i}'s orch dir"
        );
    }
    assert!(plan.contains("nothing was changed"), "{plan}");

    let cold = lab.setup(&inv, &[]);
    let shown = ok(&cold, "cold setup");
    assert!(shown.contains("5 hosts, 5 ok, 0 failed"), "{shown}");
    // One copy leaves the controller (orch-node gzipped); the hosts relay it to each other.
    assert!(bytes_sent(&cold) > 8_000_000, "{shown}");
    assert!(shown.contains("relayed between hosts"), "{shown}");

    let servers: Vec<String> = (1..=5)
        .map(|j| format!("server.{j}=10.225.{j}.2:4888:5888"))
        .collect();
    for i in 1..=5 {
        let host = format!("host{i}");
        let version = lab.sh(&host, "~/.orch/bin/orch-node --version");
        assert_eq!(version.len(), 1, "{host}: {version:?}");
        assert!(version[0].starts_with("orch-node "), "{host}: {version:?}");

        let dir = lab.orch_dir(i);
        let zoo = std::fs::read_to_string(dir.join("conf/zoo.cfg")).unwrap();
        let listed: Vec<&str> = zoo.lines().filter(|l| l.starts_with("server.")).collect();
        assert_eq!(listed, servers, "{host}'s zoo.cfg:\n{zoo}");
        assert!(zoo.contains("4lw.commands.whitelist=srvr, stat, ruok, mntr"));
        assert!(zoo.contains("dataDir=/root/.orch/zk-data\n"), "{zoo}");
        let myid = std::fs::read_to_string(dir.join("zk-data/myid")).unwrap();
        assert_eq!(myid, format!("{i}\n"), "{host}");
        let server = dir.join("zookeeper/current/bin/zkServer.sh");
        assert!(server.is_file(), "{host}: {} missing", server.display());
        let unpacked = dir.join("zookeeper/apache-zookeeper-3.8.0-bin/lib/zookeeper.jar");
        assert!(unpacked.is_file(), "{host}: {} missing", unpacked.display());
    }

    // The rendered replica configuration is one orch-node accepts: the replica runs until the
    // time limit kills it (status 124) instead of exiting on a configuration error.
    let status = lab.sh(
        "host2",
        "timeout 2 ~/.orch/bin/orch-node elect --config ~/.orch/conf/replica.yaml --id 1 \
         >/dev/null 2>&1; echo $?",
    );
    assert_eq!(status, ["124"]);

    let warm = lab.setup(&inv, &[]);
    let shown = ok(&warm, "second setup");
    assert_eq!(bytes_sent(&warm), 0, "{shown}");
    let table = text(&warm.stdout);
    for i in 1..=5 {
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("host{i} ")))
            .unwrap_or_else(|| panic!("no row for host{i}:\n{table}"));
        assert!(row.ends_with("up to date"), "{row}");
    }
    let again = ok(&lab.setup(&inv, &["--dry-run"]), "setup --dry-run");
    assert!(again.contains("host3  up to date"), "{again}");
}

#[test]
fn an_interrupted_upload_leaves_nothing_and_the_next_setup_completes_it() {
    let lab = Lab::up("setb", "10.226", 1);
    let zk = zk_tarball(lab.dir.path());
    let inv = lab.inventory_with(&format!("zookeeper:\n  tarball: {}\n", zk.display()));
    // Set up once and empty the host again: the build is done and cached, so the slow link
    // below carries nothing but the uploads.
    ok(&lab.setup(&inv, &[]), "first setup");
    std::fs::remove_dir_all(lab.orch_dir(1)).unwrap();
    let tc = |args: &[&str]| {
        let status = Command::new("tc").args(args).status().unwrap();
        assert!(status.success(), "tc {args:?} failed");
    };
    let veth = lab.veth(1);
    tc(&[
        "qdisc", "add", "dev", &veth, "root", "tbf", "rate", "2mbit", "burst", "32kbit", "latency",
        "1s",
    ]);

    let mut setup = lab
        .command(&["-i", inv.to_str().unwrap(), "setup"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let artifacts = lab.orch_dir(1).join("artifacts");
    let started = Instant::now();
    let partial = loop {
        let growing = std::fs::read_dir(&artifacts)
            .into_iter()
            .flatten()
            .flatten()
            .find(|e| {
                e.file_name().to_string_lossy().starts_with(".orch-upload.")
                    && e.metadata().is_ok_and(|m| m.len() > 200_000)
            });
        if let Some(entry) = growing {
            break entry.path();
        }
        if let Some(status) = setup.try_wait().unwrap() {
            panic!("setup ended ({status}) before an upload was seen halfway");
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "no upload started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    setup.kill().unwrap();
    setup.wait().unwrap();
    let size = std::fs::metadata(&partial).map_or(0, |m| m.len());
    assert!(
        size < 3_000_000,
        "the upload was not interrupted halfway ({size} bytes)"
    );

    // Only hidden temporary names (`.orch-upload.<pid>`) may be left.
    let finished: Vec<String> = std::fs::read_dir(&artifacts)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(
        finished,
        Vec::<String>::new(),
        "a file exists under a final name"
    );
    assert!(!lab.orch_dir(1).join("bin/orch-node").exists());

    tc(&["qdisc", "del", "dev", &veth, "root"]);
    let again = lab.setup(&inv, &[]);
    ok(&again, "setup after the interruption");
    assert!(bytes_sent(&again) > 8_000_000);
    for entry in std::fs::read_dir(&artifacts).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let (hash, _) = orch::artifacts::sha256_file(&entry.path()).unwrap();
        assert!(name.starts_with(&format!("{hash}-")), "{name} holds {hash}");
    }
    assert_eq!(
        lab.sh(
            "host1",
            "~/.orch/bin/orch-node --version >/dev/null && echo runs"
        ),
        ["runs"]
    );
}

#[test]
fn a_zookeeper_host_without_java_gets_a_clear_error_and_the_others_carry_on() {
    let lab = Lab::up("setc", "10.227", 2);
    let zk = zk_tarball(lab.dir.path());
    let inv = lab.inventory_with(&format!("zookeeper:\n  tarball: {}\n", zk.display()));
    lab.in_mounts_of(2, &["mount", "-t", "tmpfs", "no-java", "/usr/lib/jvm"]);

    let out = lab.setup(&inv, &[]);
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "setup succeeded without Java:\n{stderr}"
    );
    assert!(
        stderr.contains(
            "host2: no `java` on the PATH, and this host has the zookeeper role; install Java \
             on it (sudo apt-get install -y default-jre-headless), or set `java: install` in \
             the inventory and orch setup will"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("2 hosts, 1 ok, 1 failed"), "{stderr}");
    assert!(lab.orch_dir(1).join("conf/zoo.cfg").is_file());
    assert!(!lab.orch_dir(2).exists(), "the failed host was changed");
}

#[test]
fn an_aarch64_host_gets_an_aarch64_binary_that_runs_under_qemu() {
    let lab = Lab::up("setd", "10.228", 2);
    let zk = zk_tarball(lab.dir.path());
    let inv = lab.inventory_with(&format!("zookeeper:\n  tarball: {}\n", zk.display()));
    // host2 says it is an aarch64 machine.
    let uname = lab.dir.path().join("uname");
    std::fs::write(
        &uname,
        "#!/bin/sh\ncase \"$1\" in -m) echo aarch64 ;; *) echo Linux ;; esac\n",
    )
    .unwrap();
    let chmod = Command::new("chmod")
        .arg("755")
        .arg(&uname)
        .status()
        .unwrap();
    assert!(chmod.success());
    lab.in_mounts_of(
        2,
        &["mount", "--bind", uname.to_str().unwrap(), "/usr/bin/uname"],
    );

    let out = lab.setup(&inv, &[]);
    let shown = ok(&out, "setup with an aarch64 host");
    let table = text(&out.stdout);
    assert!(
        table.lines().any(|l| l.starts_with("host2  aarch64")),
        "{shown}"
    );
    assert!(
        table.lines().any(|l| l.starts_with("host1  x86_64")),
        "{shown}"
    );

    let elf_machine = |i: usize| {
        let bytes = std::fs::read(lab.orch_dir(i).join("bin/orch-node")).unwrap();
        u16::from_le_bytes([bytes[18], bytes[19]])
    };
    assert_eq!(elf_machine(1), 62, "host1 should get x86-64");
    assert_eq!(elf_machine(2), 183, "host2 should get aarch64");
    let version = lab.sh(
        "host2",
        "qemu-aarch64-static ~/.orch/bin/orch-node --version",
    );
    assert_eq!(version.len(), 1, "{version:?}");
    assert!(version[0].starts_with("orch-node "), "{version:?}");
}

#[test]
fn a_template_named_in_the_inventory_replaces_orchs_and_edits_are_rewritten() {
    let lab = Lab::up("sete", "10.229", 2);
    let zk = zk_tarball(lab.dir.path());
    let template = lab.dir.path().join("my-zoo.cfg.tera");
    std::fs::write(
        &template,
        "# mine\n{% for s in zookeeper.servers %}server.{{ s.id }}={{ s.ip }}:2888:3888\n{% endfor %}",
    )
    .unwrap();
    let inv = lab.inventory_with(&format!(
        "zookeeper:\n  tarball: {}\ntemplates:\n  zoo.cfg: my-zoo.cfg.tera\n",
        zk.display()
    ));
    ok(&lab.setup(&inv, &[]), "setup with a user template");
    let zoo = lab.orch_dir(2).join("conf/zoo.cfg");
    assert_eq!(
        std::fs::read_to_string(&zoo).unwrap(),
        "# mine\nserver.1=10.229.1.2:2888:3888\nserver.2=10.229.2.2:2888:3888\n"
    );

    std::fs::write(&template, "# changed\n").unwrap();
    std::fs::write(lab.orch_dir(1).join("zk-data/myid"), "7\n").unwrap();
    let out = lab.setup(&inv, &[]);
    let shown = ok(&out, "setup after editing the template");
    assert_eq!(bytes_sent(&out), 0, "{shown}");
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l.starts_with("host1") && l.ends_with("write 2")),
        "{shown}"
    );
    assert_eq!(std::fs::read_to_string(&zoo).unwrap(), "# changed\n");
    assert_eq!(
        std::fs::read_to_string(lab.orch_dir(1).join("zk-data/myid")).unwrap(),
        "1\n"
    );
}

#[test]
fn an_existing_zookeeper_installation_is_linked_not_pushed() {
    let lab = Lab::up("setf", "10.230", 1);
    let existing = lab.dir.path().join("zk-install");
    std::fs::create_dir_all(existing.join("bin")).unwrap();
    std::fs::write(existing.join("bin/zkServer.sh"), "#!/bin/sh\n").unwrap();
    let inv = lab.inventory_with(&format!(
        "zookeeper:\n  install_dir: {}\n",
        existing.display()
    ));
    let out = lab.setup(&inv, &[]);
    let shown = ok(&out, "setup with install_dir");
    assert!(
        bytes_sent(&out) < 8_000_000,
        "the tarball was pushed:\n{shown}"
    );
    let link = std::fs::read_link(lab.orch_dir(1).join("zookeeper/current")).unwrap();
    assert_eq!(link, existing);

    let missing = lab.inventory_with("zookeeper:\n  install_dir: /nonexistent/zk\n");
    let out = lab.setup(&missing, &[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("host1: no ZooKeeper at /nonexistent/zk (zookeeper.install_dir)"),
        "{stderr}"
    );
}

#[test]
fn a_missing_toolchain_piece_is_one_error_with_the_command_that_installs_it() {
    let lab = Lab::up("setg", "10.238", 1);
    let zk = zk_tarball(lab.dir.path());
    let inv = lab.inventory_with(&format!("zookeeper:\n  tarball: {}\n", zk.display()));
    // A toolchain whose sysroot has no musl standard library and no rust-lld, and a build
    // directory without a previous build.
    let rustc = lab.dir.path().join("rustc");
    let sysroot = lab.dir.path().join("sysroot");
    std::fs::create_dir_all(sysroot.join("lib/rustlib")).unwrap();
    std::fs::write(&rustc, format!("#!/bin/sh\necho {}\n", sysroot.display())).unwrap();
    let chmod = Command::new("chmod")
        .arg("755")
        .arg(&rustc)
        .status()
        .unwrap();
    assert!(chmod.success());
    let out = lab
        .command(&["-i", inv.to_str().unwrap(), "setup"])
        .env("RUSTC", &rustc)
        .env("CARGO_TARGET_DIR", lab.dir.path().join("target"))
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
    assert!(
        stderr.contains("Install what is missing with:\n\n    rustup target add x86_64-unknown-linux-musl\n    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh\n"),
        "{stderr}"
    );
    assert!(!lab.orch_dir(1).exists(), "a host was changed");
}
