//! `orch lab`: a local testbed of N hosts on this machine, so every orch command can be tried
//! without a cluster. Each host is a network namespace on a shared bridge with its own sshd, home,
//! /tmp and pid namespace; an inventory for it is generated. Optionally as on CloudLab: a normal
//! user with passwordless sudo, and SSH on a control network apart from the experiment network.
//! See `docs/lab.md`.

mod cmd;
mod inventory;
mod net;
mod prereq;
mod process;
mod sshd;
mod state;
mod teardown;
mod uplink;
mod user;

use std::fs;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use sshd::{HostDir, Starting};
use state::{HostProcess, ProcessKind, State};
use user::LabUser;

/// The most hosts a lab can have (host i gets A.B.i.2, and every host runs an sshd).
pub const MAX_HOSTS: usize = 64;
/// Where lab state lives unless `ORCH_LAB_DIR` names another parent directory.
const DEFAULT_PARENT: &str = "/var/lib/orch/lab";
/// Characters allowed in the state directory path: sshd and ssh options take it unquoted.
const PATH_CHARS: &str = "/._+-";

/// What `orch lab up` builds.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// 1 to 6 of `[a-z0-9]`; it is part of interface and namespace names.
    pub name: String,
    /// 1..=64.
    pub hosts: usize,
    /// First two octets of the lab's /16.
    pub net: [u8; 2],
    /// Where to write the inventory besides `<state>/inventory.yaml`.
    pub inventory_out: Option<PathBuf>,
    /// Log in as this user (created if missing, given passwordless sudo) instead of root.
    pub user: Option<String>,
    /// First two octets of a separate control network for SSH (`eth0`, C.D.i.2); the
    /// experiment addresses are then on `eth1`.
    pub control_net: Option<[u8; 2]>,
    /// Limit what this machine sends into the lab to this rate (tc's syntax, `20mbit`).
    pub uplink: Option<String>,
}

/// A lab that is up.
#[derive(Debug, Clone)]
pub struct LabInfo {
    /// The generated inventory (the `-i` file if one was given).
    pub inventory: PathBuf,
    pub hosts: Vec<LabHost>,
}

/// One host of a lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabHost {
    /// `host<i>`, as in the inventory.
    pub name: String,
    /// Where its sshd listens (the control address with `--control-net`).
    pub address: Ipv4Addr,
    /// Its experiment address (the same as `address` without `--control-net`).
    pub experiment: Ipv4Addr,
    /// Its network namespace, for `ip netns exec`.
    pub netns: String,
}

