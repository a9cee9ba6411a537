//! The election analysis in the summaries: its columns of summary.csv and its rows of the
//! side-by-side table, detection and failover with the bound the hosts' clocks leave on them.

use super::RunResult;

/// The election analysis's per-run numbers in summary.csv (empty without an election phase).
pub(super) type ElectionColumn = (
    &'static str,
    fn(&orch_analysis::elect::Summary) -> Option<f64>,
);
pub(super) const ELECTION_COLUMNS: &[ElectionColumn] = &[
    ("first_leader_ms", |s| s.first_leader_ms),
    ("elections", |s| Some(s.elections as f64)),
    ("terms_with_several_leaders", |s| {
        Some(s.terms_with_several_leaders as f64)
    }),
    ("false_positives", |s| Some(s.false_positives as f64)),
    ("false_positives_per_min", |s| s.false_positives_per_min),
    ("leader_failures", |s| Some(s.failures.len() as f64)),
    ("detection_ms_mean", |s| {
        mean(s.failures.iter().filter_map(|f| f.detection_ms))
    }),
    ("failover_ms_mean", |s| {
        mean(s.failures.iter().filter_map(|f| f.failover_ms))
    }),
    ("detection_bound_ms_max", |s| {
        max(s.failures.iter().filter_map(|f| f.detection_bound_ms))
    }),
    ("failover_bound_ms_max", |s| {
        max(s.failures.iter().filter_map(|f| f.failover_bound_ms))
    }),
    ("petitions_accepted", |s| Some(s.petitions_accepted as f64)),
    ("final_leader", |s| s.final_leader.map(|l| l as f64)),
    ("lowest_penalty", |s| s.lowest_penalty.map(|l| l as f64)),
];

fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = xs.collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn max(xs: impl Iterator<Item = f64>) -> Option<f64> {
    xs.reduce(f64::max)
}

/// The election analysis of each run: leaders, failures, detection and failover, petitions.
/// Adds a row named by the first argument with the cell of run `i` from the second.
pub(super) type PushRow<'a> = dyn FnMut(&str, &dyn Fn(usize) -> String) + 'a;

pub(super) fn election_rows(results: &[RunResult], push: &mut PushRow) {
    let e = |i: usize| results[i].election.as_ref();
    let count = |v: Option<usize>| v.map_or("-".to_string(), |n| n.to_string());
    push("first leader ms", &|i| {
        fmt(e(i).and_then(|s| s.first_leader_ms))
    });
    push("terms", &|i| count(e(i).map(|s| s.leaders.len())));
    push("elections", &|i| count(e(i).map(|s| s.elections as usize)));
    push("safety", &|i| {
        e(i).map_or("-".into(), |s| match s.terms_with_several_leaders {
            0 => "ok".into(),
            n => format!("VIOLATED in {n} terms"),
        })
    });
    push("leader failures", &|i| {
        count(e(i).map(|s| s.failures.len()))
    });
    // The mean ± the largest clock bound of its samples.
    push("detection ms (mean)", &|i| {
        e(i).map_or("-".into(), |s| {
            let f = &s.failures;
            fmt_pm(
                mean(f.iter().filter_map(|f| f.detection_ms)),
                max(f.iter().filter_map(|f| f.detection_bound_ms)),
            )
        })
    });
    push("failover ms (mean)", &|i| {
        e(i).map_or("-".into(), |s| {
            let f = &s.failures;
            fmt_pm(
                mean(f.iter().filter_map(|f| f.failover_ms)),
                max(f.iter().filter_map(|f| f.failover_bound_ms)),
            )
        })
    });
    push("false positives", &|i| {
        count(e(i).map(|s| s.false_positives as usize))
    });
    push("petitions accepted", &|i| {
        count(e(i).map(|s| s.petitions_accepted as usize))
    });
    push("final leader / lowest penalty", &|i| {
        e(i).map_or("-".into(), |s| {
            format!("{} / {}", count(s.final_leader), count(s.lowest_penalty))
        })
    });
    let timeouts = |i: usize| e(i).and_then(|s| s.timeouts.iter().find(|t| t.armed > 0));
    push("timeout median ms (formula)", &|i| {
        timeouts(i).map_or("-".into(), |t| {
            format!("{} ({})", fmt(t.median_ms), fmt(t.formula_ms))
        })
    });
    push("leader srtt median ms", &|i| {
        fmt(timeouts(i).and_then(|t| t.median_srtt_ms))
    });
}

pub(super) fn fmt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into())
}

fn fmt_pm(v: Option<f64>, bound: Option<f64>) -> String {
    match (v, bound) {
        (Some(v), Some(b)) => format!("{v:.2} ± {b:.2}"),
        _ => fmt(v),
    }
}
