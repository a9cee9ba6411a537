//! Plots of election runs: detection and failover time per matrix cell (box plots), false
//! positives per minute per cell, and per run a timeline of every replica's role with the
//! term changes and leader failures marked.

use std::collections::BTreeMap;

use orch_analysis::elect::Summary;
use orch_analysis::stats::quantile;
use orch_common::events::{Event, Record, Role};

use super::svg::{
    colour, linear_axis, Axis, Frame, Legend, Svg, HEIGHT, LEFT, TITLE_HEIGHT, WIDTH,
};

/// The samples of one matrix cell.
pub struct CellSamples {
    pub cell: String,
    pub detection_ms: Vec<f64>,
    pub failover_ms: Vec<f64>,
    /// False positives per minute of every repetition.
    pub false_positives_per_min: Vec<f64>,
}

/// Box plots (min, p25, median, p75, max) of detection and failover time per cell.
pub fn detection_svg(cells: &[CellSamples]) -> String {
    let series = [
        "detection (silent -> first suspicion)",
        "failover (silent -> new leader)",
    ];
    let legend = Legend::new(&series, &[], TITLE_HEIGHT + 8.0);
    let right = WIDTH - legend.width - 40.0;
    let peak = cells
        .iter()
        .flat_map(|c| c.detection_ms.iter().chain(&c.failover_ms))
        .fold(0.0_f64, |a, &b| a.max(b));
    let (mut svg, frame, y, slot) = per_cell_chart(
        right,
        peak,
        cells.len(),
        "Leader failure: detection and failover time per cell",
        "time after the leader went silent (ms)",
    );
    for (i, c) in cells.iter().enumerate() {
        let centre = frame.left + slot * (i as f64 + 0.5);
        for (s, samples) in [&c.detection_ms, &c.failover_ms].into_iter().enumerate() {
            let at = centre + (s as f64 - 0.5) * slot * 0.35;
            draw_box(&mut svg, &frame, &y, at, slot * 0.25, samples, s);
        }
        cell_label(&mut svg, &frame, centre, &c.cell);
    }
    legend.draw(&mut svg, right + 20.0);
    svg.finish()
}