/// The state directory of lab `name`: `$ORCH_LAB_DIR/<name>`, by default
/// `/var/lib/orch/lab/<name>`. It holds the keys, the hosts' files and the ownership record.
pub fn state_dir(name: &str) -> PathBuf {
    let parent = std::env::var_os("ORCH_LAB_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PARENT));
    std::path::absolute(&parent).unwrap_or(parent).join(name)
}

/// Builds the lab and writes its inventory. Refuses if the lab is up or any name it needs is
/// taken; if anything fails halfway, removes what it created before returning the error.
pub fn up(spec: &LabSpec) -> Result<LabInfo> {
    validate(spec)?;
    prereq::require_root()?;
    prereq::require_tools()?;
    prereq::ensure_sshd()?;
    if let Some(state) = State::load(&state_dir(&spec.name))? {
        bail!(
            "lab {name} is already up ({} hosts); run `orch lab down --name {name}` first",
            state.hosts,
            name = spec.name
        );
    }
    let dir = resolve_state_dir(&spec.name)?;
    let inventory = inventory_target(spec, &dir)?;
    net::check_free(&spec.name, spec.hosts, spec.net, spec.control_net)?;
    if let Some(name) = &spec.user {
        user::check_usable(&spec.name, name)?;
    }
    create_state_dir(&dir, &spec.name)?;
    let mut state = State {
        name: spec.name.clone(),
        hosts: spec.hosts,
        net: spec.net,
        inventory,
        complete: false,
        bridge: None,
        netns: Vec::new(),
        veths: Vec::new(),
        processes: Vec::new(),
        external_files: Vec::new(),
        control_net: spec.control_net,
        control_bridge: None,
        user: None,
        uplink: None,
    };
    let built = state
        .save(&dir)
        .and_then(|()| build(&mut state, &dir, spec));
    built.map_err(|err| roll_back(err, &mut state, &dir))
}

/// Prints each host's health, the bridge and the inventory path; true if the lab is up, its
/// bridge exists and every host's namespace, sshd and port 22 are fine.
pub fn status(name: &str) -> Result<bool> {
    validate_name(name)?;
    let Some(state) = State::load(&state_dir(name))? else {
        println!("lab {name} is not up");
        return Ok(false);
    };
    let namespaces = net::existing_netns()?;
    let hosts = lab_hosts(&state.name, state.hosts, state.net, state.control_net);
    let health: Vec<Health> = thread::scope(|s| {
        let probes: Vec<_> = hosts
            .iter()
            .map(|h| s.spawn(|| Health::probe(h, &state, namespaces.contains(&h.netns))))
            .collect();
        probes
            .into_iter()
            .map(|p| p.join().expect("a status probe panicked"))
            .collect()
    });
    println!(
        "{:<8} {:<15} {:<8} {:<16} PORT 22",
        "HOST", "ADDRESS", "NETNS", "SSHD"
    );
    for (host, h) in hosts.iter().zip(&health) {
        println!("{}", h.row(host));
    }
    let links = net::existing_links()?;
    let mut bridge_up = true;
    for bridge in [Some(net::bridge_name(name)), state.control_bridge.clone()]
        .into_iter()
        .flatten()
    {
        let present = links.contains(&bridge);
        bridge_up &= present;
        println!(
            "bridge: {bridge} {}",
            if present { "present" } else { "missing" }
        );
    }
    if let Some(u) = &state.user {
        println!("user: {} (passwordless sudo)", u.name);
    }
    if let Some(u) = &state.uplink {
        println!("uplink: {} on {}", u.rate, u.device);
    }
    println!("inventory: {}", state.inventory.display());
    if !state.complete {
        println!("`orch lab up` did not finish for this lab; run `orch lab down --name {name}`");
    }
    let healthy = state.complete && bridge_up && health.iter().all(Health::ok);
    let verdict = if healthy { "healthy" } else { "unhealthy" };
    println!("lab {name} is {verdict}");
    Ok(healthy)
}

/// Removes everything lab `name` created, continuing past failures; fails listing what could not
/// be removed (running it again retries those). A lab that is not up is not an error.
pub fn down(name: &str) -> Result<()> {
    validate_name(name)?;
    let dir = state_dir(name);
    let Some(mut state) = State::load(&dir)? else {
        println!("lab {name} is not up");
        return Ok(());
    };
    prereq::require_root()?;
    let failures = teardown::teardown(&mut state, &dir);
    if !failures.is_empty() {
        bail!(
            "lab {name} is only partly down; could not remove:\n  {}\nfix these, then run \
             `orch lab down --name {name}` again",
            failures.join("\n  ")
        );
    }
    println!("lab {name} is down");
    Ok(())
}

fn validate(spec: &LabSpec) -> Result<()> {
    validate_name(&spec.name)?;
    if !(1..=MAX_HOSTS).contains(&spec.hosts) {
        bail!(
            "--hosts must be between 1 and {MAX_HOSTS}, got {}",
            spec.hosts
        );
    }
    for (flag, net) in [
        ("--net", Some(spec.net)),
        ("--control-net", spec.control_net),
    ] {
        let Some([a, b]) = net else { continue };
        if a == 0 || a == 127 || a >= 224 {
            bail!("{flag} {a}.{b} cannot be used: the first number must be 1 to 223 and not 127");
        }
    }
    if spec.control_net == Some(spec.net) {
        let [a, b] = spec.net;
        bail!("--control-net {a}.{b} is the experiment network (--net); choose another");
    }
    if let Some(name) = &spec.user {
        user::validate_name(name)?;
    }
    if let Some(rate) = &spec.uplink {
        uplink::parse_rate(rate)?;
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<()> {
    let valid = (1..=6).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !valid {
        bail!(
            "lab name {name:?} is invalid: use 1 to 6 lowercase letters or digits (it becomes \
             part of network interface names, which are limited to 15 characters)"
        );
    }
    Ok(())
}

/// The hosts of a lab, from its name, size and networks.
fn lab_hosts(name: &str, hosts: usize, net: [u8; 2], control: Option<[u8; 2]>) -> Vec<LabHost> {
    (1..=hosts)
        .map(|i| LabHost {
            name: format!("host{i}"),
            address: net::host_address(control.unwrap_or(net), i),
            experiment: net::host_address(net, i),
            netns: net::netns_name(name, i),
        })
        .collect()
}

/// The state directory with symlinks resolved, checked to be usable from inside the hosts: not
/// under /tmp or /root (each host mounts its own over those, hiding the host keys from its sshd)
/// and without characters sshd would misread.
fn resolve_state_dir(name: &str) -> Result<PathBuf> {
    let dir = resolve_symlinks(&state_dir(name))?;
    let plain = dir.to_str().is_some_and(|s| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || PATH_CHARS.contains(c))
    });
    if !plain {
        bail!(
            "the lab state directory {} may only contain letters, digits and {PATH_CHARS} \
             (sshd options take it unquoted); set ORCH_LAB_DIR to another directory",
            dir.display()
        );
    }
    if dir.starts_with("/tmp") || dir.starts_with("/root") {
        bail!(
            "the lab state directory {} cannot be under /tmp or /root: every lab host mounts its \
             own /tmp and /root over those, which would hide its host key from its sshd; set \
             ORCH_LAB_DIR to another directory (for example under /var/tmp)",
            dir.display()
        );
    }
    let parent = dir.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    Ok(dir)
}

/// `path` with the symlinks of its longest existing prefix resolved.
fn resolve_symlinks(path: &Path) -> Result<PathBuf> {
    let mut existing = path;
    let mut missing = Vec::new();
    while !existing.exists() {
        missing.extend(existing.file_name());
        existing = existing.parent().unwrap_or(Path::new("/"));
    }
    let mut resolved = fs::canonicalize(existing)
        .with_context(|| format!("cannot resolve {}", existing.display()))?;
    resolved.extend(missing.iter().rev());
    Ok(resolved)
}

/// Where the inventory goes: the `-i` file (absolute, so `down` finds it from anywhere) or
/// `<state>/inventory.yaml`. Refuses to replace a file `orch lab up` did not write.
fn inventory_target(spec: &LabSpec, dir: &Path) -> Result<PathBuf> {
    let Some(out) = &spec.inventory_out else {
        return Ok(dir.join("inventory.yaml"));
    };
    let out = std::path::absolute(out)
        .with_context(|| format!("cannot resolve the inventory path {}", out.display()))?;
    let parent = out.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        bail!(
            "cannot write the inventory to {}: directory {} does not exist",
            out.display(),
            parent.display()
        );
    }
    if out.exists() && !inventory::is_generated(&out) {
        bail!(
            "refusing to overwrite {}: it was not generated by `orch lab up`; choose another \
             -i FILE or move it away",
            out.display()
        );
    }
    Ok(out)
}

