//! The inventory file as written: serde structs that mirror the YAML, their validation into
//! [`Inventory`], and the mapping of YAML errors back to the field they concern.

use std::collections::hash_map::{Entry, HashMap};
use std::collections::BTreeMap;
use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::{DuplicateKeyPolicy, MessageFormatter, Spanned, UserMessageFormatter};

use super::{
    Arch, Host, HostKeyPolicy, Inventory, InventoryError, JavaPolicy, Problem, Role, SshTarget,
    TemplateOverride, Zookeeper, ZookeeperSource,
};

const DEFAULT_ORCH_DIR: &str = "~/.orch";
const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 5;
const DEFAULT_SSH_PORT: u16 = 22;

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    defaults: Option<RawSettings>,
    hosts: Spanned<Option<Vec<RawHost>>>,
    zookeeper: Option<RawZookeeper>,
    templates: Option<RawTemplates>,
}

/// The `zookeeper:` section.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZookeeper {
    tarball: Option<Spanned<String>>,
    version: Option<Spanned<String>>,
    install_dir: Option<Spanned<String>>,
    client_port: Option<Spanned<u16>>,
    quorum_port: Option<Spanned<u16>>,
    election_port: Option<Spanned<u16>>,
    tick_time: Option<Spanned<u64>>,
    init_limit: Option<Spanned<u64>>,
    sync_limit: Option<Spanned<u64>>,
}

/// The `templates:` section: one optional file per template orch renders.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplates {
    #[serde(rename = "zoo.cfg")]
    zoo_cfg: Option<Spanned<String>>,
    myid: Option<Spanned<String>>,
    #[serde(rename = "replica.yaml")]
    replica_yaml: Option<Spanned<String>>,
}

/// Keys allowed both in `defaults` and in a host; the host's value wins.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    user: Option<Spanned<String>>,
    port: Option<Spanned<u16>>,
    identity_file: Option<Spanned<String>>,
    jump: Option<Spanned<String>>,
    host_key: Option<Spanned<String>>,
    sudo: Option<bool>,
    orch_dir: Option<Spanned<String>>,
    interfaces: Option<Vec<Spanned<String>>>,
    roles: Option<Vec<Spanned<String>>>,
    connect_timeout_secs: Option<Spanned<u64>>,
    known_hosts_file: Option<Spanned<String>>,
    control_dir: Option<Spanned<String>>,
    arch: Option<Spanned<String>>,
    java: Option<Spanned<String>>,
}

/// One entry of `hosts`: its own keys plus every key of [`RawSettings`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Spanned<String>,
    ssh_alias: Option<Spanned<String>>,
    address: Option<Spanned<String>>,
    experiment_ip: Spanned<String>,
    zk_id: Option<Spanned<u64>>,
    user: Option<Spanned<String>>,
    port: Option<Spanned<u16>>,
    identity_file: Option<Spanned<String>>,
    jump: Option<Spanned<String>>,
    host_key: Option<Spanned<String>>,
    sudo: Option<bool>,
    orch_dir: Option<Spanned<String>>,
    interfaces: Option<Vec<Spanned<String>>>,
    roles: Option<Vec<Spanned<String>>>,
    connect_timeout_secs: Option<Spanned<u64>>,
    known_hosts_file: Option<Spanned<String>>,
    control_dir: Option<Spanned<String>>,
    arch: Option<Spanned<String>>,
    java: Option<Spanned<String>>,
}

