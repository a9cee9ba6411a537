//! The emulator's nftables table: one per address family, created with the `owner` flag so the
//! kernel deletes it when the socket that made it closes (also on `kill -9`), holding one rule
//! per destination that hands matching packets to an NFQUEUE with `bypass` (if no process
//! listens on the queue, packets pass untouched).
//!
//! This kernel family often lacks `nft_queue` but has `nft_compat` and the xtables `NFQUEUE`
//! target, so the rules use the xtables target through nft_compat, as `iptables-nft` does; that
//! works wherever either exists in the usual distribution kernels.

use std::io;
use std::net::IpAddr;

use super::nl::{self, Attrs, Batch, Socket, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REQUEST};
use orch_common::delay::{Family, Installed, InstalledRule, Rule};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
const NFT_TABLE_F_OWNER: u32 = 0x2;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFT_META_OIFNAME: u32 = 7;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFT_CMP_EQ: u32 = 0;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_COUNTER_BYTES: u16 = 1;
const NFTA_COUNTER_PACKETS: u16 = 2;
const NFTA_TARGET_NAME: u16 = 1;
const NFTA_TARGET_REV: u16 = 2;
const NFTA_TARGET_INFO: u16 = 3;
const NFT_REG_1: u32 = 1;
const NF_INET_POST_ROUTING: u32 = 4;
const NF_ACCEPT: u32 = 1;
/// `NFQ_FLAG_BYPASS` of `struct xt_NFQ_info_v3`.
const NFQ_FLAG_BYPASS: u16 = 0x1;

/// The chain every rule lives in: on `postrouting`, so it sees what leaves the host, local or
/// forwarded, after routing chose the interface.
pub const CHAIN: &str = "egress";

/// The netfilter protocol number of `family`.
fn nfproto(family: Family) -> u8 {
    match family {
        Family::Ip => libc::NFPROTO_IPV4 as u8,
        Family::Ip6 => libc::NFPROTO_IPV6 as u8,
    }
}

/// Where the destination address sits in the network header of `family`.
fn daddr(family: Family) -> (u32, u32) {
    match family {
        Family::Ip => (16, 4),
        Family::Ip6 => (24, 16),
    }
}

