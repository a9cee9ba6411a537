//! Delays with the kernel's netem, for hosts whose kernel has it: per interface an HTB root
//! qdisc (handle `4f52:`) with one class per delayed peer, a netem qdisc under each class and a
//! u32 filter steering the peer's experiment IP into it. Traffic to anyone else matches no
//! filter and leaves through HTB's direct queue, undelayed.
//!
//! Only the commands and the parsing of `tc -j` output live here, so they can be tested on a
//! kernel without netem (this project's build machines have none); `super` runs them.

use std::net::IpAddr;

use serde_json::Value;

use super::spec::{Distribution, Egress};

/// Major handle of orch's root qdisc ("OR"): recognises a leftover of an earlier run.
pub const ROOT: &str = "4f52:";
/// netem's queue limit: enough for 100k packets/s at one second of delay.
const LIMIT: u32 = 100_000;
/// The rate of every HTB class: far above any NIC, so HTB only classifies.
const RATE: &str = "100gbit";

/// The root qdisc of an interface as `tc -j qdisc show` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootQdisc {
    pub kind: String,
    pub handle: String,
}

impl RootQdisc {
    /// A root the kernel attached itself (handle `0:`): deleting ours brings it back.
    pub fn is_default(&self) -> bool {
        self.handle == "0:"
    }

    /// orch's own root, left by a run that could not clean up.
    pub fn is_ours(&self) -> bool {
        self.kind == "htb" && self.handle == ROOT
    }
}

/// Finds the root qdisc in `tc -j qdisc show dev IFACE` output.
pub fn root_qdisc(json: &str) -> Result<RootQdisc, String> {
    let list: Vec<Value> =
        serde_json::from_str(json).map_err(|e| format!("unreadable `tc -j qdisc show`: {e}"))?;
    list.iter()
        .find(|q| q["root"] == true)
        .map(|q| RootQdisc {
            kind: q["kind"].as_str().unwrap_or_default().to_string(),
            handle: q["handle"].as_str().unwrap_or_default().to_string(),
        })
        .ok_or_else(|| "`tc -j qdisc show` lists no root qdisc".to_string())
}

/// The `tc` command lines that install `rules` on `iface` (replacing the root qdisc).
pub fn install(iface: &str, rules: &[&Egress]) -> Vec<Vec<String>> {
    let tc = |args: &[&str]| -> Vec<String> {
        ["tc"].iter().chain(args).map(|s| s.to_string()).collect()
    };
    let mut out = vec![tc(&[
        "qdisc", "replace", "dev", iface, "root", "handle", ROOT, "htb",
    ])];
    for (i, rule) in rules.iter().enumerate() {
        let class = class_id(i);
        let handle = format!("{:x}:", 0x5000 + i + 1);
        out.push(tc(&[
            "class", "add", "dev", iface, "parent", ROOT, "classid", &class, "htb", "rate", RATE,
            "quantum", "60000",
        ]));
        let mut netem = tc(&[
            "qdisc", "add", "dev", iface, "parent", &class, "handle", &handle, "netem", "limit",
        ]);
        netem.push(LIMIT.to_string());
        netem.push("delay".into());
        netem.push(micros(rule.link.delay_ms));
        if rule.link.jitter_ms > 0.0 {
            netem.push(micros(rule.link.jitter_ms));
            if rule.link.distribution != Distribution::Uniform {
                netem.push("distribution".into());
                netem.push(rule.link.distribution.as_str().into());
            }
        }
        if rule.link.loss_pct > 0.0 {
            netem.push("loss".into());
            netem.push(format!("{}%", rule.link.loss_pct));
        }
        out.push(netem);
        let (protocol, pref, matcher, prefix) = match rule.dst {
            IpAddr::V4(_) => ("ip", "1", "ip", 32),
            IpAddr::V6(_) => ("ipv6", "2", "ip6", 128),
        };
        out.push(tc(&[
            "filter",
            "add",
            "dev",
            iface,
            "parent",
            ROOT,
            "protocol",
            protocol,
            "pref",
            pref,
            "u32",
            "match",
            matcher,
            "dst",
            &format!("{}/{prefix}", rule.dst),
            "flowid",
            &class,
        ]));
    }
    out
}

/// The command that puts the kernel's default root qdisc back.
pub fn restore(iface: &str) -> Vec<String> {
    ["tc", "qdisc", "del", "dev", iface, "root"]
        .map(String::from)
        .to_vec()
}

