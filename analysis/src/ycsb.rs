//! Parser for YCSB's text output, so the orchestrator reads results of real YCSB and of
//! `orch-node ycsb` the same way.
//!
//! YCSB's `TextMeasurementsExporter` prints one `[SECTION], metric, value` line per number
//! (`[OVERALL], RunTime(ms), 10110`, `[READ], 99thPercentileLatency(us), 2211`,
//! `[READ], Return=OK, 103`). Everything else in a captured output (stderr mixed in, status
//! lines, `Results stored in ...`) is skipped.
//!
//! With a target throughput and `measurement.interval=both`, YCSB also prints every operation's
//! latency from its intended start (when the throttle schedule wanted it sent) as its own
//! section, `[Intended-UPDATE]`: those are operations of their own here, without `Return=`
//! lines (YCSB counts the returns in `[UPDATE]`), so nothing is counted twice.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

/// What YCSB prefixes the sections of intended latencies with (`measurement.interval=both`).
pub const INTENDED_PREFIX: &str = "Intended-";

/// The operation a section measures: `UPDATE` for `[UPDATE]` and `[Intended-UPDATE]`.
pub fn measured(section: &str) -> &str {
    section.strip_prefix(INTENDED_PREFIX).unwrap_or(section)
}

/// YCSB's own bookkeeping, not a database operation: `CLEANUP`, `Intended-CLEANUP`.
pub fn is_cleanup(section: &str) -> bool {
    measured(section) == "CLEANUP"
}

/// The results of one YCSB load or run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `[OVERALL], RunTime(ms)`; excerpts sometimes keep only the throughput line.
    pub runtime_ms: Option<f64>,
    /// `[OVERALL], Throughput(ops/sec)`.
    pub throughput: Option<f64>,
    /// Sections with an `Operations` line (READ, UPDATE, CLEANUP, READ-FAILED, ...), in
    /// output order.
    pub operations: Vec<Operation>,
    /// All other numbers (GC statistics, memory, unknown `[OVERALL]` lines), in output order.
    pub other: Vec<Metric>,
}

/// Latency statistics and return codes of one operation type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// The section name, e.g. `UPDATE`.
    pub name: String,
    /// `Operations`: how many were measured.
    pub count: u64,
    /// `AverageLatency(us)`.
    pub average_us: Option<f64>,
    /// `MinLatency(us)`.
    pub min_us: Option<f64>,
    /// `MaxLatency(us)`.
    pub max_us: Option<f64>,
    /// `95thPercentileLatency(us)`, `99.9PercentileLatency(us)`, ... in output order.
    pub percentiles: Vec<Percentile>,
    /// `Return=OK, 891` -> `{"OK": 891}`.
    pub returns: BTreeMap<String, u64>,
    /// Lines of this section not covered above (histogram buckets, ...).
    pub other: Vec<Metric>,
}

/// One `<p>PercentileLatency(us)` line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentile {
    /// The percentile, e.g. 99.9.
    pub percentile: f64,
    /// The latency at that percentile in microseconds.
    pub latency_us: f64,
}

/// One `[SECTION], name, value` line that has no dedicated field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// The bracketed section, e.g. `TOTAL_GCs`.
    pub section: String,
    /// The metric, e.g. `Count`.
    pub name: String,
    /// The value.
    pub value: f64,
}

/// A line that looks like a measurement but cannot be one, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number in the parsed text.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

impl Report {
    /// The operation section called `name` (`READ`, `UPDATE`, ...).
    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations.iter().find(|o| o.name == name)
    }

    /// The database operations (READ, UPDATE, INSERT, ...): every section with `Return=`
    /// lines, so neither YCSB's bookkeeping (`CLEANUP`) nor the latency-only sections of failed
    /// operations (`READ-FAILED`, `READ-ERROR`) nor `READ-MODIFY-WRITE`, whose read and update
    /// are counted on their own.
    pub fn db_operations(&self) -> impl Iterator<Item = &Operation> {
        self.operations.iter().filter(|o| !o.returns.is_empty())
    }

    /// Failed operations over all database operations.
    pub fn failed(&self) -> u64 {
        self.db_operations().map(Operation::failed).sum()
    }

    /// Every database operation attempted (with a `Return=` line).
    pub fn attempted(&self) -> u64 {
        self.db_operations().map(Operation::attempted).sum()
    }
}

impl Operation {
    /// The latency at `percentile` (e.g. 99.0), if the output listed it.
    pub fn percentile(&self, percentile: f64) -> Option<f64> {
        self.percentiles
            .iter()
            .find(|p| p.percentile == percentile)
            .map(|p| p.latency_us)
    }

    /// The `Return=` count for `status` (`OK`, `ERROR`, `NOT_FOUND`, ...), 0 if absent.
    pub fn returned(&self, status: &str) -> u64 {
        self.returns.get(status).copied().unwrap_or(0)
    }