/// Creates the (private) state directory; an existing one without state is a leftover the user
/// must look at.
fn create_state_dir(dir: &Path, name: &str) -> Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => bail!(
            "{dir} exists but holds no lab state (left by an interrupted `orch lab up`?); if no \
             lab {name} is running, remove it with `rm -rf {dir}`",
            dir = dir.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
}

/// Creates the lab's resources in order, recording each in `state` first.
fn build(state: &mut State, dir: &Path, spec: &LabSpec) -> Result<LabInfo> {
    let hosts = lab_hosts(&state.name, state.hosts, state.net, state.control_net);
    let host_dirs: Vec<HostDir> = (1..=hosts.len())
        .map(|i| HostDir(dir.join("hosts").join(format!("h{i}"))))
        .collect();
    create_client_key(dir)?;
    make_dir(&dir.join("ssh"), 0o700)?;
    make_dir(&dir.join("hosts"), 0o755)?;
    for (host, host_dir) in hosts.iter().zip(&host_dirs) {
        host_dir
            .create()
            .with_context(|| format!("{}: preparing {}", host.name, host_dir.0.display()))?;
    }
    if let Some(name) = &spec.user {
        create_user(state, dir, name, &host_dirs)?;
    }
    write_known_hosts(dir, &hosts, &host_dirs)?;
    create_network(state, dir, &hosts)?;
    if let Some(rate) = &spec.uplink {
        limit_uplink(state, dir, rate)?;
    }
    start_hosts(state, dir, &hosts, &host_dirs)?;
    write_inventories(state, dir, &hosts)?;
    state.record(dir, |s| s.complete = true)?;
    Ok(LabInfo {
        inventory: state.inventory.clone(),
        hosts,
    })
}

