//! The scenario's delays as the first phase of a run: each delayed pair's base round trip is
//! measured, the delays are applied (less half the base each way with `delays.compensate`),
//! each pair is measured again and certified against the model of its declared delays
//! (delay/certify.rs). The report, the verdicts (delays.json), the samples
//! (delays-samples.json.gz) and a CDF plot per pair go into the run's directory; a pair outside
//! the rule fails the run before its workload starts.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use flate2::write::GzEncoder;
use serde::Serialize;

use super::RunHost;
use crate::delay::certify::{self, Certified, Check, PairVerdict, Sampled};
use crate::delay::measure::{self, Pair, BASE_COUNT, DELAYED_COUNT};
use crate::delay::{self, AppliedDelays, Delays, RoundTrip, Tolerance};
use crate::inventory::Host;
use crate::remote::Conn;
use crate::results::plot;

/// The samples a certificate was judged on, per pair (delays-samples.json.gz).
#[derive(Serialize)]
struct Samples<'a> {
    from: &'a str,
    to: &'a str,
    base_ms: &'a [f64],
    delayed_ms: &'a [f64],
}

/// Pings sent and the reply times (ms) of one pair.
type Pings = (u32, Vec<f64>);

/// One pair on its way to its certificate.
struct Judged {
    /// As in force (compensated), and as declared.
    pair: Pair,
    declared: Pair,
    compensated_ms: f64,
    base: Pings,
    model: RoundTrip,
    delayed: Pings,
    checks: Vec<Check>,
    problem: Option<String>,
    first_failure: Option<String>,
}

/// Applies `d` on its hosts (recorded in `applied` at once, so teardown removes them even if
/// what follows fails) and certifies them; the certificate as delays.json holds it.
pub async fn start(
    d: &Delays,
    conns: &BTreeMap<String, (Conn, RunHost)>,
    local: &Path,
    applied: &mut Option<AppliedDelays>,
) -> Result<serde_json::Value> {
    let targets = d
        .hosts
        .iter()
        .map(|(name, _)| {
            let (conn, rh) = &conns[name];
            rh.delay_target(conn, "delays")
        })
        .collect::<Result<Vec<_>>>()?;
    let hosts: Vec<(&Host, &Conn)> = targets.iter().map(|t| (t.host, t.conn)).collect();
    let ip_of = |name: &str| conns.get(name).map(|(_, rh)| rh.host.experiment_ip);
    let declared = measure::pairs(d, ip_of)?;
    // An interrupted run's delays would be measured as the testbed's own round trip.
    delay::clear_leftovers(&targets, d).await?;
    let base = measure::ping(&hosts, &declared, BASE_COUNT).await?;
    let (in_force, subtracted) = if d.compensate {
        compensate(d, &declared, &base)?
    } else {
        (d.clone(), vec![0.0; declared.len()])
    };
    let done = delay::apply(&targets, &in_force).await?;
    eprintln!("   delays:\n{}", super::indent(&done.report()));
    let applied_report = done.report();
    *applied = Some(done);
    let delayed = measure::pairs(&in_force, ip_of)?;
    let mut judged: Vec<Judged> = delayed
        .into_iter()
        .zip(declared)
        .zip(subtracted.into_iter().zip(base))
        .map(|((pair, declared), (compensated_ms, base))| {
            let base_p50 = Sampled::of(base.0, &base.1).map_or(0.0, |b| b.p50_ms);
            let model = RoundTrip::new(Some(&pair.forward), pair.back.as_ref(), base_p50);
            Judged {
                pair,
                declared,
                compensated_ms,
                base,
                model,
                delayed: (0, Vec::new()),
                checks: Vec::new(),
                problem: None,
                first_failure: None,
            }
        })
        .collect();
    judge_all(&hosts, &mut judged, d.tolerance).await?;

    for j in &judged {
        plot_pair(local, j)?;
    }
    let certified = Certified {
        rule: certify::rule(d.tolerance),
        tolerance_pct: d.tolerance.pct,
        tolerance_ms: d.tolerance.ms,
        z: certify::Z,
        pairs: judged.iter().map(verdict).collect(),
    };
    let report = format!("{applied_report}\n{}", certified.report());
    std::fs::write(local.join("delays.txt"), &report)?;
    let json = serde_json::to_vec_pretty(&certified)?;
    std::fs::write(local.join("delays.json"), &json)?;
    write_samples(&local.join("delays-samples.json.gz"), &judged)?;
    eprintln!("{}", super::indent(&certified.report()));
    if let Some(off) = certified.failures() {
        bail!(
            "the measured round trips do not match the declared delays (see {}):\n  {off}",
            local.join("delays.txt").display()
        );
    }
    // As `orch report` reads it back from delays.json, so both give the same summary.json.
    Ok(serde_json::from_slice(&json)?)
}

