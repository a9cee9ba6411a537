//! Inventory files: each malformed fixture is rejected at the right line, column and field
//! with a useful message; the example inventories and the good fixtures load as documented.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use orch::config::Problem;
use orch::inventory::{
    Arch, HostKeyPolicy, Inventory, Role, SelectError, Zookeeper, ZookeeperSource,
};

fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inventory")
        .join(relative)
}

fn problems(name: &str) -> (PathBuf, Vec<Problem>) {
    let path = fixture(&format!("bad/{name}.yaml"));
    match Inventory::load(&path) {
        Ok(_) => panic!("{} was accepted", path.display()),
        Err(e) => (path, e.problems),
    }
}

/// The fixture has exactly one problem, at `line:column` in `field`, whose message contains
/// `message`, and it prints as `file:line:column: field: message`.
fn assert_single(name: &str, line: usize, column: usize, field: &str, message: &str) {
    let (path, problems) = problems(name);
    assert_eq!(problems.len(), 1, "{name}: {problems:#?}");
    let p = &problems[0];
    assert_eq!(p.file, path);
    assert_eq!(
        (p.line, p.column, p.field.as_str()),
        (line, column, field),
        "{name}: {p}"
    );
    assert!(
        p.message.contains(message),
        "{name}: `{message}` not in: {p}"
    );
    let expected = format!("{}:{line}:{column}: {field}: {}", path.display(), p.message);
    assert_eq!(p.to_string(), expected);
}

/// One test per fixture `bad/NAME.yaml`: `NAME => (line, column, field, part of the message)`.
macro_rules! bad {
    ($($name:ident => ($line:literal, $column:literal, $field:literal, $message:literal);)*) => {
        $(
            #[test]
            fn $name() {
                assert_single(stringify!($name), $line, $column, $field, $message);
            }
        )*
    };
}

bad! {
    unknown_key_host => (5, 5, "hosts[0].prot", "unknown field `prot`, expected one of name,");
    unknown_key_defaults => (2, 3, "defaults.usr", "unknown field `usr`, expected one of user,");
    unknown_key_top_level => (5, 1, "groups", "unknown field `groups`, expected one of defaults, hosts");
    port_zero => (8, 11, "hosts[1].port", "0 is not a port");
    port_too_large => (8, 11, "hosts[1].port", "invalid u16");
    port_not_a_number => (8, 11, "hosts[1].port", "invalid u16");
    duplicate_name => (5, 11, "hosts[1].name", "node0 is already used by hosts[0] (node0, line 2)");
    duplicate_experiment_ip => (7, 20, "hosts[1].experiment_ip", "10.0.1.1 is already used by hosts[0] (node0, line 4)");
    duplicate_zk_id => (11, 12, "hosts[1].zk_id", "1 is already used by hosts[0] (node0, line 6)");
    duplicate_address_port => (6, 14, "hosts[1].address", "10.0.0.1 port 22 is already used by hosts[0] (node0, line 3)");
    alias_and_address => (4, 14, "hosts[0].address", "ssh_alias is also set (line 3)");
    no_address => (2, 11, "hosts[0]", "neither address nor ssh_alias is set");
    bad_experiment_ip => (4, 20, "hosts[0].experiment_ip", "`10.0.1.300` is not an IPv4 or IPv6 address");
    bad_hostname => (3, 14, "hosts[0].address", "`bad_host!` is not a hostname or IP address: '_' is not allowed");
    address_looks_like_option => (3, 14, "hosts[0].address", "`-oProxyCommand=x` is not a hostname or IP address");
    user_starts_with_dash => (2, 9, "defaults.user", "`-oops` must not start with '-'");
    bad_role => (5, 22, "hosts[0].roles[1]", "unknown role `leader`, expected one of zookeeper, client, replica, traffic");
    zk_id_zero => (6, 12, "hosts[0].zk_id", "0 is not 1..=255");
    zk_id_too_large => (6, 12, "hosts[0].zk_id", "300 is not 1..=255");
    zookeeper_without_zk_id => (8, 11, "hosts[1].zk_id", "missing; every host with role zookeeper needs one");
    zk_id_without_zookeeper => (6, 12, "hosts[0].zk_id", "only allowed on a host with role zookeeper");
    bad_host_key => (2, 13, "defaults.host_key", "`ask` is not a host key policy; expected strict or accept-new");
    bad_java => (2, 9, "defaults.java", "`apt` is not a Java policy; expected require (the default) or install");
    bad_interface => (5, 24, "hosts[0].interfaces[1]", "`eth0:1` contains ':'");
    bad_jump => (5, 11, "hosts[0].jump", "port `99999` is not 1..=65535");
    bad_arch => (5, 11, "hosts[0].arch", "`riscv64` is not a supported architecture");
    orch_dir_dotdot => (5, 15, "hosts[0].orch_dir", "must not contain a `..` component");
    orch_dir_relative => (2, 13, "defaults.orch_dir", "must be absolute or start with `~/`");
    tilde_user_path => (2, 18, "defaults.identity_file", "only `~/` is expanded");
    connect_timeout_zero => (2, 25, "defaults.connect_timeout_secs", "0 is not 1..=300 seconds");
    name_all => (2, 11, "hosts[0].name", "`all` is reserved");
    empty_hosts => (3, 8, "hosts", "no hosts; list at least one");
    missing_hosts => (1, 1, "hosts", "missing field `hosts`");
    missing_name => (6, 5, "hosts[1].name", "missing field `name`");
    missing_experiment_ip => (6, 5, "hosts[1].experiment_ip", "missing field `experiment_ip`");
    missing_experiment_ip_flow => (5, 19, "hosts[1].experiment_ip", "missing field `experiment_ip`");
    duplicate_key => (5, 5, "hosts[0].address", "duplicate mapping key `address`");
    syntax_error => (5, 17, "hosts[0].interfaces", "unclosed bracket '['");
    tab_indentation => (4, 20, "hosts[0].experiment_ip", "must use spaces, not tabs");
    tab_before_item => (2, 2, "hosts", "tabs disallowed");
    hosts_is_a_map => (2, 3, "hosts", "expected a list");
    wrong_type_sudo => (5, 11, "hosts[0].sudo", "expected a single value, not a list or mapping");
    zookeeper_two_sources => (7, 16, "zookeeper.install_dir", "tarball is also set (line 6); set one of tarball, version and install_dir");
    zookeeper_port_clash => (6, 16, "zookeeper.client_port", "4888 is also quorum_port; the three ports must differ");
    zookeeper_bad_version => (6, 12, "zookeeper.version", "`latest` is not a release number like 3.8.4");
    zookeeper_install_dir_relative => (6, 16, "zookeeper.install_dir", "must be absolute or start with `~/`");
    zookeeper_tick_time_zero => (6, 14, "zookeeper.tick_time", "0 is not 1..=60000");
    zookeeper_unknown_key => (6, 3, "zookeeper.tarbal", "unknown field `tarbal`, expected one of tarball, version, install_dir,");
    template_unknown => (6, 3, "templates.zoo.conf", "unknown field `zoo.conf`, expected one of zoo.cfg, myid, replica.yaml");
}

