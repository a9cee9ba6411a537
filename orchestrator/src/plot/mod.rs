//! Plots of a scenario's runs side by side: latency percentiles per operation and throughput
//! over time, and for election runs detection/failover, false positives and role timelines
//! ([`elect`]), each as SVG (for papers and browsers) and PNG (for a quick look).
//!
//! The SVG is written here directly and the PNG is that same SVG rasterized by resvg, so the two
//! files always show the same picture and no plotting library or system library is needed. Only
//! the PNG needs a font file, read at run time from [`FONT`]. Details: docs/plots.md.

use std::path::{Path, PathBuf};

mod elect;

use anyhow::Context;
use orch_analysis::elect::Summary;
use orch_analysis::ycsb::{Operation, Report};
use orch_common::events::Record;
use resvg::{tiny_skia, usvg};

pub use elect::CellSamples;

/// The font the PNGs are drawn with (Debian package `fonts-dejavu-core`); the SVGs ask for
/// `sans-serif` and leave the choice to the viewer.
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 600.0;
const LEFT: f64 = 90.0;
const TITLE_HEIGHT: f64 = 56.0;
const LEGEND_FONT: f64 = 13.0;
const LEGEND_ROW: f64 = 20.0;
/// Longer run labels are cut in the legend so the plot keeps most of the width.
const LEGEND_MAX_CHARS: usize = 40;

/// Tableau 10: distinct hues that stay apart for most colour-blind readers.
const COLOURS: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];
/// Past ten runs the colours repeat with another dash pattern.
const DASHES: [&str; 3] = ["", "8 4", "2 3"];

/// Writes `latency.svg`, `latency.png`, `throughput.svg` and `throughput.png` into `dir`, one
/// line per run in each, so the runs of a scenario can be compared at a glance. `runs` holds each
/// run's label, its run-phase report and its `ycsb-run.status.txt` (YCSB's `-s` lines); returns
/// the files written.
pub fn write_plots(dir: &Path, runs: &[(String, Report, PathBuf)]) -> anyhow::Result<Vec<PathBuf>> {
    let options = render_options(font()?)?;
    let labels: Vec<&str> = runs.iter().map(|(label, ..)| label.as_str()).collect();
    let mut series = Vec::new();
    for (_, _, status) in runs {
        let bytes = std::fs::read(status)
            .with_context(|| format!("cannot read the status file {}", status.display()))?;
        series.push(parse_status(&String::from_utf8_lossy(&bytes)));
    }
    let reports: Vec<&Report> = runs.iter().map(|(_, report, _)| report).collect();
    let plots = [
        ("latency", latency_svg(&labels, &reports)),
        ("throughput", throughput_svg(&labels, &series)),
    ];
    let mut written = Vec::new();
    for (name, svg) in plots {
        write_pair(&dir.join(name), &svg, &options, &mut written)?;
    }
    Ok(written)
}

/// Writes the election plots: `election-detection` and `election-false-positives` (per cell)
/// in `dir`, and `timeline` in each run's directory; returns the files written.
pub fn write_election_plots(
    dir: &Path,
    cells: &[CellSamples],
    runs: &[(String, Vec<Vec<Record>>, Summary)],
) -> anyhow::Result<Vec<PathBuf>> {
    let options = render_options(font()?)?;
    let mut written = Vec::new();
    if cells.iter().any(|c| !c.detection_ms.is_empty()) {
        let svg = elect::detection_svg(cells);
        write_pair(
            &dir.join("election-detection"),
            &svg,
            &options,
            &mut written,
        )?;
    }
    if cells.iter().any(|c| !c.false_positives_per_min.is_empty()) {
        let svg = elect::false_positives_svg(cells);
        write_pair(
            &dir.join("election-false-positives"),
            &svg,
            &options,
            &mut written,
        )?;
    }
    for (label, logs, summary) in runs {
        let svg = elect::timeline_svg(&format!("Replica roles: {label}"), logs, summary);
        write_pair(
            &dir.join(label).join("timeline"),
            &svg,
            &options,
            &mut written,
        )?;
    }
    Ok(written)
}