impl RawHost {
    /// Separates the keys shared with `defaults` so both are validated by the same code.
    fn settings(&mut self) -> RawSettings {
        RawSettings {
            user: self.user.take(),
            port: self.port.take(),
            identity_file: self.identity_file.take(),
            jump: self.jump.take(),
            host_key: self.host_key.take(),
            sudo: self.sudo.take(),
            orch_dir: self.orch_dir.take(),
            interfaces: self.interfaces.take(),
            roles: self.roles.take(),
            connect_timeout_secs: self.connect_timeout_secs.take(),
            known_hosts_file: self.known_hosts_file.take(),
            control_dir: self.control_dir.take(),
            arch: self.arch.take(),
            java: self.java.take(),
        }
    }
}

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
pub(super) fn parse(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
    if is_blank(text) {
        return Err(InventoryError {
            problems: vec![Problem {
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                field: String::new(),
                message: "the file is empty; an inventory needs a `hosts` list".into(),
            }],
        });
    }
    let options = serde_saphyr::options! { with_snippet: false };
    let raw: RawInventory =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| InventoryError {
            problems: vec![yaml_problem(&e, text, path)],
        })?;
    let mut checker = Checker {
        file: path,
        dir: std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_default(),
        home: std::env::var_os("HOME").map(PathBuf::from),
        problems: Vec::new(),
        seen: Seen::default(),
    };
    let zookeeper = checker.zookeeper(raw.zookeeper.as_ref());
    let templates = checker.templates(raw.templates.as_ref());
    let hosts = checker.hosts(raw);
    if checker.problems.is_empty() {
        Ok(Inventory {
            path: path.to_path_buf(),
            hosts,
            zookeeper,
            templates,
        })
    } else {
        checker.problems.sort_by_key(|p| (p.line, p.column));
        Err(InventoryError {
            problems: checker.problems,
        })
    }
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

/// Validation state: collects every problem instead of stopping at the first.
struct Checker<'a> {
    file: &'a Path,
    /// Directory of the inventory file, against which relative local paths resolve.
    dir: PathBuf,
    home: Option<PathBuf>,
    problems: Vec<Problem>,
    seen: Seen,
}

