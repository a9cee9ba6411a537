//! YCSB's text output, character for character, so scripts written for real YCSB (and the
//! `orch_analysis::ycsb` parser) read ours: `TextMeasurementsExporter` for the results and
//! `StatusThread` for the `-s` lines.

use std::fmt::Write;
use std::time::SystemTime;

use super::measurements::{mean, Buckets, Interval, Measurement, Settings};

/// The results block: `[OVERALL]` runtime and throughput, then every measurement with its
/// statistics, the chosen percentiles (or, with `measurementtype=histogram`, what
/// `OneMeasurementHistogram` prints) and its `Return=` counts. There is no JVM, so no GC lines.
pub fn results(
    runtime_ms: u64,
    operations: u64,
    measurements: &[Measurement],
    settings: &Settings,
) -> String {
    let percentiles = &settings.percentiles;
    let mut out = String::new();
    let mut line = |section: &str, metric: &str, value: String| {
        writeln!(out, "[{section}], {metric}, {value}").expect("writing to a String");
    };
    line("OVERALL", "RunTime(ms)", runtime_ms.to_string());
    let throughput = 1000.0 * operations as f64 / runtime_ms as f64;
    line("OVERALL", "Throughput(ops/sec)", java_double(throughput));
    for m in measurements {
        if let Some(buckets) = settings.histogram {
            histogram_lines(m, buckets, &mut line);
            continue;
        }
        let h = &m.total;
        line(&m.name, "Operations", h.len().to_string());
        line(&m.name, "AverageLatency(us)", java_double(mean(h)));
        line(&m.name, "MinLatency(us)", h.min().to_string());
        line(&m.name, "MaxLatency(us)", h.max().to_string());
        for &p in percentiles {
            let metric = format!("{}PercentileLatency(us)", ordinal(p));
            line(&m.name, &metric, h.value_at_percentile(p).to_string());
        }
        for (status, n) in &m.returns {
            line(&m.name, &format!("Return={}", status.name()), n.to_string());
        }
    }
    out
}

/// `OneMeasurementHistogram.exportMeasurements`: exact mean and variance, min and max (-1 when
/// nothing was measured), the 95th and 99th percentile as the start of their 1 ms bucket, the
/// `Return=` counts, and with `measurement.histogram.verbose` every bucket and the overflow.
fn histogram_lines(m: &Measurement, buckets: Buckets, line: &mut impl FnMut(&str, &str, String)) {
    let e = &m.exact;
    let ops = e.operations as f64;
    let mean = e.sum as f64 / ops;
    let variance = e.sum_of_squares / ops - mean * mean;
    let signed = |v: Option<u64>| v.map_or("-1".to_string(), |v| v.to_string());
    line(&m.name, "Operations", e.operations.to_string());
    line(&m.name, "AverageLatency(us)", java_double(mean));
    line(&m.name, "LatencyVariance(us)", java_double(variance));
    line(&m.name, "MinLatency(us)", signed(e.min));
    line(&m.name, "MaxLatency(us)", signed(e.max));
    let mut counted = 0u64;
    let mut done95 = false;
    for (i, n) in e.buckets.iter().enumerate() {
        counted += n;
        let share = counted as f64 / ops;
        if !done95 && share >= 0.95 {
            line(&m.name, "95thPercentileLatency(us)", (i * 1000).to_string());
            done95 = true;
        }
        if share >= 0.99 {
            line(&m.name, "99thPercentileLatency(us)", (i * 1000).to_string());
            break;
        }
    }
    for (status, n) in &m.returns {
        line(&m.name, &format!("Return={}", status.name()), n.to_string());
    }
    if buckets.verbose {
        for (i, n) in e.buckets.iter().enumerate() {
            line(&m.name, &i.to_string(), n.to_string());
        }
        line(
            &m.name,
            &format!(">{}", buckets.count),
            e.overflow.to_string(),
        );
    }
}

/// What one status line reports.
pub struct Status<'a> {
    pub label: &'a str,
    pub now: SystemTime,
    pub elapsed_ms: u64,
    pub total_ops: u64,
    pub todo_ops: u64,
    pub interval_ops: u64,
    pub interval_ms: u64,
    pub intervals: &'a [Interval],
    /// `measurementtype=histogram`: `[READ AverageLatency(us)=...]` per name instead.
    pub histogram: bool,
}

