//! Whether a link's jitter reorders the packets of one flow, and the warning `orch run` prints
//! when it does (docs/delay.md, "Reordering").
//!
//! netem and the emulator draw every packet's delay independently and release packets in order
//! of release time, so two packets sent `gap` ms apart with delays D1 and D2 arrive swapped when
//! D2 < D1 - gap. For a link's delay distribution (netem's, cut at zero: `one_way_ms`) that
//! chance is computed on an even grid of quantiles, exactly and the same on every run.
//!
//! The criterion: a link whose two packets 1 ms apart arrive swapped more often than 1 % of the
//! time is warned about. A TCP flow at any useful rate sends its segments well under 1 ms apart,
//! so such a link reorders it often (the seed's 15 ± 5 ms normal swaps 44 % of packet pairs 1 ms
//! apart; measured 43.7 to 45.6 % with the emulator and netem), while a fixed delay does not.
//! The run is not refused: the seed's own profiles have this jitter.

use std::path::Path;

use orch_common::dist;
use serde_saphyr::Spanned;

use super::spec::{DelaySpec, Distribution, Link};
use crate::config::Problem;

/// Quantiles of one direction's delay in the model.
const GRID: usize = 2000;

/// The spacing the criterion looks at, ms.
pub const WARN_GAP_MS: f64 = 1.0;
/// The share of swapped pairs at [`WARN_GAP_MS`] above which a link is warned about.
pub const WARN_SHARE: f64 = 0.01;

/// A link's delays as the model draws them: the chance that the later of two packets
/// overtakes the earlier.
#[derive(Debug, Clone)]
pub struct Swaps {
    /// One-way delays at an even grid of quantiles, sorted.
    sorted: Vec<f64>,
}

impl Swaps {
    pub fn of(link: &Link) -> Swaps {
        let mut sorted: Vec<f64> = (0..GRID)
            .map(|i| {
                let u = (i as f64 + 0.5) / GRID as f64;
                dist::one_way_ms(link.distribution, link.delay_ms, link.jitter_ms, u)
            })
            .collect();
        sorted.sort_by(f64::total_cmp);
        Swaps { sorted }
    }

    /// P(D2 < D1 - gap): two packets sent `gap_ms` apart arrive in the opposite order.
    pub fn share(&self, gap_ms: f64) -> f64 {
        let n = self.sorted.len();
        let below: usize = self
            .sorted
            .iter()
            .map(|d1| self.sorted.partition_point(|d2| *d2 < d1 - gap_ms))
            .sum();
        below as f64 / (n * n) as f64
    }
}

/// The warnings for the links of one `delays:` section (`field`: `delays` or
/// `delay_profiles.NAME`), located at each link's `jitter_ms` in `file`.
pub fn warnings(spec: &DelaySpec, field: &str, file: &Path) -> Vec<Problem> {
    let mut out = Vec::new();
    for (i, d) in spec.interfaces.iter().enumerate() {
        let what = format!("{} -> every other host", d.host.value);
        let link = link(&d.delay_ms, d.jitter_ms.as_ref(), d.distribution.as_ref());
        if let (Some(jitter), Some(link)) = (&d.jitter_ms, link) {
            let at = format!("{field}.interfaces[{i}].jitter_ms");
            out.extend(warning(&link, &what, jitter, &at, file));
        }
    }
    for (i, d) in spec.pairs.iter().enumerate() {
        let arrow = if d.both_ways { "<->" } else { "->" };
        let what = format!("{} {arrow} {}", d.from.value, d.to.value);
        let link = link(&d.delay_ms, d.jitter_ms.as_ref(), d.distribution.as_ref());
        if let (Some(jitter), Some(link)) = (&d.jitter_ms, link) {
            let at = format!("{field}.pairs[{i}].jitter_ms");
            out.extend(warning(&link, &what, jitter, &at, file));
        }
    }
    out
}

/// The link as written, or `None` where the validation reports it (a distribution orch does
/// not know).
fn link(
    delay: &Spanned<f64>,
    jitter: Option<&Spanned<f64>>,
    distribution: Option<&Spanned<String>>,
) -> Option<Link> {
    let distribution = match distribution {
        Some(d) => Distribution::named(&d.value).ok()?,
        None => Distribution::Uniform,
    };
    Some(Link {
        delay_ms: delay.value,
        jitter_ms: jitter.map_or(0.0, |j| j.value),
        distribution,
        loss_pct: 0.0,
    })
}

