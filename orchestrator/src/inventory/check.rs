//! The checked side of the inventory: [`raw`](super::raw) structs validated into an
//! [`Inventory`], every problem collected with its position.

use std::collections::hash_map::{Entry, HashMap};
use std::collections::BTreeMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;

use super::raw::{RawHost, RawInventory, RawSettings, RawTemplates, RawZookeeper};
use super::values::*;
use super::{
    Arch, Host, HostKeyPolicy, Inventory, JavaPolicy, Role, SshTarget, TemplateOverride, Zookeeper,
    ZookeeperSource,
};
use crate::config::{yaml, ConfigError, Problems};

const DEFAULT_ORCH_DIR: &str = "~/.orch";
const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 5;
const DEFAULT_SSH_PORT: u16 = 22;

/// Validated [`RawSettings`]; `None` means "not given here".
#[derive(Default)]
struct Settings {
    user: Option<String>,
    port: Option<u16>,
    identity_file: Option<PathBuf>,
    jump: Option<String>,
    host_key: Option<HostKeyPolicy>,
    sudo: Option<bool>,
    orch_dir: Option<String>,
    interfaces: Option<Vec<String>>,
    roles: Option<Vec<Role>>,
    connect_timeout: Option<Duration>,
    known_hosts_file: Option<PathBuf>,
    control_dir: Option<PathBuf>,
    arch: Option<Arch>,
    java: Option<JavaPolicy>,
}

impl Settings {
    /// Fills every key this host does not set from `defaults`.
    fn or(self, defaults: &Settings) -> Settings {
        Settings {
            user: self.user.or_else(|| defaults.user.clone()),
            port: self.port.or(defaults.port),
            identity_file: self
                .identity_file
                .or_else(|| defaults.identity_file.clone()),
            jump: self.jump.or_else(|| defaults.jump.clone()),
            host_key: self.host_key.or(defaults.host_key),
            sudo: self.sudo.or(defaults.sudo),
            orch_dir: self.orch_dir.or_else(|| defaults.orch_dir.clone()),
            interfaces: self.interfaces.or_else(|| defaults.interfaces.clone()),
            roles: self.roles.or_else(|| defaults.roles.clone()),
            connect_timeout: self.connect_timeout.or(defaults.connect_timeout),
            known_hosts_file: self
                .known_hosts_file
                .or_else(|| defaults.known_hosts_file.clone()),
            control_dir: self.control_dir.or_else(|| defaults.control_dir.clone()),
            arch: self.arch.or(defaults.arch),
            java: self.java.or(defaults.java),
        }
    }
}

/// Parses and validates inventory text (see [`Inventory::parse`]).
pub(super) fn parse(text: &str, path: &Path) -> Result<Inventory, ConfigError> {
    if yaml::is_blank(text) {
        let message = "the file is empty; an inventory needs a `hosts` list";
        return Err(ConfigError::whole_file(path, message));
    }
    let raw: RawInventory = yaml::load(text, path)?;
    let mut checker = Checker {
        dir: std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_default(),
        home: std::env::var_os("HOME").map(PathBuf::from),
        problems: Problems::new(path),
        seen: Seen::default(),
    };
    let zookeeper = checker.zookeeper(raw.zookeeper.as_ref());
    let templates = checker.templates(raw.templates.as_ref());
    let hosts = checker.hosts(raw);
    checker.problems.finish(Inventory {
        path: path.to_path_buf(),
        hosts,
        zookeeper,
        templates,
    })
}

/// Where a value that must be unique was first used, to point at it from a duplicate.
struct First {
    index: usize,
    name: String,
    line: usize,
}

/// Values already claimed by earlier hosts.
#[derive(Default)]
struct Seen {
    names: HashMap<String, First>,
    endpoints: HashMap<(String, u16), First>,
    experiment_ips: HashMap<IpAddr, First>,
    zk_ids: HashMap<u8, First>,
}

/// Validation state: the collector and what earlier hosts have claimed.
struct Checker {
    /// Directory of the inventory file, against which relative local paths resolve.
    dir: PathBuf,
    home: Option<PathBuf>,
    problems: Problems,
    seen: Seen,
}

