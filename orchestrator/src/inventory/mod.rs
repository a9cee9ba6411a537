//! The inventory: which hosts exist, how to reach them over SSH, and what they do in an
//! experiment. Everything here is validated before any command reaches a host:
//! `raw` (the YAML as written) -> `check` (validated, every problem at its position; single
//! values by the rules in `values`) -> [`Inventory`]; `select` picks hosts from it.

mod check;
mod raw;
mod select;
mod values;

pub use select::SelectError;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::config::{self, ConfigError};

/// A validated inventory file.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// The file it was read from, used in every later error message.
    pub path: PathBuf,
    /// Hosts in file order; names, SSH endpoints, experiment IPs and ZooKeeper ids are unique.
    pub hosts: Vec<Host>,
    /// Where ZooKeeper comes from and how the ensemble is configured (`zookeeper:`).
    pub zookeeper: Zookeeper,
    /// Template files that replace orch's own, by the name of the file they render
    /// (`templates:`, e.g. `zoo.cfg`); the paths are resolved like every local path.
    pub templates: BTreeMap<String, TemplateOverride>,
}

/// The `zookeeper:` section: how `orch setup` installs ZooKeeper on hosts with the zookeeper
/// role, and the settings every server's `zoo.cfg` shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zookeeper {
    /// `None` when the inventory names no distribution (then `orch setup --zookeeper` must).
    pub source: Option<ZookeeperSource>,
    pub client_port: u16,
    /// Port followers use to talk to the leader (`server.N=IP:quorum:election`).
    pub quorum_port: u16,
    /// Port of leader election.
    pub election_port: u16,
    pub tick_time_ms: u32,
    /// Ticks a follower may take to connect and sync to the leader.
    pub init_limit: u32,
    /// Ticks a follower may lag behind the leader.
    pub sync_limit: u32,
}

impl Default for Zookeeper {
    /// The ports and timing of the original experiments' `zoo.cfg`.
    fn default() -> Zookeeper {
        Zookeeper {
            source: None,
            client_port: 2181,
            quorum_port: 4888,
            election_port: 5888,
            tick_time_ms: 2000,
            init_limit: 10,
            sync_limit: 5,
        }
    }
}

/// Where the ZooKeeper distribution comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZookeeperSource {
    /// An Apache binary tarball on the controller, pushed to the hosts.
    Tarball(PathBuf),
    /// `apache-zookeeper-VERSION-bin.tar.gz` in orch's download directory on the controller.
    Version(String),
    /// An existing installation on every host (a remote path; `~/` allowed); nothing is pushed.
    InstallDir(String),
}

/// A user's template that replaces a built-in one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateOverride {
    pub path: PathBuf,
    /// 1-based line of the entry in the inventory, for error messages.
    pub line: usize,
}

/// One machine of the testbed.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub ssh: SshTarget,
    /// The data-plane address experiments use (CloudLab's 10.0.x.2), not the SSH address.
    pub experiment_ip: IpAddr,
    pub interfaces: Vec<String>,
    pub roles: Vec<Role>,
    /// ZooKeeper server id (1..=255); given for every host with the zookeeper role.
    pub zk_id: Option<u8>,
    /// Run privileged commands through `sudo -n`.
    pub sudo: bool,
    /// Where orch keeps its files on the host; may start with `~/`.
    pub orch_dir: String,
    /// CPU architecture if the inventory states it (otherwise `orch check` finds it).
    pub arch: Option<Arch>,
    /// `java:` what `orch setup` does on a host without Java.
    pub java: JavaPolicy,
    /// 1-based line of this host's entry in the inventory file.
    pub line: usize,
}

/// `java: require | install`: a host without `java` on its PATH fails `orch setup` (when it
/// needs Java, i.e. has the zookeeper role), or gets a headless JRE from its package manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JavaPolicy {
    /// Java must be there already; setup says how to install it (the default).
    Require,
    /// Setup installs a headless JRE where `java` is missing, through sudo when the host
    /// sets `sudo: true`.
    Install,
}

/// How to open an SSH connection to a host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SshTarget {
    /// An `~/.ssh/config` alias or a hostname/IP address.
    pub destination: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_file: Option<PathBuf>,
    /// `[user@]host[:port]` of a jump host.
    pub jump: Option<String>,
    pub host_key: HostKeyPolicy,
    pub connect_timeout: Duration,
    /// A known_hosts file to use instead of `~/.ssh/known_hosts` (the lab has its own).
    pub known_hosts_file: Option<PathBuf>,
    /// Where the SSH master sockets live; default `$XDG_RUNTIME_DIR/orch/ssh` or `~/.cache/orch/ssh`.
    pub control_dir: Option<PathBuf>,
}

/// What to do with a host key that is not yet known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostKeyPolicy {
    /// Unknown or changed keys fail (the default).
    Strict,
    /// Unknown keys are learned; changed keys still fail.
    AcceptNew,
}

/// What a host does in an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Zookeeper,
    Client,
    Replica,
    Traffic,
}

/// CPU architectures orch builds `orch-node` for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    Aarch64,
}

/// A role name that is not one of [`Role::ALL`]; the message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`, expected one of {names}", names = Role::names())]
pub struct ParseRoleError(pub String);

impl Inventory {
    /// Reads and validates an inventory file; every problem found is reported at once.
    pub fn load(path: &Path) -> Result<Inventory, ConfigError> {
        Inventory::parse(&config::read(path)?, path)
    }

    /// Validates inventory text; `path` names the file in messages and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Inventory, ConfigError> {
        check::parse(text, path)
    }

    /// Looks a host up by its inventory name.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

impl Host {
    /// Whether the host takes part in the experiment as `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

impl Role {
    /// Every role, in the order messages and documentation list them.
    pub const ALL: [Role; 4] = [Role::Zookeeper, Role::Client, Role::Replica, Role::Traffic];

    /// The name used in inventories and on the command line.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Zookeeper => "zookeeper",
            Role::Client => "client",
            Role::Replica => "replica",
            Role::Traffic => "traffic",
        }
    }

    fn names() -> String {
        Role::ALL.map(|r| r.as_str()).join(", ")
    }
}

impl FromStr for Role {
    type Err = ParseRoleError;

    fn from_str(s: &str) -> Result<Role, ParseRoleError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ParseRoleError(s.to_string()))
    }
}

impl Arch {
    /// The name used in inventories and in `orch-node` build targets.
    pub fn as_str(&self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// Maps the output of `uname -m` on a host; `None` for architectures orch does not build for.
    pub fn from_uname(machine: &str) -> Option<Arch> {
        match machine.trim() {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" | "arm64" => Some(Arch::Aarch64),
            _ => None,
        }
    }
}
