//! Latency histograms and return codes per operation, kept as YCSB's `DBWrapper` and
//! `OneMeasurementHdrHistogram` keep them (microseconds, 3 significant digits, failed
//! operations under `<OP>-FAILED`), so the printed numbers mean the same as real YCSB's. With
//! `measurementtype=histogram`, also as `OneMeasurementHistogram` keeps them: exact sums, and
//! `histogram.buckets` buckets of 1 ms.
//!
//! With a target throughput, YCSB's `measurement.interval` also measures each operation from its
//! intended start, when the throttle schedule wanted it to begin (`intended`: instead, under the
//! operation's own name; `both`: besides, as `Intended-<OP>`), so a stall that delays the
//! operations queued behind it shows in their latency (coordinated omission). The intended
//! measurements are YCSB's second map: printed after the others, in the order of their
//! operation names, with the `Return=` counts only where they are the only ones.
//!
//! Every client thread records into its own `Measurements`; the status line and the final
//! report merge them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use hdrhistogram::Histogram;

use super::db::Status;
use super::properties::Properties;

/// The measurement properties (`measurementtype`, `measurement.interval`,
/// `hdrhistogram.percentiles`, error naming).
#[derive(Debug)]
pub struct Settings {
    /// Percentiles printed per operation, in the given order (`hdrhistogram` only).
    pub percentiles: Vec<f64>,
    /// `measurementtype=histogram`: YCSB's millisecond-bucket histogram instead.
    pub histogram: Option<Buckets>,
    /// `measurement.interval`: from the actual start, the intended start, or both.
    pub interval: MeasurementInterval,
    report_each_error: bool,
    tracked_errors: Vec<String>,
}

/// `measurement.interval`: where an operation's latency starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeasurementInterval {
    /// `op` (YCSB's default): when the operation was sent.
    Op,
    /// `intended`: when the throttle schedule wanted it sent, reported under the operation's
    /// own name (`[UPDATE]`).
    Intended,
    /// `both`: `[UPDATE]` from the actual start and `[Intended-UPDATE]` from the intended one.
    Both,
}

/// What YCSB prefixes the intended measurements with under `measurement.interval=both`.
pub const INTENDED_PREFIX: &str = "Intended-";

/// When one measured call was due, when it started and when it ended.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// The throttle schedule's start for it; the actual start when there is no schedule.
    pub intended: Instant,
    pub start: Instant,
    pub end: Instant,
}

/// `OneMeasurementHistogram`'s settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    /// `histogram.buckets` (1000): buckets of 1 ms; longer latencies count as overflow.
    pub count: usize,
    /// `measurement.histogram.verbose`: print every bucket.
    pub verbose: bool,
}

impl Settings {
    /// Reads the properties with YCSB's defaults; an unreadable percentile list is an error
    /// (YCSB warns and falls back to the default).
    pub fn new(p: &Properties) -> Result<Self> {
        let list = p.string("hdrhistogram.percentiles", "50,95,99");
        let mut percentiles = Vec::new();
        for item in list.split(',') {
            match item.trim().parse::<f64>() {
                Ok(v) if (0.0..=100.0).contains(&v) => percentiles.push(v),
                _ => bail!("hdrhistogram.percentiles={list}: `{item}` is not a percentile"),
            }
        }
        let verbose = p.flag("measurement.histogram.verbose", false);
        let histogram = match p.string("measurementtype", "hdrhistogram").trim() {
            "hdrhistogram" => {
                if verbose {
                    bail!("measurement.histogram.verbose=true needs measurementtype=histogram");
                }
                None
            }
            "histogram" => {
                let count: usize = p.number("histogram.buckets", 1000)?;
                if count == 0 {
                    bail!("histogram.buckets=0: at least one bucket is needed");
                }
                Some(Buckets { count, verbose })
            }
            other => bail!(
                "measurementtype={other} is not supported by orch-node ycsb (hdrhistogram or histogram)"
            ),
        };
        let interval = match p.string("measurement.interval", "op").trim() {
            "op" => MeasurementInterval::Op,
            "intended" => MeasurementInterval::Intended,
            "both" => MeasurementInterval::Both,
            other => bail!(
                "measurement.interval={other}: expected op (latency from the actual start), \
                 intended (from the start the target throughput scheduled) or both"
            ),
        };
        Ok(Self {
            percentiles,
            histogram,
            interval,
            report_each_error: p.flag("reportlatencyforeacherror", false),
            tracked_errors: p
                .get("latencytrackederrors")
                .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
                .unwrap_or_default(),
        })
    }
}

