//! The `delays:` section of a scenario: per-interface delays (the seed's
//! `tc qdisc add dev IFACE root netem delay 6ms 3ms distribution pareto`) and a matrix of
//! one-way delays between pairs of hosts, validated against the inventory into the egress
//! rules of every host.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use orch_common::delay;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::model::Truncation;
use crate::config::Problems;
use crate::inventory::Host;

/// The `delays:` section as written.
///
/// ```yaml
/// delays:
///   method: auto           # auto (netem where the kernel has it), netem or emulator
///   interfaces:            # everything host2 sends to the other hosts through eth1
///     - {host: host2, interface: eth1, delay_ms: 6, jitter_ms: 3, distribution: pareto}
///   pairs:                 # one-way delays; `both_ways` adds the reverse direction
///     - {from: host1, to: host2, delay_ms: 5, both_ways: true}
///     - {from: host1, to: host3, delay_ms: 20, jitter_ms: 2, distribution: normal, loss_pct: 0.1}
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelaySpec {
    pub method: Option<Spanned<String>>,
    #[serde(default)]
    pub interfaces: Vec<InterfaceDelay>,
    #[serde(default)]
    pub pairs: Vec<PairDelay>,
    /// How far a measured round trip may be from the declared one, percent (default 20) and
    /// ms (default 2); a pair fails only when off by more than both (delay/measure.rs).
    pub tolerance_pct: Option<Spanned<f64>>,
    pub tolerance_ms: Option<Spanned<f64>>,
    /// Subtract half of each pair's base round trip (measured before the delays) from each
    /// direction's delay, so the round trip is the declared one rather than declared + base.
    pub compensate: Option<bool>,
}

/// A delay on everything `host` sends to the other hosts' experiment IPs (through `interface`
/// if given, else through any interface).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceDelay {
    pub host: Spanned<String>,
    pub interface: Option<Spanned<String>>,
    pub delay_ms: Spanned<f64>,
    pub jitter_ms: Option<Spanned<f64>>,
    pub distribution: Option<Spanned<String>>,
    pub loss_pct: Option<Spanned<f64>>,
    /// Run a profile whose draws below zero change its mean or spread (see [`MAX_TRUNCATION`]).
    #[serde(default)]
    pub allow_truncation: bool,
}

/// A one-way delay from `from` to `to` (applied on `from`'s egress); it replaces any interface
/// delay of `from` towards `to`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairDelay {
    pub from: Spanned<String>,
    pub to: Spanned<String>,
    #[serde(default)]
    pub both_ways: bool,
    pub delay_ms: Spanned<f64>,
    pub jitter_ms: Option<Spanned<f64>>,
    pub distribution: Option<Spanned<String>>,
    pub loss_pct: Option<Spanned<f64>>,
    /// Run a profile whose draws below zero change its mean or spread (see [`MAX_TRUNCATION`]).
    #[serde(default)]
    pub allow_truncation: bool,
}

/// How far a realised statistic may be from the model's beyond its sampling interval (what the
/// emulation itself may add): the larger of `pct` percent of the model's value and `ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
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
    /// The largest deviation from `declared_ms` accepted beyond the sampling interval.
    pub fn allowed_ms(&self, declared_ms: f64) -> f64 {
        (declared_ms * self.pct / 100.0).max(self.ms)
    }
}

/// How the delays are made on the hosts (`delays.method`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Method {
    /// netem where `orch check` found it on the host, the emulator elsewhere.
    #[default]
    Auto,
    /// netem on every host; a host without it is an error.
    Netem,
    /// `orch-node delay` on every host, even where netem exists (to compare the two).
    Emulator,
}

impl Method {
    const ALL: [Method; 3] = [Method::Auto, Method::Netem, Method::Emulator];

    /// The name scenarios use.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Netem => "netem",
            Method::Emulator => "emulator",
        }
    }
}

/// Shape of the jitter: the shared contract's, so netem's names and the emulator's agree.
pub use orch_common::delay::Distribution;

/// What one link does to packets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    pub delay_ms: f64,
    pub jitter_ms: f64,
    pub distribution: Distribution,
    pub loss_pct: f64,
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms", self.delay_ms)?;
        if self.jitter_ms > 0.0 {
            write!(f, " ± {} ms {}", self.jitter_ms, self.distribution.as_str())?;
        }
        if self.loss_pct > 0.0 {
            write!(f, ", {}% loss", self.loss_pct)?;
        }
        Ok(())
    }
}

/// One delayed path: packets from the host to `dst` (leaving through `interface`, if set).
#[derive(Debug, Clone, PartialEq)]
pub struct Egress {
    /// The peer's inventory name.
    pub to: String,
    /// The peer's experiment IP.
    pub dst: IpAddr,
    pub interface: Option<String>,
    pub link: Link,
}

/// The validated delays: the method and the egress rules of every host that has any, in
/// inventory order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delays {
    pub method: Method,
    pub hosts: Vec<(String, Vec<Egress>)>,
    /// For the certification after the delays are applied.
    pub tolerance: Tolerance,
    /// `delays.compensate`: subtract half of each pair's base round trip from each direction.
    pub compensate: bool,
}