/// A `-s` line as YCSB's `StatusThread` prints it (timestamps in UTC).
pub fn status_line(s: &Status) -> String {
    let mut msg = format!(
        "{}{} {} sec: {} operations; ",
        s.label,
        timestamp(s.now),
        s.elapsed_ms / 1000,
        s.total_ops
    );
    if s.total_ops != 0 {
        let current = 1000.0 * s.interval_ops as f64 / s.interval_ms as f64;
        write!(msg, "{} current ops/sec; ", two_decimals(current)).expect("writing to a String");
    }
    if s.todo_ops != 0 {
        let throughput = 1000.0 * s.total_ops as f64 / s.elapsed_ms as f64;
        // Java's (long) cast: NaN -> 0, infinity -> Long.MAX_VALUE, as Rust's `as`.
        let remaining = (s.todo_ops as f64 / throughput).ceil() as i64;
        write!(msg, "est completion in {}", remaining_time(remaining))
            .expect("writing to a String");
    }
    for i in s.intervals {
        let (name, h) = (&i.name, &i.histogram);
        if s.histogram {
            // OneMeasurementHistogram.getSummary: nothing for an empty interval.
            if !h.is_empty() {
                let avg = i.sum as f64 / h.len() as f64;
                write!(msg, "[{name} AverageLatency(us)={}]", two_decimals(avg))
                    .expect("writing to a String");
            }
            msg.push(' ');
            continue;
        }
        write!(
            msg,
            "[{name}: Count={}, Max={}, Min={}, Avg={}, 50={}, 90={}, 99={}, 99.9={}, 99.99={}] ",
            h.len(),
            h.max(),
            h.min(),
            two_decimals(mean(h)),
            h.value_at_percentile(50.0),
            h.value_at_percentile(90.0),
            h.value_at_percentile(99.0),
            h.value_at_percentile(99.9),
            h.value_at_percentile(99.99),
        )
        .expect("writing to a String");
    }
    msg
}

/// Java's `Double.toString`: at least one decimal, scientific notation (`1.0E7`) outside
/// [10^-3, 10^7).
pub fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    if (1e-3..1e7).contains(&v.abs()) {
        let s = v.to_string();
        if s.contains('.') {
            s
        } else {
            s + ".0"
        }
    } else {
        let s = format!("{v:e}");
        let (mantissa, exponent) = s.split_once('e').expect("{:e} has an exponent");
        if mantissa.contains('.') {
            format!("{mantissa}E{exponent}")
        } else {
            format!("{mantissa}.0E{exponent}")
        }
    }
}

