//! Measuring round trips between the pairs a run's delays change: `ping` between the two
//! experiment IPs, every pair at once through the run's connections, bounded in time. The
//! samples go to the certification (delay/certify.rs): before the delays are applied (the
//! testbed's own base round trip) and with them in force. See docs/delay.md ("Certified
//! delays").

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{bail, Result};

use super::spec::{Delays, Link};
use crate::inventory::Host;
use crate::remote::{Cmd, Conn};

/// Pings per pair with the delays in force: enough that a p99 has 10 samples beyond it.
pub const DELAYED_COUNT: u32 = 1000;
/// Pings per pair before the delays: the base round trip.
pub const BASE_COUNT: u32 = 200;
/// Seconds between pings; below 0.2 s ping needs root, which orch has through sudo as it has for
/// the delays themselves. 1000 pings take 10 s.
const INTERVAL_SECS: f64 = 0.01;
/// How long a ping waits for each reply, seconds.
const REPLY_WAIT_SECS: u32 = 2;

/// One pair of hosts whose round trip the delays change.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// The host that pings (it has a delay towards `to`).
    pub from: String,
    pub to: String,
    pub from_ip: IpAddr,
    pub to_ip: IpAddr,
    /// The delay from `from` to `to`.
    pub forward: Link,
    /// The delay back, if there is one.
    pub back: Option<Link>,
}

impl Pair {
    /// The mean one-way delays of both directions added (netem's and the emulator's mean is the
    /// delay itself, before draws below zero are cut).
    pub fn declared_rtt_ms(&self) -> f64 {
        self.forward.delay_ms + self.back.map_or(0.0, |b| b.delay_ms)
    }
}

/// The pairs whose round trip `delays` changes, each once: for every host's delay towards a
/// peer, that host and the peer (the first host in inventory order that has a delay to the other
/// is the one that pings). `ip_of` gives a host's experiment IP (the pinging host's source
/// address); a host it does not know is an error.
pub fn pairs(delays: &Delays, ip_of: impl Fn(&str) -> Option<IpAddr>) -> Result<Vec<Pair>> {
    let one_way = |from: &str, to: &str| {
        delays
            .hosts
            .iter()
            .find(|(h, _)| h == from)
            .and_then(|(_, rules)| rules.iter().find(|e| e.to == to))
    };
    let mut out: Vec<Pair> = Vec::new();
    for (from, rules) in &delays.hosts {
        for e in rules {
            if out
                .iter()
                .any(|p| (p.from == e.to && p.to == *from) || (p.from == *from && p.to == e.to))
            {
                continue;
            }
            let Some(from_ip) = ip_of(from) else {
                bail!("{from}: its experiment IP is unknown, so its delays cannot be measured");
            };
            out.push(Pair {
                from: from.clone(),
                to: e.to.clone(),
                from_ip,
                to_ip: e.dst,
                forward: e.link,
                back: one_way(&e.to, from).map(|b| b.link),
            });
        }
    }
    Ok(out)
}

/// The ping command for one pair: from `from_ip` (so the packets take the experiment network),
/// `count` pings, a deadline so it ends even if replies stop. A busy host sends 10 ms pings
/// about 30 % slower than asked (940 of 1000 in 13 s on a loaded 2-core lab), so the deadline
/// allows twice the interval.
fn ping_argv(pair: &Pair, count: u32) -> (Vec<String>, Duration) {
    let deadline = (2.0 * f64::from(count) * INTERVAL_SECS
        + f64::from(REPLY_WAIT_SECS)
        + 2.0 * pair.declared_rtt_ms() / 1000.0)
        .ceil() as u64;
    let argv = [
        "ping",
        "-n",
        "-c",
        &count.to_string(),
        "-i",
        &INTERVAL_SECS.to_string(),
        "-W",
        &REPLY_WAIT_SECS.to_string(),
        "-w",
        &deadline.to_string(),
        "-I",
        &pair.from_ip.to_string(),
        &pair.to_ip.to_string(),
    ]
    .map(String::from)
    .to_vec();
    (argv, Duration::from_secs(deadline + 5))
}

/// Parses iputils ping's output: the `time=` of every reply and the `N packets transmitted, M
/// received` line. `None` if the summary line is missing (ping did not run to its end).
pub fn parse_ping(text: &str) -> Option<(u32, Vec<f64>)> {
    let times: Vec<f64> = text
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.split("time=").nth(1))
        .filter_map(|t| t.split_whitespace().next())
        .filter_map(|t| t.parse().ok())
        .collect();
    let summary = text.lines().find(|l| l.contains("packets transmitted"))?;
    let sent = summary.split_whitespace().next()?.parse().ok()?;
    Some((sent, times))
}