/// One measured name (`READ`, `UPDATE-FAILED`, `CLEANUP`, `Intended-READ`, ...).
#[derive(Clone)]
pub struct Measurement {
    /// The printed name.
    pub name: String,
    /// Where YCSB keeps it: the map and the key there (YCSB's output order depends on them).
    pub slot: Slot,
    /// When it was first measured: YCSB's output order depends on it.
    pub first: Instant,
    /// Every latency of the run, in microseconds.
    pub total: Histogram<u64>,
    interval: Histogram<u64>,
    /// The sum of the interval's latencies (the status line's exact average).
    interval_sum: u64,
    /// Exact statistics, as `OneMeasurementHistogram` keeps them.
    pub exact: Exact,
    /// `Return=` counts, in the order first seen.
    pub returns: Vec<(Status, u64)>,
}

/// Exact sums and 1 ms buckets (only with `measurementtype=histogram`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exact {
    pub operations: u64,
    pub sum: u64,
    pub sum_of_squares: f64,
    pub min: Option<u64>,
    pub max: Option<u64>,
    /// Operations per millisecond of latency, `histogram.buckets` long; empty without.
    pub buckets: Vec<u64>,
    /// Operations of at least `histogram.buckets` ms.
    pub overflow: u64,
}

impl Exact {
    fn record(&mut self, us: u64) {
        let ms = usize::try_from(us / 1000).unwrap_or(usize::MAX);
        match self.buckets.get_mut(ms) {
            Some(b) => *b += 1,
            None => self.overflow += 1,
        }
        self.operations += 1;
        self.sum += us;
        self.sum_of_squares += us as f64 * us as f64;
        self.min = Some(self.min.map_or(us, |m| m.min(us)));
        self.max = Some(self.max.map_or(us, |m| m.max(us)));
    }

    fn merge(&mut self, other: &Exact) {
        for (b, o) in self.buckets.iter_mut().zip(&other.buckets) {
            *b += o;
        }
        self.overflow += other.overflow;
        self.operations += other.operations;
        self.sum += other.sum;
        self.sum_of_squares += other.sum_of_squares;
        self.min = self.min.min(other.min).or(self.min).or(other.min);
        self.max = self.max.max(other.max);
    }
}

/// A measurement's place in YCSB's maps: `opToMesurementMap` or `opToIntendedMesurementMap`,
/// both keyed by the measured name without the `Intended-` prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub intended: bool,
    pub key: String,
}

impl Slot {
    /// The measurement from the actual start of `key`.
    pub fn op(key: &str) -> Self {
        Self {
            intended: false,
            key: key.to_string(),
        }
    }

    /// The measurement from the intended start of `key`.
    pub fn intended(key: &str) -> Self {
        Self {
            intended: true,
            key: key.to_string(),
        }
    }

    /// The printed name: `Intended-<key>` only when both kinds are measured.
    fn name(&self, interval: MeasurementInterval) -> String {
        if self.intended && interval == MeasurementInterval::Both {
            format!("{INTENDED_PREFIX}{}", self.key)
        } else {
            self.key.clone()
        }
    }
}

impl Measurement {
    fn new(slot: Slot, interval: MeasurementInterval, buckets: usize) -> Self {
        let histogram = Histogram::new(3).expect("3 significant digits are valid");
        Self {
            name: slot.name(interval),
            slot,
            first: Instant::now(),
            total: histogram.clone(),
            interval: histogram,
            interval_sum: 0,
            exact: Exact {
                buckets: vec![0; buckets],
                ..Exact::default()
            },
            returns: Vec::new(),
        }
    }