impl Checker<'_> {
    fn report<T>(&mut self, at: &Spanned<T>, field: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_path_buf(),
            line: at.referenced.line() as usize,
            column: at.referenced.column() as usize,
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// Applies `validate` to a value that may be absent, reporting its error at the value.
    fn check<T, U>(
        &mut self,
        value: Option<&Spanned<T>>,
        field: &str,
        validate: impl FnOnce(&T) -> Result<U, String>,
    ) -> Option<U> {
        let value = value?;
        match validate(&value.value) {
            Ok(v) => Some(v),
            Err(message) => {
                self.report(value, field, message);
                None
            }
        }
    }

    fn check_list<U>(
        &mut self,
        values: Option<&[Spanned<String>]>,
        field: &str,
        validate: impl Fn(&String) -> Result<U, String>,
    ) -> Option<Vec<U>> {
        let values = values?;
        let checked = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| self.check(Some(v), &format!("{field}[{i}]"), &validate));
        Some(checked.collect())
    }

    fn hosts(&mut self, raw: RawInventory) -> Vec<Host> {
        let defaults = self.settings(&raw.defaults.unwrap_or_default(), "defaults");
        if raw.hosts.value.as_ref().is_none_or(Vec::is_empty) {
            self.report(&raw.hosts, "hosts", "no hosts; list at least one");
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
            user: self.check(raw.user.as_ref(), &field("user"), |s| {
                check_user(s).map(|()| s.clone())
            }),
            port: self.check(raw.port.as_ref(), &field("port"), |&p| check_port(p)),
            identity_file: self.check(raw.identity_file.as_ref(), &field("identity_file"), local),
            jump: self.check(raw.jump.as_ref(), &field("jump"), |s| {
                check_jump(s).map(|()| s.clone())
            }),
            host_key: self.check(raw.host_key.as_ref(), &field("host_key"), |s| {
                parse_host_key(s)
            }),
            sudo: raw.sudo,
            orch_dir: self.check(raw.orch_dir.as_ref(), &field("orch_dir"), |s| {
                check_orch_dir(s).map(|()| s.clone())
            }),
            interfaces: self.check_list(raw.interfaces.as_deref(), &field("interfaces"), |s| {
                check_interface(s).map(|()| s.clone())
            }),
            roles: self.check_list(raw.roles.as_deref(), &field("roles"), |s| {
                s.parse::<Role>().map_err(|e| e.to_string())
            }),
            connect_timeout: self.check(
                raw.connect_timeout_secs.as_ref(),
                &field("connect_timeout_secs"),
                |&secs| check_connect_timeout(secs),
            ),
            known_hosts_file: self.check(
                raw.known_hosts_file.as_ref(),
                &field("known_hosts_file"),
                local,
            ),
            control_dir: self.check(raw.control_dir.as_ref(), &field("control_dir"), local),
            arch: self.check(raw.arch.as_ref(), &field("arch"), |s| parse_arch(s)),
            java: self.check(raw.java.as_ref(), &field("java"), |s| parse_java(s)),
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
            self.report(at, &field(key), message);
        }
        let source = match first {
            Some(("tarball", at)) => self
                .check(Some(at), &field("tarball"), |s| {
                    local_path(s, &dir, home.as_deref())
                })
                .map(ZookeeperSource::Tarball),
            Some(("version", at)) => self
                .check(Some(at), &field("version"), |s| {
                    check_version(s).map(|()| s.clone())
                })
                .map(ZookeeperSource::Version),
            Some((_, at)) => self
                .check(Some(at), &field("install_dir"), |s| {
                    check_orch_dir(s).map(|()| s.clone())
                })
                .map(ZookeeperSource::InstallDir),
            None => None,
        };
        let port = |checker: &mut Self, value: &Option<Spanned<u16>>, key: &str, default: u16| {
            checker
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
                self.report(at, &field(key), message);
            }
        }
        let mut count = |value: &Option<Spanned<u64>>, key: &str, max: u32, default: u32| {
            self.check(value.as_ref(), &field(key), |&n| check_count(n, max))
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
            let path = self.check(value.as_ref(), &field, |s| {
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

        let name = self.check(Some(&raw.name), &field("name"), |s| {
            check_name(s).map(|()| s.clone())
        });
        if let Some(name) = &name {
            let claimed = claim(&mut self.seen.names, name.clone(), first.at(line));
            self.duplicate(claimed, &raw.name, &field("name"), name);
        }

        let settings = self.settings(&raw.settings(), &prefix).or(defaults);

        let destination = match (&raw.ssh_alias, &raw.address) {
            (Some(alias), None) => self
                .check(Some(alias), &field("ssh_alias"), |s| {
                    check_alias(s).map(|()| s.clone())
                })
                .map(|d| (d, alias, "ssh_alias")),
            (None, Some(address)) => self
                .check(Some(address), &field("address"), |s| {
                    check_address(s).map(|()| s.clone())
                })
                .map(|d| (d, address, "address")),
            (Some(alias), Some(address)) => {
                let message = format!(
                    "ssh_alias is also set (line {}); set exactly one of address and ssh_alias",
                    alias.referenced.line()
                );
                self.report(address, &field("address"), message);
                None
            }
            (None, None) => {
                let message = "neither address nor ssh_alias is set; set exactly one";
                self.report(&raw.name, &prefix, message);
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

        let experiment_ip = self.check(Some(&raw.experiment_ip), &field("experiment_ip"), |s| {
            s.parse::<IpAddr>()
                .map_err(|_| format!("`{s}` is not an IPv4 or IPv6 address"))
        });
        if let Some(ip) = experiment_ip {
            let at = &raw.experiment_ip;
            let claimed = claim(&mut self.seen.experiment_ips, ip, first.at(line_of(at)));
            self.duplicate(claimed, at, &field("experiment_ip"), &ip.to_string());
        }

        let zk_id = self.check(raw.zk_id.as_ref(), &field("zk_id"), |&id| check_zk_id(id));
        if let (Some(id), Some(at)) = (zk_id, &raw.zk_id) {
            let claimed = claim(&mut self.seen.zk_ids, id, first.at(line_of(at)));
            self.duplicate(claimed, at, &field("zk_id"), &id.to_string());
        }

        let roles = settings.roles.unwrap_or_default();
        let zookeeper = roles.contains(&Role::Zookeeper);
        match &raw.zk_id {
            None if zookeeper => {
                let message = "missing; every host with role zookeeper needs one";
                self.report(&raw.name, &field("zk_id"), message);
            }
            Some(at) if !zookeeper => {
                let message = "only allowed on a host with role zookeeper";
                self.report(at, &field("zk_id"), message);
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
            self.report(at, field, format!("{shown} is already used by {earlier}"));
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

/// Checks a host name or SSH user: letters, digits, `.`, `_`, `-`, not starting with `-` (which
/// ssh would read as an option).
fn check_word(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > max {
        return Err(format!("`{s}` is longer than {max} characters"));
    }
    if s.starts_with('-') {
        return Err(format!("`{s}` must not start with '-'"));
    }
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
    {
        Some(c) => Err(format!(
            "`{s}` contains {c:?}; only letters, digits, '.', '_' and '-' are allowed"
        )),
        None => Ok(()),
    }
}

fn check_name(s: &str) -> Result<(), String> {
    if s == "all" {
        return Err("`all` is reserved: it selects every host".into());
    }
    check_word(s, 63)
}

fn check_user(s: &str) -> Result<(), String> {
    check_word(s, 32)
}

fn check_port(port: u16) -> Result<u16, String> {
    match port {
        0 => Err("0 is not a port; use 1..=65535".into()),
        p => Ok(p),
    }
}

/// Accepts an IPv4/IPv6 address or an RFC 1123 hostname, nothing ssh could read as an option.
fn check_address(s: &str) -> Result<(), String> {
    if s.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    check_hostname(s).map_err(|why| format!("`{s}` is not a hostname or IP address: {why}"))
}

fn check_hostname(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".into());
    }
    if s.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    for label in s.split('.') {
        if label.is_empty() {
            return Err("empty label between dots".into());
        }
        if label.len() > 63 {
            return Err(format!("label `{label}` is longer than 63 characters"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label `{label}` starts or ends with '-'"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "{c:?} is not allowed (only letters, digits, '-' and '.')"
            ));
        }
    }
    if s.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit())) {
        return Err("all-numeric, but not a valid IPv4 address".into());
    }
    Ok(())
}

fn check_alias(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.starts_with('-') {
        return Err(format!("`{s}` must not start with '-'"));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{s}` must not contain whitespace"));
    }
    Ok(())
}

/// Checks a jump host written `[user@]host[:port]` (IPv6 with a port as `[addr]:port`).
fn check_jump(s: &str) -> Result<(), String> {
    let (user, rest) = match s.split_once('@') {
        Some((user, rest)) => (Some(user), rest),
        None => (None, s),
    };
    let checked = user
        .map_or(Ok(()), |u| check_user(u).map_err(|e| format!("user: {e}")))
        .and_then(|()| split_host_port(rest))
        .and_then(|(host, port)| {
            check_address(host)?;
            match port.map(str::parse::<u16>) {
                None | Some(Ok(1..)) => Ok(()),
                Some(_) => Err(format!("port `{}` is not 1..=65535", port.unwrap_or(""))),
            }
        });
    checked.map_err(|why| format!("`{s}` is not a valid [user@]host[:port]: {why}"))
}

fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(inner) = s.strip_prefix('[') {
        let (addr, after) = inner.split_once(']').ok_or("missing ']'")?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{addr}` in brackets is not an IPv6 address"));
        }
        return match after {
            "" => Ok((addr, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((addr, Some(port))),
                None => Err(format!("unexpected `{after}` after ']'")),
            },
        };
    }
    match s.split_once(':') {
        Some((host, port)) if !port.contains(':') => Ok((host, Some(port))),
        _ => Ok((s, None)),
    }
}

fn parse_host_key(s: &str) -> Result<HostKeyPolicy, String> {
    match s {
        "strict" => Ok(HostKeyPolicy::Strict),
        "accept-new" => Ok(HostKeyPolicy::AcceptNew),
        _ => Err(format!(
            "`{s}` is not a host key policy; expected strict or accept-new"
        )),
    }
}

fn parse_java(s: &str) -> Result<JavaPolicy, String> {
    match s {
        "require" => Ok(JavaPolicy::Require),
        "install" => Ok(JavaPolicy::Install),
        _ => Err(format!(
            "`{s}` is not a Java policy; expected require (the default) or install"
        )),
    }
}

fn parse_arch(s: &str) -> Result<Arch, String> {
    [Arch::X86_64, Arch::Aarch64]
        .into_iter()
        .find(|a| a.as_str() == s)
        .ok_or_else(|| format!("`{s}` is not a supported architecture; expected x86_64 or aarch64"))
}

/// A remote directory: orch quotes it in shell commands, but `~/` must stay expandable and
/// `..` would escape the directory orch cleans up.
fn check_orch_dir(s: &str) -> Result<(), String> {
    if !(s.starts_with('/') || s.starts_with("~/")) {
        return Err(format!("`{s}` must be absolute or start with `~/`"));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{s}` must not contain whitespace"));
    }
    if s.split('/').any(|part| part == "..") {
        return Err(format!("`{s}` must not contain a `..` component"));
    }
    Ok(())
}

/// A Linux interface name: at most 15 bytes, no `/`, `:` or whitespace.
fn check_interface(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 15 {
        return Err(format!("`{s}` is not 1 to 15 characters long"));
    }
    if s == "." || s == ".." {
        return Err(format!("`{s}` is not an interface name"));
    }
    match s
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
    {
        Some(c) => Err(format!(
            "`{s}` contains {c:?}, which interface names cannot"
        )),
        None => Ok(()),
    }
}

fn check_connect_timeout(secs: u64) -> Result<Duration, String> {
    match secs {
        1..=300 => Ok(Duration::from_secs(secs)),
        _ => Err(format!("{secs} is not 1..=300 seconds")),
    }
}

/// A ZooKeeper release such as `3.8.4`: it becomes part of a file name on the controller.
fn check_version(s: &str) -> Result<(), String> {
    let plain = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if s.is_empty() || !plain || !s.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "`{s}` is not a release number like 3.8.4 (digits, letters, '.' and '-')"
        ));
    }
    Ok(())
}

fn check_count(n: u64, max: u32) -> Result<u32, String> {
    match u32::try_from(n) {
        Ok(n @ 1..) if n <= max => Ok(n),
        _ => Err(format!("{n} is not 1..={max}")),
    }
}

fn check_zk_id(id: u64) -> Result<u8, String> {
    match u8::try_from(id) {
        Ok(id @ 1..) => Ok(id),
        _ => Err(format!("{id} is not 1..=255")),
    }
}

/// Resolves a local path: `~` and `~/...` from `home`, relative paths against `dir` (the
/// inventory's directory), so the file works from any working directory.
fn local_path(s: &str, dir: &Path, home: Option<&Path>) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s == "~" || s.starts_with("~/") {
        let home = home.ok_or_else(|| format!("`{s}` uses `~` but HOME is not set"))?;
        return Ok(match s.strip_prefix("~/") {
            Some(rest) => home.join(rest),
            None => home.to_path_buf(),
        });
    }
    if s.starts_with('~') {
        return Err(format!("`{s}`: only `~/` is expanded; write the full path"));
    }
    Ok(dir.join(s))
}

/// Whether the text holds no YAML at all, which deserves a clearer word than "unexpected end".
fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#')
    })
}

/// Turns a YAML syntax or type error into a problem that names the field at its position.
pub(crate) fn yaml_problem(err: &serde_saphyr::Error, text: &str, file: &Path) -> Problem {
    use serde_saphyr::Error;
    let (line, column) = err
        .location()
        .map_or((0, 0), |l| (l.line() as usize, l.column() as usize));
    let target = match err {
        Error::SerdeUnknownField { .. } | Error::DuplicateMappingKey { .. } => Target::Key,
        Error::SerdeMissingField { .. } => Target::Map,
        _ => Target::Value,
    };
    let mut field = match shape(text) {
        Ok(root) => path_at(&root, (line, column), target),
        Err(_) => prefix_shape(text, line, column)
            .map(|root| path_at(&root, (line, column), Target::Value))
            .unwrap_or_default(),
    };
    if let Error::SerdeMissingField { field: missing, .. } = err {
        field = join_field(&field, missing);
    }
    let message = match err {
        Error::Unexpected {
            expected: "string scalar",
            ..
        } => "expected a single value, not a list or mapping".into(),
        Error::Unexpected {
            expected: "sequence start",
            ..
        } => "expected a list (`[a, b]` or lines starting with `- `)".into(),
        Error::Unexpected {
            expected: "mapping start",
            ..
        } => "expected a mapping (`key: value` lines)".into(),
        _ => UserMessageFormatter.format_message(err),
    };
    let mut message: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut words = message.split(|c: char| !c.is_ascii_alphabetic());
    if words.any(|w| w == "tab" || w == "tabs") {
        message.push_str(" (YAML indentation must use spaces, not tabs)");
    }
    Problem {
        file: file.to_path_buf(),
        line,
        column,
        field,
        message,
    }
}

/// The structure of a YAML document with the position of every node; only used to name the
/// field an error position falls in.
enum Node {
    Leaf,
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Node::Map(entries))
    }
}

fn shape(text: &str) -> Result<Spanned<Node>, serde_saphyr::Error> {
    let options = serde_saphyr::options! {
        with_snippet: false,
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
    };
    serde_saphyr::from_str_with_options(text, options)
}

/// The shape of the text before a syntax error, which is all that can be read of it.
fn prefix_shape(text: &str, line: usize, column: usize) -> Option<Spanned<Node>> {
    let whole_lines: String = text
        .lines()
        .take(line.saturating_sub(1))
        .flat_map(|l| [l, "\n"])
        .collect();
    let partial: String = text
        .lines()
        .nth(line.saturating_sub(1))
        .unwrap_or("")
        .chars()
        .take(column.saturating_sub(1))
        .collect();
    shape(&format!("{whole_lines}{partial}"))
        .or_else(|_| shape(&whole_lines))
        .ok()
}

fn start<T>(node: &Spanned<T>) -> (usize, usize) {
    (
        node.referenced.line() as usize,
        node.referenced.column() as usize,
    )
}

/// What an error position points at.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    /// A mapping key (unknown or repeated field).
    Key,
    /// A value; a mapping or list that starts at the position is itself the culprit, not its
    /// first entry.
    Value,
    /// The mapping that contains the position (a field is missing from it).
    Map,
}

/// The path (`hosts[1].port`) of the node that `pos` points at, found by descending into the
/// last entry that starts at or before `pos` at every level.
fn path_at(root: &Spanned<Node>, pos: (usize, usize), target: Target) -> String {
    let mut path = String::new();
    let mut map_path = String::new();
    let mut node = root;
    loop {
        if target == Target::Value && start(node) == pos {
            break;
        }
        match &node.value {
            Node::Map(entries) => {
                map_path.clone_from(&path);
                let Some((key, value)) = entries.iter().rev().find(|(k, _)| start(k) <= pos) else {
                    break;
                };
                path = join_field(&path, &key.value);
                if start(key) == pos {
                    break;
                }
                node = value;
            }
            Node::Seq(items) => {
                let mut earlier = items.iter().enumerate().rev();
                let Some((i, item)) = earlier.find(|(_, it)| start(it) <= pos) else {
                    break;
                };
                path = format!("{path}[{i}]");
                node = item;
            }
            Node::Leaf => break,
        }
    }
    if target == Target::Map {
        map_path
    } else {
        path
    }
}

fn join_field(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_hostnames_or_ip_addresses() {
        for ok in [
            "a",
            "ms1001.utah.cloudlab.us",
            "x-1.Example.ORG",
            "10.0.0.1",
            "::1",
            "2001:db8::3",
        ] {
            assert_eq!(check_address(ok), Ok(()), "{ok}");
        }
        let long_label = "a".repeat(64);
        let long_name = ["abcdefghi"; 26].join(".");
        for bad in [
            "",
            "bad_host!",
            "-oProxyCommand=x",
            "a..b",
            "trailing.",
            "a-.b",
            "10.0.1.300",
            "1.2.3",
            "two words",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_users_cannot_look_like_options() {
        assert_eq!(check_name("node-0_a.b"), Ok(()));
        assert!(check_name("-x")
            .unwrap_err()
            .contains("must not start with '-'"));
        assert!(check_name("a b").unwrap_err().contains("' '"));
        assert!(check_name(&"n".repeat(64)).is_err());
        assert!(check_name("all").is_err());
        assert_eq!(check_user(&"u".repeat(32)), Ok(()));
        assert!(check_user(&"u".repeat(33)).is_err());
        assert!(check_user("").is_err());
        assert!(check_user("root;id").is_err());
    }

    #[test]
    fn jump_hosts_are_user_host_port() {
        for ok in [
            "bastion",
            "me@bastion.example.org:22",
            "me@10.0.0.1",
            "[2001:db8::1]:2200",
            "me@[::1]",
            "2001:db8::1",
        ] {
            assert_eq!(check_jump(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "me@",
            "@host",
            "-J@host",
            "me@-oProxyCommand=x",
            "host:0",
            "host:abc",
            "host:70000",
            "host:",
            "[::1",
            "[::1]x",
            "[bastion]:22",
            "two words@host",
        ] {
            assert!(check_jump(bad).is_err(), "{bad}");
        }
        let why = check_jump("me@bastion:99999").unwrap_err();
        assert_eq!(
            why,
            "`me@bastion:99999` is not a valid [user@]host[:port]: port `99999` is not 1..=65535"
        );
    }

    #[test]
    fn interface_names_follow_linux_rules() {
        for ok in ["eth0", "enp6s0f0", "a", "br-1234567890ab"] {
            assert_eq!(check_interface(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".", "..", "eth0:1", "a/b", "a b", "sixteen-chars-xx"] {
            assert!(check_interface(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn orch_dir_is_absolute_or_under_home() {
        for ok in ["~/.orch", "/opt/orch", "/srv/orch..old"] {
            assert_eq!(check_orch_dir(ok), Ok(()), "{ok}");
        }
        for bad in ["orch", "~", "~bob/orch", "~/a/../b", "/opt/my orch", "/.."] {
            assert!(check_orch_dir(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_paths_expand_home_and_follow_the_inventory() {
        let dir = Path::new("/inv");
        let home = Some(Path::new("/home/me"));
        let resolve = |s: &str| local_path(s, dir, home);
        assert_eq!(resolve("~"), Ok(PathBuf::from("/home/me")));
        assert_eq!(resolve("~/.ssh/id"), Ok(PathBuf::from("/home/me/.ssh/id")));
        assert_eq!(resolve("keys/id"), Ok(PathBuf::from("/inv/keys/id")));
        assert_eq!(resolve("/etc/id"), Ok(PathBuf::from("/etc/id")));
        assert!(resolve("~bob/id").is_err());
        assert!(resolve("").is_err());
        assert!(local_path("~/id", dir, None).unwrap_err().contains("HOME"));
    }

    #[test]
    fn ranges_are_checked() {
        assert!(check_port(0).is_err());
        assert_eq!(check_port(65535), Ok(65535));
        assert_eq!(check_zk_id(255), Ok(255));
        assert!(check_zk_id(0).is_err() && check_zk_id(256).is_err());
        assert_eq!(check_connect_timeout(300), Ok(Duration::from_secs(300)));
        assert!(check_connect_timeout(0).is_err() && check_connect_timeout(301).is_err());
        assert_eq!(parse_host_key("accept-new"), Ok(HostKeyPolicy::AcceptNew));
        assert_eq!(parse_arch("aarch64"), Ok(Arch::Aarch64));
        assert!(parse_arch("arm64").is_err());
        assert_eq!(check_count(1000, 1000), Ok(1000));
        assert!(check_count(0, 10).is_err() && check_count(11, 10).is_err());
        assert_eq!(check_version("3.8.4"), Ok(()));
        assert_eq!(check_version("3.9.0-rc1"), Ok(()));
        for bad in ["", "latest", "3.8/4", "3.8.4 ", "../3"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn positions_map_to_field_paths() {
        let text = "defaults:\n  port: 1\nhosts:\n  - name: a\n    roles: [x, y]\n  - {name: b, port: 2}\n";
        let root = shape(text).unwrap();
        let at = |line, column, target| path_at(&root, (line, column), target);
        assert_eq!(at(2, 3, Target::Key), "defaults.port");
        assert_eq!(at(2, 9, Target::Value), "defaults.port");
        assert_eq!(at(3, 1, Target::Key), "hosts");
        assert_eq!(at(5, 16, Target::Value), "hosts[0].roles[1]");
        assert_eq!(at(5, 12, Target::Value), "hosts[0].roles");
        assert_eq!(at(4, 5, Target::Value), "hosts[0]");
        assert_eq!(at(4, 5, Target::Key), "hosts[0].name");
        assert_eq!(at(5, 5, Target::Map), "hosts[0]");
        assert_eq!(at(6, 15, Target::Value), "hosts[1].port");
        assert_eq!(at(1, 1, Target::Map), "");
    }

    #[test]
    fn syntax_errors_are_located_from_the_text_before_them() {
        let text = "hosts:\n  - name: a\n    interfaces: [eth0\n";
        let root = prefix_shape(text, 3, 17).unwrap();
        assert_eq!(
            path_at(&root, (3, 17), Target::Value),
            "hosts[0].interfaces"
        );
    }
}
