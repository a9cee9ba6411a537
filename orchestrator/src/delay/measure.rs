//! Checking the delays a run applied: every declared pair's round trip is measured with `ping`
//! between the two experiment IPs (all pairs at once, through the run's connections, bounded in
//! time) and compared with what the scenario declared. A pair off by more than the scenario's
//! tolerance fails the run before its workload starts, so no result is ever recorded under
//! delays that were not in force. See docs/delay.md ("Measured delays").

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{bail, Result};
use serde::Serialize;

use super::spec::{Delays, Distribution, Link};
use crate::inventory::Host;
use crate::remote::{Cmd, Conn};

/// Fewest and most pings per pair (see [`ping_count`]).
const MIN_COUNT: u32 = 20;
const MAX_COUNT: u32 = 200;
/// Seconds between pings; below 0.2 s ping needs root, which orch has through sudo as it has for
/// the delays themselves. 200 pings take 10 s.
const INTERVAL_SECS: f64 = 0.05;
/// How long a ping waits for each reply, seconds.
const REPLY_WAIT_SECS: u32 = 2;

/// How far a measured round trip may be from the declared one: a pair fails only when it is off
/// by more than `pct` percent of the declared value *and* more than `ms` (a few ms of scheduling
/// noise would otherwise fail every short delay).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    pub pct: f64,
    pub ms: f64,
}

impl Default for Tolerance {
    fn default() -> Tolerance {
        Tolerance { pct: 20.0, ms: 2.0 }
    }
}

impl Tolerance {
    /// The largest deviation from `declared_ms` that is still accepted.
    pub fn allowed_ms(&self, declared_ms: f64) -> f64 {
        (declared_ms * self.pct / 100.0).max(self.ms)
    }
}

/// One pair of hosts whose round trip the delays change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pair {
    /// The host that pings (it has a delay towards `to`).
    pub from: String,
    pub to: String,
    pub from_ip: IpAddr,
    pub to_ip: IpAddr,
    /// The mean one-way delays of both directions added (0 for a direction without a delay).
    pub declared_rtt_ms: f64,
    /// The standard deviation of the round trip the declared jitters give.
    pub declared_sd_ms: f64,
    /// Which measured statistic estimates the declared mean (see [`Statistic`]).
    pub compared: Statistic,
}

/// What is compared with the declared mean round trip. The median, unless a direction has
/// skewed (pareto, paretonormal) jitter: one scheduling stall on a busy host holds a ping for
/// tens of ms and moves the mean of 20 pings by more than a ms, but not the median, which equals
/// the mean for symmetric jitter (none, uniform, normal). For skewed jitter the median is not the
/// mean (netem's pareto has its median 0.3 jitters below its mean), so the mean it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Statistic {
    Median,
    Mean,
}

impl Statistic {
    fn of(self, m: &PingStats) -> f64 {
        match self {
            Statistic::Median => m.median_ms,
            Statistic::Mean => m.mean_ms,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Statistic::Median => "median",
            Statistic::Mean => "mean",
        }
    }
}

/// What ping saw for one pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PingStats {
    pub sent: u32,
    pub received: u32,
    pub mean_ms: f64,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

/// One pair, declared against measured.
#[derive(Debug, Clone, Serialize)]
pub struct PairResult {
    #[serde(flatten)]
    pub pair: Pair,
    /// `None` if no reply came back at all.
    pub measured: Option<PingStats>,
    /// The largest deviation accepted for this pair.
    pub allowed_ms: f64,
    pub ok: bool,
}

/// Every pair of one run: the content of delays.json and of the run's summary entry.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub tolerance_pct: f64,
    pub tolerance_ms: f64,
    pub pairs: Vec<PairResult>,
}