/// Pings every pair with the delays in force and judges it; a pair whose statistics failed is
/// measured once more, and the second measurement decides: a host stalled by other work fails a
/// pair once, a distortion that persists fails it again (docs/delay.md, "Certified delays").
async fn judge_all(
    hosts: &[(&Host, &Conn)],
    judged: &mut [Judged],
    tolerance: Tolerance,
) -> Result<()> {
    let pairs: Vec<Pair> = judged.iter().map(|j| j.pair.clone()).collect();
    let delayed = measure::ping(hosts, &pairs, DELAYED_COUNT).await?;
    for (j, pings) in judged.iter_mut().zip(delayed) {
        (j.checks, j.problem) = certify::judge(&j.model, &pings.1, tolerance);
        j.delayed = pings;
    }
    let again: Vec<&mut Judged> = judged
        .iter_mut()
        .filter(|j| j.problem.is_none() && j.checks.iter().any(|c| !c.ok))
        .collect();
    if again.is_empty() {
        return Ok(());
    }
    let pairs: Vec<Pair> = again.iter().map(|j| j.pair.clone()).collect();
    let second = measure::ping(hosts, &pairs, DELAYED_COUNT).await?;
    for (j, pings) in again.into_iter().zip(second) {
        j.first_failure = Some(certify::failed_statistics(&j.checks));
        (j.checks, j.problem) = certify::judge(&j.model, &pings.1, tolerance);
        j.delayed = pings;
    }
    Ok(())
}

/// The certificate of one pair.
fn verdict(j: &Judged) -> PairVerdict {
    PairVerdict {
        from: j.pair.from.clone(),
        to: j.pair.to.clone(),
        from_ip: j.pair.from_ip,
        to_ip: j.pair.to_ip,
        forward: Some(j.declared.forward.to_string()),
        back: j.declared.back.map(|b| b.to_string()),
        declared_rtt_ms: j.declared.declared_rtt_ms(),
        base: Sampled::of(j.base.0, &j.base.1),
        compensated_ms: j.compensated_ms,
        sent: j.delayed.0,
        delayed: Sampled::of(j.delayed.0, &j.delayed.1),
        checks: j.checks.clone(),
        problem: j.problem.clone(),
        first_failure: j.first_failure.clone(),
        ok: j.problem.is_none() && j.checks.iter().all(|c| c.ok),
    }
}

/// `delays-<from>-<to>.svg`/`.png`: the model's CDF (through its quantiles, so a fixed delay is
/// a vertical step), the realised round trips' and the base's.
fn plot_pair(local: &Path, j: &Judged) -> Result<()> {
    let model: Vec<(f64, f64)> = (0..=200)
        .map(|k| f64::from(k) / 200.0)
        .map(|q| (j.model.quantile(q), q))
        .collect();
    plot::write_cdf_plot(
        &local.join(format!("delays-{}-{}", j.pair.from, j.pair.to)),
        &format!(
            "{} <-> {}: round trips, declared against realised",
            j.pair.from, j.pair.to
        ),
        &[
            ("declared (model)", model),
            ("realised", plot::ecdf(&j.delayed.1)),
            ("base (before the delays)", plot::ecdf(&j.base.1)),
        ],
    )?;
    Ok(())
}

/// `d` with half of each pair's median base round trip subtracted from each of its delayed
/// directions (all of it where only one direction has a delay), and what was subtracted per pair.
fn compensate(d: &Delays, pairs: &[Pair], base: &[Pings]) -> Result<(Delays, Vec<f64>)> {
    let mut out = d.clone();
    let mut subtracted = Vec::new();
    for (pair, (_, times)) in pairs.iter().zip(base) {
        let Some(b) = Sampled::of(0, times) else {
            bail!(
                "{} <-> {}: no reply to any ping before the delays, so delays.compensate has no \
                 base round trip to subtract",
                pair.from,
                pair.to
            );
        };
        let each = if pair.back.is_some() {
            b.p50_ms / 2.0
        } else {
            b.p50_ms
        };
        for (from, to) in [(&pair.from, &pair.to), (&pair.to, &pair.from)] {
            let rule = out
                .hosts
                .iter_mut()
                .filter(|(h, _)| h == from)
                .flat_map(|(_, rules)| rules.iter_mut())
                .find(|e| &e.to == to);
            if let Some(rule) = rule {
                if rule.link.delay_ms < each {
                    bail!(
                        "{from} -> {to}: delays.compensate would subtract {each:.3} ms (half the \
                         base round trip of {:.3} ms) from a delay of {} ms; declare at least \
                         that much, or leave compensate off",
                        b.p50_ms,
                        rule.link.delay_ms
                    );
                }
                rule.link.delay_ms -= each;
            }
        }
        subtracted.push(each);
    }
    Ok((out, subtracted))
}

fn write_samples(path: &Path, judged: &[Judged]) -> Result<()> {
    let samples: Vec<Samples> = judged
        .iter()
        .map(|j| Samples {
            from: &j.pair.from,
            to: &j.pair.to,
            base_ms: &j.base.1,
            delayed_ms: &j.delayed.1,
        })
        .collect();
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut gz = GzEncoder::new(file, flate2::Compression::default());
    serde_json::to_writer(&mut gz, &samples)?;
    gz.finish()?.flush()?;
    Ok(())
}