    fn merge(&mut self, other: &Measurement) {
        self.first = self.first.min(other.first);
        self.exact.merge(&other.exact);
        self.total
            .add(&other.total)
            .expect("auto-resizing histograms always add");
        for &(status, n) in &other.returns {
            self.count(status, n);
        }
    }

    fn count(&mut self, status: Status, n: u64) {
        match self.returns.iter_mut().find(|(s, _)| *s == status) {
            Some((_, c)) => *c += n,
            None => self.returns.push((status, n)),
        }
    }
}

/// The measurements of one client thread.
pub struct Measurements {
    settings: Arc<Settings>,
    by_name: Vec<Measurement>,
}

impl Measurements {
    /// Empty measurements sharing the run's settings.
    pub fn new(settings: Arc<Settings>) -> Self {
        Self {
            settings,
            by_name: Vec::new(),
        }
    }

    /// Records one database call as `DBWrapper` does: the latency under `op`, or under
    /// `op-FAILED` (`op-<STATUS>` for tracked errors) when it failed, and the status under `op`
    /// (in the intended measurement when that is the only one, as `Measurements.reportStatus`).
    pub fn record(&mut self, op: &str, status: Status, timing: Timing) {
        if status == Status::Ok {
            self.measure(op, timing);
        } else {
            let s = &self.settings;
            let suffix =
                if s.report_each_error || s.tracked_errors.iter().any(|e| e == status.name()) {
                    status.name()
                } else {
                    "FAILED"
                };
            self.measure(&format!("{op}-{suffix}"), timing);
        }
        let slot = match self.settings.interval {
            MeasurementInterval::Intended => Slot::intended(op),
            MeasurementInterval::Op | MeasurementInterval::Both => Slot::op(op),
        };
        self.entry(slot).count(status, 1);
    }

    /// Records a latency with no status (`CLEANUP`, `READ-MODIFY-WRITE`): from the actual start
    /// unless `measurement.interval=intended`, from the intended start unless `op`.
    pub fn measure(&mut self, name: &str, timing: Timing) {
        let interval = self.settings.interval;
        if interval != MeasurementInterval::Intended {
            self.add(
                Slot::op(name),
                timing.end.saturating_duration_since(timing.start),
            );
        }
        if interval != MeasurementInterval::Op {
            self.add(
                Slot::intended(name),
                timing.end.saturating_duration_since(timing.intended),
            );
        }
    }

    fn add(&mut self, slot: Slot, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let m = self.entry(slot);
        m.total
            .record(us)
            .expect("auto-resizing histograms take any u64");
        m.interval
            .record(us)
            .expect("auto-resizing histograms take any u64");
        m.interval_sum += us;
        m.exact.record(us);
    }

    /// The latencies since the last call, by name, for a status line.
    pub fn take_interval(&mut self) -> Vec<Interval> {
        self.by_name
            .iter_mut()
            .map(|m| {
                let h = m.interval.clone();
                m.interval.reset();
                Interval {
                    name: m.name.clone(),
                    slot: m.slot.clone(),
                    first: m.first,
                    histogram: h,
                    sum: std::mem::take(&mut m.interval_sum),
                }
            })
            .collect()
    }

    fn entry(&mut self, slot: Slot) -> &mut Measurement {
        let buckets = self.settings.histogram.map_or(0, |b| b.count);
        match self.by_name.iter().position(|m| m.slot == slot) {
            Some(i) => &mut self.by_name[i],
            None => {
                let interval = self.settings.interval;
                self.by_name.push(Measurement::new(slot, interval, buckets));
                self.by_name.last_mut().expect("just pushed")
            }
        }
    }
}

