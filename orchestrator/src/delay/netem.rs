//! Delays with the kernel's netem, for hosts whose kernel has it: per interface an HTB root
//! qdisc (handle `4f52:`) with one class per delayed peer, a netem qdisc under each class and a
//! u32 filter steering the peer's experiment IP into it. Traffic to anyone else matches no
//! filter and leaves through HTB's direct queue, undelayed.
//!
//! Only the commands and the parsing of tc's output live here; `super` runs them. The read-back
//! is tested against output recorded from the real tc on real kernels
//! (`orchestrator/tests/fixtures/tc/`, recorded by `scripts/record-tc-fixtures.sh`) and run for
//! real by `scripts/kernel-test.sh`.
//!
//! Qdiscs and filters are read as JSON (`tc -j`). Classes are read as text (`tc class show`):
//! iproute2 6.1's HTB prints its classes as text even with `-j`, and the text form
//! (`class htb 4f52:1 root leaf 5001: prio 0 rate 100Gbit ...`) is the same with every version.

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

/// One class as `tc class show dev IFACE` prints it: `class KIND HANDLE ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    pub kind: String,
    pub handle: String,
}

/// Parses `tc class show dev IFACE` (text); a line that does not start `class KIND HANDLE` is
/// an error quoting it.
pub fn classes(text: &str) -> Result<Vec<Class>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut w = line.split_whitespace();
            match (w.next(), w.next(), w.next()) {
                (Some("class"), Some(kind), Some(handle)) => Ok(Class {
                    kind: kind.to_string(),
                    handle: handle.to_string(),
                }),
                _ => Err(format!("unreadable `tc class show` line: {line:?}")),
            }
        })
        .collect()
}

/// What is left on an interface after teardown, from `tc -j qdisc show`, `tc class show` and
/// `tc -j filter show`: every qdisc the kernel did not attach itself (its own have handle `0:`,
/// also the children of a multi-queue `mq` root), every class and filter under orch's root.
/// Empty when the interface is back to its kernel default.
pub fn leftovers(qdiscs: &str, class_text: &str, filters: &str) -> Result<Vec<String>, String> {
    let list = |what: &str, text: &str| -> Result<Vec<Value>, String> {
        serde_json::from_str(text).map_err(|e| format!("unreadable `tc -j {what} show`: {e}"))
    };
    let word = |v: &Value| v.as_str().unwrap_or("?").to_string();
    let mut left = Vec::new();
    for q in list("qdisc", qdiscs)? {
        if q["handle"] != "0:" {
            left.push(format!("qdisc {} {}", word(&q["kind"]), word(&q["handle"])));
        }
    }
    for c in classes(class_text)? {
        if c.handle.starts_with(ROOT) {
            left.push(format!("class {} {}", c.kind, c.handle));
        }
    }
    for f in list("filter", filters)? {
        if f["parent"] == ROOT {
            left.push(format!("filter {} parent {ROOT}", word(&f["kind"])));
        }
    }
    Ok(left)
}

