//! `orch fetch-logs` against a real lab: one folder per host, a MANIFEST whose hashes verify,
//! hostile entries refused, nothing written outside the output directory, prune only after a
//! verified tarball. Needs root.

use std::path::Path;

use crate::util::{text, Lab};
use orch::logs;

/// Makes `~/.orch/runs/<run>/` on every host of the lab with a few log files, and a run's
/// ZooKeeper data directory (`r01/zk/data/`: myid, a transaction log).
fn make_run(lab: &Lab, run: &str) {
    let script = format!(
        "d=~/.orch/runs/{run}; mkdir -p \"$d/sub dir\" \"$d/r01/zk/data/version-2\" && \
         hostname -I > \"$d/addr.log\" && seq 1 20000 > \"$d/sub dir/big log.txt\" && \
         echo 1 > \"$d/r01/zk/data/myid\" && seq 1 1000 > \"$d/r01/zk/data/version-2/log.100000001\""
    );
    let out = lab.exec(&["--", "sh", "-c", &script]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn tar_names(path: &Path) -> Vec<String> {
    let f = std::fs::File::open(path).unwrap();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn fetch_gives_a_folder_per_host_and_a_verified_manifest() {
    let lab = Lab::up("logsa", "10.221", 3);
    make_run(&lab, "r1");
    let out_dir = lab.dir.path().join("out");
    let tarball = out_dir.join("logs.tar.gz");
    let inv = lab.inventory.to_str().unwrap();
    let out = lab.orch(&[
        "-i",
        inv,
        "fetch-logs",
        "--run",
        "r1",
        "-o",
        tarball.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let names = tar_names(&tarball);
    for i in 1..=3 {
        assert!(names.contains(&format!("host{i}/addr.log")), "{names:?}");
        assert!(
            names.contains(&format!("host{i}/sub dir/big log.txt")),
            "{names:?}"
        );
    }
    assert!(names.contains(&"MANIFEST".to_string()));
    // ZooKeeper's transaction logs stay on the hosts unless asked for; myid comes along.
    assert!(
        names.contains(&"host1/r01/zk/data/myid".to_string()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("version-2")), "{names:?}");
    let manifest = logs::read_manifest(&tarball).unwrap();
    assert_eq!(manifest.run_id, "r1");
    assert_eq!(manifest.excluded, [logs::ZK_DATA]);
    assert_eq!(manifest.files.len(), 9);
    assert_eq!(manifest.hosts.len(), 3);
    assert!(manifest.hosts.iter().all(|h| h.status == "ok"));
    logs::verify(&tarball, &manifest).unwrap();
    // The big file's hash is what the host has.
    let sum = lab.exec(&[
        "--hosts",
        "host2",
        "--",
        "sh",
        "-c",
        "sha256sum ~/.orch/runs/r1/'sub dir/big log.txt'",
    ]);
    let remote_sum = text(&sum.stdout)
        .split('|')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let entry = manifest
        .files
        .iter()
        .find(|f| f.path == "host2/sub dir/big log.txt")
        .unwrap();
    assert_eq!(entry.sha256, remote_sum);
    // Nothing but the tarball was left in the output directory.
    let left: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["logs.tar.gz"]);
    // Without --prune the remote logs stay.
    let still = lab.exec(&["--", "test", "-d", ".orch/runs/r1"]);
    assert!(still.status.success());

    let all = out_dir.join("all.tar.gz");
    let out = lab.orch(&[
        "-i",
        inv,
        "fetch-logs",
        "--run",
        "r1",
        "--include-zk-data",
        "-o",
        all.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let names = tar_names(&all);
    assert!(
        names.contains(&"host3/r01/zk/data/version-2/log.100000001".to_string()),
        "{names:?}"
    );
    assert!(logs::read_manifest(&all).unwrap().excluded.is_empty());
    // Pruning would delete what was left out: it needs --include-zk-data.
    let out = lab.orch(&["-i", inv, "fetch-logs", "--run", "r1", "--prune"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--include-zk-data"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn hostile_entries_are_refused_and_nothing_escapes() {
    let lab = Lab::up("logsb", "10.222", 2);
    make_run(&lab, "r2");
    let evil = lab.exec(&[
        "--hosts",
        "host2",
        "--",
        "sh",
        "-c",
        "cd ~/.orch/runs/r2 && ln -s /etc/passwd passwd-link && ln -s ../../../escape up-link && mkfifo pipe",
    ]);
    assert!(evil.status.success(), "{}", text(&evil.stderr));
    let out_dir = lab.dir.path().join("out");
    let tarball = out_dir.join("logs.tar.gz");
    let inv = lab.inventory.to_str().unwrap();
    let out = lab.orch(&[
        "-i",
        inv,
        "fetch-logs",
        "--run",
        "r2",
        "-o",
        tarball.to_str().unwrap(),
        "--prune",
        "--include-zk-data",
    ]);
    assert!(
        !out.status.success(),
        "refused entries must fail the command"
    );
    let stderr = text(&out.stderr);
    for bad in ["r2/passwd-link", "r2/up-link", "r2/pipe"] {
        assert!(
            stderr.contains(&format!("host2: refused `{bad}`")),
            "{stderr}"
        );
    }
    let names = tar_names(&tarball);
    assert!(
        !names
            .iter()
            .any(|n| n.contains("link") || n.contains("pipe")),
        "{names:?}"
    );
    let manifest = logs::read_manifest(&tarball).unwrap();
    assert_eq!(manifest.refused.len(), 3);
    logs::verify(&tarball, &manifest).unwrap();
    // Pruned where everything was clean, kept where something was refused.
    let h1 = lab.exec(&["--hosts", "host1", "--", "test", "-e", ".orch/runs/r2"]);
    assert!(!h1.status.success(), "host1's run should be pruned");
    let h2 = lab.exec(&["--hosts", "host2", "--", "test", "-d", ".orch/runs/r2"]);
    assert!(
        h2.status.success(),
        "host2's run must be kept for inspection"
    );
}

#[test]
fn a_host_without_the_run_is_reported_and_the_rest_fetched() {
    let lab = Lab::up("logsc", "10.223", 2);
    make_run(&lab, "r3");
    let gone = lab.exec(&["--hosts", "host1", "--", "rm", "-rf", ".orch/runs/r3"]);
    assert!(gone.status.success());
    let tarball = lab.dir.path().join("logs.tar.gz");
    let inv = lab.inventory.to_str().unwrap();
    let out = lab.orch(&[
        "-i",
        inv,
        "fetch-logs",
        "--run",
        "r3",
        "-o",
        tarball.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("host1: "),
        "{}",
        text(&out.stderr)
    );
    let manifest = logs::read_manifest(&tarball).unwrap();
    assert_eq!(manifest.files.len(), 3);
    assert!(manifest.files.iter().all(|f| f.path.starts_with("host2/")));
    assert_ne!(manifest.hosts[0].status, "ok");
}

#[test]
fn bad_run_ids_are_rejected_before_any_host_is_touched() {
    let lab = Lab::up("logsd", "10.224", 1);
    let inv = lab.inventory.to_str().unwrap();
    let out = lab.orch(&["-i", inv, "fetch-logs", "--run", "../etc"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("run id `../etc`"),
        "{}",
        text(&out.stderr)
    );
}