impl Checker {
    fn hosts(&mut self, raw: RawInventory) -> Vec<Host> {
        let defaults = self.settings(&raw.defaults.unwrap_or_default(), "defaults");
        if raw.hosts.value.as_ref().is_none_or(Vec::is_empty) {
            self.problems
                .report(&raw.hosts, "hosts", "no hosts; list at least one");
        }
        raw.hosts
            .value
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .filter_map(|(i, h)| self.host(i, h, &defaults))
            .collect()
    }

    fn settings(&mut self, raw: &RawSettings, prefix: &str) -> Settings {
        let field = |key: &str| format!("{prefix}.{key}");
        let (dir, home) = (self.dir.clone(), self.home.clone());
        let local = |s: &String| local_path(s, &dir, home.as_deref());
        Settings {
            user: self.problems.check(raw.user.as_ref(), &field("user"), |s| {
                check_user(s).map(|()| s.clone())
            }),
            port: self
                .problems
                .check(raw.port.as_ref(), &field("port"), |&p| check_port(p)),
            identity_file: self.problems.check(
                raw.identity_file.as_ref(),
                &field("identity_file"),
                local,
            ),
            jump: self.problems.check(raw.jump.as_ref(), &field("jump"), |s| {
                check_jump(s).map(|()| s.clone())
            }),
            host_key: self
                .problems
                .check(raw.host_key.as_ref(), &field("host_key"), |s| {
                    parse_host_key(s)
                }),
            sudo: raw.sudo,
            orch_dir: self
                .problems
                .check(raw.orch_dir.as_ref(), &field("orch_dir"), |s| {
                    check_orch_dir(s).map(|()| s.clone())
                }),
            interfaces: self.problems.check_list(
                raw.interfaces.as_deref(),
                &field("interfaces"),
                |s| check_interface(s).map(|()| s.clone()),
            ),
            roles: self
                .problems
                .check_list(raw.roles.as_deref(), &field("roles"), |s| {
                    s.parse::<Role>().map_err(|e| e.to_string())
                }),
            connect_timeout: self.problems.check(
                raw.connect_timeout_secs.as_ref(),
                &field("connect_timeout_secs"),
                |&secs| check_connect_timeout(secs),
            ),
            known_hosts_file: self.problems.check(
                raw.known_hosts_file.as_ref(),
                &field("known_hosts_file"),
                local,
            ),
            control_dir: self.problems.check(
                raw.control_dir.as_ref(),
                &field("control_dir"),
                local,
            ),
            arch: self
                .problems
                .check(raw.arch.as_ref(), &field("arch"), |s| parse_arch(s)),
            java: self
                .problems
                .check(raw.java.as_ref(), &field("java"), |s| parse_java(s)),
        }
    }

