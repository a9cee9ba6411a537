//! Cristian's method over one SSH channel per host: `orch-node clock` answers each line with
//! its host's CLOCK_REALTIME; of [`SAMPLES`] exchanges the one with the smallest round trip
//! gives offset = host − (sent + received) / 2, bound = round trip / 2 + the two clocks'
//! reading resolutions.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use orch_common::agent::Agent;

use super::Measurement;
use crate::remote::{Cmd, Conn};
use crate::run::RunHost;

/// Exchanges per host and measurement.
pub const SAMPLES: usize = 20;
/// Beyond the host's SSH connect timeout, how long one exchange may take.
const EXCHANGE_LIMIT: Duration = Duration::from_secs(10);

/// One exchange: the controller's clock when the request left and when the answer came, and
/// the host's clock in between (Unix ns).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub sent_ns: u64,
    pub host_ns: u64,
    pub received_ns: u64,
}

/// Cristian's estimate from `samples` (the one with the smallest round trip); `resolution_ns`
/// of the two clocks' readings together. `None` without samples.
pub fn cristian(samples: &[Sample], resolution_ns: u64) -> Option<Measurement> {
    let best = samples
        .iter()
        .min_by_key(|s| s.received_ns.saturating_sub(s.sent_ns))?;
    let rtt_ns = best.received_ns.saturating_sub(best.sent_ns);
    // In i128: Unix ns do not fit f64's mantissa, their differences do.
    let twice_offset = 2 * best.host_ns as i128 - best.sent_ns as i128 - best.received_ns as i128;
    Some(Measurement {
        offset_ms: twice_offset as f64 / 2e6,
        bound_ms: (rtt_ns as f64 / 2.0 + resolution_ns as f64) / 1e6,
        rtt_ms: rtt_ns as f64 / 1e6,
        samples: samples.len(),
        at_unix_ns: best.sent_ns,
        resolution_ns,
        chrony: None,
    })
}

/// Measures every host of `conns` at once; the error names each host that failed.
pub async fn all(
    conns: &BTreeMap<String, (Conn, RunHost)>,
) -> anyhow::Result<BTreeMap<String, Measurement>> {
    let measured = futures::future::join_all(
        conns
            .iter()
            .map(|(name, (conn, rh))| async move { (name.clone(), host(conn, rh).await) }),
    )
    .await;
    let mut out = BTreeMap::new();
    let mut failed = Vec::new();
    for (name, m) in measured {
        match m {
            Ok(m) => {
                out.insert(name, m);
            }
            Err(e) => failed.push(format!("{e:#}")),
        }
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "cannot measure the clocks (`orch setup` installs an orch-node with `clock`):\n  {}",
            failed.join("\n  ")
        );
    }
    Ok(out)
}

/// [`SAMPLES`] exchanges with `orch-node clock` on one host, over one channel.
async fn host(conn: &Conn, rh: &RunHost) -> anyhow::Result<Measurement> {
    let argv = rh.agent(Agent::Clock);
    let what = || format!("{}: `{}`", rh.host.name, argv.join(" "));
    let limit = rh.host.ssh.connect_timeout + EXCHANGE_LIMIT;
    let mut d = conn.dialogue(&Cmd::new(&argv), limit).await?;
    let first = d.receive().await?;
    let host_resolution: u64 = first
        .trim()
        .parse()
        .with_context(|| format!("{} printed `{first}`, not a resolution in ns", what()))?;
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let sent_ns = now_ns();
        d.send("t").await?;
        let line = d.receive().await?;
        let received_ns = now_ns();
        let host_ns = line
            .trim()
            .parse()
            .with_context(|| format!("{} answered `{line}`, not a time in ns", what()))?;
        samples.push(Sample {
            sent_ns,
            host_ns,
            received_ns,
        });
    }
    d.close().await?;
    let mut m = cristian(&samples, host_resolution + controller_resolution_ns())
        .with_context(|| format!("{}: no samples", what()))?;
    m.chrony = super::chrony::probe(conn).await?;
    Ok(m)
}

/// The controller's CLOCK_REALTIME, Unix ns.
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `clock_getres(CLOCK_REALTIME)` on the controller, ns (1 if it cannot say).
fn controller_resolution_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec the call writes into.
    if unsafe { libc::clock_getres(libc::CLOCK_REALTIME, &mut ts) } != 0 {
        return 1;
    }
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_765_000_000_000_000_000;

    fn sample(sent_us: u64, host_us: u64, received_us: u64) -> Sample {
        Sample {
            sent_ns: T + sent_us * 1000,
            host_ns: T + host_us * 1000,
            received_ns: T + received_us * 1000,
        }
    }

    #[test]
    fn the_smallest_round_trip_gives_offset_and_bound() {
        // A host 40 ms ahead; the second exchange is the quickest (300 µs), its answer read
        // 100 µs after the request left: the estimate is 40 ms − 50 µs, within 150 µs + 2 ns.
        let samples = [
            sample(0, 40_900, 2_000),
            sample(10_000, 50_100, 10_300),
            sample(20_000, 60_700, 21_000),
        ];
        let m = cristian(&samples, 2).unwrap();
        assert!((m.offset_ms - 39.95).abs() < 1e-9, "{m:?}");
        assert!((m.bound_ms - 0.150_002).abs() < 1e-9, "{m:?}");
        assert!((m.rtt_ms - 0.3).abs() < 1e-9, "{m:?}");
        assert_eq!(
            (m.samples, m.at_unix_ns, m.resolution_ns),
            (3, T + 10_000_000, 2)
        );
        assert!(
            (m.offset_ms - 40.0).abs() <= m.bound_ms,
            "the truth is within the bound"
        );
        assert_eq!(cristian(&[], 1), None);
    }

    #[test]
    fn a_host_behind_gives_a_negative_offset_without_losing_nanoseconds() {
        let m = cristian(&[sample(1_000, 0, 1_002)], 0).unwrap();
        assert!((m.offset_ms + 1.001).abs() < 1e-12, "{m:?}");
        assert!((m.bound_ms - 0.001).abs() < 1e-12, "{m:?}");
    }
}