/// YCSB's percentile label: `95th`, `1st`, `2nd`, `3rd`, `11th`; fractions as Java prints
/// them (`99.9`).
fn ordinal(p: f64) -> String {
    if p.fract() != 0.0 {
        return java_double(p);
    }
    let n = p as i64;
    let suffix = match (n % 100, n % 10) {
        (11..=13, _) => "th",
        (_, 1) => "st",
        (_, 2) => "nd",
        (_, 3) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Java's `DecimalFormat("#.##")`: at most two decimals, no trailing zeros.
fn two_decimals(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// YCSB's `RemainingFormatter`, including its `1 second`/`N seconds` quirk.
fn remaining_time(seconds: i64) -> String {
    let mut out = String::new();
    let days = seconds / 86_400;
    let mut rest = seconds - days * 86_400;
    if days > 0 {
        write!(out, "{days} {}", if days == 1 { "day " } else { "days " }).expect("String");
    }
    let hours = rest / 3600;
    rest -= hours * 3600;
    if hours > 0 {
        write!(
            out,
            "{hours} {}",
            if hours == 1 { "hour " } else { "hours " }
        )
        .expect("String");
    }
    if days < 1 {
        let minutes = rest / 60;
        if minutes > 0 {
            write!(
                out,
                "{minutes} {}",
                if minutes == 1 { "minute " } else { "minutes " }
            )
            .expect("String");
        }
    }
    if out.is_empty() {
        let digits = seconds.to_string();
        let unit = if digits.len() == 1 {
            "second "
        } else {
            "seconds "
        };
        write!(out, "{digits} {unit}").expect("String");
    }
    out
}

/// `yyyy-MM-dd HH:mm:ss:SSS` in UTC, as YCSB stamps its status lines.
fn timestamp(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%d %H:%M:%S:%3f")
        .to_string()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant, UNIX_EPOCH};

    use hdrhistogram::Histogram;

    use super::super::db::Status as DbStatus;
    use super::super::measurements::{merge, Measurements, Slot, Timing};
    use super::super::properties::Properties;
    use super::*;

    /// A call of `us` µs with no schedule.
    fn took(us: u64) -> Timing {
        let start = Instant::now();
        Timing {
            intended: start,
            start,
            end: start + Duration::from_micros(us),
        }
    }

    fn settings(pairs: &[(&str, &str)]) -> std::sync::Arc<Settings> {
        let mut p = Properties::default();
        for (k, v) in pairs {
            p.set(k, v);
        }
        std::sync::Arc::new(Settings::new(&p).unwrap())
    }

    #[test]
    fn doubles_print_as_java_prints_them() {
        // Expected strings from Double.toString on Java 17.
        assert_eq!(java_double(10721.777777777777), "10721.777777777777");
        assert_eq!(java_double(2182.0), "2182.0");
        assert_eq!(java_double(1.0e7), "1.0E7");
        assert_eq!(java_double(123456789.5), "1.234567895E8");
        assert_eq!(java_double(0.0001234), "1.234E-4");
        assert_eq!(java_double(0.001), "0.001");
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(f64::INFINITY), "Infinity");
    }

    #[test]
    fn percentile_labels() {
        let labels: Vec<String> = [
            1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0, 21.0, 50.0, 99.0, 99.9, 99.99,
        ]
        .into_iter()
        .map(ordinal)
        .collect();
        assert_eq!(
            labels,
            [
                "1st", "2nd", "3rd", "10th", "11th", "12th", "13th", "21st", "50th", "99th",
                "99.9", "99.99"
            ]
        );
    }

    #[test]
    fn status_helpers() {
        assert_eq!(two_decimals(99.5), "99.5");
        assert_eq!(two_decimals(78.125_1), "78.13");
        assert_eq!(two_decimals(100.0), "100");
        assert_eq!(remaining_time(0), "0 second ");
        assert_eq!(remaining_time(42), "42 seconds ");
        assert_eq!(remaining_time(3 * 3600 + 120), "3 hours 2 minutes ");
        assert_eq!(remaining_time(86_400 + 60), "1 day ");
        let t = UNIX_EPOCH + Duration::from_millis(1_710_432_131_482);
        assert_eq!(timestamp(t), "2024-03-14 16:02:11:482");
    }

    /// What `OneMeasurementHistogram.exportMeasurements` (YCSB's
    /// core/src/main/java/site/ycsb/measurements/OneMeasurementHistogram.java) writes for these
    /// latencies: 999, 1000, 2500 and 3000 us with 3 buckets of 1 ms. Only 3 of 4 operations
    /// fall into the buckets, so no 95th or 99th percentile line is printed, as in YCSB.
    #[test]
    fn histogram_measurement_prints_what_ycsb_prints() {
        let mut p = Properties::default();
        for (k, v) in [
            ("measurementtype", "histogram"),
            ("histogram.buckets", "3"),
            ("measurement.histogram.verbose", "true"),
        ] {
            p.set(k, v);
        }
        let settings = std::sync::Arc::new(Settings::new(&p).unwrap());
        let mut m = Measurements::new(settings.clone());
        for us in [999, 1000, 2500, 3000] {
            m.record("READ", DbStatus::Ok, took(us));
        }
        let text = results(1000, 4, &merge([&m]), &settings);
        assert_eq!(
            text,
            "[OVERALL], RunTime(ms), 1000\n\
             [OVERALL], Throughput(ops/sec), 4.0\n\
             [READ], Operations, 4\n\
             [READ], AverageLatency(us), 1874.75\n\
             [READ], LatencyVariance(us), 797312.6875\n\
             [READ], MinLatency(us), 999\n\
             [READ], MaxLatency(us), 3000\n\
             [READ], Return=OK, 4\n\
             [READ], 0, 1\n\
             [READ], 1, 1\n\
             [READ], 2, 1\n\
             [READ], >3, 1\n"
        );
        p.set("histogram.buckets", "10");
        p.set("measurement.histogram.verbose", "false");
        let settings = std::sync::Arc::new(Settings::new(&p).unwrap());
        let mut m = Measurements::new(settings.clone());
        for us in 0..100u64 {
            m.record("UPDATE", DbStatus::Ok, took(us * 90));
        }
        let text = results(1000, 100, &merge([&m]), &settings);
        // 89 of 100 latencies are below 8 ms, all are below 9 ms: both percentiles in bucket 8.
        assert!(
            text.contains("[UPDATE], 95thPercentileLatency(us), 8000\n"),
            "{text}"
        );
        assert!(
            text.contains("[UPDATE], 99thPercentileLatency(us), 8000\n"),
            "{text}"
        );
        let parsed = orch_analysis::ycsb::parse(&text).unwrap();
        assert_eq!(
            parsed.operation("UPDATE").unwrap().percentile(95.0),
            Some(8000.0)
        );
    }

    /// `measurement.interval=both` as YCSB's `TextMeasurementsExporter` writes it: the
    /// operations' sections, then the `Intended-` ones in the same order, with the same lines
    /// but the `Return=` counts, which YCSB reports to the operation's own section only. An
    /// update due 500 µs before it could start took 1000 µs from its start, 1500 µs from when
    /// it was due.
    #[test]
    fn both_prints_the_intended_sections_after_the_others() {
        let settings = settings(&[
            ("measurement.interval", "both"),
            ("hdrhistogram.percentiles", "50"),
        ]);
        let mut m = Measurements::new(settings.clone());
        let due = Instant::now();
        let start = due + Duration::from_micros(500);
        m.record(
            "UPDATE",
            DbStatus::Ok,
            Timing {
                intended: due,
                start,
                end: start + Duration::from_micros(1000),
            },
        );
        m.record("READ", DbStatus::Ok, took(200));
        let text = results(1000, 2, &merge([&m]), &settings);
        assert_eq!(
            text,
            "[OVERALL], RunTime(ms), 1000\n\
             [OVERALL], Throughput(ops/sec), 2.0\n\
             [READ], Operations, 1\n\
             [READ], AverageLatency(us), 200.0\n\
             [READ], MinLatency(us), 200\n\
             [READ], MaxLatency(us), 200\n\
             [READ], 50thPercentileLatency(us), 200\n\
             [READ], Return=OK, 1\n\
             [UPDATE], Operations, 1\n\
             [UPDATE], AverageLatency(us), 1000.0\n\
             [UPDATE], MinLatency(us), 1000\n\
             [UPDATE], MaxLatency(us), 1000\n\
             [UPDATE], 50thPercentileLatency(us), 1000\n\
             [UPDATE], Return=OK, 1\n\
             [Intended-READ], Operations, 1\n\
             [Intended-READ], AverageLatency(us), 200.0\n\
             [Intended-READ], MinLatency(us), 200\n\
             [Intended-READ], MaxLatency(us), 200\n\
             [Intended-READ], 50thPercentileLatency(us), 200\n\
             [Intended-UPDATE], Operations, 1\n\
             [Intended-UPDATE], AverageLatency(us), 1500.0\n\
             [Intended-UPDATE], MinLatency(us), 1500\n\
             [Intended-UPDATE], MaxLatency(us), 1500\n\
             [Intended-UPDATE], 50thPercentileLatency(us), 1500\n"
        );
        let parsed = orch_analysis::ycsb::parse(&text).unwrap();
        let intended = parsed.operation("Intended-UPDATE").unwrap();
        assert_eq!((intended.count, intended.average_us), (1, Some(1500.0)));
        assert_eq!((parsed.attempted(), parsed.failed()), (2, 0));
    }

    #[test]
    fn status_line_shape() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        h.record(1000).unwrap();
        let intervals = [Interval {
            name: "READ".to_string(),
            slot: Slot::op("READ"),
            first: Instant::now(),
            histogram: h,
            sum: 1000,
        }];
        let status = |histogram| Status {
            label: "",
            now: UNIX_EPOCH + Duration::from_millis(1_710_432_131_482),
            elapsed_ms: 10_010,
            total_ops: 995,
            todo_ops: 5,
            interval_ops: 995,
            interval_ms: 10_000,
            intervals: &intervals,
            histogram,
        };
        assert_eq!(
            status_line(&status(false)),
            "2024-03-14 16:02:11:482 10 sec: 995 operations; 99.5 current ops/sec; \
             est completion in 1 second [READ: Count=1, Max=1000, Min=1000, Avg=1000, 50=1000, \
             90=1000, 99=1000, 99.9=1000, 99.99=1000] "
        );
        assert!(
            status_line(&status(true)).ends_with("1 second [READ AverageLatency(us)=1000] "),
            "{}",
            status_line(&status(true))
        );
    }
}