/// The pairs whose round trip `delays` changes, each once: for every host's delay towards a
/// peer, that host and the peer (the first host in inventory order that has a delay to the other
/// is the one that pings). The declared round trip is the sum of both directions' delays: the
/// mean of every distribution (netem's, and the emulator's) is the delay itself. `ip_of` gives a
/// host's experiment IP (the pinging host's source address); a host it does not know is an error.
pub fn pairs(delays: &Delays, ip_of: impl Fn(&str) -> Option<IpAddr>) -> Result<Vec<Pair>> {
    let one_way = |from: &str, to: &str| {
        delays
            .hosts
            .iter()
            .find(|(h, _)| h == from)
            .and_then(|(_, rules)| rules.iter().find(|e| e.to == to))
    };
    let sd = |l: &Link| l.jitter_ms * jitter_sd(l.distribution);
    let skewed = |l: &Link| {
        l.jitter_ms > 0.0
            && matches!(
                l.distribution,
                Distribution::Pareto | Distribution::Paretonormal
            )
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
            let back = one_way(&e.to, from);
            let Some(from_ip) = ip_of(from) else {
                bail!("{from}: its experiment IP is unknown, so its delays cannot be measured");
            };
            out.push(Pair {
                from: from.clone(),
                to: e.to.clone(),
                from_ip,
                to_ip: e.dst,
                declared_rtt_ms: e.link.delay_ms + back.map_or(0.0, |b| b.link.delay_ms),
                declared_sd_ms: (sd(&e.link).powi(2) + back.map_or(0.0, |b| sd(&b.link).powi(2)))
                    .sqrt(),
                compared: if skewed(&e.link) || back.is_some_and(|b| skewed(&b.link)) {
                    Statistic::Mean
                } else {
                    Statistic::Median
                },
            });
        }
    }
    Ok(out)
}

/// The standard deviation of a distribution's jitter multiplier (docs of node/src/delay/dist.rs).
fn jitter_sd(d: Distribution) -> f64 {
    match d {
        Distribution::Uniform => 1.0 / 3f64.sqrt(),
        Distribution::Normal => 1.0,
        Distribution::Pareto => 0.82,
        Distribution::Paretonormal => 0.83,
    }
}

/// Pings for one pair: enough that the standard error of the compared statistic is at most a
/// quarter of the deviation allowed, so a correct delay fails the check with a chance of about
/// 1 in 15 000 (a 4-sigma event), within [`MIN_COUNT`]..=[`MAX_COUNT`]. The median's standard
/// error is larger than the mean's: sqrt(3) times for uniform jitter (the worst case, assumed).
pub fn ping_count(pair: &Pair, tolerance: Tolerance) -> u32 {
    let allowed = tolerance.allowed_ms(pair.declared_rtt_ms);
    if allowed <= 0.0 {
        return MAX_COUNT;
    }
    let factor = match pair.compared {
        Statistic::Mean => 1.0,
        Statistic::Median => 3f64.sqrt(),
    };
    let needed = (4.0 * factor * pair.declared_sd_ms / allowed)
        .powi(2)
        .ceil();
    (needed as u32).clamp(MIN_COUNT, MAX_COUNT)
}