impl Delays {
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
}

impl DelaySpec {
    /// Checks the section against the hosts of the experiment and computes every host's egress
    /// rules. Every problem is reported at once, located at `file:line:column` with its field
    /// (`delays.pairs[1].to`).
    /// `None` when any was reported to `problems`.
    pub fn validate(&self, hosts: &[&Host], problems: &mut Problems) -> Option<Delays> {
        let before = problems.len();
        let mut c = Checker { hosts, problems };
        let mut method = Method::Auto;
        if let Some(m) = &self.method {
            match Method::ALL.iter().find(|x| x.as_str() == m.value) {
                Some(x) => method = *x,
                None => c.problems.at(
                    m.referenced,
                    "delays.method",
                    format!(
                        "unknown method `{}`, expected one of {}",
                        m.value,
                        Method::ALL.map(|x| x.as_str()).join(", ")
                    ),
                ),
            }
        }
        let mut rules: Vec<Vec<Egress>> = vec![Vec::new(); hosts.len()];
        let mut whole_host: HashMap<usize, (Option<String>, usize)> = HashMap::new();
        let mut seen_iface: HashMap<(usize, Option<String>), usize> = HashMap::new();
        for (i, d) in self.interfaces.iter().enumerate() {
            let field = format!("delays.interfaces[{i}]");
            let link = c.link(
                &field,
                &d.delay_ms,
                d.jitter_ms.as_ref(),
                d.distribution.as_ref(),
                d.loss_pct.as_ref(),
                d.allow_truncation,
            );
            let Some(h) = c.host(&d.host, &format!("{field}.host")) else {
                continue;
            };
            let iface = d.interface.as_ref().map(|s| s.value.clone());
            if let Some(name) = &d.interface {
                let known = &hosts[h].interfaces;
                if !known.is_empty() && !known.contains(&name.value) {
                    c.problems.at(
                        name.referenced,
                        &format!("{field}.interface"),
                        format!(
                            "{} has no interface `{}` in the inventory; it has {}",
                            hosts[h].name,
                            name.value,
                            known.join(", ")
                        ),
                    );
                    continue;
                }
            }
            let line = d.host.referenced.line() as usize;
            if let Some(first) = seen_iface.insert((h, iface.clone()), line) {
                c.problems.at(
                    d.host.referenced,
                    &field,
                    format!(
                        "a second delay for {}{} (the first is on line {first})",
                        hosts[h].name,
                        iface.as_ref().map(|i| format!(" {i}")).unwrap_or_default()
                    ),
                );
                continue;
            }
            if let Some((other, first)) = whole_host.get(&h) {
                if other.is_none() != iface.is_none() {
                    c.problems.at(
                        d.host.referenced,
                        &field,
                        format!(
                            "{} has a delay for all its interfaces and one for a single interface (line {first}); use one or the other",
                            hosts[h].name
                        ),
                    );
                    continue;
                }
            }
            whole_host.insert(h, (iface.clone(), line));
            let Some(link) = link else { continue };
            for (p, peer) in hosts.iter().enumerate().filter(|(p, _)| *p != h) {
                rules[h].push(Egress {
                    to: peer.name.clone(),
                    dst: hosts[p].experiment_ip,
                    interface: iface.clone(),
                    link,
                });
            }
        }

        let mut seen_pair: HashMap<(usize, usize), usize> = HashMap::new();
        for (i, d) in self.pairs.iter().enumerate() {
            let field = format!("delays.pairs[{i}]");
            let link = c.link(
                &field,
                &d.delay_ms,
                d.jitter_ms.as_ref(),
                d.distribution.as_ref(),
                d.loss_pct.as_ref(),
                d.allow_truncation,
            );
            let from = c.host(&d.from, &format!("{field}.from"));
            let to = c.host(&d.to, &format!("{field}.to"));
            let (Some(from), Some(to)) = (from, to) else {
                continue;
            };
            if from == to {
                c.problems.at(
                    d.to.referenced,
                    &format!("{field}.to"),
                    format!("a pair needs two different hosts, not {} twice", d.to.value),
                );
                continue;
            }
            let mut directions = vec![(from, to)];
            if d.both_ways {
                directions.push((to, from));
            }
            let line = d.from.referenced.line() as usize;
            for (a, b) in directions {
                if let Some(first) = seen_pair.insert((a, b), line) {
                    c.problems.at(
                        d.from.referenced,
                        &field,
                        format!(
                            "a second delay from {} to {} (the first is on line {first})",
                            hosts[a].name, hosts[b].name
                        ),
                    );
                    continue;
                }
                let Some(link) = link else { continue };
                rules[a].retain(|e| e.to != hosts[b].name);
                rules[a].push(Egress {
                    to: hosts[b].name.clone(),
                    dst: hosts[b].experiment_ip,
                    interface: None,
                    link,
                });
            }
        }

        let mut tolerance = Tolerance::default();
        for (name, given, value) in [
            ("tolerance_pct", &self.tolerance_pct, &mut tolerance.pct),
            ("tolerance_ms", &self.tolerance_ms, &mut tolerance.ms),
        ] {
            let Some(v) = given else { continue };
            if v.value.is_finite() && v.value >= 0.0 {
                *value = v.value;
            } else {
                let msg = format!("must be a number >= 0, not {}", v.value);
                c.problems.at(v.referenced, &format!("delays.{name}"), msg);
            }
        }

        if c.problems.len() > before {
            return None;
        }
        Some(Delays {
            tolerance,
            compensate: self.compensate.unwrap_or(false),
            method,
            hosts: hosts
                .iter()
                .zip(rules)
                .filter(|(_, r)| !r.is_empty())
                .map(|(h, mut r)| {
                    r.sort_by_key(|e| (host_index(hosts, &e.to), e.interface.clone()));
                    (h.name.clone(), r)
                })
                .collect(),
        })
    }
}