/// `base.svg` and the same picture as `base.png`.
fn write_pair(
    base: &Path,
    svg: &str,
    options: &usvg::Options,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let svg_path = base.with_extension("svg");
    std::fs::write(&svg_path, svg)
        .with_context(|| format!("cannot write {}", svg_path.display()))?;
    written.push(svg_path);
    let png_path = base.with_extension("png");
    let png =
        rasterize(svg, options).with_context(|| format!("cannot draw {}", png_path.display()))?;
    std::fs::write(&png_path, png)
        .with_context(|| format!("cannot write {}", png_path.display()))?;
    written.push(png_path);
    Ok(())
}

fn font() -> anyhow::Result<Vec<u8>> {
    std::fs::read(FONT).with_context(|| {
        format!("cannot read {FONT}, the font of the PNG plots (Debian package fonts-dejavu-core)")
    })
}

/// The `(seconds, current ops/sec)` points of YCSB's `-s` status lines in `text`; other lines
/// (stderr of the same process) are skipped.
fn parse_status(text: &str) -> Vec<(f64, f64)> {
    text.lines().filter_map(status_point).collect()
}

/// `... 10 sec: 4000 operations; 217.27 current ops/sec; ...` -> `(10, 217.27)`. YCSB leaves
/// the rate out while no operation has completed, so such a line is a rate of 0.
fn status_point(line: &str) -> Option<(f64, f64)> {
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

/// Operations worth a panel: everything with percentiles but YCSB's CLEANUP and the failed
/// variants, in the order YCSB printed them.
fn plotted_operations(reports: &[&Report]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for op in reports.iter().flat_map(|r| &r.operations) {
        let wanted =
            op.name != "CLEANUP" && !op.name.ends_with("-FAILED") && !latency_points(op).is_empty();
        if wanted && !names.contains(&op.name) {
            names.push(op.name.clone());
        }
    }
    names
}

/// `(percentile, latency in ms)` of `op`, by percentile; 100 and values that are not numbers
/// have no place on the axes.
fn latency_points(op: &Operation) -> Vec<(f64, f64)> {
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
fn nines(p: f64) -> f64 {
    -(1.0 - p / 100.0).log10()
}

fn latency_svg(labels: &[&str], reports: &[&Report]) -> String {
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
fn latency_axis(values: impl Iterator<Item = f64>) -> (Axis, Vec<(f64, String)>, bool) {
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

fn throughput_svg(labels: &[&str], series: &[Vec<(f64, f64)>]) -> String {
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

/// Maps data values onto one side of a plot area.
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Axis {
    /// Where `v` lies between the ends, 0 at `lo` and 1 at `hi`.
    fn fraction(&self, v: f64) -> f64 {
        if self.log {
            (v.max(self.lo).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }
}

/// A linear axis from 0 to a round value at or above `max`, with about five ticks.
fn linear_axis(max: f64) -> (Axis, Vec<(f64, String)>) {
    let max = if max > 0.0 && max.is_finite() {
        max
    } else {
        1.0
    };
    let rough = max / 5.0;
    let magnitude = 10_f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude);
    let steps = (max / step - 1e-9).ceil().max(1.0) as u32;
    let ticks = (0..=steps)
        .map(|i| {
            let t = f64::from(i) * step;
            (t, number(t))
        })
        .collect();
    let axis = Axis {
        lo: 0.0,
        hi: f64::from(steps) * step,
        log: false,
    };
    (axis, ticks)
}

/// 1-2-5 ticks from the last at or below `min` to the first at or above `max` (both > 0).
fn log_ticks(min: f64, max: f64) -> Vec<f64> {
    let mut candidates = Vec::new();
    let mut decade = 10_f64.powf(min.log10().floor());
    while decade <= max * 10.0 {
        candidates.extend([1.0, 2.0, 5.0].map(|m| m * decade));
        decade *= 10.0;
    }
    let first = candidates
        .iter()
        .rposition(|&t| t <= min * (1.0 + 1e-9))
        .unwrap_or(0);
    let last = candidates
        .iter()
        .position(|&t| t >= max * (1.0 - 1e-9))
        .unwrap_or(candidates.len() - 1);
    candidates[first..=last].to_vec()
}

fn is_power_of_ten(v: f64) -> bool {
    let exponent = v.log10().round();
    (v / 10_f64.powf(exponent) - 1.0).abs() < 1e-9
}

/// A tick label: at most three decimals, no trailing zeros.
fn number(v: f64) -> String {
    let fixed = format!("{v:.3}");
    fixed
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

/// A plot area in pixels.
struct Frame {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    fn x(&self, axis: &Axis, v: f64) -> f64 {
        self.left + axis.fraction(v) * (self.right - self.left)
    }

    fn y(&self, axis: &Axis, v: f64) -> f64 {
        self.bottom - axis.fraction(v) * (self.bottom - self.top)
    }
}

/// The run labels with their line styles, right of the plots.
struct Legend {
    /// Per run: the text shown (the label, cut to [`LEGEND_MAX_CHARS`], and a note) and the
    /// whole label when it was cut.
    entries: Vec<(String, Option<String>)>,
    top: f64,
    width: f64,
}

impl Legend {
    /// `notes[i]`, when there, is appended to the label of run `i`.
    fn new(labels: &[&str], notes: &[Option<&str>], top: f64) -> Self {
        let entries: Vec<(String, Option<String>)> = labels
            .iter()
            .enumerate()
            .map(|(run, label)| {
                let whole = (label.chars().count() > LEGEND_MAX_CHARS).then(|| label.to_string());
                let mut shown: String = match whole {
                    Some(_) => label
                        .chars()
                        .take(LEGEND_MAX_CHARS - 1)
                        .chain(['…'])
                        .collect(),
                    None => label.to_string(),
                };
                if let Some(note) = notes.get(run).copied().flatten() {
                    shown = format!("{shown} {note}");
                }
                (shown, whole)
            })
            .collect();
        let chars = entries.iter().map(|(shown, _)| shown.chars().count()).max();
        let width = chars.map_or(0.0, |c| text_width(c, LEGEND_FONT) + 60.0);
        Self {
            entries,
            top,
            width,
        }
    }

    fn bottom(&self) -> f64 {
        self.top + 12.0 + self.entries.len() as f64 * LEGEND_ROW
    }

    fn draw(&self, svg: &mut Svg, left: f64) {
        if self.entries.is_empty() {
            return;
        }
        svg.push(format!(
            "<rect x=\"{left:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"white\" \
             stroke=\"#bbbbbb\"/>\n",
            self.top,
            self.width,
            self.bottom() - self.top
        ));
        for (run, (shown, whole)) in self.entries.iter().enumerate() {
            let y = self.top + 6.0 + (run as f64 + 0.5) * LEGEND_ROW;
            svg.series(run, &[(left + 10.0, y), (left + 38.0, y)], false);
            svg.marker(run, left + 24.0, y);
            // A cut label stays whole in the SVG, as the tooltip of its entry.
            if let Some(whole) = whole {
                svg.push(format!("<g><title>{}</title>\n", escape(whole)));
            }
            svg.text(left + 46.0, y + 4.5, LEGEND_FONT, "start", "", shown);
            if whole.is_some() {
                svg.push("</g>\n".to_string());
            }
        }
    }
}

/// Roughly how wide `chars` characters of DejaVu Sans are at `size` pixels.
fn text_width(chars: usize, size: f64) -> f64 {
    chars as f64 * size * 0.58
}

/// An SVG document being written.
struct Svg {
    out: String,
}

impl Svg {
    fn new(height: f64) -> Self {
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
             width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" \
             font-family=\"sans-serif\">\n"
        );
        out.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        Self { out }
    }

    fn push(&mut self, element: String) {
        self.out.push_str(&element);
    }

    fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }

    fn text(&mut self, x: f64, y: f64, size: f64, anchor: &str, attributes: &str, content: &str) {
        self.push(format!(
            "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" text-anchor=\"{anchor}\" \
             {attributes}>{}</text>\n",
            escape(content)
        ));
    }

    fn title(&mut self, title: &str) {
        self.text(
            WIDTH / 2.0,
            32.0,
            20.0,
            "middle",
            "font-weight=\"bold\"",
            title,
        );
    }

    fn note(&mut self, x: f64, y: f64, note: &str) {
        self.text(x, y, 16.0, "middle", "fill=\"#666666\"", note);
    }

    /// Grid, frame and tick labels; x tick labels that would overlap the previous one are left
    /// out.
    fn axes(
        &mut self,
        frame: &Frame,
        x: &Axis,
        y: &Axis,
        x_ticks: Vec<(f64, String)>,
        y_ticks: Vec<(f64, String)>,
    ) {
        let mut last_label_end = f64::NEG_INFINITY;
        for (v, label) in x_ticks {
            let px = frame.x(x, v);
            self.grid_line(px, frame.top, px, frame.bottom);
            let half = text_width(label.chars().count(), 12.0) / 2.0;
            if px - half > last_label_end + 6.0 {
                self.text(px, frame.bottom + 18.0, 12.0, "middle", "", &label);
                last_label_end = px + half;
            }
        }
        for (v, label) in y_ticks {
            let py = frame.y(y, v);
            self.grid_line(frame.left, py, frame.right, py);
            self.text(frame.left - 8.0, py + 4.0, 12.0, "end", "", &label);
        }
        self.push(format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" \
             stroke=\"#333333\"/>\n",
            frame.left,
            frame.top,
            frame.right - frame.left,
            frame.bottom - frame.top
        ));
    }

    fn axis_titles(&mut self, frame: &Frame, x_title: &str, y_title: &str) {
        let middle_x = (frame.left + frame.right) / 2.0;
        self.text(middle_x, frame.bottom + 40.0, 13.0, "middle", "", x_title);
        let middle_y = (frame.top + frame.bottom) / 2.0;
        let rotate = format!("transform=\"rotate(-90 24 {middle_y:.1})\"");
        self.text(24.0, middle_y, 13.0, "middle", &rotate, y_title);
    }

    fn grid_line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64) {
        self.push(format!(
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"#e4e4e4\"/>\n"
        ));
    }

    /// Run `run`'s line through `points` (pixels); a single point is drawn as a marker, and
    /// `markers` puts one on every point.
    fn series(&mut self, run: usize, points: &[(f64, f64)], markers: bool) {
        if points.len() >= 2 {
            let path: Vec<String> = points
                .iter()
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect();
            let dash = DASHES[(run / COLOURS.len()) % DASHES.len()];
            let dash = if dash.is_empty() {
                String::new()
            } else {
                format!(" stroke-dasharray=\"{dash}\"")
            };
            self.push(format!(
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" \
                 stroke-linejoin=\"round\"{dash}/>\n",
                path.join(" "),
                colour(run)
            ));
        }
        if markers || points.len() == 1 {
            for &(x, y) in points {
                self.marker(run, x, y);
            }
        }
    }

    fn marker(&mut self, run: usize, x: f64, y: f64) {
        self.push(format!(
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{}\" stroke=\"white\"/>\n",
            colour(run)
        ));
    }
}

fn colour(run: usize) -> &'static str {
    COLOURS[run % COLOURS.len()]
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// resvg settings with `font` as the only font, standing in for `sans-serif`.
fn render_options(font: Vec<u8>) -> anyhow::Result<usvg::Options<'static>> {
    let mut options = usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_font_data(font);
    let family = fonts
        .faces()
        .next()
        .and_then(|face| face.families.first())
        .map(|(name, _)| name.clone())
        .with_context(|| format!("{FONT} is not a font file this renderer reads"))?;
    fonts.set_sans_serif_family(family.clone());
    options.font_family = family;
    Ok(options)
}

fn rasterize(svg: &str, options: &usvg::Options) -> anyhow::Result<Vec<u8>> {
    let tree = usvg::Tree::from_str(svg, options)?;
    let size = tree.size().to_int_size();
    let mut pixmap =
        tiny_skia::Pixmap::new(size.width(), size.height()).context("the picture has no pixels")?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    Ok(pixmap.encode_png()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use orch_analysis::ycsb::Percentile;

    fn operation(name: &str, latencies: &[(f64, f64)]) -> Operation {
        Operation {
            name: name.to_string(),
            count: 100,
            percentiles: latencies
                .iter()
                .map(|&(percentile, latency_us)| Percentile {
                    percentile,
                    latency_us,
                })
                .collect(),
            ..Operation::default()
        }
    }

    fn report(scale: f64) -> Report {
        let tail = [
            (50.0, 900.0),
            (90.0, 1500.0),
            (99.0, 4000.0),
            (99.9, 30000.0),
        ];
        let tail: Vec<(f64, f64)> = tail.iter().map(|&(p, l)| (p, l * scale)).collect();
        Report {
            runtime_ms: Some(20_000.0),
            throughput: Some(200.0),
            operations: vec![
                operation("READ", &tail),
                operation("UPDATE", &[(95.0, 2000.0 * scale), (99.0, 2600.0 * scale)]),
                operation("CLEANUP", &[(99.0, 5.0)]),
                operation("UPDATE-FAILED", &[(99.0, 7.0)]),
            ],
            ..Report::default()
        }
    }

    const SAMPLE: &str = "2026-11-25 21:21:06:690 10 sec: 4000 operations; 217.27 current \
                          ops/sec; [READ: Count=37, Max=2211, Min=512, Avg=900.1] [UPDATE: \
                          Count=3, Max=3000]";

    fn png_size(png: &[u8]) -> (u32, u32) {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        assert_eq!(&png[12..16], b"IHDR");
        let word = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        (word(16), word(20))
    }

    fn texts(svg: &str) -> Vec<String> {
        let document = roxmltree::Document::parse(svg).expect("the SVG is well-formed XML");
        assert_eq!(document.root_element().tag_name().name(), "svg");
        document
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| n.text().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn writes_four_readable_files() {
        let dir = tempfile::tempdir().unwrap();
        let status = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let busy = status(
            "a.txt",
            &format!(
                "Loading workload...\n2026-11-25 21:20:56:690 0 sec: 0 operations; est completion \
                 in 0 second\n{SAMPLE}\n2026-11-25 21:21:16:690 20 sec: 6100 operations; 210 \
                 current ops/sec; [READ: Count=21]\n[OVERALL], RunTime(ms), 20000\n"
            ),
        );
        let short = status(
            "b.txt",
            "2026-11-25 21:21:06:690 10 sec: 90 operations; 9 current ops/sec;\n",
        );
        let silent = status("c.txt", "Exception in thread \"main\"\n");
        let mut odd = report(0.8);
        odd.operations[0].percentiles.push(Percentile {
            percentile: 99.99,
            latency_us: f64::NAN,
        });
        odd.operations[0].percentiles.push(Percentile {
            percentile: 100.0,
            latency_us: 90_000.0,
        });
        let runs = vec![
            ("r01-leader=host3-rep1".to_string(), report(1.0), busy),
            ("r02-leader=host1&<2>-rep1".to_string(), report(1.4), short),
            ("r03-leader=host2-rep1".to_string(), odd, silent),
        ];
        let written = write_plots(dir.path(), &runs).unwrap();
        let names: Vec<_> = written.iter().map(|p| p.file_name().unwrap()).collect();
        assert_eq!(
            names,
            [
                "latency.svg",
                "latency.png",
                "throughput.svg",
                "throughput.png"
            ]
        );
        for path in &written {
            assert_eq!(path.parent(), Some(dir.path()));
        }

        for svg in ["latency.svg", "throughput.svg"] {
            let svg = std::fs::read_to_string(dir.path().join(svg)).unwrap();
            let texts = texts(&svg);
            for (label, ..) in &runs {
                assert!(
                    texts.iter().any(|t| t.contains(label.as_str())),
                    "{label} in {texts:?}"
                );
            }
        }
        let latency = texts(&std::fs::read_to_string(dir.path().join("latency.svg")).unwrap());
        for expected in ["READ", "UPDATE", "p99.9", "latency (ms, log scale)"] {
            assert!(
                latency.iter().any(|t| t == expected),
                "{expected} in {latency:?}"
            );
        }
        assert!(!latency
            .iter()
            .any(|t| t.contains("CLEANUP") || t.contains("FAILED")));
        let throughput =
            texts(&std::fs::read_to_string(dir.path().join("throughput.svg")).unwrap());
        assert!(throughput.contains(&"r03-leader=host2-rep1 (no data)".to_string()));

        for png in ["latency.png", "throughput.png"] {
            let bytes = std::fs::read(dir.path().join(png)).unwrap();
            assert_eq!(png_size(&bytes), (1000, 600), "{png}");
            let decoded = tiny_skia::Pixmap::decode_png(&bytes).expect("the PNG decodes");
            assert_eq!((decoded.width(), decoded.height()), (1000, 600));
            let pixels = decoded.pixels();
            let ink = pixels
                .iter()
                .filter(|p| p.red() < 128 && p.green() < 128)
                .count();
            assert!(ink > 1000, "{png} has text and lines ({ink} dark pixels)");
        }
    }

    #[test]
    fn names_a_missing_status_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("r01/ycsb-run.status.txt");
        let runs = vec![("r01".to_string(), report(1.0), missing.clone())];
        let error = format!("{:#}", write_plots(dir.path(), &runs).unwrap_err());
        assert!(error.contains(&missing.display().to_string()), "{error}");
    }

    #[test]
    fn axes_end_on_round_values() {
        let (axis, ticks) = linear_axis(1050.0);
        assert_eq!(axis.hi, 1250.0);
        let labels: Vec<&str> = ticks.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, ["0", "250", "500", "750", "1000", "1250"]);
        assert_eq!(linear_axis(0.0).0.hi, 1.0);
        let ticks: Vec<String> = log_ticks(0.9, 30.0).into_iter().map(number).collect();
        assert_eq!(ticks, ["0.5", "1", "2", "5", "10", "20", "50"]);
        assert_eq!(nines(99.9).round(), 3.0);
        let (axis, _, log) = latency_axis([1.0, 2.0, 3.0].into_iter());
        assert!(!log && axis.lo == 0.0);
        assert!(latency_axis([1.0, 200.0].into_iter()).2);
    }

    #[test]
    fn parses_status_lines() {
        assert_eq!(status_point(SAMPLE), Some((10.0, 217.27)));
        let labelled = "run: 2026-11-25 21:21:16:690 20 sec: 8000 operations; 400 current ops/sec;";
        assert_eq!(status_point(labelled), Some((20.0, 400.0)));
        let start = "2026-11-25 21:20:56:690 0 sec: 0 operations; est completion in 0 second ";
        assert_eq!(status_point(start), Some((0.0, 0.0)));
        let no_rate = "2026-11-25 21:21:06:690 10 sec: 4000 operations; [READ: Count=37]";
        assert_eq!(status_point(no_rate), None);
        for garbage in [
            "",
            "garbage",
            "Exception in thread \"main\" java.lang.NullPointerException",
            "x sec: 4000 operations; 217.27 current ops/sec;",
            "10 sec: many operations; 217.27 current ops/sec;",
            "10 sec: 4000 operations; ∞ current ops/sec;",
            "10 sec: 4000 operations; NaN current ops/sec;",
            "10 sec:",
        ] {
            assert_eq!(status_point(garbage), None, "{garbage:?}");
        }
        let mixed = format!("starting\n{SAMPLE}\nwarning: slow\n");
        assert_eq!(parse_status(&mixed), vec![(10.0, 217.27)]);
    }
}
