//! A delayed pair's round trips: the model of the declared delays against what was realised, as
//! two CDFs (and the base round trip before the delays, when measured).

use super::svg::{linear_axis, Frame, Legend, Svg, HEIGHT, LEFT, TITLE_HEIGHT, WIDTH};

/// Named CDF curves (x in ms, y in 0..=1), drawn in their order's colours.
pub(super) fn cdf_svg(title: &str, curves: &[(&str, Vec<(f64, f64)>)]) -> String {
    let labels: Vec<&str> = curves.iter().map(|(name, _)| *name).collect();
    let legend = Legend::new(&labels, &[], TITLE_HEIGHT + 8.0);
    let right = WIDTH - legend.width - 40.0;
    let frame = Frame {
        left: LEFT,
        right,
        top: TITLE_HEIGHT + 8.0,
        bottom: HEIGHT - 60.0,
    };
    let last = curves
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.0))
        .fold(0.0_f64, f64::max);
    let (x, x_ticks) = linear_axis(last);
    let (y, _) = linear_axis(1.0);
    let y_ticks = (0..=5)
        .map(|i| (f64::from(i) / 5.0, format!("{:.1}", f64::from(i) / 5.0)))
        .collect();
    let mut svg = Svg::new(HEIGHT);
    svg.title(title);
    svg.axes(&frame, &x, &y, x_ticks, y_ticks);
    svg.axis_titles(
        &frame,
        "round trip (ms)",
        "share of round trips at or below",
    );
    for (i, (_, points)) in curves.iter().enumerate() {
        let px: Vec<(f64, f64)> = points
            .iter()
            .map(|&(v, p)| (frame.x(&x, v), frame.y(&y, p)))
            .collect();
        svg.series(i, &px, false);
    }
    legend.draw(&mut svg, right + 20.0);
    svg.finish()
}

/// The empirical CDF of `times` as a step line.
pub fn ecdf(times: &[f64]) -> Vec<(f64, f64)> {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let mut points = Vec::with_capacity(2 * sorted.len());
    for (i, t) in sorted.iter().enumerate() {
        points.push((*t, i as f64 / n));
        points.push((*t, (i + 1) as f64 / n));
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ecdf_steps_up_at_each_sample() {
        assert_eq!(
            ecdf(&[2.0, 1.0]),
            [(1.0, 0.0), (1.0, 0.5), (2.0, 0.5), (2.0, 1.0)]
        );
        let svg = cdf_svg(
            "h1 <-> h2",
            &[("declared", ecdf(&[1.0, 2.0])), ("realised", vec![])],
        );
        assert!(
            svg.contains("h1 &lt;-&gt; h2") && svg.contains("realised"),
            "{svg}"
        );
        assert!(svg.contains("round trip (ms)"));
    }
}