fn make_dir(path: &Path, mode: u32) -> Result<()> {
    fs::DirBuilder::new()
        .mode(mode)
        .create(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// The key orch logs in with, and the authorized_keys file every host's sshd reads.
fn create_client_key(dir: &Path) -> Result<()> {
    let key = dir.join("id_ed25519");
    sshd::generate_key(&key)?;
    let public = fs::read_to_string(key.with_extension("pub"))
        .with_context(|| format!("cannot read {}.pub", key.display()))?;
    state::write_atomic(&dir.join("authorized_keys"), &public, 0o600)
}

/// The lab user: the account (unless it exists), the mount point of its home (unless it
/// exists), its sudoers drop-in, and its private home on every host, owned by it.
fn create_user(state: &mut State, dir: &Path, name: &str, host_dirs: &[HostDir]) -> Result<()> {
    let existing = user::lookup(name)?;
    let home = existing
        .as_ref()
        .map(|a| a.home.clone())
        .unwrap_or_else(|| user::default_home(name));
    state.record(dir, |s| {
        s.user = Some(LabUser {
            name: name.to_string(),
            created: existing.is_none(),
            home: home.clone(),
            home_created: false,
            sudoers: None,
        })
    })?;
    if existing.is_none() {
        user::create_account(name, &home).with_context(|| format!("creating user {name}"))?;
    }
    if !home.exists() {
        state.record(dir, |s| {
            s.user.as_mut().expect("recorded above").home_created = true
        })?;
        user::create_home(&home)?;
    }
    let sudoers = user::sudoers_path(&state.name);
    state.record(dir, |s| {
        s.user.as_mut().expect("recorded above").sudoers = Some(sudoers.clone())
    })?;
    user::write_sudoers(&sudoers, name)?;
    let account = user::lookup(name)?
        .with_context(|| format!("user {name} is missing right after `useradd`"))?;
    let public = fs::read_to_string(dir.join("authorized_keys"))
        .with_context(|| format!("cannot read {}/authorized_keys", dir.display()))?;
    for host_dir in host_dirs {
        user::populate_home(&host_dir.user_home(), &account, &public)?;
    }
    Ok(())
}

/// `A.B.i.2 <host key>` for every host, so SSH can check host keys strictly.
fn write_known_hosts(dir: &Path, hosts: &[LabHost], host_dirs: &[HostDir]) -> Result<()> {
    let mut text = String::new();
    for (host, host_dir) in hosts.iter().zip(host_dirs) {
        text.push_str(&format!("{} {}\n", host.address, host_dir.public_key()?));
    }
    state::write_atomic(&dir.join("known_hosts"), &text, 0o644)
}

/// The bridge (and the control bridge), then per host its namespace and veth pair(s). Without a
/// control network the host has one interface, `eth0`, for everything; with one, `eth0` is on
/// the control network (SSH, default route) and `eth1` on the experiment network, which the
/// machine has no address on, as CloudLab's controller has none on the experiment LAN.
fn create_network(state: &mut State, dir: &Path, hosts: &[LabHost]) -> Result<()> {
    let control = state.control_net;
    let bridge = net::bridge_name(&state.name);
    state.record(dir, |s| s.bridge = Some(bridge.clone()))?;
    let own_net = control.is_none().then_some(state.net);
    net::create_bridge(&bridge, own_net)
        .with_context(|| format!("creating the bridge {bridge}"))?;
    let control_bridge = net::control_bridge_name(&state.name);
    if control.is_some() {
        state.record(dir, |s| s.control_bridge = Some(control_bridge.clone()))?;
        net::create_bridge(&control_bridge, control)
            .with_context(|| format!("creating the control bridge {control_bridge}"))?;
    }
    let experiment_iface = if control.is_some() { "eth1" } else { "eth0" };
    for (i, host) in hosts.iter().enumerate() {
        state.record(dir, |s| s.netns.push(host.netns.clone()))?;
        net::create_netns(&host.netns)
            .with_context(|| format!("{}: creating network namespace {}", host.name, host.netns))?;
        if let Some(c) = control {
            let veth = net::control_veth_name(&state.name, i + 1);
            state.record(dir, |s| s.veths.push(veth.clone()))?;
            let end = net::HostEnd {
                name: "eth0",
                addr: host.address,
                gateway: Some(net::gateway(c)),
            };
            net::create_veth(&veth, &host.netns, &control_bridge, &end)
                .with_context(|| format!("{}: creating the veth pair {veth}/eth0", host.name))?;
        }
        let veth = net::veth_name(&state.name, i + 1);
        state.record(dir, |s| s.veths.push(veth.clone()))?;
        let end = net::HostEnd {
            name: experiment_iface,
            addr: host.experiment,
            gateway: own_net.map(net::gateway),
        };
        net::create_veth(&veth, &host.netns, &bridge, &end).with_context(|| {
            format!(
                "{}: creating the veth pair {veth}/{experiment_iface}",
                host.name
            )
        })?;
    }
    Ok(())
}

/// Shapes the bridge this machine reaches the hosts' sshd through (recorded first).
fn limit_uplink(state: &mut State, dir: &Path, rate: &str) -> Result<()> {
    let device = match state.control_net {
        Some(_) => net::control_bridge_name(&state.name),
        None => net::bridge_name(&state.name),
    };
    let limit = uplink::Uplink {
        device,
        rate: uplink::parse_rate(rate)?,
    };
    state.record(dir, |s| s.uplink = Some(limit.clone()))?;
    uplink::shape(&limit).with_context(|| format!("limiting {} to {rate}", limit.device))
}

/// Starts every host's sshd and waits until all accept connections.
fn start_hosts(
    state: &mut State,
    dir: &Path,
    hosts: &[LabHost],
    host_dirs: &[HostDir],
) -> Result<()> {
    fs::create_dir_all("/run/sshd").context("cannot create /run/sshd (sshd's privsep dir)")?;
    let authorized_keys = dir.join("authorized_keys");
    let mut started = Vec::new();
    for (host, host_dir) in hosts.iter().zip(host_dirs) {
        let sshd = start_host(state, dir, host, host_dir, &authorized_keys)
            .with_context(|| format!("{}: starting sshd", host.name))?;
        started.push(Starting {
            name: &host.name,
            addr: host.address,
            sshd,
            dir: host_dir,
        });
    }
    sshd::wait_listening(&started)
}

/// Launches one host's sshd and records both its processes; returns the sshd (the pid
/// namespace's init). A crash before a pid is recorded is covered by `down` stopping everything
/// in the host's (recorded) network namespace.
fn start_host(
    state: &mut State,
    dir: &Path,
    host: &LabHost,
    host_dir: &HostDir,
    authorized_keys: &Path,
) -> Result<process::ProcId> {
    let user_home = state.user.as_ref().map(|u| u.home.as_path());
    let launcher = sshd::launch(
        &host.netns,
        host.address,
        host_dir,
        authorized_keys,
        user_home,
    )?;
    let record = |kind, proc| HostProcess {
        host: host.name.clone(),
        kind,
        proc,
    };
    state.record(dir, |s| {
        s.processes.push(record(ProcessKind::Launcher, launcher))
    })?;
    let init = sshd::find_init(launcher, host_dir)?;
    state.record(dir, |s| s.processes.push(record(ProcessKind::Sshd, init)))?;
    Ok(init)
}

/// Writes `<state>/inventory.yaml` and, if asked for, the `-i` file (recorded first).
fn write_inventories(state: &mut State, dir: &Path, hosts: &[LabHost]) -> Result<()> {
    let user = state.user.as_ref().map(|u| u.name.as_str());
    let iface = if state.control_net.is_some() {
        "eth1"
    } else {
        "eth0"
    };
    let text = inventory::render(dir, hosts, user, iface);
    let own = dir.join("inventory.yaml");
    state::write_atomic(&own, &text, 0o644)?;
    let out = state.inventory.clone();
    if out != own {
        state.record(dir, |s| s.external_files.push(out.clone()))?;
        state::write_atomic(&out, &text, 0o644)?;
    }
    Ok(())
}

/// Tears down what a failed `up` created and returns its error, saying whether that worked.
fn roll_back(err: anyhow::Error, state: &mut State, dir: &Path) -> anyhow::Error {
    let name = state.name.clone();
    let failures = teardown::teardown(state, dir);
    if failures.is_empty() {
        err.context(format!(
            "lab {name} could not be brought up (everything it had created was removed)"
        ))
    } else {
        err.context(format!(
            "lab {name} could not be brought up, and removing what it created failed: {}; fix \
             that, then run `orch lab down --name {name}`",
            failures.join("; ")
        ))
    }
}

/// What `status` finds for one host.
struct Health {
    netns: bool,
    sshd: Option<process::ProcId>,
    sshd_alive: bool,
    port: bool,
}

impl Health {
    fn probe(host: &LabHost, state: &State, netns: bool) -> Health {
        let sshd = state.sshd_of(&host.name);
        Health {
            netns,
            sshd,
            sshd_alive: sshd.is_some_and(|p| p.is_running()),
            port: net::port_open(
                SocketAddr::from((host.address, 22)),
                Duration::from_millis(500),
            ),
        }
    }

    fn ok(&self) -> bool {
        self.netns && self.sshd_alive && self.port
    }

    fn row(&self, host: &LabHost) -> String {
        let sshd = match (self.sshd, self.sshd_alive) {
            (Some(p), true) => format!("alive ({})", p.pid),
            (Some(p), false) => format!("dead ({})", p.pid),
            (None, _) => "not started".into(),
        };
        format!(
            "{:<8} {:<15} {:<8} {:<16} {}",
            host.name,
            host.address.to_string(),
            if self.netns { "present" } else { "missing" },
            sshd,
            if self.port { "open" } else { "closed" }
        )
    }
}
