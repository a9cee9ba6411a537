//! The lab network: one bridge in the root namespace, one network namespace per host, joined by a
//! veth pair whose inner end is the host's `eth0`.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Result};

use super::cmd::ip;

/// The bridge of lab `lab`.
pub(super) fn bridge_name(lab: &str) -> String {
    format!("olbr-{lab}")
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
pub(super) fn check_free(lab: &str, hosts: usize, net: [u8; 2]) -> Result<()> {
    let links = existing_links()?;
    let namespaces = existing_netns()?;
    let mut taken: Vec<String> = Vec::new();
    let bridge = bridge_name(lab);
    if links.contains(&bridge) {
        taken.push(format!("link {bridge} (`ip link del {bridge}`)"));
    }
    for i in 1..=hosts {
        let (ns, veth) = (netns_name(lab, i), veth_name(lab, i));
        if namespaces.contains(&ns) {
            taken.push(format!("network namespace {ns} (`ip netns del {ns}`)"));
        }
        if links.contains(&veth) {
            taken.push(format!("link {veth} (`ip link del {veth}`)"));
        }
    }
    if !taken.is_empty() {
        bail!(
            "these already exist but do not belong to lab {lab}: {}; orch leaves them alone: \
             remove them yourself if they are left over, or choose another --name",
            taken.join(", ")
        );
    }
    let prefix = format!("{}.{}.0.0/16", net[0], net[1]);
    let routes = ip(&["-o", "-4", "route", "show", "root", &prefix])?;
    if !routes.trim().is_empty() {
        bail!(
            "the network {prefix} is already in use here (`ip route show root {prefix}`: {}); \
             choose another --net",
            routes.trim()
        );
    }
    Ok(())
}

/// Creates the bridge with the gateway address and brings it up.
pub(super) fn create_bridge(bridge: &str, net: [u8; 2]) -> Result<()> {
    let cidr = format!("{}/16", gateway(net));
    ip(&["link", "add", bridge, "type", "bridge"])?;
    ip(&["addr", "add", &cidr, "dev", bridge])?;
    ip(&["link", "set", bridge, "up"])?;
    Ok(())
}

/// Creates an empty network namespace with its loopback up.
pub(super) fn create_netns(ns: &str) -> Result<()> {
    ip(&["netns", "add", ns])?;
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    Ok(())
}

/// Creates the veth pair `veth` (root namespace, on `bridge`) / `eth0` (in `ns`, with `addr`)
/// and routes everything else from `ns` through the bridge.
pub(super) fn create_veth(
    veth: &str,
    ns: &str,
    bridge: &str,
    addr: Ipv4Addr,
    net: [u8; 2],
) -> Result<()> {
    let cidr = format!("{addr}/16");
    let gw = gateway(net).to_string();
    ip(&[
        "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
    ])?;
    ip(&["link", "set", veth, "master", bridge, "up"])?;
    ip(&["-n", ns, "addr", "add", &cidr, "dev", "eth0"])?;
    ip(&["-n", ns, "link", "set", "eth0", "up"])?;
    ip(&["-n", ns, "route", "add", "default", "via", &gw])?;
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
        assert_eq!(netns_name("orch", 3), "orch-orch-h3");
        assert_eq!(host_address([10, 0], 7), Ipv4Addr::new(10, 0, 7, 2));
    }
}