    fn zookeeper(&mut self, raw: Option<&RawZookeeper>) -> Zookeeper {
        let defaults = Zookeeper::default();
        let Some(raw) = raw else {
            return defaults;
        };
        let field = |key: &str| format!("zookeeper.{key}");
        let (dir, home) = (self.dir.clone(), self.home.clone());
        let sources = [
            ("tarball", &raw.tarball),
            ("version", &raw.version),
            ("install_dir", &raw.install_dir),
        ];
        let mut given = sources
            .iter()
            .filter_map(|(key, value)| value.as_ref().map(|v| (*key, v)));
        let first = given.next();
        for (key, at) in given {
            let (first_key, first_at) = first.expect("a second source implies a first");
            let message = format!(
                "{first_key} is also set (line {}); set one of tarball, version and install_dir",
                line_of(first_at)
            );
            self.problems.report(at, &field(key), message);
        }
        let source = match first {
            Some(("tarball", at)) => self
                .problems
                .check(Some(at), &field("tarball"), |s| {
                    local_path(s, &dir, home.as_deref())
                })
                .map(ZookeeperSource::Tarball),
            Some(("version", at)) => self
                .problems
                .check(Some(at), &field("version"), |s| {
                    check_version(s).map(|()| s.clone())
                })
                .map(ZookeeperSource::Version),
            Some((_, at)) => self
                .problems
                .check(Some(at), &field("install_dir"), |s| {
                    check_orch_dir(s).map(|()| s.clone())
                })
                .map(ZookeeperSource::InstallDir),
            None => None,
        };
        let port = |checker: &mut Self, value: &Option<Spanned<u16>>, key: &str, default: u16| {
            checker
                .problems
                .check(value.as_ref(), &field(key), |&p| check_port(p))
                .unwrap_or(default)
        };
        let client_port = port(self, &raw.client_port, "client_port", defaults.client_port);
        let quorum_port = port(self, &raw.quorum_port, "quorum_port", defaults.quorum_port);
        let election_port = port(
            self,
            &raw.election_port,
            "election_port",
            defaults.election_port,
        );
        let ports = [
            ("client_port", client_port, &raw.client_port),
            ("quorum_port", quorum_port, &raw.quorum_port),
            ("election_port", election_port, &raw.election_port),
        ];
        for (i, (key, value, at)) in ports.iter().enumerate() {
            let Some(at) = at else { continue };
            // A clash of two given ports is reported once, at the later one.
            let clash = ports.iter().enumerate().find(|(j, (_, v, other_at))| {
                *j != i && v == value && (*j < i || other_at.is_none())
            });
            if let Some((_, (other, _, _))) = clash {
                let message = format!("{value} is also {other}; the three ports must differ");
                self.problems.report(at, &field(key), message);
            }
        }
        let mut count = |value: &Option<Spanned<u64>>, key: &str, max: u32, default: u32| {
            self.problems
                .check(value.as_ref(), &field(key), |&n| check_count(n, max))
                .unwrap_or(default)
        };
        Zookeeper {
            source,
            client_port,
            quorum_port,
            election_port,
            tick_time_ms: count(&raw.tick_time, "tick_time", 60_000, defaults.tick_time_ms),
            init_limit: count(&raw.init_limit, "init_limit", 1000, defaults.init_limit),
            sync_limit: count(&raw.sync_limit, "sync_limit", 1000, defaults.sync_limit),
        }
    }

    fn templates(&mut self, raw: Option<&RawTemplates>) -> BTreeMap<String, TemplateOverride> {
        let Some(raw) = raw else {
            return BTreeMap::new();
        };
        let (dir, home) = (self.dir.clone(), self.home.clone());
        let entries = [
            ("zoo.cfg", &raw.zoo_cfg),
            ("myid", &raw.myid),
            ("replica.yaml", &raw.replica_yaml),
        ];
        let mut templates = BTreeMap::new();
        for (name, value) in entries {
            let field = format!("templates.{name}");
            let path = self.problems.check(value.as_ref(), &field, |s| {
                local_path(s, &dir, home.as_deref())
            });
            if let (Some(path), Some(at)) = (path, value) {
                let line = line_of(at);
                templates.insert(name.to_string(), TemplateOverride { path, line });
            }
        }
        templates
    }