/// Compares what tc reports (`tc -j qdisc show`, `tc class show`, `tc -j filter show`, each
/// `dev IFACE`) with `rules`; returns every difference. tc does not report a netem
/// distribution, so that is not checked.
pub fn verify(
    rules: &[&Egress],
    qdiscs: &str,
    class_text: &str,
    filters: &str,
) -> Result<(), Vec<String>> {
    let parse = |what: &str, text: &str| -> Result<Vec<Value>, Vec<String>> {
        serde_json::from_str(text).map_err(|e| vec![format!("unreadable `tc -j {what} show`: {e}")])
    };
    let (qdiscs, classes, filters) = (
        parse("qdisc", qdiscs)?,
        classes(class_text).map_err(|e| vec![e])?,
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
        if !classes.iter().any(|c| c.kind == "htb" && c.handle == class) {
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
    use std::path::PathBuf;

    use super::*;
    use crate::delay::spec::Link;

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

    /// The rules whose commands `scripts/record-tc-fixtures.sh` ran.
    fn rules() -> Vec<Egress> {
        vec![
            egress("node1", "10.0.2.2", 6.0, 3.0, Distribution::Pareto, 0.0),
            egress("node2", "10.0.3.2", 20.0, 0.0, Distribution::Uniform, 1.5),
        ]
    }

    /// What the real tc printed, one recording per kernel (`tests/fixtures/tc/KERNEL/`, see
    /// its SOURCE.md): `(kernel, file name -> content)`.
    fn recordings() -> Vec<(String, impl Fn(&str) -> String)> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tc");
        let mut out: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .map(|p| {
                let kernel = p.file_name().unwrap().to_string_lossy().into_owned();
                let read = move |name: &str| {
                    std::fs::read_to_string(p.join(name))
                        .unwrap_or_else(|e| panic!("{}/{name}: {e}", p.display()))
                };
                (kernel, read)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        assert!(!out.is_empty(), "no recordings in {}", dir.display());
        out
    }

    #[test]
    fn commands_are_the_ones_recorded_with_the_real_tc() {
        let r = rules();
        let cmds: Vec<String> = install("enp6s0f0", &r.iter().collect::<Vec<_>>())
            .iter()
            .map(|c| c.join(" "))
            .collect();
        for (kernel, read) in recordings() {
            let recorded: Vec<String> = read("commands.txt").lines().map(String::from).collect();
            assert_eq!(cmds, recorded, "{kernel}");
        }
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

    #[test]
    fn recognises_default_foreign_and_own_roots() {
        for (kernel, read) in recordings() {
            for stage in ["before", "removed"] {
                let q = root_qdisc(&read(&format!("{stage}-qdisc.json"))).unwrap();
                assert!(q.is_default() && !q.is_ours(), "{kernel} {stage}: {q:?}");
                assert_eq!(q.kind, "noqueue", "{kernel}");
            }
            let q = root_qdisc(&read("installed-qdisc.json")).unwrap();
            assert!(q.is_ours() && !q.is_default(), "{kernel}: {q:?}");
            let q = root_qdisc(&read("foreign-qdisc.json")).unwrap();
            assert!(!q.is_default() && !q.is_ours(), "{kernel}: {q:?}");
            assert_eq!(q.kind, "netem");
        }
        assert!(root_qdisc("[]").is_err());
    }

    #[test]
    fn classes_are_read_from_text_even_where_json_was_asked_for() {
        for (kernel, read) in recordings() {
            let want = [("htb", "4f52:1"), ("htb", "4f52:2")].map(|(k, h)| Class {
                kind: k.into(),
                handle: h.into(),
            });
            assert_eq!(
                classes(&read("installed-class.txt")).unwrap(),
                want,
                "{kernel}"
            );
            assert!(classes(&read("removed-class.txt")).unwrap().is_empty());
        }
        let err = classes("[{\"class\":\"htb\"}]").unwrap_err();
        assert!(err.contains("unreadable `tc class show` line"), "{err}");
    }

    #[test]
    fn read_back_matches_what_was_installed() {
        let r = rules();
        let r: Vec<&Egress> = r.iter().collect();
        for (kernel, read) in recordings() {
            let (q, c, f) = (
                read("installed-qdisc.json"),
                read("installed-class.txt"),
                read("installed-filter.json"),
            );
            verify(&r, &q, &c, &f).unwrap_or_else(|e| panic!("{kernel}: {e:?}"));
        }
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
        for (kernel, read) in recordings() {
            let (q, c, f) = (
                read("installed-qdisc.json"),
                read("installed-class.txt"),
                read("installed-filter.json"),
            );
            let wrong = verify(&r, &q, &c, &f).unwrap_err();
            assert_eq!(wrong.len(), 4, "{kernel}: {wrong:#?}");
            assert!(
                wrong[0].contains("node2 (10.0.3.2): netem has delay 20 ms"),
                "{}",
                wrong[0]
            );
            assert!(wrong[1].contains("node3 (10.0.4.2): no htb class 4f52:3"));
            assert!(wrong[2].contains("no netem qdisc under 4f52:3"));
            assert!(wrong[3].contains("no u32 filter sends it to 4f52:3"));
            let (q, c, f) = (
                read("before-qdisc.json"),
                read("before-class.txt"),
                read("before-filter.json"),
            );
            let none = verify(&r[..1], &q, &c, &f).unwrap_err();
            assert!(none[0].contains("root qdisc is not htb 4f52:"), "{none:?}");
            assert_eq!(none.len(), 4, "{kernel}: {none:#?}");
        }
    }

    #[test]
    fn leftovers_are_whatever_teardown_did_not_remove() {
        for (kernel, read) in recordings() {
            let stage = |s: &str| {
                leftovers(
                    &read(&format!("{s}-qdisc.json")),
                    &read(&format!("{s}-class.txt")),
                    &read(&format!("{s}-filter.json")),
                )
                .unwrap()
            };
            assert!(stage("before").is_empty(), "{kernel}");
            assert!(stage("removed").is_empty(), "{kernel}");
            let left = stage("installed");
            assert_eq!(
                left,
                [
                    "qdisc htb 4f52:",
                    "qdisc netem 5002:",
                    "qdisc netem 5001:",
                    "class htb 4f52:1",
                    "class htb 4f52:2",
                    "filter u32 parent 4f52:",
                    "filter u32 parent 4f52:",
                    "filter u32 parent 4f52:",
                    "filter u32 parent 4f52:",
                ],
                "{kernel}"
            );
        }
    }
}