fn warning(
    link: &Link,
    what: &str,
    jitter: &Spanned<f64>,
    field: &str,
    file: &Path,
) -> Option<Problem> {
    let swaps = Swaps::of(link);
    let close = swaps.share(WARN_GAP_MS);
    if close <= WARN_SHARE {
        return None;
    }
    let pct = |p: f64| format!("{:.1}%", p * 100.0);
    Some(Problem {
        file: file.to_path_buf(),
        line: jitter.referenced.line() as usize,
        column: jitter.referenced.column() as usize,
        field: field.to_string(),
        message: format!(
            "{what}, {link}: the jitter reorders packets of one flow: of two packets sent \
             {WARN_GAP_MS} ms apart the second arrives first {} of the time (10 ms apart: {}), \
             by the delay model, which netem and the emulator were measured to follow \
             (docs/delay.md, Reordering); TCP sees duplicate ACKs and retransmits. Running it \
             as declared",
            pct(close),
            pct(swaps.share(10.0)),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal(delay_ms: f64, jitter_ms: f64) -> Link {
        Link {
            delay_ms,
            jitter_ms,
            distribution: Distribution::Normal,
            loss_pct: 0.0,
        }
    }

    /// 1 - Φ(x), for the normal case's closed form.
    fn upper_tail(x: f64) -> f64 {
        // Abramowitz and Stegun 7.1.26 (|error| < 1.5e-7) on erfc(x / sqrt 2) / 2.
        let z = x / std::f64::consts::SQRT_2;
        let t = 1.0 / (1.0 + 0.327_591_1 * z);
        let poly = t
            * (0.254_829_592
                + t * (-0.284_496_736
                    + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
        poly * (-z * z).exp() / 2.0
    }

    #[test]
    fn normal_jitter_swaps_as_its_closed_form() {
        // D1 - D2 ~ N(0, 2 sd²) while the cut at zero and at ±4 sd changes nothing.
        for (delay, jitter, gap) in [(15.0, 5.0, 1.0), (15.0, 5.0, 10.0), (2.0, 1.0, 1.0)] {
            let got = Swaps::of(&normal(delay, jitter)).share(gap);
            let want = upper_tail(gap / (jitter * std::f64::consts::SQRT_2));
            assert!(
                (got - want).abs() < 2e-3,
                "{delay}±{jitter} at {gap}: {got} {want}"
            );
        }
    }

    #[test]
    fn a_fixed_delay_never_swaps_and_spacing_beyond_the_spread_neither() {
        let fixed = Link {
            jitter_ms: 0.0,
            ..normal(15.0, 0.0)
        };
        assert_eq!(Swaps::of(&fixed).share(0.0), 0.0);
        assert_eq!(Swaps::of(&normal(15.0, 5.0)).share(50.0), 0.0);
        let uniform = Link {
            distribution: Distribution::Uniform,
            ..normal(15.0, 5.0)
        };
        // Uniform ±5: D1 - D2 is triangular on ±10, P(D1 - D2 > 1) = (9/10)² / 2.
        let got = Swaps::of(&uniform).share(1.0);
        assert!((got - 0.405).abs() < 2e-3, "{got}");
    }

    #[test]
    fn draws_cut_at_zero_do_not_swap_among_themselves() {
        // 100 ± 100 normal: 16% of draws are 0; two of them never swap.
        let cut = Swaps::of(&normal(100.0, 100.0)).share(0.0);
        let uncut = 0.5;
        assert!(cut < uncut - 0.01 && cut > 0.45, "{cut}");
    }

    fn scenario(text: &str) -> DelaySpec {
        serde_saphyr::from_str(text).unwrap()
    }

    #[test]
    fn jittered_links_are_warned_about_at_their_jitter_fixed_ones_not() {
        let spec = scenario(
            "interfaces:\n\
             \x20 - {host: n1, delay_ms: 15, jitter_ms: 5, distribution: normal}\n\
             \x20 - {host: n2, delay_ms: 30}\n\
             pairs:\n\
             \x20 - {from: n1, to: n3, delay_ms: 20, jitter_ms: 0.1, distribution: normal}\n\
             \x20 - {from: n2, to: n3, delay_ms: 2, jitter_ms: 1, distribution: normal, both_ways: true}\n",
        );
        let w = warnings(&spec, "delays", Path::new("s.yaml"));
        let shown: Vec<String> = w.iter().map(ToString::to_string).collect();
        assert_eq!(w.len(), 2, "{shown:#?}");
        assert!(
            shown[0].starts_with(
                "s.yaml:2:41: delays.interfaces[0].jitter_ms: n1 -> every other host, \
                 15 ms ± 5 ms normal: the jitter reorders packets of one flow: of two packets \
                 sent 1 ms apart the second arrives first 44.4% of the time (10 ms apart: 7.9%)"
            ),
            "{}",
            shown[0]
        );
        assert!(
            shown[1].starts_with(
                "s.yaml:6:48: delays.pairs[1].jitter_ms: n2 <-> n3, 2 ms ± 1 ms normal: \
                 the jitter reorders packets of one flow: of two packets sent 1 ms apart the \
                 second arrives first 23.8% of the time (10 ms apart: 0.0%)"
            ),
            "{}",
            shown[1]
        );
    }

    #[test]
    fn the_criterion_is_one_percent_of_pairs_one_ms_apart() {
        // Normal jitter: P(swap at 1 ms) = 1 - Φ(1 / (sd √2)) = 1% at sd = 0.304 ms.
        assert!(Swaps::of(&normal(20.0, 0.29)).share(WARN_GAP_MS) < WARN_SHARE);
        assert!(Swaps::of(&normal(20.0, 0.32)).share(WARN_GAP_MS) > WARN_SHARE);
    }
}
