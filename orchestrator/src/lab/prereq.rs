//! What the machine needs before a lab can be built: root, iproute2, util-linux, OpenSSH.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Result};

use super::cmd::{describe, find_in_path, run};
use super::net::port_open;
use super::sshd::SSHD;

/// Fails unless the effective uid is 0: namespaces, links and mounts need it.
pub(super) fn require_root() -> Result<()> {
    if effective_uid() != Some(0) {
        bail!("orch lab needs root (it creates network namespaces); run it with sudo");
    }
    Ok(())
}

/// The effective uid, from the second field of the `Uid:` line of `/proc/self/status`.
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Fails naming the Debian package to install for the first missing tool.
pub(super) fn require_tools() -> Result<()> {
    let tools = [
        ("ip", "iproute2"),
        ("ssh-keygen", "openssh-client"),
        ("unshare", "util-linux"),
        ("setsid", "util-linux"),
        ("mount", "mount"),
        ("kill", "procps"),
    ];
    for (tool, package) in tools {
        if find_in_path(tool).is_none() {
            bail!("`{tool}` was not found in PATH; install it with `apt-get install -y {package}`");
        }
    }
    Ok(())
}

/// Installs openssh-server if sshd is missing. If the package starts the system's sshd and it
/// was not running before, stops it again: the lab runs its own sshds only.
pub(super) fn ensure_sshd() -> Result<()> {
    if Path::new(SSHD).exists() {
        return Ok(());
    }
    let manual =
        "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y openssh-server";
    if find_in_path("apt-get").is_none() {
        bail!(
            "{SSHD} is missing and apt-get is not available; install the OpenSSH server yourself"
        );
    }
    let was_running = system_sshd_running();
    eprintln!("{SSHD} is missing; installing openssh-server");
    let installed = run(Command::new("apt-get")
        .args(["install", "-y", "openssh-server"])
        .env("DEBIAN_FRONTEND", "noninteractive"));
    if let Err(err) = installed {
        bail!("installing openssh-server failed: {err:#}\nrun `{manual}` as root, then try again");
    }
    if !was_running && system_sshd_running() {
        stop_system_sshd();
    }
    if !Path::new(SSHD).exists() {
        bail!("openssh-server is installed but {SSHD} is missing; run `{manual}` as root");
    }
    Ok(())
}

fn booted_with_systemd() -> bool {
    Path::new("/run/systemd/system").exists()
}

/// True if the system's ssh service is active or anything answers on port 22 of the root
/// namespace.
fn system_sshd_running() -> bool {
    let service_active = booted_with_systemd()
        && Command::new("systemctl")
            .args(["is-active", "--quiet", "ssh"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    service_active
        || port_open(
            SocketAddr::from(([127, 0, 0, 1], 22)),
            Duration::from_millis(500),
        )
}

/// Stops the ssh service the package installation started; only warns on failure, since the lab
/// works either way.
fn stop_system_sshd() {
    let mut cmd = if booted_with_systemd() {
        let mut c = Command::new("systemctl");
        c.args(["stop", "ssh"]);
        c
    } else {
        let mut c = Command::new("invoke-rc.d");
        c.args(["ssh", "stop"]);
        c
    };
    if let Err(err) = run(&mut cmd) {
        eprintln!(
            "warning: installing openssh-server started the system sshd and stopping it failed: \
             {err:#}; stop it with `{}`",
            describe(&cmd)
        );
    }
}