    /// Operations that returned anything but success (`ERROR`, `NOT_FOUND`,
    /// `UNEXPECTED_STATE`, ...): YCSB counts every attempt under the operation's own section,
    /// failed or not. Success is `OK`, or `0` in releases before 0.7, whose `DB` methods
    /// returned an int, "zero on success".
    pub fn failed(&self) -> u64 {
        self.returns
            .iter()
            .filter(|(status, _)| !matches!(status.as_str(), "OK" | "0"))
            .map(|(_, n)| n)
            .sum()
    }

    /// Every attempt with a `Return=` line, failed or not.
    pub fn attempted(&self) -> u64 {
        self.returns.values().sum()
    }
}

/// One `[SECTION], metric, value` line.
struct Line<'a> {
    number: usize,
    section: &'a str,
    metric: &'a str,
    value: &'a str,
}

/// Parses one YCSB output. A `[SECTION], metric, value` line whose value is not a number, or
/// that repeats an earlier section and metric (two runs in one text), is an error; lines of
/// any other shape are skipped.
pub fn parse(text: &str) -> Result<Report, ParseError> {
    let mut lines: Vec<Line> = Vec::new();
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let Some(line) = measurement_line(i + 1, raw) else {
            continue;
        };
        if let Some(first) = seen.insert((line.section, line.metric), line.number) {
            return Err(ParseError {
                line: line.number,
                message: format!(
                    "[{}], {} already appeared on line {first} (two outputs in one text?)",
                    line.section, line.metric
                ),
            });
        }
        lines.push(line);
    }

    let mut sections: Vec<&str> = Vec::new();
    for l in &lines {
        if !sections.contains(&l.section) {
            sections.push(l.section);
        }
    }

    let mut report = Report::default();
    for section in sections {
        let of_section: Vec<&Line> = lines.iter().filter(|l| l.section == section).collect();
        if section == "OVERALL" {
            for l in of_section {
                match l.metric {
                    "RunTime(ms)" => report.runtime_ms = Some(number(l)?),
                    "Throughput(ops/sec)" => report.throughput = Some(number(l)?),
                    _ => report.other.push(metric(l)?),
                }
            }
        } else if of_section.iter().any(|l| l.metric == "Operations") {
            report.operations.push(operation(section, &of_section)?);
        } else {
            for l in of_section {
                report.other.push(metric(l)?);
            }
        }
    }
    Ok(report)
}

/// Splits `[SECTION], metric, value`; `None` for lines of any other shape.
fn measurement_line(number: usize, raw: &str) -> Option<Line<'_>> {
    let rest = raw.trim().strip_prefix('[')?;
    let (section, rest) = rest.split_once("], ")?;
    if section.is_empty() || section.contains([' ', '[', ']']) {
        return None;
    }
    let (metric, value) = rest.split_once(", ")?;
    Some(Line {
        number,
        section,
        metric: metric.trim(),
        value: value.trim(),
    })
}

fn operation(name: &str, lines: &[&Line]) -> Result<Operation, ParseError> {
    let mut op = Operation {
        name: name.to_string(),
        ..Operation::default()
    };
    for l in lines {
        match l.metric {
            "Operations" => op.count = count(l)?,
            "AverageLatency(us)" => op.average_us = Some(number(l)?),
            "MinLatency(us)" => op.min_us = Some(number(l)?),
            "MaxLatency(us)" => op.max_us = Some(number(l)?),
            m => {
                if let Some(status) = m.strip_prefix("Return=") {
                    op.returns.insert(status.to_string(), count(l)?);
                } else if let Some(percentile) = percentile_of(m) {
                    op.percentiles.push(Percentile {
                        percentile,
                        latency_us: number(l)?,
                    });
                } else {
                    op.other.push(metric(l)?);
                }
            }
        }
    }
    Ok(op)
}

/// `99thPercentileLatency(us)` -> 99, `99.9PercentileLatency(us)` -> 99.9 (YCSB writes an
/// ordinal suffix only for whole percentiles).
fn percentile_of(metric: &str) -> Option<f64> {
    let p = metric.strip_suffix("PercentileLatency(us)")?;
    let p = ["th", "st", "nd", "rd"]
        .iter()
        .find_map(|s| p.strip_suffix(s))
        .unwrap_or(p);
    p.parse().ok()
}

fn number(l: &Line) -> Result<f64, ParseError> {
    l.value.parse().map_err(|_| ParseError {
        line: l.number,
        message: format!(
            "[{}], {}: `{}` is not a number",
            l.section, l.metric, l.value
        ),
    })
}

/// A whole number. YCSB releases before 0.13 print counts as Java doubles (`492.0`, `1.0E7`):
/// those parse too, as long as they are whole.
fn count(l: &Line) -> Result<u64, ParseError> {
    let not_a_count = || ParseError {
        line: l.number,
        message: format!(
            "[{}], {}: `{}` is not a count",
            l.section, l.metric, l.value
        ),
    };
    if let Ok(n) = l.value.parse::<u64>() {
        return Ok(n);
    }
    match l.value.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64 => Ok(v as u64),
        _ => Err(not_a_count()),
    }
}

fn metric(l: &Line) -> Result<Metric, ParseError> {
    Ok(Metric {
        section: l.section.to_string(),
        name: l.metric.to_string(),
        value: number(l)?,
    })
}
