//! Relay push (`orch setup --relay`) against real sshd processes on a local lab: the controller
//! sends each artifact to one seed, the other hosts fetch it from there, and a host that cannot
//! fetch or gets the wrong bytes is pushed to directly. Needs root, Debian's `zookeeper`
//! package (for the tarball) and the musl target, like tests/it/setup.rs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::{self, text, workspace, Lab};

/// The lab's inventory with the ZooKeeper tarball as its `zookeeper:` source.
fn inventory(lab: &Lab) -> PathBuf {
    let tarball = lab.dir.path().join("apache-zookeeper-3.8.0-bin.tar.gz");
    let made = Command::new(workspace("scripts/make-zk-tarball.sh"))
        .arg(&tarball)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    let path = lab.dir.path().join("relay.yaml");
    let base = std::fs::read_to_string(&lab.inventory).unwrap();
    let extra = format!("zookeeper:\n  tarball: {}\n", tarball.display());
    std::fs::write(&path, format!("{base}{extra}")).unwrap();
    path
}

fn setup(lab: &Lab, inv: &Path, args: &[&str]) -> (Output, String) {
    let mut all = vec!["-i", inv.to_str().unwrap(), "setup"];
    all.extend_from_slice(args);
    let out = lab.orch(&all);
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "setup {args:?} failed:\n{shown}");
    (out, shown)
}

/// The two byte counts of the summary line: from the controller, relayed between hosts.
fn bytes(out: &Output) -> (u64, u64) {
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("setup: "))
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"));
    let number_before = |marker: &str| -> u64 {
        line.split_once(marker).map_or(0, |(head, _)| {
            let words: Vec<&str> = head.split_whitespace().collect();
            words[words.len() - 4].parse().unwrap()
        })
    };
    (
        number_before(") sent by the controller"),
        number_before(") relayed between hosts"),
    )
}

/// Host `i`'s files as this machine sees them (the lab mounts them over the host's /root).
fn orch_dir(lab: &Lab, i: usize) -> PathBuf {
    lab.dir
        .path()
        .join(format!("state/{}/hosts/h{i}/home/.orch", lab.name))
}

/// Every file under host `i`'s artifacts/ hashes to the hash in its name, and no temporary file
/// of a fetch or upload is left; returns the names.
fn artifacts_intact(lab: &Lab, i: usize) -> Vec<String> {
    let dir = orch_dir(lab, i).join("artifacts");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "host{i}: leftover {name}");
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        let hash = orch::artifacts::sha256_bytes(&bytes);
        assert!(name.starts_with(&hash), "host{i}: {name} hashes to {hash}");
        names.push(name);
    }
    names.sort();
    names
}

/// The sizes of this build's orch-node and of ZooKeeper's plain tar, as hosts hold them: one
/// copy of each.
fn one_copy(lab: &Lab) -> u64 {
    let node = orch_dir(lab, 1).join("bin/orch-node");
    let tar = artifacts_intact(lab, 1)
        .into_iter()
        .find(|n| n.ends_with(".tar"))
        .unwrap();
    let tar = orch_dir(lab, 1).join("artifacts").join(tar);
    std::fs::metadata(node).unwrap().len() + std::fs::metadata(tar).unwrap().len()
}