#[test]
fn every_semantic_problem_of_a_file_is_reported() {
    let (_, problems) = problems("many_problems");
    let found: Vec<(usize, &str)> = problems
        .iter()
        .map(|p| (p.line, p.field.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (2, "defaults.port"),
            (9, "hosts[1].name"),
            (10, "hosts[1].address"),
            (11, "hosts[1].experiment_ip"),
            (13, "hosts[1].zk_id"),
            (15, "hosts[2].ssh_alias"),
            (16, "hosts[2].experiment_ip"),
            (18, "hosts[2].zk_id"),
            (19, "hosts[2].interfaces[0]"),
        ]
    );
}

#[test]
fn error_display_has_one_problem_per_line() {
    let path = fixture("bad/many_problems.yaml");
    let shown = Inventory::load(&path).unwrap_err().to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 9);
    assert_eq!(
        lines[2],
        format!(
            "{}:10:14: hosts[1].address: 10.0.0.1 port 22 is already used by hosts[0] (node0, line 5)",
            path.display()
        )
    );
}

#[test]
fn the_file_name_is_shown_as_given() {
    let text = "hosts:\n  - name: a\n    address: a.example.org\n    experiment_ip: 10.0.1.1\n  \
                - name: b\n    address: b.example.org\n    port: 70000\n    experiment_ip: 10.0.1.2\n";
    let err = Inventory::parse(text, Path::new("inventory.yaml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "inventory.yaml:7:11: hosts[1].port: invalid u16"
    );
}

#[test]
fn an_empty_file_says_so() {
    let (path, problems) = problems("empty");
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].to_string(),
        format!(
            "{}: the file is empty; an inventory needs a `hosts` list",
            path.display()
        )
    );
}

#[test]
fn a_missing_file_cannot_be_read() {
    let path = fixture("bad/does-not-exist.yaml");
    let err = Inventory::load(&path).unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert_eq!(err.problems[0].line, 0);
    let shown = err.to_string();
    let prefix = format!("{}: cannot read: ", path.display());
    assert!(shown.starts_with(&prefix), "{shown}");
}

