//! The YCSB plots: latency percentiles per operation (log scale in the nines) and throughput
//! over time from YCSB's status lines, one line per run.

use orch_analysis::ycsb::{is_cleanup, Operation, Report};

use super::svg::*;

/// The `(seconds, current ops/sec)` points of YCSB's `-s` status lines in `text`; other lines
/// (stderr of the same process) are skipped.
pub(super) fn parse_status(text: &str) -> Vec<(f64, f64)> {
    text.lines().filter_map(status_point).collect()
}

/// `... 10 sec: 4000 operations; 217.27 current ops/sec; ...` -> `(10, 217.27)`. YCSB leaves
/// the rate out while no operation has completed, so such a line is a rate of 0.
pub(super) fn status_point(line: &str) -> Option<(f64, f64)> {
    let (before, after) = line.split_once(" sec: ")?;
    let seconds: u64 = before.split_whitespace().next_back()?.parse().ok()?;
    let mut fields = after.split(';').map(str::trim);
    let total: u64 = fields.next()?.strip_suffix(" operations")?.parse().ok()?;
    let rate = match fields
        .next()
        .and_then(|f| f.strip_suffix(" current ops/sec"))
    {
        Some(rate) => rate
            .parse::<f64>()
            .ok()
            .filter(|r| r.is_finite() && *r >= 0.0)?,
        None if total == 0 => 0.0,
        None => return None,
    };
    Some((seconds as f64, rate))
}

/// Operations worth a panel: everything with percentiles (`Intended-` sections too) but YCSB's
/// CLEANUP and the failed variants, in the order YCSB printed them.
pub(super) fn plotted_operations(reports: &[&Report]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for op in reports.iter().flat_map(|r| &r.operations) {
        let wanted = !is_cleanup(&op.name)
            && !op.name.ends_with("-FAILED")
            && !latency_points(op).is_empty();
        if wanted && !names.contains(&op.name) {
            names.push(op.name.clone());
        }
    }
    names
}

/// `(percentile, latency in ms)` of `op`, by percentile; 100 and values that are not numbers
/// have no place on the axes.
pub(super) fn latency_points(op: &Operation) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = op
        .percentiles
        .iter()
        .filter(|p| (0.0..100.0).contains(&p.percentile) && p.latency_us.is_finite())
        .map(|p| (p.percentile, p.latency_us.max(0.0) / 1000.0))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

/// Percentile `p` on a "nines" scale, -log10(1 - p/100): 90 -> 1, 99 -> 2, 99.9 -> 3, so the
/// tail gets as much room as the body.
pub(super) fn nines(p: f64) -> f64 {
    -(1.0 - p / 100.0).log10()
}

pub(super) fn latency_svg(labels: &[&str], reports: &[&Report]) -> String {
    let operations = plotted_operations(reports);
    let panels = operations.len().max(1) as f64;
    let block = ((HEIGHT - TITLE_HEIGHT - 14.0) / panels).max(250.0);
    let legend = Legend::new(labels, &[], TITLE_HEIGHT + 28.0);
    let height = (TITLE_HEIGHT + 14.0 + panels * block).max(legend.bottom() + 20.0);
    let right = WIDTH - legend.width - 40.0;
    let mut svg = Svg::new(height);
    svg.title("Latency percentiles per run (YCSB run phase)");
    if operations.is_empty() {
        svg.note(
            WIDTH / 2.0,
            height / 2.0,
            "no operation with latency percentiles",
        );
    }
    for (i, name) in operations.iter().enumerate() {
        let top = TITLE_HEIGHT + i as f64 * block;
        let frame = Frame {
            left: LEFT,
            right,
            top: top + 28.0,
            bottom: top + block - 52.0,
        };
        let lines: Vec<(usize, Vec<(f64, f64)>)> = reports
            .iter()
            .enumerate()
            .filter_map(|(run, report)| Some((run, latency_points(report.operation(name)?))))
            .collect();
        let mut percentiles: Vec<f64> = lines
            .iter()
            .flat_map(|(_, l)| l.iter().map(|p| p.0))
            .collect();
        percentiles.sort_by(f64::total_cmp);
        percentiles.dedup();
        let (lo, hi) = (
            nines(percentiles[0]),
            nines(percentiles[percentiles.len() - 1]),
        );
        let pad = ((hi - lo) * 0.04).max(0.25);
        let x = Axis {
            lo: lo - pad,
            hi: hi + pad,
            log: false,
        };
        let x_ticks = percentiles
            .iter()
            .map(|&p| (nines(p), format!("p{p}")))
            .collect();
        let latencies = lines.iter().flat_map(|(_, l)| l.iter().map(|p| p.1));
        let (y, y_ticks, log) = latency_axis(latencies);
        svg.text(
            LEFT,
            top + 20.0,
            15.0,
            "start",
            "font-weight=\"bold\"",
            name,
        );
        let y_title = if log {
            "latency (ms, log scale)"
        } else {
            "latency (ms)"
        };
        svg.axes(&frame, &x, &y, x_ticks, y_ticks);
        svg.axis_titles(&frame, "percentile (evenly spaced by nines)", y_title);
        for (run, points) in &lines {
            let points: Vec<(f64, f64)> = points
                .iter()
                .map(|&(p, ms)| (frame.x(&x, nines(p)), frame.y(&y, ms)))
                .collect();
            svg.series(*run, &points, true);
        }
    }
    legend.draw(&mut svg, right + 20.0);
    svg.finish()
}