/// All threads' measurements merged per name, in the order real YCSB prints them.
pub fn merge<'a>(threads: impl IntoIterator<Item = &'a Measurements>) -> Vec<Measurement> {
    let mut merged: Vec<Measurement> = Vec::new();
    for t in threads {
        for m in &t.by_name {
            match merged.iter_mut().find(|x| x.slot == m.slot) {
                Some(x) => x.merge(m),
                None => merged.push(m.clone()),
            }
        }
    }
    in_ycsb_order(&mut merged, |m| (&m.slot, m.first));
    merged
}

/// One name's latencies of one status interval.
pub struct Interval {
    pub name: String,
    /// Where YCSB keeps the name (its print order).
    pub slot: Slot,
    /// When the name was first measured (YCSB's print order).
    pub first: Instant,
    pub histogram: Histogram<u64>,
    /// The exact sum of the interval's latencies in microseconds.
    pub sum: u64,
}

/// Interval histograms of all threads merged per name, in YCSB's order.
pub fn merge_intervals(parts: impl IntoIterator<Item = Interval>) -> Vec<Interval> {
    let mut merged: HashMap<String, Interval> = HashMap::new();
    for part in parts {
        match merged.get_mut(&part.name) {
            Some(x) => {
                x.first = x.first.min(part.first);
                x.sum += part.sum;
                x.histogram
                    .add(&part.histogram)
                    .expect("auto-resizing histograms always add");
            }
            None => {
                merged.insert(part.name.clone(), part);
            }
        }
    }
    let mut list: Vec<Interval> = merged.into_values().collect();
    in_ycsb_order(&mut list, |i| (&i.slot, i.first));
    list
}

/// Sorts as YCSB iterates its two `ConcurrentHashMap<String, OneMeasurement>`, the operations'
/// then the intended ones': by hash bin of the key (Java's `String.hashCode`, spread, 16 bins),
/// then in insertion order. That is why real YCSB prints `[READ]`, `[CLEANUP]`, `[UPDATE]` in
/// that order, then `[Intended-READ]`, `[Intended-CLEANUP]`, `[Intended-UPDATE]`.
fn in_ycsb_order<T>(items: &mut [T], key: impl Fn(&T) -> (&Slot, Instant)) {
    items.sort_by_key(|item| {
        let (slot, first) = key(item);
        (slot.intended, java_map_bin(&slot.key), first)
    });
}

fn java_map_bin(name: &str) -> u32 {
    let h = name
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c))) as u32;
    ((h ^ (h >> 16)) & 0x7fff_ffff) & 15
}