/// Pings every pair at once, `count` times each, from the pinging host's connection (`hosts`
/// holds every host that has a delay): per pair, the pings sent and the reply times in ms.
pub async fn ping(
    hosts: &[(&Host, &Conn)],
    pairs: &[Pair],
    count: u32,
) -> Result<Vec<(u32, Vec<f64>)>> {
    let runs = pairs.iter().map(|pair| async move {
        let Some((host, conn)) = hosts.iter().find(|(h, _)| h.name == pair.from) else {
            bail!("{}: no connection to measure delays from", pair.from);
        };
        let (argv, limit) = ping_argv(pair, count);
        // A host the inventory gives a long connect timeout (a slow link, a VM under TCG) gets
        // that much longer to start the command and report back, on top of ping's own deadline.
        let limit = limit + host.ssh.connect_timeout;
        let cmd = Cmd::new(&argv).privileged().timeout(Some(limit));
        let out = conn.run(&cmd).await?;
        let Some(parsed) = parse_ping(&out.stdout) else {
            bail!(
                "{}: `{}` did not finish ({}): {}{}",
                pair.from,
                argv.join(" "),
                out.status,
                out.stderr.trim(),
                if out.stderr.contains("not found") {
                    " (install iputils-ping)"
                } else {
                    ""
                }
            );
        };
        Ok(parsed)
    });
    futures::future::try_join_all(runs).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delay::spec::{Distribution, Egress};

    /// Recorded from `ping -n -c 3 -i 0.2 -I 127.0.0.1 127.0.0.1` (ping from iputils 20221126,
    /// Debian 12, kernel 6.18).
    const PING: &str = "PING 127.0.0.1 (127.0.0.1) from 127.0.0.1 : 56(84) bytes of data.
64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.334 ms
64 bytes from 127.0.0.1: icmp_seq=2 ttl=64 time=0.042 ms
64 bytes from 127.0.0.1: icmp_seq=3 ttl=64 time=0.033 ms

--- 127.0.0.1 ping statistics ---
3 packets transmitted, 3 received, 0% packet loss, time 406ms
rtt min/avg/max/mdev = 0.033/0.136/0.334/0.139 ms
";

    fn link(delay_ms: f64) -> Link {
        Link {
            delay_ms,
            jitter_ms: 0.0,
            distribution: Distribution::Uniform,
            loss_pct: 0.0,
        }
    }

    fn egress(to: &str, ip: &str, delay_ms: f64) -> Egress {
        Egress {
            to: to.into(),
            dst: ip.parse().unwrap(),
            interface: None,
            link: link(delay_ms),
        }
    }

    #[test]
    fn each_pair_once_with_both_directions_added() {
        let delays = Delays {
            hosts: vec![
                (
                    "h1".into(),
                    vec![
                        Egress {
                            link: Link {
                                jitter_ms: 3.0,
                                ..link(15.0)
                            },
                            ..egress("h2", "10.0.2.2", 15.0)
                        },
                        egress("h3", "10.0.3.2", 15.0),
                    ],
                ),
                ("h2".into(), vec![egress("h1", "10.0.1.2", 2.0)]),
            ],
            ..Delays::default()
        };
        let ips = |name: &str| match name {
            "h1" => Some("10.0.1.2".parse().unwrap()),
            "h2" => Some("10.0.2.2".parse().unwrap()),
            _ => None,
        };
        let found = pairs(&delays, ips).unwrap();
        // The jitter of h1 -> h2 is the forward link's; h3 has no delay back.
        assert_eq!(found[0].forward.jitter_ms, 3.0);
        assert_eq!(found[0].back, Some(link(2.0)));
        assert_eq!(found[1].back, None);
        let got: Vec<(String, String, String, f64)> = found
            .into_iter()
            .map(|p| {
                (
                    p.from.clone(),
                    p.to.clone(),
                    p.from_ip.to_string(),
                    p.declared_rtt_ms(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("h1".into(), "h2".into(), "10.0.1.2".into(), 17.0),
                ("h1".into(), "h3".into(), "10.0.1.2".into(), 15.0),
            ]
        );
        // A one-way delay alone (no host has one back) is still a pair; a host without a known
        // experiment IP is an error, never a silently skipped pair.
        let one_way = Delays {
            hosts: vec![("h1".into(), vec![egress("h2", "10.0.2.2", 5.0)])],
            ..Delays::default()
        };
        let lone = pairs(&one_way, ips).unwrap();
        assert_eq!(lone.len(), 1);
        assert_eq!(lone[0].declared_rtt_ms(), 5.0);
        let unknown = pairs(&one_way, |_: &str| None).unwrap_err().to_string();
        assert!(
            unknown.contains("h1: its experiment IP is unknown"),
            "{unknown}"
        );
    }

    #[test]
    fn ping_output_gives_times_and_the_count_sent() {
        let (sent, times) = parse_ping(PING).unwrap();
        assert_eq!(sent, 3);
        assert_eq!(times, [0.334, 0.042, 0.033]);
        let s = super::super::certify::Sampled::of(sent, &times).unwrap();
        assert_eq!(
            (s.received, s.p50_ms, s.min_ms, s.max_ms),
            (3, 0.042, 0.033, 0.334)
        );
        // ping's own summary line says avg 0.136.
        assert!((s.mean_ms - 0.136).abs() < 5e-4);
        assert!(parse_ping("ping: connect: Network is unreachable\n").is_none());
        assert!(super::super::certify::Sampled::of(3, &[]).is_none());
    }
}
