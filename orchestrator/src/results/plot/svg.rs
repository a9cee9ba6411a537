//! The SVG drawing primitives every plot shares: the canvas and its constants, axes with round
//! ticks (linear and log), the frame, the legend, the colours and text escaping.

pub(super) const WIDTH: f64 = 1000.0;
pub(super) const HEIGHT: f64 = 600.0;
pub(super) const LEFT: f64 = 90.0;
pub(super) const TITLE_HEIGHT: f64 = 56.0;
pub(super) const LEGEND_FONT: f64 = 13.0;
pub(super) const LEGEND_ROW: f64 = 20.0;
/// Longer run labels are cut in the legend so the plot keeps most of the width.
pub(super) const LEGEND_MAX_CHARS: usize = 40;

/// Tableau 10: distinct hues that stay apart for most colour-blind readers.
pub(super) const COLOURS: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];
/// Past ten runs the colours repeat with another dash pattern.
pub(super) const DASHES: [&str; 3] = ["", "8 4", "2 3"];

/// Maps data values onto one side of a plot area.
pub(super) struct Axis {
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) log: bool,
}

impl Axis {
    /// Where `v` lies between the ends, 0 at `lo` and 1 at `hi`.
    pub(super) fn fraction(&self, v: f64) -> f64 {
        if self.log {
            (v.max(self.lo).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }
}

/// A linear axis from 0 to a round value at or above `max`, with about five ticks.
pub(super) fn linear_axis(max: f64) -> (Axis, Vec<(f64, String)>) {
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
pub(super) fn log_ticks(min: f64, max: f64) -> Vec<f64> {
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

pub(super) fn is_power_of_ten(v: f64) -> bool {
    let exponent = v.log10().round();
    (v / 10_f64.powf(exponent) - 1.0).abs() < 1e-9
}

/// A tick label: at most three decimals, no trailing zeros.
pub(super) fn number(v: f64) -> String {
    let fixed = format!("{v:.3}");
    fixed
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

/// A plot area in pixels.
pub(super) struct Frame {
    pub(super) left: f64,
    pub(super) right: f64,
    pub(super) top: f64,
    pub(super) bottom: f64,
}

impl Frame {
    pub(super) fn x(&self, axis: &Axis, v: f64) -> f64 {
        self.left + axis.fraction(v) * (self.right - self.left)
    }

    pub(super) fn y(&self, axis: &Axis, v: f64) -> f64 {
        self.bottom - axis.fraction(v) * (self.bottom - self.top)
    }
}

/// The run labels with their line styles, right of the plots.
pub(super) struct Legend {
    /// Per run: the text shown (the label, cut to [`LEGEND_MAX_CHARS`], and a note) and the
    /// whole label when it was cut.
    pub(super) entries: Vec<(String, Option<String>)>,
    pub(super) top: f64,
    pub(super) width: f64,
}

impl Legend {
    /// `notes[i]`, when there, is appended to the label of run `i`.
    pub(super) fn new(labels: &[&str], notes: &[Option<&str>], top: f64) -> Self {
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

    pub(super) fn bottom(&self) -> f64 {
        self.top + 12.0 + self.entries.len() as f64 * LEGEND_ROW
    }

    pub(super) fn draw(&self, svg: &mut Svg, left: f64) {
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
pub(super) fn text_width(chars: usize, size: f64) -> f64 {
    chars as f64 * size * 0.58
}

/// An SVG document being written.
pub(super) struct Svg {
    pub(super) out: String,
}

impl Svg {
    pub(super) fn new(height: f64) -> Self {
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
             width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" \
             font-family=\"sans-serif\">\n"
        );
        out.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        Self { out }
    }

    pub(super) fn push(&mut self, element: String) {
        self.out.push_str(&element);
    }

    pub(super) fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }

    pub(super) fn text(
        &mut self,
        x: f64,
        y: f64,
        size: f64,
        anchor: &str,
        attributes: &str,
        content: &str,
    ) {
        self.push(format!(
            "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" text-anchor=\"{anchor}\" \
             {attributes}>{}</text>\n",
            escape(content)
        ));
    }

    pub(super) fn title(&mut self, title: &str) {
        self.text(
            WIDTH / 2.0,
            32.0,
            20.0,
            "middle",
            "font-weight=\"bold\"",
            title,
        );
    }

    pub(super) fn note(&mut self, x: f64, y: f64, note: &str) {
        self.text(x, y, 16.0, "middle", "fill=\"#666666\"", note);
    }

    /// Grid, frame and tick labels; x tick labels that would overlap the previous one are left
    /// out.
    pub(super) fn axes(
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

    pub(super) fn axis_titles(&mut self, frame: &Frame, x_title: &str, y_title: &str) {
        let middle_x = (frame.left + frame.right) / 2.0;
        self.text(middle_x, frame.bottom + 40.0, 13.0, "middle", "", x_title);
        let middle_y = (frame.top + frame.bottom) / 2.0;
        let rotate = format!("transform=\"rotate(-90 24 {middle_y:.1})\"");
        self.text(24.0, middle_y, 13.0, "middle", &rotate, y_title);
    }

    pub(super) fn grid_line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64) {
        self.push(format!(
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"#e4e4e4\"/>\n"
        ));
    }

    /// Run `run`'s line through `points` (pixels); a single point is drawn as a marker, and
    /// `markers` puts one on every point.
    pub(super) fn series(&mut self, run: usize, points: &[(f64, f64)], markers: bool) {
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

    /// A fault window from `x1` to `x2`, shaded over the frame's height in `run`'s colour
    /// (as Jepsen's perf plots shade nemesis activity).
    pub(super) fn window(&mut self, run: usize, x1: f64, x2: f64, frame: &Frame) {
        self.push(format!(
            "<rect class=\"fault\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
             fill=\"{}\" fill-opacity=\"0.15\"/>\n",
            frame.top,
            (x2 - x1).max(1.0),
            frame.bottom - frame.top,
            colour(run)
        ));
    }

    pub(super) fn marker(&mut self, run: usize, x: f64, y: f64) {
        self.push(format!(
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{}\" stroke=\"white\"/>\n",
            colour(run)
        ));
    }
}

pub(super) fn colour(run: usize) -> &'static str {
    COLOURS[run % COLOURS.len()]
}

pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