/// The ping command for one pair: from `from_ip` (so the packets take the experiment network),
/// `count` pings, a deadline so it ends even if replies stop.
fn ping_argv(pair: &Pair, count: u32) -> (Vec<String>, Duration) {
    let deadline = (f64::from(count) * INTERVAL_SECS
        + f64::from(REPLY_WAIT_SECS)
        + 2.0 * pair.declared_rtt_ms / 1000.0)
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

/// Mean, median, min and max of the reply times.
pub fn stats(sent: u32, times: &[f64]) -> Option<PingStats> {
    if times.is_empty() {
        return None;
    }
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Some(PingStats {
        sent,
        received: n as u32,
        mean_ms: sorted.iter().sum::<f64>() / n as f64,
        median_ms: median,
        min_ms: sorted[0],
        max_ms: sorted[n - 1],
    })
}

/// Declared against measured for one pair.
pub fn judge(pair: Pair, measured: Option<PingStats>, tolerance: Tolerance) -> PairResult {
    let allowed_ms = tolerance.allowed_ms(pair.declared_rtt_ms);
    let ok = measured
        .as_ref()
        .is_some_and(|m| (pair.compared.of(m) - pair.declared_rtt_ms).abs() <= allowed_ms);
    PairResult {
        pair,
        measured,
        allowed_ms,
        ok,
    }
}

/// Pings every pair of `delays` at once from the pinging host's connection (`hosts` holds every
/// host that has a delay) and judges each against `delays.tolerance`.
pub async fn measure(hosts: &[(&Host, &Conn)], delays: &Delays) -> Result<Measured> {
    let tolerance = delays.tolerance;
    let ip_of = |name: &str| {
        hosts
            .iter()
            .find(|(h, _)| h.name == name)
            .map(|(h, _)| h.experiment_ip)
    };
    let runs = pairs(delays, ip_of)?.into_iter().map(|pair| async move {
        let Some((host, conn)) = hosts.iter().find(|(h, _)| h.name == pair.from) else {
            bail!("{}: no connection to measure delays from", pair.from);
        };
        let (argv, limit) = ping_argv(&pair, ping_count(&pair, tolerance));
        // A host the inventory gives a long connect timeout (a slow link, a VM under TCG) gets
        // that much longer to start the command and report back, on top of ping's own deadline.
        let limit = limit + host.ssh.connect_timeout;
        let cmd = Cmd::new(&argv).privileged().timeout(Some(limit));
        let out = conn.run(&cmd).await?;
        let Some((sent, times)) = parse_ping(&out.stdout) else {
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
        Ok(judge(pair, stats(sent, &times), tolerance))
    });
    let pairs = futures::future::try_join_all(runs).await?;
    Ok(Measured {
        tolerance_pct: tolerance.pct,
        tolerance_ms: tolerance.ms,
        pairs,
    })
}

impl Measured {
    /// The table for delays.txt and `orch run`'s output.
    pub fn report(&self) -> String {
        let mut out = format!(
            "measured round trips (ping between experiment IPs, all pairs at once; declared = \
             both directions' mean delays added; compared (*): the measured median, or the mean \
             for pareto jitter; tolerance {}% or {} ms, whichever is larger):\n",
            self.tolerance_pct, self.tolerance_ms
        );
        let _ = writeln!(
            out,
            "  {:<20} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}  verdict",
            "pair", "declared", "mean", "median", "min", "max", "replies"
        );
        for r in &self.pairs {
            let name = format!("{} <-> {}", r.pair.from, r.pair.to);
            let declared = format!("{:.2}", r.pair.declared_rtt_ms);
            let verdict = if r.ok { "ok" } else { "OFF" };
            match &r.measured {
                Some(m) => {
                    let (mean, median) = match r.pair.compared {
                        Statistic::Mean => {
                            (format!("*{:.2}", m.mean_ms), format!("{:.2}", m.median_ms))
                        }
                        Statistic::Median => {
                            (format!("{:.2}", m.mean_ms), format!("*{:.2}", m.median_ms))
                        }
                    };
                    let _ = writeln!(
                        out,
                        "  {name:<20} {declared:>9} {mean:>9} {median:>9} {:>9.2} {:>9.2} {:>8}  {verdict}",
                        m.min_ms,
                        m.max_ms,
                        format!("{}/{}", m.received, m.sent),
                    );
                }
                None => {
                    let _ = writeln!(out, "  {name:<20} {declared:>9}  no replies  {verdict}");
                }
            }
        }
        out.push_str("  (all times in ms)\n");
        out
    }

    /// Every pair off by more than the tolerance, as one message naming pair, declared and
    /// measured; `None` if all are within it.
    pub fn failures(&self) -> Option<String> {
        let bad: Vec<String> = self
            .pairs
            .iter()
            .filter(|r| !r.ok)
            .map(|r| {
                let name = format!(
                    "{} ({}) <-> {} ({})",
                    r.pair.from, r.pair.from_ip, r.pair.to, r.pair.to_ip
                );
                match &r.measured {
                    Some(m) => format!(
                        "{name}: declared {:.2} ms, measured {} {:.2} ms (off by {:.2} ms, \
                         {:.2} ms allowed)",
                        r.pair.declared_rtt_ms,
                        r.pair.compared.name(),
                        r.pair.compared.of(m),
                        (r.pair.compared.of(m) - r.pair.declared_rtt_ms).abs(),
                        r.allowed_ms
                    ),
                    None => format!(
                        "{name}: declared {:.2} ms, no reply to any ping",
                        r.pair.declared_rtt_ms
                    ),
                }
            })
            .collect();
        (!bad.is_empty()).then(|| bad.join("\n  "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delay::spec::Egress;

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
        // Uniform jitter of 3 ms on h1 -> h2: sd 3/sqrt(3); none the other way.
        assert!((found[0].declared_sd_ms - 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(found[1].declared_sd_ms, 0.0);
        assert!(found.iter().all(|p| p.compared == Statistic::Median));
        let got: Vec<(String, String, String, f64)> = found
            .into_iter()
            .map(|p| (p.from, p.to, p.from_ip.to_string(), p.declared_rtt_ms))
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
        assert_eq!(lone[0].declared_rtt_ms, 5.0);
        let unknown = pairs(&one_way, |_: &str| None).unwrap_err().to_string();
        assert!(
            unknown.contains("h1: its experiment IP is unknown"),
            "{unknown}"
        );
    }

    #[test]
    fn jittery_pairs_get_more_pings() {
        let pair = |declared_rtt_ms: f64, declared_sd_ms: f64, compared| Pair {
            from: "h1".into(),
            to: "h2".into(),
            from_ip: "10.0.1.2".parse().unwrap(),
            to_ip: "10.0.2.2".parse().unwrap(),
            declared_rtt_ms,
            declared_sd_ms,
            compared,
        };
        let t = Tolerance::default();
        let (mean, median) = (Statistic::Mean, Statistic::Median);
        assert_eq!(ping_count(&pair(30.0, 0.0, median), t), MIN_COUNT);
        // The lab scenario's 15 +- 5 ms (normal) and 2 +- 1 ms: sd sqrt(26), 3.4 ms allowed.
        assert_eq!(ping_count(&pair(17.0, 26f64.sqrt(), mean), t), 36);
        assert_eq!(ping_count(&pair(17.0, 26f64.sqrt(), median), t), 108);
        assert_eq!(ping_count(&pair(10.0, 50.0, mean), t), MAX_COUNT);
        let strict = Tolerance { pct: 0.0, ms: 0.0 };
        assert_eq!(ping_count(&pair(10.0, 1.0, mean), strict), MAX_COUNT);
    }

    #[test]
    fn ping_output_gives_times_and_the_count_sent() {
        let (sent, times) = parse_ping(PING).unwrap();
        assert_eq!(sent, 3);
        assert_eq!(times, [0.334, 0.042, 0.033]);
        let s = stats(sent, &times).unwrap();
        assert_eq!(
            (s.received, s.median_ms, s.min_ms, s.max_ms),
            (3, 0.042, 0.033, 0.334)
        );
        // ping's own summary line says avg 0.136.
        assert!((s.mean_ms - 0.136).abs() < 5e-4);
        assert!(parse_ping("ping: connect: Network is unreachable\n").is_none());
        assert!(stats(3, &[]).is_none());
    }

    #[test]
    fn a_pair_fails_only_when_off_by_more_than_both_tolerances() {
        let pair = |declared: f64| Pair {
            from: "h1".into(),
            to: "h2".into(),
            from_ip: "10.0.1.2".parse().unwrap(),
            to_ip: "10.0.2.2".parse().unwrap(),
            declared_rtt_ms: declared,
            declared_sd_ms: 0.0,
            compared: Statistic::Mean,
        };
        let seen = |mean: f64| {
            Some(PingStats {
                sent: 20,
                received: 20,
                mean_ms: mean,
                median_ms: mean,
                min_ms: mean,
                max_ms: mean,
            })
        };
        let t = Tolerance::default();
        // 30 ms: 20% (6 ms) is the larger allowance.
        assert!(judge(pair(30.0), seen(35.9), t).ok);
        assert!(!judge(pair(30.0), seen(36.1), t).ok);
        assert!(!judge(pair(30.0), seen(23.9), t).ok);
        // 4 ms: 2 ms is the larger allowance.
        assert!(judge(pair(4.0), seen(5.9), t).ok);
        assert!(!judge(pair(4.0), seen(6.1), t).ok);
        assert!(!judge(pair(4.0), None, t).ok);

        let measured = Measured {
            tolerance_pct: 20.0,
            tolerance_ms: 2.0,
            pairs: vec![
                judge(pair(30.0), seen(30.5), t),
                judge(pair(30.0), seen(45.0), t),
            ],
        };
        let failures = measured.failures().unwrap();
        assert_eq!(
            failures,
            "h1 (10.0.1.2) <-> h2 (10.0.2.2): declared 30.00 ms, measured mean 45.00 ms (off by \
             15.00 ms, 6.00 ms allowed)"
        );
        let report = measured.report();
        assert!(
            report.contains(" ok\n") && report.contains(" OFF\n"),
            "{report}"
        );
    }
}
