//! Configuration files rendered per host from tera templates: orch's own (`templates/`,
//! compiled into the binary so an installed orch needs no source tree) unless the inventory's
//! `templates:` points at the user's file.

use std::net::IpAddr;

use anyhow::Context as _;
use serde::Serialize;

use crate::inventory::{Host, Inventory, Role};

/// A file orch renders on the hosts that have `role`.
pub struct Template {
    /// The key of `templates:` in the inventory.
    pub name: &'static str,
    /// Where the file goes, relative to the orch directory.
    pub dest: &'static str,
    pub role: Role,
    builtin: &'static str,
}

/// Every template orch renders.
pub const TEMPLATES: [Template; 3] = [
    Template {
        name: "zoo.cfg",
        dest: "conf/zoo.cfg",
        role: Role::Zookeeper,
        builtin: include_str!("../../../templates/zoo.cfg.tera"),
    },
    Template {
        name: "myid",
        dest: "zk-data/myid",
        role: Role::Zookeeper,
        builtin: include_str!("../../../templates/myid.tera"),
    },
    Template {
        name: "replica.yaml",
        dest: "conf/replica.yaml",
        role: Role::Replica,
        builtin: include_str!("../../../templates/replica.yaml.tera"),
    },
];

/// The parsed templates, ready to render for any host.
pub struct Renderer {
    tera: tera::Tera,
    /// Where each template came from, for error messages.
    origins: Vec<(&'static str, String)>,
}

impl Renderer {
    /// Parses every template, the user's overrides included, so a mistake in one is reported
    /// before any host is touched.
    pub fn load(inventory: &Inventory) -> anyhow::Result<Renderer> {
        let mut tera = tera::Tera::default();
        tera.autoescape_on(Vec::<&str>::new());
        let mut origins = Vec::new();
        for template in &TEMPLATES {
            let (text, origin) = match inventory.templates.get(template.name) {
                Some(user) => {
                    let origin = format!(
                        "{} (templates.{} of {}:{})",
                        user.path.display(),
                        template.name,
                        inventory.path.display(),
                        user.line
                    );
                    let text = std::fs::read_to_string(&user.path)
                        .with_context(|| format!("cannot read template {origin}"))?;
                    (text, origin)
                }
                None => (
                    template.builtin.to_string(),
                    format!("orch's templates/{}.tera", template.name),
                ),
            };
            tera.add_raw_template(template.name, &text)
                .with_context(|| format!("template {origin} does not parse"))?;
            origins.push((template.name, origin));
        }
        Ok(Renderer { tera, origins })
    }

