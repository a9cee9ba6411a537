//! The lab network: one bridge in the root namespace, one network namespace per host, joined by a
//! veth pair whose inner end is the host's `eth0`. With `--control-net` there are two bridges,
//! as on CloudLab: the control network (SSH, `eth0`) and the experiment network (`eth1`), which
//! the machine itself has no address on.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Result};

use super::cmd::ip;

/// The bridge of lab `lab`.
pub(super) fn bridge_name(lab: &str) -> String {
    format!("olbr-{lab}")
}

/// The control network's bridge of lab `lab` (with `--control-net`).
pub(super) fn control_bridge_name(lab: &str) -> String {
    format!("olbc-{lab}")
}

/// The root-namespace end of host `i`'s control veth (with `--control-net`).
pub(super) fn control_veth_name(lab: &str, i: usize) -> String {
    format!("oc-{lab}-{i}")
}

/// The network namespace of host `i` (1-based).
pub(super) fn netns_name(lab: &str, i: usize) -> String {
    format!("orch-{lab}-h{i}")
}

/// The root-namespace end of host `i`'s veth pair (at most 12 characters, below IFNAMSIZ).
pub(super) fn veth_name(lab: &str, i: usize) -> String {
    format!("ol-{lab}-{i}")
}

/// The bridge's address, the hosts' gateway: A.B.0.1.
pub(super) fn gateway(net: [u8; 2]) -> Ipv4Addr {
    Ipv4Addr::new(net[0], net[1], 0, 1)
}

/// Host `i`'s address: A.B.i.2 (the lab has at most 64 hosts, so `i` fits an octet).
pub(super) fn host_address(net: [u8; 2], i: usize) -> Ipv4Addr {
    Ipv4Addr::new(net[0], net[1], i as u8, 2)
}

/// Names of the network namespaces that exist now.
pub(super) fn existing_netns() -> Result<BTreeSet<String>> {
    Ok(ip(&["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// Names of the links of the root network namespace.
pub(super) fn existing_links() -> Result<BTreeSet<String>> {
    Ok(ip(&["-o", "link", "show"])?
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_string())
        .collect())
}

/// Fails if any name lab `lab` would create already exists, or if the root namespace already
/// routes part of A.B.0.0/16: those belong to someone else and are left alone.
pub(super) fn check_free(
    lab: &str,
    hosts: usize,
    net: [u8; 2],
    control: Option<[u8; 2]>,
) -> Result<()> {
    let links = existing_links()?;
    let namespaces = existing_netns()?;
    let mut taken: Vec<String> = Vec::new();
    let mut names = vec![bridge_name(lab)];
    if control.is_some() {
        names.push(control_bridge_name(lab));
        names.extend((1..=hosts).map(|i| control_veth_name(lab, i)));
    }
    names.extend((1..=hosts).map(|i| veth_name(lab, i)));
    for link in names.iter().filter(|l| links.contains(*l)) {
        taken.push(format!("link {link} (`ip link del {link}`)"));
    }
    for ns in (1..=hosts).map(|i| netns_name(lab, i)) {
        if namespaces.contains(&ns) {
            taken.push(format!("network namespace {ns} (`ip netns del {ns}`)"));
        }
    }
    if !taken.is_empty() {
        bail!(
            "these already exist but do not belong to lab {lab}: {}; orch leaves them alone: \
             remove them yourself if they are left over, or choose another --name",
            taken.join(", ")
        );
    }
    for (flag, net) in [("--net", Some(net)), ("--control-net", control)] {
        let Some(net) = net else { continue };
        let prefix = format!("{}.{}.0.0/16", net[0], net[1]);
        let routes = ip(&["-o", "-4", "route", "show", "root", &prefix])?;
        if !routes.trim().is_empty() {
            bail!(
                "the network {prefix} is already in use here (`ip route show root {prefix}`: {}); \
                 choose another {flag}",
                routes.trim()
            );
        }
    }
    Ok(())
}

/// Creates the bridge, with the gateway address of `net` if given (the experiment bridge of a
/// lab with a control network has none), and brings it up.
pub(super) fn create_bridge(bridge: &str, net: Option<[u8; 2]>) -> Result<()> {
    ip(&["link", "add", bridge, "type", "bridge"])?;
    if let Some(net) = net {
        let cidr = format!("{}/16", gateway(net));
        ip(&["addr", "add", &cidr, "dev", bridge])?;
    }
    ip(&["link", "set", bridge, "up"])?;
    Ok(())
}

/// Creates an empty network namespace with its loopback up.
pub(super) fn create_netns(ns: &str) -> Result<()> {
    ip(&["netns", "add", ns])?;
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    Ok(())
}

/// One end of a veth pair inside a host.
pub(super) struct HostEnd<'a> {
    /// The interface name in the host (`eth0`, `eth1`).
    pub name: &'a str,
    /// Its address (in a /16).
    pub addr: Ipv4Addr,
    /// The default route of the host, if it goes through this interface.
    pub gateway: Option<Ipv4Addr>,
}

/// Creates the veth pair `veth` (root namespace, on `bridge`) / `end` (in `ns`).
pub(super) fn create_veth(veth: &str, ns: &str, bridge: &str, end: &HostEnd) -> Result<()> {
    let cidr = format!("{}/16", end.addr);
    ip(&[
        "link", "add", veth, "type", "veth", "peer", "name", end.name, "netns", ns,
    ])?;
    ip(&["link", "set", veth, "master", bridge, "up"])?;
    ip(&["-n", ns, "addr", "add", &cidr, "dev", end.name])?;
    ip(&["-n", ns, "link", "set", end.name, "up"])?;
    if let Some(gw) = end.gateway {
        ip(&["-n", ns, "route", "add", "default", "via", &gw.to_string()])?;
    }
    Ok(())
}

/// Pids of every process whose network namespace is `ns`.
pub(super) fn netns_pids(ns: &str) -> Result<Vec<u32>> {
    Ok(ip(&["netns", "pids", ns])?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect())
}

/// True if something accepts TCP connections on `addr` within `timeout`.
pub(super) fn port_open(addr: SocketAddr, timeout: Duration) -> bool {
    TcpStream::connect_timeout(&addr, timeout).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_in_an_interface_name() {
        assert_eq!(veth_name("abcdef", 64), "ol-abcdef-64");
        assert!(veth_name("abcdef", 64).len() <= 15);
        assert!(bridge_name("abcdef").len() <= 15);
        assert!(control_bridge_name("abcdef").len() <= 15);
        assert_eq!(control_veth_name("abcdef", 64), "oc-abcdef-64");
        assert_eq!(netns_name("orch", 3), "orch-orch-h3");
        assert_eq!(host_address([10, 0], 7), Ipv4Addr::new(10, 0, 7, 2));
    }
}