    /// Validates one host; `None` if anything about it is wrong (and then reported).
    fn host(&mut self, index: usize, mut raw: RawHost, defaults: &Settings) -> Option<Host> {
        let problems_before = self.problems.len();
        let prefix = format!("hosts[{index}]");
        let field = |key: &str| format!("{prefix}.{key}");
        let line = raw.name.referenced.line() as usize;
        let first = First {
            index,
            name: raw.name.value.clone(),
            line,
        };

        let name = self.problems.check(Some(&raw.name), &field("name"), |s| {
            check_name(s).map(|()| s.clone())
        });
        if let Some(name) = &name {
            let claimed = claim(&mut self.seen.names, name.clone(), first.at(line));
            self.duplicate(claimed, &raw.name, &field("name"), name);
        }

        let settings = self.settings(&raw.settings(), &prefix).or(defaults);

        let destination = match (&raw.ssh_alias, &raw.address) {
            (Some(alias), None) => self
                .problems
                .check(Some(alias), &field("ssh_alias"), |s| {
                    check_alias(s).map(|()| s.clone())
                })
                .map(|d| (d, alias, "ssh_alias")),
            (None, Some(address)) => self
                .problems
                .check(Some(address), &field("address"), |s| {
                    check_address(s).map(|()| s.clone())
                })
                .map(|d| (d, address, "address")),
            (Some(alias), Some(address)) => {
                let message = format!(
                    "ssh_alias is also set (line {}); set exactly one of address and ssh_alias",
                    alias.referenced.line()
                );
                self.problems.report(address, &field("address"), message);
                None
            }
            (None, None) => {
                let message = "neither address nor ssh_alias is set; set exactly one";
                self.problems.report(&raw.name, &prefix, message);
                None
            }
        };
        if let Some((destination, at, key)) = &destination {
            let port = settings.port.unwrap_or(DEFAULT_SSH_PORT);
            let endpoint = (destination.to_ascii_lowercase(), port);
            let claimed = claim(&mut self.seen.endpoints, endpoint, first.at(line_of(at)));
            let shown = format!("{destination} port {port}");
            self.duplicate(claimed, at, &field(key), &shown);
        }

        let experiment_ip =
            self.problems
                .check(Some(&raw.experiment_ip), &field("experiment_ip"), |s| {
                    s.parse::<IpAddr>()
                        .map_err(|_| format!("`{s}` is not an IPv4 or IPv6 address"))
                });
        if let Some(ip) = experiment_ip {
            let at = &raw.experiment_ip;
            let claimed = claim(&mut self.seen.experiment_ips, ip, first.at(line_of(at)));
            self.duplicate(claimed, at, &field("experiment_ip"), &ip.to_string());
        }

        let zk_id = self
            .problems
            .check(raw.zk_id.as_ref(), &field("zk_id"), |&id| check_zk_id(id));
        if let (Some(id), Some(at)) = (zk_id, &raw.zk_id) {
            let claimed = claim(&mut self.seen.zk_ids, id, first.at(line_of(at)));
            self.duplicate(claimed, at, &field("zk_id"), &id.to_string());
        }

        let roles = settings.roles.unwrap_or_default();
        let zookeeper = roles.contains(&Role::Zookeeper);
        match &raw.zk_id {
            None if zookeeper => {
                let message = "missing; every host with role zookeeper needs one";
                self.problems.report(&raw.name, &field("zk_id"), message);
            }
            Some(at) if !zookeeper => {
                let message = "only allowed on a host with role zookeeper";
                self.problems.report(at, &field("zk_id"), message);
            }
            _ => {}
        }

        if self.problems.len() > problems_before {
            return None;
        }
        Some(Host {
            name: name?,
            ssh: SshTarget {
                destination: destination?.0,
                user: settings.user,
                port: settings.port,
                identity_file: settings.identity_file,
                jump: settings.jump,
                host_key: settings.host_key.unwrap_or(HostKeyPolicy::Strict),
                connect_timeout: settings
                    .connect_timeout
                    .unwrap_or(Duration::from_secs(DEFAULT_CONNECT_TIMEOUT_SECS)),
                known_hosts_file: settings.known_hosts_file,
                control_dir: settings.control_dir,
            },
            experiment_ip: experiment_ip?,
            interfaces: settings.interfaces.unwrap_or_default(),
            roles,
            zk_id,
            sudo: settings.sudo.unwrap_or(false),
            orch_dir: settings
                .orch_dir
                .unwrap_or_else(|| DEFAULT_ORCH_DIR.to_string()),
            arch: settings.arch,
            java: settings.java.unwrap_or(JavaPolicy::Require),
            line,
        })
    }

    /// Reports `shown` at `at` when [`claim`] found an earlier host with the same value.
    fn duplicate<T>(
        &mut self,
        claimed: Result<(), String>,
        at: &Spanned<T>,
        field: &str,
        shown: &str,
    ) {
        if let Err(earlier) = claimed {
            self.problems
                .report(at, field, format!("{shown} is already used by {earlier}"));
        }
    }
}

impl First {
    /// The same host, pointing at the line of another of its values.
    fn at(&self, line: usize) -> First {
        First {
            index: self.index,
            name: self.name.clone(),
            line,
        }
    }
}

fn line_of<T>(at: &Spanned<T>) -> usize {
    at.referenced.line() as usize
}

/// Records `key` as used by `first`; if an earlier host already has it, describes that host.
fn claim<K: Eq + Hash>(seen: &mut HashMap<K, First>, key: K, first: First) -> Result<(), String> {
    match seen.entry(key) {
        Entry::Occupied(e) => {
            let e = e.get();
            Err(format!("hosts[{}] ({}, line {})", e.index, e.name, e.line))
        }
        Entry::Vacant(e) => {
            e.insert(first);
            Ok(())
        }
    }
}