/// Creates the owned table, its chain and one rule per entry of `rules` (rule `i` queues to
/// `queue + i`) in one atomic batch. The table lives as long as `sock` stays open.
pub fn install(
    sock: &Socket,
    family: Family,
    table: &str,
    rules: &[(u16, &Rule)],
) -> io::Result<()> {
    let mut b = Batch::new();
    let mut what = Vec::new();
    begin_batch(&mut b);
    let ack = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE;
    let fam = nfproto(family);

    what.push((
        b.begin(NFT_MSG_NEWTABLE | (NFNL_SUBSYS_NFTABLES << 8), ack, fam, 0),
        format!("creating table {table}"),
    ));
    b.attr_str(NFTA_TABLE_NAME, table);
    b.attr_be32(NFTA_TABLE_FLAGS, NFT_TABLE_F_OWNER);
    b.end();

    what.push((
        b.begin(NFT_MSG_NEWCHAIN | (NFNL_SUBSYS_NFTABLES << 8), ack, fam, 0),
        format!("creating chain {CHAIN}"),
    ));
    b.attr_str(NFTA_CHAIN_TABLE, table);
    b.attr_str(NFTA_CHAIN_NAME, CHAIN);
    b.nest(NFTA_CHAIN_HOOK);
    b.attr_be32(NFTA_HOOK_HOOKNUM, NF_INET_POST_ROUTING);
    b.attr_be32(NFTA_HOOK_PRIORITY, 0);
    b.unnest();
    b.attr_be32(NFTA_CHAIN_POLICY, NF_ACCEPT);
    b.attr_str(NFTA_CHAIN_TYPE, "filter");
    b.end();

    for (queue, rule) in rules {
        let seq = b.begin(NFT_MSG_NEWRULE | (NFNL_SUBSYS_NFTABLES << 8), ack, fam, 0);
        what.push((
            seq,
            format!("adding the rule for {} (queue {queue})", rule.dst),
        ));
        b.attr_str(NFTA_RULE_TABLE, table);
        b.attr_str(NFTA_RULE_CHAIN, CHAIN);
        b.nest(NFTA_RULE_EXPRESSIONS);
        if let Some(name) = &rule.interface {
            expr(&mut b, "meta", |b| {
                b.attr_be32(NFTA_META_DREG, NFT_REG_1);
                b.attr_be32(NFTA_META_KEY, NFT_META_OIFNAME);
            });
            let mut ifname = [0u8; 16];
            ifname[..name.len()].copy_from_slice(name.as_bytes());
            compare(&mut b, &ifname);
        }
        let (offset, len) = daddr(family);
        expr(&mut b, "payload", |b| {
            b.attr_be32(NFTA_PAYLOAD_DREG, NFT_REG_1);
            b.attr_be32(NFTA_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
            b.attr_be32(NFTA_PAYLOAD_OFFSET, offset);
            b.attr_be32(NFTA_PAYLOAD_LEN, len);
        });
        let addr = match rule.dst {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        compare(&mut b, &addr);
        expr(&mut b, "counter", |b| {
            b.attr(NFTA_COUNTER_BYTES, &0u64.to_be_bytes());
            b.attr(NFTA_COUNTER_PACKETS, &0u64.to_be_bytes());
        });
        expr(&mut b, "target", |b| {
            b.attr_str(NFTA_TARGET_NAME, "NFQUEUE");
            b.attr_be32(NFTA_TARGET_REV, 3);
            let mut info = [0u8; 8];
            info[0..2].copy_from_slice(&queue.to_ne_bytes());
            info[2..4].copy_from_slice(&1u16.to_ne_bytes());
            info[4..6].copy_from_slice(&NFQ_FLAG_BYPASS.to_ne_bytes());
            b.attr(NFTA_TARGET_INFO, &info);
        });
        b.unnest();
        b.end();
    }
    end_batch(&mut b);
    sock.transact(&b, |seq| describe(&what, seq))
}

/// Deletes the table (only the owning socket may).
pub fn delete(sock: &Socket, family: Family, table: &str) -> io::Result<()> {
    let mut b = Batch::new();
    begin_batch(&mut b);
    b.begin(
        NFT_MSG_DELTABLE | (NFNL_SUBSYS_NFTABLES << 8),
        NLM_F_REQUEST | NLM_F_ACK,
        nfproto(family),
        0,
    );
    b.attr_str(NFTA_TABLE_NAME, table);
    b.end();
    end_batch(&mut b);
    sock.transact(&b, |_| format!("deleting table {table}"))
}

/// Reads the table back from the kernel; `None` if it does not exist.
pub fn show(sock: &Socket, family: Family, table: &str) -> io::Result<Option<Installed>> {
    let mut b = Batch::new();
    b.begin(
        NFT_MSG_GETTABLE | (NFNL_SUBSYS_NFTABLES << 8),
        NLM_F_REQUEST,
        nfproto(family),
        0,
    );
    b.attr_str(NFTA_TABLE_NAME, table);
    b.end();
    let tables = match sock.request(&b) {
        Ok(t) => t,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(t) = tables.first() else {
        return Ok(None);
    };
    let flags = nl::attrs(t)
        .get(NFTA_TABLE_FLAGS)
        .and_then(nl::be32)
        .unwrap_or(0);

    let mut b = Batch::new();
    b.begin(
        NFT_MSG_GETRULE | (NFNL_SUBSYS_NFTABLES << 8),
        NLM_F_REQUEST | NLM_F_DUMP,
        nfproto(family),
        0,
    );
    b.attr_str(NFTA_RULE_TABLE, table);
    b.attr_str(NFTA_RULE_CHAIN, CHAIN);
    b.end();
    let rules = sock
        .request(&b)?
        .iter()
        .map(|m| parse_rule(nl::attrs(m)))
        .collect();
    Ok(Some(Installed {
        family,
        table: table.to_string(),
        owner: flags & NFT_TABLE_F_OWNER != 0,
        rules,
    }))
}

fn parse_rule(attrs: Attrs) -> InstalledRule {
    let mut rule = InstalledRule {
        dst: None,
        interface: None,
        queue: None,
        bypass: false,
        packets: 0,
    };
    let mut last_load = "";
    let Some(exprs) = attrs.get(NFTA_RULE_EXPRESSIONS) else {
        return rule;
    };
    for (_, elem) in Attrs(exprs) {
        let elem = Attrs(elem);
        let name = elem.get(NFTA_EXPR_NAME).map(nl::string).unwrap_or_default();
        let data = Attrs(elem.get(NFTA_EXPR_DATA).unwrap_or(&[]));
        match name.as_str() {
            "meta" => last_load = "meta",
            "payload" => last_load = "payload",
            "cmp" => {
                let value = data
                    .get(NFTA_CMP_DATA)
                    .and_then(|d| Attrs(d).get(NFTA_DATA_VALUE))
                    .unwrap_or(&[]);
                match (last_load, value.len()) {
                    ("meta", _) => rule.interface = Some(nl::string(value)),
                    ("payload", 4) => rule.dst = <[u8; 4]>::try_from(value).ok().map(IpAddr::from),
                    ("payload", 16) => {
                        rule.dst = <[u8; 16]>::try_from(value).ok().map(IpAddr::from)
                    }
                    _ => {}
                }
            }
            "counter" => {
                rule.packets = data
                    .get(NFTA_COUNTER_PACKETS)
                    .and_then(nl::be64)
                    .unwrap_or(0)
            }
            "target" => {
                if let Some(info) = data.get(NFTA_TARGET_INFO).filter(|i| i.len() >= 6) {
                    rule.queue = Some(u16::from_ne_bytes([info[0], info[1]]));
                    rule.bypass = u16::from_ne_bytes([info[4], info[5]]) & NFQ_FLAG_BYPASS != 0;
                }
            }
            _ => {}
        }
    }
    rule
}

/// One expression: `NFTA_LIST_ELEM { NAME, DATA { ... } }`.
fn expr(b: &mut Batch, name: &str, data: impl FnOnce(&mut Batch)) {
    b.nest(NFTA_LIST_ELEM);
    b.attr_str(NFTA_EXPR_NAME, name);
    b.nest(NFTA_EXPR_DATA);
    data(b);
    b.unnest();
    b.unnest();
}

/// `register 1 == value`, else the rule stops here.
fn compare(b: &mut Batch, value: &[u8]) {
    expr(b, "cmp", |b| {
        b.attr_be32(NFTA_CMP_SREG, NFT_REG_1);
        b.attr_be32(NFTA_CMP_OP, NFT_CMP_EQ);
        b.nest(NFTA_CMP_DATA);
        b.attr(NFTA_DATA_VALUE, value);
        b.unnest();
    });
}

fn begin_batch(b: &mut Batch) {
    b.begin(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
    b.end();
}

fn end_batch(b: &mut Batch) {
    b.begin(NFNL_MSG_BATCH_END, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
    b.end();
}

fn describe(what: &[(u32, String)], seq: u32) -> String {
    what.iter()
        .find(|(s, _)| *s == seq)
        .map(|(_, w)| w.clone())
        .unwrap_or_else(|| format!("nftables message {seq}"))
}
