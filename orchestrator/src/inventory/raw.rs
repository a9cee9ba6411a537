//! The inventory file as written: serde structs that mirror the YAML, every value still
//! [`Spanned`] so that [`super::check`] can point at it.

use serde::Deserialize;
use serde_saphyr::Spanned;

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInventory {
    pub(super) defaults: Option<RawSettings>,
    pub(super) hosts: Spanned<Option<Vec<RawHost>>>,
    pub(super) zookeeper: Option<RawZookeeper>,
    pub(super) templates: Option<RawTemplates>,
}

/// The `zookeeper:` section.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawZookeeper {
    pub(super) tarball: Option<Spanned<String>>,
    pub(super) version: Option<Spanned<String>>,
    pub(super) install_dir: Option<Spanned<String>>,
    pub(super) client_port: Option<Spanned<u16>>,
    pub(super) quorum_port: Option<Spanned<u16>>,
    pub(super) election_port: Option<Spanned<u16>>,
    pub(super) tick_time: Option<Spanned<u64>>,
    pub(super) init_limit: Option<Spanned<u64>>,
    pub(super) sync_limit: Option<Spanned<u64>>,
}

/// The `templates:` section: one optional file per template orch renders.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTemplates {
    #[serde(rename = "zoo.cfg")]
    pub(super) zoo_cfg: Option<Spanned<String>>,
    pub(super) myid: Option<Spanned<String>>,
    #[serde(rename = "replica.yaml")]
    pub(super) replica_yaml: Option<Spanned<String>>,
}

/// Keys allowed both in `defaults` and in a host; the host's value wins.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSettings {
    pub(super) user: Option<Spanned<String>>,
    pub(super) port: Option<Spanned<u16>>,
    pub(super) identity_file: Option<Spanned<String>>,
    pub(super) jump: Option<Spanned<String>>,
    pub(super) host_key: Option<Spanned<String>>,
    pub(super) sudo: Option<bool>,
    pub(super) orch_dir: Option<Spanned<String>>,
    pub(super) interfaces: Option<Vec<Spanned<String>>>,
    pub(super) roles: Option<Vec<Spanned<String>>>,
    pub(super) connect_timeout_secs: Option<Spanned<u64>>,
    pub(super) known_hosts_file: Option<Spanned<String>>,
    pub(super) control_dir: Option<Spanned<String>>,
    pub(super) arch: Option<Spanned<String>>,
    pub(super) java: Option<Spanned<String>>,
}

/// One entry of `hosts`: its own keys plus every key of [`RawSettings`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHost {
    pub(super) name: Spanned<String>,
    pub(super) ssh_alias: Option<Spanned<String>>,
    pub(super) address: Option<Spanned<String>>,
    pub(super) experiment_ip: Spanned<String>,
    pub(super) zk_id: Option<Spanned<u64>>,
    pub(super) user: Option<Spanned<String>>,
    pub(super) port: Option<Spanned<u16>>,
    pub(super) identity_file: Option<Spanned<String>>,
    pub(super) jump: Option<Spanned<String>>,
    pub(super) host_key: Option<Spanned<String>>,
    pub(super) sudo: Option<bool>,
    pub(super) orch_dir: Option<Spanned<String>>,
    pub(super) interfaces: Option<Vec<Spanned<String>>>,
    pub(super) roles: Option<Vec<Spanned<String>>>,
    pub(super) connect_timeout_secs: Option<Spanned<u64>>,
    pub(super) known_hosts_file: Option<Spanned<String>>,
    pub(super) control_dir: Option<Spanned<String>>,
    pub(super) arch: Option<Spanned<String>>,
    pub(super) java: Option<Spanned<String>>,
}

impl RawHost {
    /// Separates the keys shared with `defaults` so both are validated by the same code.
    pub(super) fn settings(&mut self) -> RawSettings {
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