/// The most a link's draws below zero may move its mean or standard deviation without
/// `allow_truncation: true`: 3 %. The seed's 2 +- 1 ms normal moves its mean by 0.4 % and its
/// standard deviation by 2.0 % (so 2 % would refuse it); its 100 +- 100 ms normal moves the mean
/// by 8.3 % and the standard deviation by 13 %.
pub const MAX_TRUNCATION: f64 = 0.03;

/// Why `link` cannot be emulated as declared (netem and the emulator send a packet drawn a
/// negative delay at once, which moves the realised mean up and the spread down), or `None`.
pub fn truncated(link: &Link) -> Option<String> {
    let t = Truncation::of(link);
    if t.change() <= MAX_TRUNCATION {
        return None;
    }
    let pct = |declared: f64, realised: f64| {
        if declared > 0.0 {
            format!("{:+.1}%", (realised - declared) / declared * 100.0)
        } else {
            "a declared mean at or below zero".to_string()
        }
    };
    Some(format!(
        "{link} draws below zero for {:.1}% of packets, which netem and the emulator send at \
         once: the realised mean is {:.2} ms and the standard deviation {:.2} ms instead of \
         {:.2} and {:.2} ({} and {}; at most {}% is accepted). Declare a profile that stays \
         above zero, or add `allow_truncation: true` to this entry to run it as emulated (the \
         run then certifies the delays against the cut distribution)",
        t.below_zero * 100.0,
        t.realised_mean_ms,
        t.realised_sd_ms,
        t.declared_mean_ms,
        t.declared_sd_ms,
        pct(t.declared_mean_ms, t.realised_mean_ms),
        pct(t.declared_sd_ms, t.realised_sd_ms),
        MAX_TRUNCATION * 100.0
    ))
}

fn host_index(hosts: &[&Host], name: &str) -> usize {
    hosts
        .iter()
        .position(|h| h.name == name)
        .unwrap_or(usize::MAX)
}

struct Checker<'a> {
    hosts: &'a [&'a Host],
    problems: &'a mut Problems,
}

impl Checker<'_> {
    fn host(&mut self, name: &Spanned<String>, field: &str) -> Option<usize> {
        let found = self.hosts.iter().position(|h| h.name == name.value);
        if found.is_none() {
            let known: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
            self.problems.at(
                name.referenced,
                field,
                format!(
                    "unknown host `{}`; the experiment has {}",
                    name.value,
                    known.join(", ")
                ),
            );
        }
        found
    }

    fn link(
        &mut self,
        field: &str,
        delay: &Spanned<f64>,
        jitter: Option<&Spanned<f64>>,
        distribution: Option<&Spanned<String>>,
        loss: Option<&Spanned<f64>>,
        allow_truncation: bool,
    ) -> Option<Link> {
        let before = self.problems.len();
        for (name, v) in [("delay_ms", Some(delay)), ("jitter_ms", jitter)] {
            if let Some(v) = v {
                if let Err(e) = delay::check_ms(v.value) {
                    self.problems
                        .at(v.referenced, &format!("{field}.{name}"), e);
                }
            }
        }
        if let Some(l) = loss {
            if let Err(e) = delay::check_loss(l.value) {
                self.problems
                    .at(l.referenced, &format!("{field}.loss_pct"), e);
            }
        }
        let jitter_ms = jitter.map_or(0.0, |j| j.value);
        let mut dist = Distribution::Uniform;
        if let Some(d) = distribution {
            match Distribution::named(&d.value) {
                Ok(x) => dist = x,
                Err(e) => self
                    .problems
                    .at(d.referenced, &format!("{field}.distribution"), e),
            }
            if jitter_ms == 0.0 && dist != Distribution::Uniform {
                self.problems.at(
                    d.referenced,
                    &format!("{field}.distribution"),
                    "a distribution needs jitter_ms > 0 (as with netem)",
                );
            }
        }
        if self.problems.len() > before {
            return None;
        }
        let link = Link {
            delay_ms: delay.value,
            jitter_ms,
            distribution: dist,
            loss_pct: loss.map_or(0.0, |l| l.value),
        };
        if !allow_truncation {
            if let Some(why) = truncated(&link) {
                self.problems.at(delay.referenced, field, why);
                return None;
            }
        }
        Some(link)
    }
}

#[cfg(test)]
mod tests;
