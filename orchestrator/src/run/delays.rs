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
use crate::delay::certify::{self, Certified, PairVerdict, Sampled};
use crate::delay::measure::{self, Pair, BASE_COUNT, DELAYED_COUNT};
use crate::delay::{self, AppliedDelays, Delays, RoundTrip};
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
    let pairs = measure::pairs(&in_force, ip_of)?;
    let models: Vec<RoundTrip> = pairs
        .iter()
        .zip(&base)
        .map(|(pair, (sent, times))| {
            let base_p50 = Sampled::of(*sent, times).map_or(0.0, |b| b.p50_ms);
            RoundTrip::new(Some(&pair.forward), pair.back.as_ref(), base_p50)
        })
        .collect();
    let mut delayed = measure::ping(&hosts, &pairs, DELAYED_COUNT).await?;
    let mut judged: Vec<_> = models
        .iter()
        .zip(&delayed)
        .map(|(model, (_, times))| certify::judge(model, times, d.tolerance))
        .collect();
    // A pair whose statistics failed is measured once more: a host stalled by other work fails
    // a pair once; a distortion that persists fails it again (docs/delay.md, "the rule").
    let again: Vec<usize> = (0..pairs.len())
        .filter(|&i| judged[i].1.is_none() && judged[i].0.iter().any(|c| !c.ok))
        .collect();
    let mut first_failures = vec![None; pairs.len()];
    if !again.is_empty() {
        let retried: Vec<Pair> = again.iter().map(|&i| pairs[i].clone()).collect();
        let second = measure::ping(&hosts, &retried, DELAYED_COUNT).await?;
        for (&i, measured) in again.iter().zip(second) {
            first_failures[i] = Some(certify::failed_statistics(&judged[i].0));
            judged[i] = certify::judge(&models[i], &measured.1, d.tolerance);
            delayed[i] = measured;
        }
    }

    let mut verdicts = Vec::new();
    let mut samples = Vec::new();
    for (i, ((pair, model), (checks, problem))) in pairs.iter().zip(&models).zip(judged).enumerate()
    {
        let (base_sent, base_ms) = &base[i];
        let (sent, delayed_ms) = &delayed[i];
        let ok = problem.is_none() && checks.iter().all(|c| c.ok);
        let original = &declared[i];
        let title = format!(
            "{} <-> {}: round trips, declared against realised",
            pair.from, pair.to
        );
        // The model's CDF through its quantiles: a fixed delay is a vertical step.
        let model_curve: Vec<(f64, f64)> = (0..=200)
            .map(|k| f64::from(k) / 200.0)
            .map(|q| (model.quantile(q), q))
            .collect();
        plot::write_cdf_plot(
            &local.join(format!("delays-{}-{}", pair.from, pair.to)),
            &title,
            &[
                ("declared (model)", model_curve),
                ("realised", plot::ecdf(delayed_ms)),
                ("base (before the delays)", plot::ecdf(base_ms)),
            ],
        )?;
        verdicts.push(PairVerdict {
            from: pair.from.clone(),
            to: pair.to.clone(),
            from_ip: pair.from_ip,
            to_ip: pair.to_ip,
            forward: Some(original.forward.to_string()),
            back: original.back.map(|b| b.to_string()),
            declared_rtt_ms: original.declared_rtt_ms(),
            base: Sampled::of(*base_sent, base_ms),
            compensated_ms: subtracted[i],
            sent: *sent,
            delayed: Sampled::of(*sent, delayed_ms),
            checks,
            problem,
            first_failure: first_failures[i].take(),
            ok,
        });
        samples.push(Samples {
            from: &pair.from,
            to: &pair.to,
            base_ms,
            delayed_ms,
        });
    }
    let certified = Certified {
        rule: certify::rule(d.tolerance),
        tolerance_pct: d.tolerance.pct,
        tolerance_ms: d.tolerance.ms,
        z: certify::Z,
        pairs: verdicts,
    };
    let report = format!("{applied_report}\n{}", certified.report());
    std::fs::write(local.join("delays.txt"), &report)?;
    let json = serde_json::to_vec_pretty(&certified)?;
    std::fs::write(local.join("delays.json"), &json)?;
    write_samples(&local.join("delays-samples.json.gz"), &samples)?;
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

/// `d` with half of each pair's median base round trip subtracted from each of its delayed
/// directions (all of it where only one direction has a delay), and what was subtracted per pair.
fn compensate(d: &Delays, pairs: &[Pair], base: &[(u32, Vec<f64>)]) -> Result<(Delays, Vec<f64>)> {
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

fn write_samples(path: &Path, samples: &[Samples]) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut gz = GzEncoder::new(file, flate2::Compression::default());
    serde_json::to_writer(&mut gz, samples)?;
    gz.finish()?.flush()?;
    Ok(())
}