/// Compares what tc reports (`tc -j qdisc/class/filter show dev IFACE`) with `rules`; returns
/// every difference. tc does not report a netem distribution, so that is not checked.
pub fn verify(
    rules: &[&Egress],
    qdiscs: &str,
    classes: &str,
    filters: &str,
) -> Result<(), Vec<String>> {
    let parse = |what: &str, text: &str| -> Result<Vec<Value>, Vec<String>> {
        serde_json::from_str(text).map_err(|e| vec![format!("unreadable `tc -j {what} show`: {e}")])
    };
    let (qdiscs, classes, filters) = (
        parse("qdisc", qdiscs)?,
        parse("class", classes)?,
        parse("filter", filters)?,
    );
    let mut wrong = Vec::new();
    if !qdiscs
        .iter()
        .any(|q| q["root"] == true && q["kind"] == "htb" && q["handle"] == ROOT)
    {
        wrong.push(format!("the root qdisc is not htb {ROOT}"));
    }
    for (i, rule) in rules.iter().enumerate() {
        let class = class_id(i);
        let who = format!("{} ({})", rule.to, rule.dst);
        if !classes
            .iter()
            .any(|c| c["class"] == "htb" && c["handle"] == class.as_str())
        {
            wrong.push(format!("{who}: no htb class {class}"));
        }
        match qdiscs
            .iter()
            .find(|q| q["kind"] == "netem" && q["parent"] == class.as_str())
        {
            None => wrong.push(format!("{who}: no netem qdisc under {class}")),
            Some(q) => {
                let o = &q["options"];
                let got = |v: &Value| v.as_f64().unwrap_or(0.0);
                let delay = got(&o["delay"]["delay"]) * 1e3;
                let jitter = got(&o["delay"]["jitter"]) * 1e3;
                let loss = got(&o["loss-random"]["loss"]) * 100.0;
                if (delay - rule.link.delay_ms).abs() > 1e-3
                    || (jitter - rule.link.jitter_ms).abs() > 1e-3
                    || (loss - rule.link.loss_pct).abs() > 1e-3
                {
                    wrong.push(format!(
                        "{who}: netem has delay {delay} ms, jitter {jitter} ms, loss {loss}%, not {}",
                        rule.link
                    ));
                }
            }
        }
        let want = last_word(rule.dst);
        let steered = filters.iter().any(|f| {
            let o = &f["options"];
            f["kind"] == "u32"
                && o["flowid"] == class.as_str()
                && o["match"]["mask"] == "ffffffff"
                && o["match"]["value"] == want.as_str()
        });
        if !steered {
            wrong.push(format!("{who}: no u32 filter sends it to {class}"));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong)
    }
}

fn class_id(index: usize) -> String {
    format!("{ROOT}{:x}", index + 1)
}

/// A time for tc in whole microseconds (tc reads `us`), so no float formatting reaches it.
fn micros(ms: f64) -> String {
    format!("{}us", (ms * 1000.0).round() as u64)
}