/// No `orch-node relay-serve` is left running on any host.
fn no_server_left(lab: &Lab) {
    let out = lab.exec(&[
        "--",
        "sh",
        "-c",
        "ps -eo args | grep '[r]elay-serve' || true",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "", "a relay server is left");
}

#[test]
fn the_controller_sends_each_artifact_once_and_hosts_relay_it() {
    let _alone = util::alone();
    let lab = Lab::up("sa", "10.110", 5);
    let inv = inventory(&lab);
    let (out, shown) = setup(&lab, &inv, &[]);
    let (sent, relayed) = bytes(&out);
    let copy = one_copy(&lab);
    // orch-node goes gzipped, the tarball as it is: less than one copy, and only once.
    assert!(sent < copy, "sent {sent} >= one copy {copy}:\n{shown}");
    assert!(sent > copy / 2, "sent {sent}:\n{shown}");
    assert_eq!(relayed, 4 * copy, "{shown}");
    let table = text(&out.stdout);
    let relaying: Vec<&str> = table.lines().filter(|l| l.contains("relay 2")).collect();
    assert_eq!(relaying.len(), 4, "{table}");
    let first = artifacts_intact(&lab, 1);
    assert_eq!(first.len(), 2, "{first:?}");
    for i in 2..=5 {
        assert_eq!(artifacts_intact(&lab, i), first, "host{i}");
        let server = orch_dir(&lab, i).join("zookeeper/current/bin/zkServer.sh");
        assert!(server.is_file(), "host{i}: no ZooKeeper");
    }
    no_server_left(&lab);

    let (warm, shown) = setup(&lab, &inv, &[]);
    assert_eq!(bytes(&warm), (0, 0), "{shown}");
}

#[test]
fn a_host_that_cannot_reach_the_seed_is_pushed_to_directly() {
    let _alone = util::alone();
    let lab = Lab::up("sb", "10.111", 3);
    let inv = inventory(&lab);
    // host3 may talk SSH, nothing else over TCP: the seed's port is refused.
    let rules =
        "table inet orchtest {\n  chain out {\n    type filter hook output priority 0;\n    \
                 tcp sport 22 accept\n    tcp dport 22 accept\n    \
                 meta l4proto tcp reject with tcp reset\n  }\n}\n";
    let file = util::write(lab.dir.path(), "host3.nft", rules);
    let status = Command::new("ip")
        .args(["netns", "exec", &lab.netns(3), "nft", "-f"])
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success(), "nft in host3");
    let (out, shown) = setup(&lab, &inv, &["--relay", "on"]);
    let copy = one_copy(&lab);
    let (sent, relayed) = bytes(&out);
    assert_eq!(relayed, copy, "only host2 relays:\n{shown}");
    assert!(sent > copy, "host3 was pushed to as well:\n{shown}");
    assert!(
        shown
            .contains("host3: relay of orch-node from host1 did not happen (cannot reach the seed"),
        "{shown}"
    );
    let table = text(&out.stdout);
    let row = table.lines().find(|l| l.starts_with("host3 ")).unwrap();
    assert!(row.contains("push 2"), "{table}");
    let first = artifacts_intact(&lab, 1);
    for i in 2..=3 {
        assert_eq!(artifacts_intact(&lab, i), first, "host{i}");
    }
    no_server_left(&lab);
}

#[test]
fn bytes_with_the_wrong_hash_never_get_the_artifact_name() {
    let _alone = util::alone();
    let lab = Lab::up("sc", "10.112", 3);
    let inv = inventory(&lab);
    setup(&lab, &inv, &["--hosts", "host1"]);
    // host1 keeps a damaged tarball under the tarball's name; it has everything, so it is the
    // seed, and what it serves fails the other hosts' check.
    let tarball = artifacts_intact(&lab, 1)
        .into_iter()
        .find(|n| n.ends_with(".tar"))
        .unwrap();
    let path = orch_dir(&lab, 1).join("artifacts").join(&tarball);
    let mut bytes_on_seed = std::fs::read(&path).unwrap();
    bytes_on_seed[1000] ^= 0xff;
    std::fs::write(&path, &bytes_on_seed).unwrap();

    let (out, shown) = setup(&lab, &inv, &["--relay", "on"]);
    for host in ["host2", "host3"] {
        let mismatch = format!(
            "{host}: relay of apache-zookeeper-3.8.0-bin.tar from host1 failed (sha256 mismatch"
        );
        assert!(shown.contains(&mismatch), "{shown}");
    }
    let tarball_len = std::fs::metadata(lab.dir.path().join("apache-zookeeper-3.8.0-bin.tar.gz"))
        .unwrap()
        .len();
    let (sent, _) = bytes(&out);
    assert_eq!(
        sent,
        2 * tarball_len,
        "only the tarballs were pushed:\n{shown}"
    );
    let table = text(&out.stdout);
    for i in 2..=3 {
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("host{i} ")))
            .unwrap();
        assert!(row.contains("relay 1") && row.contains("push 1"), "{table}");
        let names = artifacts_intact(&lab, i);
        assert!(names.contains(&tarball), "host{i}: {names:?}");
        let server = orch_dir(&lab, i).join("zookeeper/current/bin/zkServer.sh");
        assert!(server.is_file(), "host{i}: no ZooKeeper");
    }
    no_server_left(&lab);
}
