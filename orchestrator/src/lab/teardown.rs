//! Removing a lab: exactly what its state lists, continuing past failures. What could not be
//! removed stays in the state, so running `down` again retries just that.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::cmd::{ip, run_with_timeout};
use super::inventory;
use super::net::{existing_links, existing_netns, netns_pids};
use super::process::{terminate, ProcId};
use super::state::State;
use super::user;

/// Removes everything `state` lists, then the state directory `dir`. Returns one message per
/// resource that could not be removed (the state directory is then kept).
pub(super) fn teardown(state: &mut State, dir: &Path) -> Vec<String> {
    let mut failures = Vec::new();
    exit_control_masters(&dir.join("ssh"));
    stop_processes(state, &mut failures);
    remove_links(&mut state.veths, &mut failures);
    remove_namespaces(&mut state.netns, &mut failures);
    remove_uplink(&mut state.uplink, &mut failures);
    remove_bridge(&mut state.bridge, &mut failures);
    remove_bridge(&mut state.control_bridge, &mut failures);
    if let Some(u) = &mut state.user {
        user::remove(u, &mut failures);
        if u.sudoers.is_none() && !u.created && !u.home_created {
            state.user = None;
        }
    }
    remove_external_files(&mut state.external_files, &mut failures);
    if failures.is_empty() {
        match fs::remove_dir_all(dir) {
            Ok(()) => remove_empty_parents(dir),
            Err(e) => failures.push(format!("cannot remove {}: {e}", dir.display())),
        }
    } else if let Err(e) = state.save(dir) {
        failures.push(format!("{e:#}"));
    }
    failures
}

/// Removes the default parents (`/var/lib/orch/lab`, `/var/lib/orch`) that `up` created, if no
/// other lab or file lives there: `remove_dir` only ever removes an empty directory.
fn remove_empty_parents(dir: &Path) {
    let default = Path::new(super::DEFAULT_PARENT);
    if dir.parent() == Some(default) {
        for d in default.ancestors().take(2) {
            if fs::remove_dir(d).is_err() {
                break;
            }
        }
    }
}

/// Asks every SSH master connection under `control_dir` to exit (`ssh -O exit`), 2 s each.
fn exit_control_masters(control_dir: &Path) {
    for socket in master_sockets(control_dir) {
        let mut cmd = Command::new("ssh");
        cmd.args(["-O", "exit", "-S"]).arg(&socket).arg("x");
        run_with_timeout(&mut cmd, Duration::from_secs(2));
    }
}

/// Sockets named `master` anywhere below `dir`.
fn master_sockets(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            found.extend(master_sockets(&entry.path()));
        } else if kind.is_socket() && entry.file_name() == "master" {
            found.push(entry.path());
        }
    }
    found
}

/// Stops the recorded processes (if their pid still names them) and anything else still running
/// in the lab's network namespaces.
fn stop_processes(state: &mut State, failures: &mut Vec<String>) {
    let mut targets: BTreeSet<ProcId> = state.processes.iter().map(|p| p.proc).collect();
    let namespaces = existing_netns().unwrap_or_else(|e| {
        failures.push(format!("cannot list network namespaces: {e:#}"));
        BTreeSet::new()
    });
    for ns in state.netns.iter().filter(|ns| namespaces.contains(*ns)) {
        match netns_pids(ns) {
            Ok(pids) => targets.extend(pids.into_iter().filter_map(ProcId::of)),
            Err(e) => failures.push(format!("cannot list the processes in {ns}: {e:#}")),
        }
    }
    let targets: Vec<ProcId> = targets.into_iter().collect();
    let survivors = terminate(&targets);
    for p in &survivors {
        failures.push(format!("process {} ({}) survived SIGKILL", p.pid, p.comm()));
    }
    state.processes.retain(|p| survivors.contains(&p.proc));
}

/// Deletes the recorded veths that still exist in the root namespace.
fn remove_links(veths: &mut Vec<String>, failures: &mut Vec<String>) {
    let before = existing_links();
    veths.retain(|veth| {
        let exists = before.as_ref().map_or(true, |links| links.contains(veth));
        exists && !delete_link(veth, failures)
    });
}

/// Deletes the bridge if it still exists.
/// The `--uplink` limit (the bridge takes it along when it goes; this covers a bridge that
/// could not be removed).
fn remove_uplink(limit: &mut Option<super::uplink::Uplink>, failures: &mut Vec<String>) {
    if let Some(u) = limit {
        match super::uplink::unshape(u) {
            Ok(()) => *limit = None,
            Err(e) => failures.push(format!("the --uplink limit on {}: {e:#}", u.device)),
        }
    }
}

fn remove_bridge(bridge: &mut Option<String>, failures: &mut Vec<String>) {
    let Some(name) = bridge.as_deref() else {
        return;
    };
    let exists = existing_links().map_or(true, |links| links.contains(name));
    if !exists || delete_link(name, failures) {
        *bridge = None;
    }
}

/// `ip link del NAME`; true if the link is gone afterwards (deleting one end of a veth pair can
/// race with its namespace going away).
fn delete_link(name: &str, failures: &mut Vec<String>) -> bool {
    match ip(&["link", "del", name]) {
        Ok(_) => true,
        Err(_) if existing_links().is_ok_and(|links| !links.contains(name)) => true,
        Err(e) => {
            failures.push(format!("{e:#}"));
            false
        }
    }
}

/// Deletes the recorded network namespaces that still exist.
fn remove_namespaces(netns: &mut Vec<String>, failures: &mut Vec<String>) {
    let before = existing_netns();
    netns.retain(|ns| {
        if before.as_ref().is_ok_and(|all| !all.contains(ns)) {
            return false;
        }
        match ip(&["netns", "del", ns]) {
            Ok(_) => false,
            Err(e) => {
                failures.push(format!("{e:#}"));
                true
            }
        }
    });
}

/// Deletes the inventories written outside the state directory, unless someone replaced them
/// (then they are left in place with a note).
fn remove_external_files(files: &mut Vec<PathBuf>, failures: &mut Vec<String>) {
    files.retain(|file| {
        if !file.exists() {
            return false;
        }
        if !inventory::is_generated(file) {
            eprintln!(
                "note: left {} in place: it no longer starts with the generated header",
                file.display()
            );
            return false;
        }
        match fs::remove_file(file) {
            Ok(()) => false,
            Err(e) => {
                failures.push(format!("cannot remove {}: {e}", file.display()));
                true
            }
        }
    });
}