/// The last 32 bits of the address as tc prints a u32 key value (hex, no leading zeros): the
/// only key of an IPv4 match, and the last of the four of an IPv6 one (tc's JSON repeats the
/// `match` key, so only the last survives parsing).
fn last_word(addr: IpAddr) -> String {
    let o = match addr {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => {
            let b = a.octets();
            [b[12], b[13], b[14], b[15]]
        }
    };
    format!("{:x}", u32::from_be_bytes(o))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::spec::Link;

    fn egress(to: &str, dst: &str, delay: f64, jitter: f64, d: Distribution, loss: f64) -> Egress {
        Egress {
            to: to.into(),
            dst: dst.parse().unwrap(),
            interface: None,
            link: Link {
                delay_ms: delay,
                jitter_ms: jitter,
                distribution: d,
                loss_pct: loss,
            },
        }
    }

    fn rules() -> Vec<Egress> {
        vec![
            egress("node1", "10.0.2.2", 6.0, 3.0, Distribution::Pareto, 0.0),
            egress("node2", "10.0.3.2", 20.0, 0.0, Distribution::Uniform, 1.5),
        ]
    }

    #[test]
    fn commands_are_the_seeds_netem_per_peer() {
        let r = rules();
        let cmds: Vec<String> = install("enp6s0f0", &r.iter().collect::<Vec<_>>())
            .iter()
            .map(|c| c.join(" "))
            .collect();
        assert_eq!(
            cmds,
            [
                "tc qdisc replace dev enp6s0f0 root handle 4f52: htb",
                "tc class add dev enp6s0f0 parent 4f52: classid 4f52:1 htb rate 100gbit quantum 60000",
                "tc qdisc add dev enp6s0f0 parent 4f52:1 handle 5001: netem limit 100000 delay 6000us 3000us distribution pareto",
                "tc filter add dev enp6s0f0 parent 4f52: protocol ip pref 1 u32 match ip dst 10.0.2.2/32 flowid 4f52:1",
                "tc class add dev enp6s0f0 parent 4f52: classid 4f52:2 htb rate 100gbit quantum 60000",
                "tc qdisc add dev enp6s0f0 parent 4f52:2 handle 5002: netem limit 100000 delay 20000us loss 1.5%",
                "tc filter add dev enp6s0f0 parent 4f52: protocol ip pref 1 u32 match ip dst 10.0.3.2/32 flowid 4f52:2",
            ]
        );
        assert_eq!(restore("eth1").join(" "), "tc qdisc del dev eth1 root");
    }

    #[test]
    fn ipv6_peers_get_an_ip6_match() {
        let r = [egress("n", "fd00::3", 1.0, 0.0, Distribution::Uniform, 0.0)];
        let cmds = install("eth1", &r.iter().collect::<Vec<_>>());
        assert!(cmds[3]
            .join(" ")
            .contains("protocol ipv6 pref 2 u32 match ip6 dst fd00::3/128"));
    }

    /// Root qdiscs as `tc -j qdisc show` prints them: a default, a user's netem and ours.
    #[test]
    fn recognises_default_and_foreign_roots() {
        let default = r#"[{"kind":"fq_codel","handle":"0:","root":true,"refcnt":2,"options":{"limit":10240,"flows":1024,"quantum":1514,"target":4999,"interval":99999,"memory_limit":33554432,"ecn":true,"drop_batch":64}}]"#;
        let q = root_qdisc(default).unwrap();
        assert!(q.is_default() && !q.is_ours());
        let seed = r#"[{"kind":"netem","handle":"8001:","root":true,"refcnt":2,"options":{"limit":1000,"delay":{"delay":0.006,"jitter":0.003,"correlation":0},"ecn":false,"gap":0}}]"#;
        let q = root_qdisc(seed).unwrap();
        assert!(!q.is_default() && !q.is_ours());
        let mq = r#"[{"kind":"mq","handle":"0:","root":true,"options":{}},{"kind":"fq_codel","handle":"0:","parent":":1","options":{}}]"#;
        assert_eq!(root_qdisc(mq).unwrap().kind, "mq");
        assert!(root_qdisc("[]").is_err());
    }

    /// Recorded in the shape iproute2 6.x prints (tc/q_netem.c, q_htb.c, f_u32.c with `-j`).
    const QDISCS: &str = r#"[
 {"kind":"htb","handle":"4f52:","root":true,"refcnt":2,"options":{"r2q":10,"default":"0","direct_packets_stat":12,"direct_qlen":1000}},
 {"kind":"netem","handle":"5001:","parent":"4f52:1","options":{"limit":100000,"delay":{"delay":0.006,"jitter":0.003,"correlation":0},"ecn":false,"gap":0}},
 {"kind":"netem","handle":"5002:","parent":"4f52:2","options":{"limit":100000,"delay":{"delay":0.02,"jitter":0,"correlation":0},"loss-random":{"loss":0.015,"correlation":0},"ecn":false,"gap":0}}]"#;
    const CLASSES: &str = r#"[
 {"class":"htb","handle":"4f52:1","root":true,"leaf":"5001:","prio":0,"rate":12500000000,"ceil":12500000000,"burst":1375,"cburst":1375},
 {"class":"htb","handle":"4f52:2","root":true,"leaf":"5002:","prio":0,"rate":12500000000,"ceil":12500000000,"burst":1375,"cburst":1375}]"#;
    const FILTERS: &str = r#"[
 {"parent":"4f52:","protocol":"ip","pref":1,"kind":"u32","chain":0},
 {"parent":"4f52:","protocol":"ip","pref":1,"kind":"u32","chain":0,"options":{"fh":"800:","ht_divisor":1}},
 {"parent":"4f52:","protocol":"ip","pref":1,"kind":"u32","chain":0,"options":{"fh":"800::800","order":2048,"key_ht":"800","bkt":"0","flowid":"4f52:1","not_in_hw":true,"match":{"value":"a000202","mask":"ffffffff","offmask":"","off":16}}},
 {"parent":"4f52:","protocol":"ip","pref":1,"kind":"u32","chain":0,"options":{"fh":"800::801","order":2049,"key_ht":"800","bkt":"0","flowid":"4f52:2","not_in_hw":true,"match":{"value":"a000302","mask":"ffffffff","offmask":"","off":16}}}]"#;

    #[test]
    fn read_back_matches_what_was_installed() {
        let r = rules();
        let r: Vec<&Egress> = r.iter().collect();
        verify(&r, QDISCS, CLASSES, FILTERS).unwrap();
    }

    #[test]
    fn read_back_names_every_difference() {
        let mut r = rules();
        r[1].link.delay_ms = 40.0;
        r.push(egress(
            "node3",
            "10.0.4.2",
            1.0,
            0.0,
            Distribution::Uniform,
            0.0,
        ));
        let r: Vec<&Egress> = r.iter().collect();
        let wrong = verify(&r, QDISCS, CLASSES, FILTERS).unwrap_err();
        assert_eq!(wrong.len(), 4, "{wrong:#?}");
        assert!(
            wrong[0].contains("node2 (10.0.3.2): netem has delay 20 ms"),
            "{}",
            wrong[0]
        );
        assert!(wrong[1].contains("node3 (10.0.4.2): no htb class 4f52:3"));
        assert!(wrong[2].contains("no netem qdisc under 4f52:3"));
        assert!(wrong[3].contains("no u32 filter sends it to 4f52:3"));
        let no_root = verify(&r[..1], "[]", CLASSES, FILTERS).unwrap_err();
        assert!(
            no_root[0].contains("root qdisc is not htb 4f52:"),
            "{no_root:?}"
        );
    }
}
