//! `orch lab` against real network namespaces and sshd. These tests need root and
//! /usr/sbin/sshd; without them they say so and pass without checking anything.
//!
//! Every test has its own lab name and network, so they run in parallel and never meet a
//! developer's default lab (`orch`, 10.0).

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use orch::lab::{self, LabInfo, LabSpec};

use crate::util::{procs, root, turn, wait_until, Turn};

/// The state parent all tests share (the environment is per process). A fixed directory rather
/// than a fresh temporary one, so a lab left by a killed earlier run is found and removed.
/// Not under /tmp: the lab refuses that (each host mounts its own /tmp).
const LAB_ROOT: &str = "/var/tmp/orch-lab-tests";

/// Points `ORCH_LAB_DIR` at [`LAB_ROOT`] before any test touches a lab, and takes the test's
/// turn. The lab needs root and sshd: without them these tests fail (they are never skipped),
/// naming what is missing. The variable is this process's: the other modules' labs pass their
/// own to the `orch` they run.
#[track_caller]
fn setup() -> Turn {
    root::require("a lab is network namespaces with their own sshd");
    let turn = turn();
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        std::env::set_var("ORCH_LAB_DIR", LAB_ROOT);
        assert!(
            Path::new("/usr/sbin/sshd").exists(),
            "the lab tests need /usr/sbin/sshd: apt-get install openssh-server"
        );
    });
    turn
}

fn spec(name: &str, hosts: usize, net: [u8; 2]) -> LabSpec {
    LabSpec {
        name: name.into(),
        hosts,
        net,
        inventory_out: None,
        user: None,
        control_net: None,
        uplink: None,
    }
}

/// Takes the lab down when dropped, even when an assertion failed.
struct Lab(&'static str);

impl Lab {
    /// Removes what an earlier, killed run may have left, then brings the lab up.
    fn up(spec: LabSpec, name: &'static str) -> (Lab, LabInfo) {
        lab::down(name).expect("removing a lab left by an earlier run");
        let guard = Lab(name);
        let info = lab::up(&spec).unwrap_or_else(|e| panic!("lab up {name}: {e:#}"));
        (guard, info)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = lab::down(self.0) {
            eprintln!("cleaning up lab {}: {e:#}", self.0);
        }
        // The last test to finish removes the shared parent; it only goes once it is empty.
        let _ = fs::remove_dir(LAB_ROOT);
    }
}

/// Deletes a network namespace the test created, when dropped.
struct ForeignNetns(&'static str);

impl Drop for ForeignNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", self.0]).status();
    }
}

fn tcp_open(addr: Ipv4Addr) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((addr, 22)), Duration::from_millis(500)).is_ok()
}