/// The mean as Java's HdrHistogram computes it (sum of bucket medians, then one division), so
/// `AverageLatency(us)` matches YCSB to the last digit for the same samples.
pub fn mean(h: &Histogram<u64>) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    let sum: f64 = h
        .iter_recorded()
        .map(|v| h.median_equivalent(v.value_iterated_to()) as f64 * v.count_at_value() as f64)
        .sum();
    sum / h.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Arc<Settings> {
        let mut p = Properties::default();
        for (k, v) in pairs {
            p.set(k, v);
        }
        Arc::new(Settings::new(&p).unwrap())
    }

    /// A call of `n` µs with no schedule.
    fn us(n: u64) -> Timing {
        late(n, 0)
    }

    /// A call of `n` µs that started `late` µs after it was due.
    fn late(n: u64, late: u64) -> Timing {
        let intended = Instant::now();
        let start = intended + Duration::from_micros(late);
        Timing {
            intended,
            start,
            end: start + Duration::from_micros(n),
        }
    }

    fn names(all: &[Measurement]) -> Vec<&str> {
        all.iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn failures_are_measured_apart_but_counted_under_the_operation() {
        let mut m = Measurements::new(settings(&[]));
        m.record("UPDATE", Status::Ok, us(100));
        m.record("UPDATE", Status::Error, us(5000));
        m.record("READ", Status::NotFound, us(10));
        let all = merge([&m]);
        let names: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
        // Java's hash bins: UPDATE-FAILED and READ share bin 0, UPDATE and READ-FAILED bin 10.
        assert_eq!(names, ["UPDATE-FAILED", "READ", "UPDATE", "READ-FAILED"]);
        let update = &all[2];
        assert_eq!(update.total.len(), 1);
        assert_eq!(update.returns, [(Status::Ok, 1), (Status::Error, 1)]);
        assert_eq!(all[0].total.max(), 5003);
        assert!(all[0].returns.is_empty());
    }

    #[test]
    fn tracked_errors_get_their_own_name() {
        let mut m = Measurements::new(settings(&[("latencytrackederrors", "NOT_FOUND")]));
        m.record("READ", Status::NotFound, us(10));
        m.record("READ", Status::Error, us(10));
        let names: Vec<String> = merge([&m]).into_iter().map(|m| m.name).collect();
        assert!(names.contains(&"READ-NOT_FOUND".to_string()), "{names:?}");
        assert!(names.contains(&"READ-FAILED".to_string()), "{names:?}");
    }

    #[test]
    fn threads_merge_and_order_like_ycsb() {
        let s = settings(&[]);
        let mut a = Measurements::new(s.clone());
        let mut b = Measurements::new(s);
        a.record("UPDATE", Status::Ok, us(1000));
        a.measure("CLEANUP", us(50));
        b.record("READ", Status::Ok, us(200));
        b.record("UPDATE", Status::Ok, us(3000));
        let all = merge([&a, &b]);
        let names: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["READ", "CLEANUP", "UPDATE"]);
        assert_eq!(all[2].total.len(), 2);
        assert_eq!(all[2].returns, [(Status::Ok, 2)]);
        assert_eq!(mean(&all[2].total), 2000.5);
    }

    #[test]
    fn intervals_reset_after_each_status_line() {
        let mut m = Measurements::new(settings(&[]));
        m.record("READ", Status::Ok, us(7));
        let first = merge_intervals(m.take_interval());
        assert_eq!((first[0].histogram.len(), first[0].sum), (1, 7));
        let second = merge_intervals(m.take_interval());
        assert_eq!((second[0].histogram.len(), second[0].sum), (0, 0));
        assert_eq!(merge([&m])[0].total.len(), 1);
    }

    #[test]
    fn histogram_measurement_keeps_exact_sums_and_millisecond_buckets() {
        let s = settings(&[("measurementtype", "histogram"), ("histogram.buckets", "3")]);
        assert_eq!(
            s.histogram,
            Some(Buckets {
                count: 3,
                verbose: false
            })
        );
        let mut a = Measurements::new(s.clone());
        let mut b = Measurements::new(s);
        a.record("READ", Status::Ok, us(999));
        a.record("READ", Status::Ok, us(1000));
        b.record("READ", Status::Ok, us(2500));
        b.record("READ", Status::Ok, us(3000));
        let e = &merge([&a, &b])[0].exact;
        assert_eq!(e.buckets, [1, 1, 1]);
        assert_eq!(e.overflow, 1, "3 ms is past 3 buckets of 1 ms");
        assert_eq!(
            (e.operations, e.sum, e.min, e.max),
            (4, 7499, Some(999), Some(3000))
        );
        assert_eq!(
            e.sum_of_squares,
            999.0 * 999.0 + 1e6 + 2500.0 * 2500.0 + 9e6
        );
    }

    #[test]
    fn measurement_types_other_than_the_two_are_refused_by_name() {
        let mut p = Properties::default();
        p.set("measurementtype", "timeseries");
        let e = Settings::new(&p).unwrap_err().to_string();
        assert!(e.contains("measurementtype=timeseries"), "{e}");
        let mut p = Properties::default();
        p.set("measurement.histogram.verbose", "true");
        let e = Settings::new(&p).unwrap_err().to_string();
        assert!(e.contains("measurement.histogram.verbose"), "{e}");
        p.set("measurementtype", "histogram");
        assert!(Settings::new(&p).unwrap().histogram.unwrap().verbose);
    }

    #[test]
    fn op_measures_from_the_actual_start_only() {
        let mut m = Measurements::new(settings(&[("measurement.interval", "op")]));
        m.record("UPDATE", Status::Ok, late(1000, 5000));
        let all = merge([&m]);
        assert_eq!(names(&all), ["UPDATE"]);
        assert_eq!(all[0].total.max(), 1000);
    }

    /// `both`: the intended latencies (start delay included) under `Intended-<name>`, after all
    /// the others, in the order of their operation names; the `Return=` counts stay with the
    /// operation's own section, failures are measured under `Intended-<OP>-FAILED` too.
    #[test]
    fn both_adds_intended_measurements_after_the_others() {
        let mut m = Measurements::new(settings(&[("measurement.interval", "both")]));
        m.record("UPDATE", Status::Ok, late(1000, 5000));
        m.record("READ", Status::Ok, late(200, 0));
        m.record("UPDATE", Status::Error, late(300, 100));
        m.measure("CLEANUP", us(50));
        let all = merge([&m]);
        assert_eq!(
            names(&all),
            [
                "READ",
                "UPDATE-FAILED",
                "CLEANUP",
                "UPDATE",
                "Intended-READ",
                "Intended-UPDATE-FAILED",
                "Intended-CLEANUP",
                "Intended-UPDATE"
            ]
        );
        let get = |name: &str| all.iter().find(|m| m.name == name).unwrap();
        assert_eq!(get("UPDATE").total.max(), 1000);
        assert_eq!(
            get("Intended-UPDATE").total.max(),
            6003,
            "6000 at 3 significant digits"
        );
        assert_eq!(get("Intended-UPDATE-FAILED").total.max(), 400);
        assert_eq!(get("Intended-READ").total.max(), 200);
        assert_eq!(get("Intended-CLEANUP").total.max(), 50);
        assert_eq!(get("UPDATE").returns, [(Status::Ok, 1), (Status::Error, 1)]);
        assert!(get("Intended-UPDATE").returns.is_empty());
        let intervals = merge_intervals(m.take_interval());
        let names: Vec<&str> = intervals.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names[4..],
            [
                "Intended-READ",
                "Intended-UPDATE-FAILED",
                "Intended-CLEANUP",
                "Intended-UPDATE"
            ]
        );
    }

    /// `intended`: only the intended latencies, under the operation's own name, with its
    /// `Return=` counts (YCSB names them `Intended-` only beside the others).
    #[test]
    fn intended_alone_keeps_the_operation_names() {
        let mut m = Measurements::new(settings(&[("measurement.interval", "intended")]));
        m.record("UPDATE", Status::Ok, late(1000, 5000));
        m.measure("READ-MODIFY-WRITE", late(10, 20));
        let all = merge([&m]);
        // Java's hash bins put READ-MODIFY-WRITE first.
        assert_eq!(names(&all), ["READ-MODIFY-WRITE", "UPDATE"]);
        assert_eq!(all[1].total.max(), 6003, "6000 at 3 significant digits");
        assert_eq!(all[1].returns, [(Status::Ok, 1)]);
        assert_eq!(all[0].total.max(), 30);
    }

    #[test]
    fn measurement_intervals_other_than_the_three_are_refused_by_name() {
        let mut p = Properties::default();
        p.set("measurement.interval", "wall");
        let e = Settings::new(&p).unwrap_err().to_string();
        assert!(
            e.starts_with("measurement.interval=wall: expected op"),
            "{e}"
        );
        assert_eq!(settings(&[]).interval, MeasurementInterval::Op);
        assert_eq!(
            settings(&[("measurement.interval", " both ")]).interval,
            MeasurementInterval::Both
        );
    }

    #[test]
    fn percentile_list() {
        assert_eq!(settings(&[]).percentiles, [50.0, 95.0, 99.0]);
        assert_eq!(
            settings(&[("hdrhistogram.percentiles", "10,99.9")]).percentiles,
            [10.0, 99.9]
        );
        let mut p = Properties::default();
        p.set("hdrhistogram.percentiles", "90,p99");
        assert!(Settings::new(&p).unwrap_err().to_string().contains("`p99`"));
    }
}