    /// Renders `template` for one host.
    pub fn render(&self, template: &Template, context: &tera::Context) -> anyhow::Result<String> {
        self.tera.render(template.name, context).with_context(|| {
            let origin = self
                .origins
                .iter()
                .find(|(n, _)| *n == template.name)
                .map_or("", |(_, o)| o.as_str());
            format!("cannot render template {origin}")
        })
    }
}

/// What templates may use about a host.
#[derive(Serialize)]
struct HostView {
    name: String,
    experiment_ip: String,
    zk_id: Option<u8>,
    roles: Vec<&'static str>,
    interfaces: Vec<String>,
}

impl HostView {
    fn of(host: &Host) -> HostView {
        HostView {
            name: host.name.clone(),
            experiment_ip: host.experiment_ip.to_string(),
            zk_id: host.zk_id,
            roles: host.roles.iter().map(Role::as_str).collect(),
            interfaces: host.interfaces.clone(),
        }
    }
}

#[derive(Serialize)]
struct ServerView {
    id: u8,
    host: String,
    ip: String,
    /// The IP as it goes before a `:port` (IPv6 in brackets).
    address: String,
}

#[derive(Serialize)]
struct ZookeeperView {
    servers: Vec<ServerView>,
    client_port: u16,
    quorum_port: u16,
    election_port: u16,
    tick_time: u32,
    init_limit: u32,
    sync_limit: u32,
    data_dir: String,
    install_dir: String,
}

#[derive(Serialize)]
struct ReplicaView {
    /// Experiment IPs of every replica host, in inventory order.
    ips: Vec<String>,
    /// This host's index in `ips` (`orch-node elect --id`), if it is a replica.
    id: Option<usize>,
}

/// The variables of every template, for `host`, whose orch directory is `orch_dir` (absolute).
///
/// `host`, `hosts` (every host of the inventory), `orch_dir`, `zookeeper` (`servers` with `id`,
/// `host`, `ip`, `address`; the ports; `tick_time`, `init_limit`, `sync_limit`; `data_dir`,
/// `install_dir`) and `replica` (`ips`, `id`). Documented in docs/setup.md.
pub fn context(inventory: &Inventory, host: &Host, orch_dir: &str) -> tera::Context {
    let ids = |h: &Host| h.zk_id.filter(|_| h.has_role(Role::Zookeeper));
    context_with(
        inventory,
        host,
        orch_dir,
        &ids,
        &format!("{orch_dir}/zk-data"),
    )
}

/// The variables for one run's ensemble (`orch run`): like [`context`], but the servers are
/// those of `ids` with the run's server ids (the designated leader gets the highest), and the
/// data directory is the run's own.
pub fn run_context(
    inventory: &Inventory,
    host: &Host,
    orch_dir: &str,
    ids: &[(String, u8)],
    data_dir: &str,
) -> tera::Context {
    let ids = |h: &Host| ids.iter().find(|(n, _)| *n == h.name).map(|(_, id)| *id);
    context_with(inventory, host, orch_dir, &ids, data_dir)
}

fn context_with(
    inventory: &Inventory,
    host: &Host,
    orch_dir: &str,
    zk_id: &dyn Fn(&Host) -> Option<u8>,
    data_dir: &str,
) -> tera::Context {
    let zk = &inventory.zookeeper;
    let servers = inventory
        .hosts
        .iter()
        .filter_map(|h| {
            Some(ServerView {
                id: zk_id(h)?,
                host: h.name.clone(),
                ip: h.experiment_ip.to_string(),
                address: match h.experiment_ip {
                    IpAddr::V4(ip) => ip.to_string(),
                    IpAddr::V6(ip) => format!("[{ip}]"),
                },
            })
        })
        .collect();
    let replicas: Vec<&Host> = inventory
        .hosts
        .iter()
        .filter(|h| h.has_role(Role::Replica))
        .collect();
    let mut context = tera::Context::new();
    let mut this = HostView::of(host);
    this.zk_id = zk_id(host).or(host.zk_id);
    context.insert("host", &this);
    let hosts: Vec<HostView> = inventory.hosts.iter().map(HostView::of).collect();
    context.insert("hosts", &hosts);
    context.insert("orch_dir", orch_dir);
    context.insert(
        "zookeeper",
        &ZookeeperView {
            servers,
            client_port: zk.client_port,
            quorum_port: zk.quorum_port,
            election_port: zk.election_port,
            tick_time: zk.tick_time_ms,
            init_limit: zk.init_limit,
            sync_limit: zk.sync_limit,
            data_dir: data_dir.to_string(),
            install_dir: format!("{orch_dir}/zookeeper/current"),
        },
    );
    context.insert(
        "replica",
        &ReplicaView {
            ips: replicas
                .iter()
                .map(|h| h.experiment_ip.to_string())
                .collect(),
            id: replicas.iter().position(|h| h.name == host.name),
        },
    );
    context
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn inventory(extra: &str) -> Inventory {
        let text = format!(
            "defaults:\n  roles: [zookeeper, replica]\n  interfaces: [eth1]\nhosts:\n  \
             - {{name: a, address: 10.0.0.1, experiment_ip: 10.0.1.2, zk_id: 1}}\n  \
             - {{name: b, address: 10.0.0.2, experiment_ip: 10.0.2.2, zk_id: 2}}\n  \
             - {{name: c, address: 10.0.0.3, experiment_ip: 'fd00::3', zk_id: 3}}\n  \
             - {{name: d, address: 10.0.0.4, experiment_ip: 10.0.4.2, roles: [client]}}\n{extra}"
        );
        Inventory::parse(&text, Path::new("inv.yaml")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn render(inv: &Inventory, name: &str, host: &str) -> anyhow::Result<String> {
        let renderer = Renderer::load(inv)?;
        let template = TEMPLATES.iter().find(|t| t.name == name).unwrap();
        let host = inv.host(host).unwrap();
        renderer.render(template, &context(inv, host, "/home/u/.orch"))
    }

    #[test]
    fn zoo_cfg_lists_every_server_with_the_configured_ports() {
        let inv = inventory("zookeeper:\n  quorum_port: 2888\n  election_port: 3888\n");
        let cfg = render(&inv, "zoo.cfg", "b").unwrap();
        let lines: Vec<&str> = cfg.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "tickTime=2000",
                "initLimit=10",
                "syncLimit=5",
                "dataDir=/home/u/.orch/zk-data",
                "clientPort=2181",
                "4lw.commands.whitelist=srvr, stat, ruok, mntr",
                "admin.enableServer=false",
                "preAllocSize=8192",
                "server.1=10.0.1.2:2888:3888",
                "server.2=10.0.2.2:2888:3888",
                "server.3=[fd00::3]:2888:3888",
            ]
        );
        assert!(cfg.ends_with(":3888\n"), "{cfg:?}");
    }

    #[test]
    fn myid_is_the_hosts_id() {
        let inv = inventory("");
        assert_eq!(render(&inv, "myid", "c").unwrap(), "3\n");
    }

    #[test]
    fn replica_config_lists_the_replicas_and_this_hosts_index() {
        let inv = inventory("");
        let text = render(&inv, "replica.yaml", "b").unwrap();
        assert!(text.contains("--id 1\n"), "{text}");
        let yaml = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            yaml.contains("  ips:\n    - \"10.0.1.2\"\n    - \"10.0.2.2\"\n    - \"fd00::3\"\n  interfaces: [\"eth1\"]\n"),
            "{yaml}"
        );
        assert!(yaml.contains("eventLog: \"/home/u/.orch/logs/replica-{id}.jsonl\""));
    }