#[test]
fn the_cloudlab_example_loads() {
    let inv =
        Inventory::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory/cloudlab.yaml"))
            .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["node0", "node1", "node2", "node3", "node4"]);
    for (i, host) in inv.hosts.iter().enumerate() {
        let n = i + 1;
        // The seed reproduces on CloudLab's Wisconsin cluster only.
        assert_eq!(
            host.ssh.destination,
            format!("c220g5-11090{n}.wisc.cloudlab.us")
        );
        assert_eq!(host.ssh.user.as_deref(), Some("researcher"));
        assert_eq!(
            host.experiment_ip,
            format!("10.0.{n}.2").parse::<IpAddr>().unwrap()
        );
        assert_eq!(host.zk_id, Some(n as u8));
        assert!(host.sudo);
        assert_eq!(host.interfaces, ["enp6s0f0"]);
        assert!(host.has_role(Role::Zookeeper) && host.has_role(Role::Replica));
        assert!(host.has_role(Role::Traffic));
        assert_eq!(host.has_role(Role::Client), i == 0);
    }
}

#[test]
fn the_lab_example_loads() {
    let inv = Inventory::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory/lab-example.yaml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inv.hosts.len(), 3);
    let host2 = inv.host("host2").unwrap();
    assert_eq!(host2.ssh.destination, "10.0.1.3");
    assert_eq!(host2.experiment_ip.to_string(), "10.0.1.3");
    assert_eq!(host2.ssh.user.as_deref(), Some("root"));
    assert_eq!(host2.ssh.port, Some(22));
    let lab = Path::new("/var/lib/orch/lab/orch");
    assert_eq!(
        host2.ssh.identity_file.as_deref(),
        Some(lab.join("id_ed25519").as_path())
    );
    assert_eq!(
        host2.ssh.known_hosts_file.as_deref(),
        Some(lab.join("known_hosts").as_path())
    );
    assert_eq!(
        host2.ssh.control_dir.as_deref(),
        Some(lab.join("ssh").as_path())
    );
    assert_eq!(host2.ssh.host_key, HostKeyPolicy::Strict);
    assert_eq!(host2.interfaces, ["eth0"]);
    assert_eq!(host2.zk_id, Some(2));
}

#[test]
fn defaults_apply_and_host_values_win() {
    let path = fixture("good/every_key.yaml");
    let inv = Inventory::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let dir = std::path::absolute(path.parent().unwrap()).unwrap();
    let home = PathBuf::from(std::env::var_os("HOME").unwrap());
    assert_eq!(inv.path, path);

    let alpha = inv.host("alpha").unwrap();
    assert_eq!(alpha.line, 18);
    assert_eq!(alpha.ssh.destination, "cl-alpha");
    assert_eq!(alpha.ssh.user.as_deref(), Some("researcher"));
    assert_eq!(alpha.ssh.port, Some(2222));
    assert_eq!(alpha.ssh.identity_file, Some(dir.join("keys/id_ed25519")));
    assert_eq!(alpha.ssh.jump.as_deref(), Some("me@bastion.example.org:22"));
    assert_eq!(alpha.ssh.host_key, HostKeyPolicy::AcceptNew);
    assert_eq!(alpha.ssh.connect_timeout, Duration::from_secs(10));
    assert_eq!(
        alpha.ssh.known_hosts_file,
        Some(dir.join("ssh/known_hosts"))
    );
    assert_eq!(alpha.ssh.control_dir, Some(PathBuf::from("/tmp/orch-ssh")));
    assert!(alpha.sudo);
    assert_eq!(alpha.orch_dir, "/opt/orch");
    assert_eq!(alpha.interfaces, ["eth1"]);
    assert_eq!(alpha.roles, [Role::Zookeeper, Role::Client]);
    assert_eq!(alpha.zk_id, Some(7));
    assert_eq!(alpha.arch, Some(Arch::X86_64));

    let beta = inv.host("beta.2").unwrap();
    assert_eq!(beta.ssh.destination, "beta.example.org");
    assert_eq!(beta.ssh.user.as_deref(), Some("root"));
    assert_eq!(beta.ssh.port, Some(22));
    assert_eq!(beta.ssh.identity_file, Some(home.join(".ssh/beta")));
    assert_eq!(beta.ssh.jump.as_deref(), Some("[2001:db8::1]:2200"));
    assert_eq!(beta.ssh.host_key, HostKeyPolicy::Strict);
    assert_eq!(beta.ssh.connect_timeout, Duration::from_secs(300));
    assert_eq!(
        beta.ssh.known_hosts_file,
        Some(PathBuf::from("/etc/ssh/ssh_known_hosts"))
    );
    assert_eq!(beta.ssh.control_dir, Some(dir.join("sockets")));
    assert!(!beta.sudo);
    assert_eq!(beta.orch_dir, "~/orch-beta");
    assert!(beta.interfaces.is_empty() && beta.roles.is_empty());
    assert_eq!(beta.zk_id, None);
    assert_eq!(beta.arch, Some(Arch::Aarch64));
    assert_eq!(beta.experiment_ip, "fd00::2".parse::<IpAddr>().unwrap());

    let gamma = inv.host("gamma_3").unwrap();
    assert_eq!(gamma.ssh.destination, "2001:db8::3");
    assert_eq!(gamma.roles, [Role::Replica]);

    let tarball = dir.join("dist/apache-zookeeper-3.8.4-bin.tar.gz");
    assert_eq!(
        inv.zookeeper,
        Zookeeper {
            source: Some(ZookeeperSource::Tarball(tarball)),
            client_port: 2182,
            quorum_port: 2888,
            election_port: 3888,
            tick_time_ms: 1000,
            init_limit: 20,
            sync_limit: 2,
        }
    );
    let templates: Vec<(&str, PathBuf, usize)> = inv
        .templates
        .iter()
        .map(|(name, t)| (name.as_str(), t.path.clone(), t.line))
        .collect();
    assert_eq!(
        templates,
        [
            ("myid", home.join("myid.tera"), 56),
            (
                "replica.yaml",
                PathBuf::from("/etc/orch/replica.yaml.tera"),
                57
            ),
            ("zoo.cfg", dir.join("templates/my-zoo.cfg.tera"), 55),
        ]
    );
}

