//! Plots of a scenario's runs side by side: latency percentiles per operation and throughput
//! over time, and for election runs detection/failover, false positives and role timelines
//! ([`elect`]), each as SVG (for papers and browsers) and PNG (for a quick look).
//!
//! The SVG is written here directly and the PNG is that same SVG rasterized by resvg, so the two
//! files always show the same picture and no plotting library or system library is needed. Only
//! the PNG needs a font file, read at run time from [`FONT`]. Details: docs/plots.md.

use std::path::{Path, PathBuf};

mod cdf;
mod elect;
mod svg;
mod ycsb;

use anyhow::Context;
use orch_analysis::elect::Summary;
use orch_analysis::ycsb::Report;
use orch_common::events::Record;
use resvg::{tiny_skia, usvg};

pub use cdf::ecdf;
pub use elect::CellSamples;
use ycsb::{latency_svg, parse_status, throughput_svg};

/// The font the PNGs are drawn with (Debian package `fonts-dejavu-core`); the SVGs ask for
/// `sans-serif` and leave the choice to the viewer.
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Writes `latency.svg`, `latency.png`, `throughput.svg` and `throughput.png` into `dir`, one
/// line per run in each, so the runs of a scenario can be compared at a glance. `runs` holds each
/// run's label, its run-phase report and its `ycsb-run.status.txt` (YCSB's `-s` lines); returns
/// the files written. Each run's fault windows (its `faults.jsonl`) are shaded.
pub fn write_plots(dir: &Path, runs: &[(String, Report, PathBuf)]) -> anyhow::Result<Vec<PathBuf>> {
    let options = render_options(font()?)?;
    let labels: Vec<&str> = runs.iter().map(|(label, ..)| label.as_str()).collect();
    let mut series = Vec::new();
    let mut faults = Vec::new();
    for (_, _, status) in runs {
        let bytes = std::fs::read(status)
            .with_context(|| format!("cannot read the status file {}", status.display()))?;
        series.push(parse_status(&String::from_utf8_lossy(&bytes)));
        // The run's faults.jsonl sits beside its status file.
        let records = match status.parent() {
            Some(run_dir) => crate::results::faults::read(run_dir)?,
            None => Vec::new(),
        };
        faults.push(
            records
                .iter()
                .filter_map(|f| Some((f.start_s?, f.end_s?)))
                .collect::<Vec<_>>(),
        );
    }
    let reports: Vec<&Report> = runs.iter().map(|(_, report, _)| report).collect();
    let plots = [
        ("latency", latency_svg(&labels, &reports)),
        ("throughput", throughput_svg(&labels, &series, &faults)),
    ];
    let mut written = Vec::new();
    for (name, svg) in plots {
        write_pair(&dir.join(name), &svg, &options, &mut written)?;
    }
    Ok(written)
}

/// One election run for its timeline: label, every replica's events, the analysis, and the
/// (start, end) Unix ns of its fault windows.
pub type ElectionRun = (String, Vec<Vec<Record>>, Summary, Vec<(u64, u64)>);

/// Writes the election plots: `election-detection` and `election-false-positives` (per cell)
/// in `dir`, and `timeline` in each run's directory; returns the files written.
pub fn write_election_plots(
    dir: &Path,
    cells: &[CellSamples],
    runs: &[ElectionRun],
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
    for (label, logs, summary, faults) in runs {
        let svg = elect::timeline_svg(&format!("Replica roles: {label}"), logs, summary, faults);
        write_pair(
            &dir.join(label).join("timeline"),
            &svg,
            &options,
            &mut written,
        )?;
    }
    Ok(written)
}

/// Writes `base.svg` and `base.png`: one delayed pair's round trips as CDFs, the model of its
/// declared delays against the realised ones (`curves`: name, points); returns the files.
pub fn write_cdf_plot(
    base: &Path,
    title: &str,
    curves: &[(&str, Vec<(f64, f64)>)],
) -> anyhow::Result<Vec<PathBuf>> {
    let options = render_options(font()?)?;
    let mut written = Vec::new();
    write_pair(base, &cdf::cdf_svg(title, curves), &options, &mut written)?;
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
    use super::svg::*;
    use super::ycsb::*;
    use super::*;
    use orch_analysis::ycsb::Operation;
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

    /// The x and width of the one fault window in `svg`.
    fn fault_rect(svg: &str) -> (f64, f64) {
        let rects: Vec<&str> = svg
            .lines()
            .filter(|l| l.contains("class=\"fault\""))
            .collect();
        assert_eq!(rects.len(), 1, "{svg}");
        let attr = |name: &str| -> f64 {
            let rest = rects[0].split(&format!(" {name}=\"")).nth(1).unwrap();
            rest.split('"').next().unwrap().parse().unwrap()
        };
        (attr("x"), attr("width"))
    }

    #[test]
    fn fault_windows_are_shaded_where_they_were() {
        let series = vec![vec![(0.0, 100.0), (30.0, 100.0), (60.0, 100.0)]];
        let plain = throughput_svg(&["r1"], &series, &[Vec::new()]);
        assert!(!plain.contains("class=\"fault\""));
        let shaded = throughput_svg(&["r1"], &series, &[vec![(20.0, 30.0)]]);
        // The window is a sixth of the 0..60 s axis wide and starts a third of the way in.
        let (x, width) = fault_rect(&shaded);
        let axis = width * 6.0;
        assert!((x - LEFT - axis / 3.0).abs() < 1.0, "{shaded}");
    }

    #[test]
    fn election_timelines_shade_the_fault_windows() {
        use orch_common::events::{Event, Role};
        let rec = |id: usize, s: u64, event: Event| Record {
            mono_ns: 0,
            wall: s * 1_000_000_000,
            id,
            term: 1,
            event,
        };
        let logs = vec![
            vec![
                rec(0, 0, Event::Leader { leader: None }),
                rec(0, 60, Event::Leader { leader: None }),
            ],
            vec![rec(
                1,
                0,
                Event::Role {
                    from: Role::Candidate,
                    to: Role::Leader,
                },
            )],
        ];
        let summary = orch_analysis::elect::summarize(&logs, 0);
        let plain = elect::timeline_svg("t", &logs, &summary, &[]);
        assert!(!plain.contains("class=\"fault\""));
        let window = (20_000_000_000, 30_000_000_000);
        let shaded = elect::timeline_svg("t", &logs, &summary, &[window]);
        // A sixth of the 0..60 s axis wide, a third of the way in.
        let (x, width) = fault_rect(&shaded);
        assert!((x - LEFT - width * 2.0).abs() < 1.0, "{shaded}");
    }
}