    #[test]
    fn the_inventory_can_replace_a_template() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("zoo.tera"),
            "servers={{ zookeeper.servers | length }}\n",
        )
        .unwrap();
        let file = dir.path().join("zoo.tera");
        let inv = inventory(&format!("templates:\n  zoo.cfg: {}\n", file.display()));
        assert_eq!(render(&inv, "zoo.cfg", "a").unwrap(), "servers=3\n");
    }

    #[test]
    fn template_mistakes_name_the_file_and_the_inventory_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("myid.tera");
        std::fs::write(&file, "{{ host.zk_id\n").unwrap();
        let inv = inventory(&format!("templates:\n  myid: {}\n", file.display()));
        let err = format!("{:#}", Renderer::load(&inv).err().unwrap());
        let origin = format!("{} (templates.myid of inv.yaml:10)", file.display());
        assert!(err.contains(&origin), "{err}");
        assert!(err.contains("does not parse"), "{err}");

        std::fs::write(&file, "{{ host.zk_idd }}\n").unwrap();
        let err = format!("{:#}", render(&inv, "myid", "a").unwrap_err());
        assert!(err.contains("cannot render template"), "{err}");

        let missing = dir.path().join("nope.tera");
        let inv = inventory(&format!("templates:\n  myid: {}\n", missing.display()));
        let err = format!("{:#}", Renderer::load(&inv).err().unwrap());
        assert!(err.contains("cannot read template"), "{err}");
    }
}