/// Runs `command` on the lab host at `addr` with the lab's key and strict host key checking.
fn ssh(dir: &Path, addr: Ipv4Addr, command: &str) -> String {
    let out = Command::new("ssh")
        .arg("-F")
        .arg("/dev/null")
        .arg("-i")
        .arg(dir.join("id_ed25519"))
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            dir.join("known_hosts").display()
        ))
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .args(["-o", "ConnectTimeout=5"])
        .arg(format!("root@{addr}"))
        .arg(command)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh {addr} {command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(out.status.success(), "ip {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// (pid, start time) of every process in network namespace `ns`.
fn processes_in(ns: &str) -> Vec<(u32, u64)> {
    ip(&["netns", "pids", ns])
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter_map(|pid| Some((pid, procs::stat(pid)?.1)))
        .collect()
}

#[test]
fn hosts_are_isolated_and_down_removes_everything() {
    let _turn = setup();
    let (guard, info) = Lab::up(spec("lt1", 3, [10, 201]), "lt1");
    let dir = lab::state_dir("lt1");
    assert_eq!(info.inventory, dir.join("inventory.yaml"));
    assert_eq!(info.hosts.len(), 3);
    for (i, host) in info.hosts.iter().enumerate() {
        assert_eq!(host.name, format!("host{}", i + 1));
        assert_eq!(host.address, Ipv4Addr::new(10, 201, i as u8 + 1, 2));
        assert!(tcp_open(host.address), "{} port 22 is closed", host.name);
        let out = ssh(&dir, host.address, "echo ~; hostname -I; ls /root");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            ["/root", &format!("{} ", host.address)],
            "{}",
            host.name
        );
    }
    let (h1, h2) = (info.hosts[0].address, info.hosts[1].address);
    ssh(
        &dir,
        h1,
        "touch ~/only-on-host1 /tmp/only-on-host1; nohup sleep 600 >/dev/null 2>&1 &",
    );
    assert_eq!(
        ssh(&dir, h1, "ls /root /tmp"),
        "/root:\nonly-on-host1\n\n/tmp:\nonly-on-host1\n"
    );
    assert_eq!(ssh(&dir, h2, "ls -A /root /tmp"), "/root:\n\n/tmp:\n");
    assert_eq!(
        ssh(
            &dir,
            h1,
            "exec 3<>/dev/tcp/10.201.2.2/22 && echo host2 reachable"
        ),
        "host2 reachable\n"
    );
    assert_eq!(ssh(&dir, h1, "cat /proc/1/comm"), "sshd\n");
    assert!(ssh(&dir, h1, "ps -e -o comm=").contains("sleep"));
    assert!(
        !ssh(&dir, h2, "ps -e -o comm=").contains("sleep"),
        "host2 sees host1's processes"
    );

    let processes: Vec<(u32, u64)> = info
        .hosts
        .iter()
        .flat_map(|h| processes_in(&h.netns))
        .collect();
    assert!(
        processes.len() >= 7,
        "launcher and sshd per host, and the sleep: {processes:?}"
    );

    lab::down("lt1").unwrap();
    let namespaces = ip(&["netns", "list"]);
    assert!(!namespaces.contains("orch-lt1-"), "{namespaces}");
    let links = ip(&["-o", "link", "show"]);
    assert!(
        !links.contains("ol-lt1-") && !links.contains("olbr-lt1"),
        "{links}"
    );
    for (pid, start) in &processes {
        assert!(
            !procs::running(*pid, *start),
            "pid {pid} survived `lab down`"
        );
    }
    assert!(!dir.exists());
    assert_eq!(ip(&["-o", "route", "show", "root", "10.201.0.0/16"]), "");

    lab::down("lt1").unwrap();
    assert!(!lab::status("lt1").unwrap());
    drop(guard);
}

#[test]
fn status_notices_a_dead_sshd() {
    let _turn = setup();
    let (_guard, info) = Lab::up(spec("lt2", 2, [10, 202]), "lt2");
    assert!(lab::status("lt2").unwrap());
    let host2 = &info.hosts[1];
    let sshd = processes_in(&host2.netns)
        .into_iter()
        .map(|(pid, _)| pid)
        .find(|&pid| procs::is_namespace_init(pid))
        .expect("host2 has an sshd as pid 1 of its pid namespace");
    assert!(Command::new("kill")
        .arg(sshd.to_string())
        .status()
        .unwrap()
        .success());
    wait_until("host2's port 22 closes", Duration::from_secs(3), || {
        !tcp_open(host2.address)
    });
    assert!(!lab::status("lt2").unwrap());
    assert!(tcp_open(info.hosts[0].address), "host1 must be unaffected");
}

#[test]
fn up_refuses_a_lab_that_is_up_and_a_network_in_use() {
    let _turn = setup();
    let inventory = PathBuf::from(LAB_ROOT).join("lt3-inventory.yaml");
    let mut first = spec("lt3", 1, [10, 203]);
    first.inventory_out = Some(inventory.clone());
    let (guard, info) = Lab::up(first, "lt3");
    assert_eq!(info.inventory, inventory);
    let text = fs::read_to_string(&inventory).unwrap();
    assert!(text.starts_with("# generated by `orch lab up`"), "{text}");
    assert_eq!(
        text,
        fs::read_to_string(lab::state_dir("lt3").join("inventory.yaml")).unwrap()
    );

    let again = lab::up(&spec("lt3", 2, [10, 209])).unwrap_err();
    assert_eq!(
        format!("{again:#}"),
        "lab lt3 is already up (1 hosts); run `orch lab down --name lt3` first"
    );
    let same_net = lab::up(&spec("lt3b", 1, [10, 203])).unwrap_err();
    assert!(
        format!("{same_net:#}").contains("10.203.0.0/16 is already in use"),
        "{same_net:#}"
    );
    assert!(!lab::state_dir("lt3b").exists());
    assert!(
        lab::status("lt3").unwrap(),
        "the refused `up`s must not disturb the lab"
    );

    drop(guard);
    assert!(!inventory.exists(), "down removes the -i inventory");
}

#[test]
fn up_leaves_names_it_does_not_own_alone() {
    let _turn = setup();
    lab::down("lt4").unwrap();
    ip(&["netns", "add", "orch-lt4-h2"]);
    let _foreign = ForeignNetns("orch-lt4-h2");
    let err = lab::up(&spec("lt4", 2, [10, 204])).unwrap_err();
    assert!(
        format!("{err:#}").contains("network namespace orch-lt4-h2"),
        "{err:#}"
    );
    assert!(ip(&["netns", "list"]).contains("orch-lt4-h2"));
    assert!(!ip(&["netns", "list"]).contains("orch-lt4-h1"));
    assert!(!lab::state_dir("lt4").exists());
}

#[test]
fn invalid_specs_are_rejected() {
    let _turn = setup();
    for hosts in [0, 65] {
        let err = lab::up(&spec("lt5", hosts, [10, 205])).unwrap_err();
        assert!(
            format!("{err}").contains("--hosts must be between 1 and 64"),
            "{err}"
        );
    }
    for name in ["", "Lab", "abcdefg", "a-b", "a_b", "a b", "ü"] {
        let err = lab::up(&spec(name, 1, [10, 205])).unwrap_err();
        assert!(format!("{err}").contains("is invalid"), "{name:?}: {err}");
        assert!(lab::down(name).is_err(), "{name:?}");
        assert!(lab::status(name).is_err(), "{name:?}");
    }
    for net in [[127, 0], [0, 1], [224, 0]] {
        let err = lab::up(&spec("lt5", 1, net)).unwrap_err();
        assert!(
            format!("{err}").contains("cannot be used"),
            "{net:?}: {err}"
        );
    }
}