#[test]
fn zookeeper_sources_are_one_of_three() {
    let hosts = "hosts:\n  - {name: a, address: 10.0.0.1, experiment_ip: 10.0.1.1}\n";
    let source = |section: &str| {
        Inventory::parse(
            &format!("{hosts}zookeeper:\n{section}"),
            Path::new("i.yaml"),
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .zookeeper
        .source
    };
    assert_eq!(
        source("  version: 3.8.4\n"),
        Some(ZookeeperSource::Version("3.8.4".into()))
    );
    assert_eq!(
        source("  install_dir: ~/zk\n"),
        Some(ZookeeperSource::InstallDir("~/zk".into()))
    );
    assert_eq!(source("  client_port: 2181\n"), None);
}

#[test]
fn unset_keys_take_the_documented_defaults() {
    let inv = Inventory::load(&fixture("good/minimal.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let host = &inv.hosts[0];
    assert_eq!(host.line, 2);
    assert_eq!(host.ssh.user, None);
    assert_eq!(host.ssh.port, None);
    assert_eq!(host.ssh.identity_file, None);
    assert_eq!(host.ssh.jump, None);
    assert_eq!(host.ssh.host_key, HostKeyPolicy::Strict);
    assert_eq!(host.ssh.connect_timeout, Duration::from_secs(5));
    assert_eq!(host.ssh.known_hosts_file, None);
    assert_eq!(host.ssh.control_dir, None);
    assert!(!host.sudo);
    assert_eq!(host.orch_dir, "~/.orch");
    assert!(host.interfaces.is_empty() && host.roles.is_empty());
    assert_eq!((host.zk_id, host.arch), (None, None));
    assert_eq!(inv.zookeeper, Zookeeper::default());
    assert_eq!(
        (inv.zookeeper.client_port, inv.zookeeper.quorum_port),
        (2181, 4888)
    );
    assert_eq!(inv.zookeeper.election_port, 5888);
    assert!(inv.templates.is_empty());
}

#[test]
fn selection_by_name_and_role_on_the_cloudlab_example() {
    let inv =
        Inventory::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory/cloudlab.yaml"))
            .unwrap_or_else(|e| panic!("{e}"));
    let names = |spec: Option<&str>| -> Vec<String> {
        inv.select(spec)
            .unwrap()
            .iter()
            .map(|h| h.name.clone())
            .collect()
    };
    assert_eq!(names(None).len(), 5);
    assert_eq!(names(Some("all")).len(), 5);
    assert_eq!(names(Some("role:client")), ["node0"]);
    assert_eq!(names(Some("node3, role:client,node3")), ["node0", "node3"]);
    assert_eq!(
        inv.select(Some("node9")).unwrap_err().to_string(),
        "unknown host `node9`; the inventory has node0, node1, node2, node3, node4"
    );
    assert!(matches!(
        inv.select(Some("role:leader")),
        Err(SelectError::UnknownRole(_))
    ));
}