/// The latency axis: from 0 on a linear scale, or on a log scale when the slowest value is more
/// than 20 times the fastest (tails of a leader change), so the body is not squashed flat.
pub(super) fn latency_axis(values: impl Iterator<Item = f64>) -> (Axis, Vec<(f64, String)>, bool) {
    let (min, max) = values.fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if min > 0.0 && max / min > 20.0 {
        let ticks = log_ticks(min, max);
        let axis = Axis {
            lo: ticks[0],
            hi: ticks[ticks.len() - 1],
            log: true,
        };
        let labelled = ticks
            .iter()
            .filter(|t| ticks.len() <= 10 || is_power_of_ten(**t))
            .map(|&t| (t, number(t)))
            .collect();
        (axis, labelled, true)
    } else {
        let (axis, ticks) = linear_axis(max);
        (axis, ticks, false)
    }
}

/// `faults[i]`: the (start, end) s of run `i`'s faults, shaded in its colour behind the lines.
pub(super) fn throughput_svg(
    labels: &[&str],
    series: &[Vec<(f64, f64)>],
    faults: &[Vec<(f64, f64)>],
) -> String {
    let notes: Vec<Option<&str>> = series
        .iter()
        .map(|points| points.is_empty().then_some("(no data)"))
        .collect();
    let legend = Legend::new(labels, &notes, TITLE_HEIGHT + 8.0);
    let height = HEIGHT.max(legend.bottom() + 20.0);
    let right = WIDTH - legend.width - 40.0;
    let frame = Frame {
        left: LEFT,
        right,
        top: TITLE_HEIGHT + 8.0,
        bottom: height - 60.0,
    };
    let points = series.iter().flatten();
    let (last_second, peak) = points.fold((0.0_f64, 0.0_f64), |(t, r), p| (t.max(p.0), r.max(p.1)));
    let last_second = faults.iter().flatten().fold(last_second, |t, w| t.max(w.1));
    let (x, x_ticks) = linear_axis(last_second);
    let (y, y_ticks) = linear_axis(peak);
    let mut svg = Svg::new(height);
    svg.title("Throughput over time per run (YCSB -s status lines)");
    svg.axes(&frame, &x, &y, x_ticks, y_ticks);
    svg.axis_titles(&frame, "time since start (s)", "throughput (ops/sec)");
    if series.iter().all(Vec::is_empty) {
        svg.note(
            (frame.left + frame.right) / 2.0,
            (frame.top + frame.bottom) / 2.0,
            "no status lines",
        );
    }
    for (run, windows) in faults.iter().enumerate() {
        for &(start, end) in windows {
            svg.window(run, frame.x(&x, start), frame.x(&x, end), &frame);
        }
    }
    for (run, points) in series.iter().enumerate() {
        let points: Vec<(f64, f64)> = points
            .iter()
            .map(|&(t, r)| (frame.x(&x, t), frame.y(&y, r)))
            .collect();
        svg.series(run, &points, false);
    }
    legend.draw(&mut svg, right + 20.0);
    svg.finish()
}