/// Mean false positives per minute of a live leader per cell, with each repetition's value.
pub fn false_positives_svg(cells: &[CellSamples]) -> String {
    let peak = cells
        .iter()
        .flat_map(|c| &c.false_positives_per_min)
        .fold(0.0_f64, |a, &b| a.max(b));
    let (mut svg, frame, y, slot) = per_cell_chart(
        WIDTH - 40.0,
        peak,
        cells.len(),
        "False positives per minute with a live leader, per cell",
        "false positives per minute",
    );
    for (i, c) in cells.iter().enumerate() {
        let centre = frame.left + slot * (i as f64 + 0.5);
        let values = &c.false_positives_per_min;
        let mean = (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
        if let Some(mean) = mean {
            let top = frame.y(&y, mean).min(frame.bottom - 1.0);
            svg.push(format!(
                "<rect x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" opacity=\"0.8\"/>\n",
                centre - slot * 0.2,
                slot * 0.4,
                frame.bottom - top,
                colour(0)
            ));
            for v in values {
                svg.marker(1, centre, frame.y(&y, *v));
            }
        }
        cell_label(&mut svg, &frame, centre, &c.cell);
    }
    svg.finish()
}

/// A chart with one slot per cell along x and a linear y axis up to `peak`: the SVG with title,
/// axes and y title drawn, its frame, the y axis and the width of a slot.
fn per_cell_chart(
    right: f64,
    peak: f64,
    cells: usize,
    title: &str,
    y_title: &str,
) -> (Svg, Frame, Axis, f64) {
    let frame = Frame {
        left: LEFT,
        right,
        top: TITLE_HEIGHT + 8.0,
        bottom: HEIGHT - 90.0,
    };
    let (y, y_ticks) = linear_axis(peak);
    let x = Axis {
        lo: 0.0,
        hi: cells.max(1) as f64,
        log: false,
    };
    let mut svg = Svg::new(HEIGHT);
    svg.title(title);
    svg.axes(&frame, &x, &y, Vec::new(), y_ticks);
    svg.axis_titles(&frame, "", y_title);
    let slot = (frame.right - frame.left) / cells.max(1) as f64;
    (svg, frame, y, slot)
}

/// Every replica's role over time (one row per replica), term changes as thin lines with the
/// new term, leader failures as red dashed lines.
/// `faults`: the (start, end) Unix ns of the run's fault windows, shaded behind the roles.
pub fn timeline_svg(
    title: &str,
    logs: &[Vec<Record>],
    summary: &Summary,
    faults: &[(u64, u64)],
) -> String {
    let origin = logs.iter().flatten().map(|r| r.wall).min().unwrap_or(0);
    let end = logs
        .iter()
        .flatten()
        .map(|r| r.wall)
        .max()
        .unwrap_or(origin);
    let secs = |wall: u64| wall.saturating_sub(origin) as f64 / 1e9;
    let frame = Frame {
        left: LEFT,
        right: WIDTH - 150.0,
        top: TITLE_HEIGHT + 24.0,
        bottom: HEIGHT - 60.0,
    };
    let (x, x_ticks) = linear_axis(secs(end));
    let rows = logs.len().max(1) as f64;
    let y = Axis {
        lo: 0.0,
        hi: rows,
        log: false,
    };
    let mut svg = Svg::new(HEIGHT);
    svg.title(title);
    svg.axes(&frame, &x, &y, x_ticks, Vec::new());
    svg.axis_titles(
        &frame,
        "time since the first replica started (s)",
        "replica",
    );
    let row_height = (frame.bottom - frame.top) / rows;
    for &(from, to) in faults {
        let (x1, x2) = (frame.x(&x, secs(from)), frame.x(&x, secs(to)));
        svg.push(format!(
            "<rect class=\"fault\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#7f7f7f\" fill-opacity=\"0.2\"/>\n",
            frame.top,
            (x2 - x1).max(1.0),
            frame.bottom - frame.top
        ));
    }
    for (i, log) in logs.iter().enumerate() {
        let top = frame.top + row_height * i as f64 + row_height * 0.2;
        let id = log.first().map_or(i, |r| r.id);
        svg.text(
            frame.left - 8.0,
            top + row_height * 0.35,
            12.0,
            "end",
            "",
            &format!("{id}"),
        );
        for (from, to, role) in segments(log) {
            let (x1, x2) = (frame.x(&x, secs(from)), frame.x(&x, secs(to)));
            svg.push(format!(
                "<rect x=\"{x1:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>\n",
                (x2 - x1).max(1.0),
                row_height * 0.6,
                role_colour(role)
            ));
        }
    }
    let mut terms: BTreeMap<u64, u64> = BTreeMap::new();
    for r in logs.iter().flatten() {
        if matches!(
            r.event,
            Event::Role {
                to: Role::Leader,
                ..
            }
        ) {
            terms.entry(r.term).or_insert(r.wall);
        }
    }
    for (term, wall) in terms {
        let px = frame.x(&x, secs(wall));
        svg.push(format!(
            "<line x1=\"{px:.1}\" y1=\"{:.1}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#555555\" stroke-width=\"1\"/>\n",
            frame.top - 14.0,
            frame.bottom
        ));
        svg.text(
            px + 2.0,
            frame.top - 4.0,
            11.0,
            "start",
            "",
            &format!("t{term}"),
        );
    }
    for f in &summary.failures {
        let px = frame.x(&x, f.at_s);
        svg.push(format!(
            "<line x1=\"{px:.1}\" y1=\"{:.1}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#d62728\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/>\n",
            frame.top,
            frame.bottom
        ));
    }
    let key = [
        (Role::Leader, "leader"),
        (Role::Candidate, "candidate"),
        (Role::Follower, "follower"),
    ];
    for (i, (role, name)) in key.iter().enumerate() {
        let ky = frame.top + 20.0 * i as f64;
        svg.push(format!(
            "<rect x=\"{:.1}\" y=\"{ky:.1}\" width=\"16\" height=\"12\" fill=\"{}\"/>\n",
            frame.right + 20.0,
            role_colour(*role)
        ));
        svg.text(frame.right + 42.0, ky + 11.0, 12.0, "start", "", name);
    }
    let ky = frame.top + 20.0 * key.len() as f64;
    svg.push(format!(
        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#d62728\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/>\n",
        frame.right + 20.0,
        ky + 6.0,
        frame.right + 36.0,
        ky + 6.0
    ));
    svg.text(
        frame.right + 42.0,
        ky + 11.0,
        12.0,
        "start",
        "",
        "leader failed",
    );
    svg.finish()
}

/// (from, to, role) wall-clock intervals of one replica, from its first to its last event; a
/// silent leader's row ends where it went silent.
fn segments(log: &[Record]) -> Vec<(u64, u64, Role)> {
    let (Some(first), Some(last)) = (log.first(), log.last()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let (mut since, mut role) = (first.wall, Role::Follower);
    let mut end = last.wall;
    for r in log {
        match &r.event {
            Event::Role { to, .. } => {
                out.push((since, r.wall, role));
                (since, role) = (r.wall, *to);
            }
            Event::Silent { .. } => {
                end = r.wall;
                break;
            }
            _ => {}
        }
    }
    out.push((since, end, role));
    out
}

fn role_colour(role: Role) -> &'static str {
    match role {
        Role::Leader => "#4e79a7",
        Role::Candidate => "#f28e2b",
        Role::Follower => "#d9d9d9",
    }
}

/// A box from p25 to p75 with the median, whiskers to min and max; nothing for no samples.
fn draw_box(
    svg: &mut Svg,
    frame: &Frame,
    y: &Axis,
    at: f64,
    width: f64,
    samples: &[f64],
    s: usize,
) {
    let q = |p| quantile(samples, p).map(|v| frame.y(y, v));
    let (Some(lo), Some(p25), Some(p50), Some(p75), Some(hi)) =
        (q(0.0), q(0.25), q(0.5), q(0.75), q(1.0))
    else {
        return;
    };
    let (l, r) = (at - width / 2.0, at + width / 2.0);
    svg.push(format!(
        "<line x1=\"{at:.1}\" y1=\"{lo:.1}\" x2=\"{at:.1}\" y2=\"{hi:.1}\" stroke=\"#333333\"/>\n\
         <rect x=\"{l:.1}\" y=\"{p75:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"{}\" stroke=\"#333333\"/>\n\
         <line x1=\"{l:.1}\" y1=\"{p50:.1}\" x2=\"{r:.1}\" y2=\"{p50:.1}\" stroke=\"#111111\" stroke-width=\"2\"/>\n",
        (p25 - p75).max(1.0),
        colour(s)
    ));
    svg.text(
        at,
        hi - 6.0,
        11.0,
        "middle",
        "fill=\"#555555\"",
        &format!("n={}", samples.len()),
    );
}

/// The cell's matrix values under its slot, one `key=value` per line (the key's last part).
fn cell_label(svg: &mut Svg, frame: &Frame, centre: f64, cell: &str) {
    for (i, part) in cell.split(' ').enumerate() {
        let short = match part.split_once('=') {
            Some((k, v)) => format!("{}={v}", k.rsplit('.').next().unwrap_or(k)),
            None => part.to_string(),
        };
        let y = frame.bottom + 20.0 + 15.0 * i as f64;
        svg.text(centre, y, 12.0, "middle", "", &short);
    }
}
