//! The `matrix:` section: keys in the order written, each with a list of values; every
//! combination becomes a run.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::raw::RawScenario;
use crate::config::Problems;

/// One matrix axis: a dotted key (`zookeeper.leader`) and the values it takes.
#[derive(Debug, Clone)]
pub struct Axis {
    pub key: Spanned<String>,
    pub values: Vec<Spanned<serde_json::Value>>,
}

/// The axes in file order (a plain map would sort them, and order names the runs).
#[derive(Debug, Clone, Default)]
pub struct RawMatrix(pub Vec<Axis>);

impl<'de> Deserialize<'de> for RawMatrix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = RawMatrix;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of `key: [values...]`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMatrix, A::Error> {
                let mut axes = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let values = map.next_value::<Vec<Spanned<serde_json::Value>>>()?;
                    axes.push(Axis { key, values });
                }
                Ok(RawMatrix(axes))
            }
        }
        d.deserialize_map(Ordered)
    }
}

/// Every combination of one value per axis, the first axis varying slowest.
pub fn combinations(axes: &[Axis]) -> Vec<Vec<(usize, usize)>> {
    let mut out: Vec<Vec<(usize, usize)>> = vec![Vec::new()];
    for (a, axis) in axes.iter().enumerate() {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                (0..axis.values.len()).map(move |v| {
                    let mut next = prefix.clone();
                    next.push((a, v));
                    next
                })
            })
            .collect();
    }
    out
}

/// Keys a matrix may vary, besides `workload.properties.<name>` and `election.config.<field>`.
const MATRIX_KEYS: &[&str] = &[
    "delays",
    "election.duration_s",
    "zookeeper.leader",
    "workload.threads",
    "workload.client",
    "workload.connect",
    "workload.workload",
];

/// Reports empty, repeated and unknown axes; returns the axes that can be applied.
pub(super) fn check_axes(axes: Vec<Axis>, problems: &mut Problems) -> Vec<Axis> {
    for (i, axis) in axes.iter().enumerate() {
        let field = format!("matrix.{}", axis.key.value);
        if axis.values.is_empty() {
            problems.report(&axis.key, &field, "lists no values");
        }
        if axes[..i].iter().any(|a| a.key.value == axis.key.value) {
            problems.report(&axis.key, &field, "appears twice");
        }
        if !known_key(&axis.key.value) {
            let message = format!(
                "unknown matrix key; use one of {}, workload.properties.<name> or election.config.<field>",
                MATRIX_KEYS.join(", ")
            );
            problems.report(&axis.key, &field, message);
        }
    }
    axes.into_iter()
        .filter(|a| known_key(&a.key.value))
        .collect()
}

/// Sets one matrix value into the scenario; returns the value as shown in run names.
pub(super) fn apply(
    raw: &mut RawScenario,
    key: &str,
    value: &Spanned<serde_json::Value>,
) -> Result<String, String> {
    let shown = scalar(&value.value)?;
    let spanned = |s: String| Spanned::new(s, value.referenced, value.defined);
    let section_missing = |name: &str| format!("the scenario has no `{name}:` section to vary");
    if let Some(prop) = key.strip_prefix("workload.properties.") {
        let w = raw
            .workload
            .as_mut()
            .ok_or_else(|| section_missing("workload"))?;
        w.value
            .properties
            .get_or_insert_with(BTreeMap::new)
            .insert(prop.to_string(), value.clone());
        return Ok(shown);
    }
    if let Some(field) = key.strip_prefix("election.config.") {
        let e = raw
            .election
            .as_mut()
            .ok_or_else(|| section_missing("election"))?;
        e.value
            .config
            .get_or_insert_with(BTreeMap::new)
            .insert(field.to_string(), value.clone());
        return Ok(shown);
    }
    match key {
        "delays" => {
            let profiles = raw.delay_profiles.as_ref();
            let profile = profiles.and_then(|p| p.get(&shown)).ok_or_else(|| {
                let names: Vec<&str> = profiles
                    .into_iter()
                    .flat_map(|p| p.keys().map(String::as_str))
                    .collect();
                format!(
                    "no delay profile `{shown}` under `delay_profiles:` (defined: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                )
            })?;
            raw.delays = Some(profile.clone());
        }
        "election.duration_s" => {
            let e = raw
                .election
                .as_mut()
                .ok_or_else(|| section_missing("election"))?;
            let secs = value
                .value
                .as_u64()
                .ok_or("expected a whole number of seconds")?;
            e.value.duration_s = Some(Spanned::new(secs, value.referenced, value.defined));
        }
        "zookeeper.leader" => {
            let z = raw
                .zookeeper
                .as_mut()
                .ok_or_else(|| section_missing("zookeeper"))?;
            z.value.leader = Some(spanned(shown.clone()));
        }
        "workload.threads" | "workload.client" | "workload.connect" | "workload.workload" => {
            let w = &mut raw
                .workload
                .as_mut()
                .ok_or_else(|| section_missing("workload"))?
                .value;
            match key {
                "workload.threads" => w.threads = Some(value.clone()),
                "workload.client" => w.client = spanned(shown.clone()),
                "workload.connect" => w.connect = Some(spanned(shown.clone())),
                _ => w.workload = Some(spanned(shown.clone())),
            }
        }
        _ => unreachable!("matrix keys are checked by known_key first"),
    }
    Ok(shown)
}

/// Whether `apply` knows how to set this matrix key.
fn known_key(key: &str) -> bool {
    MATRIX_KEYS.contains(&key)
        || key
            .strip_prefix("workload.properties.")
            .is_some_and(|k| !k.is_empty())
        || key
            .strip_prefix("election.config.")
            .is_some_and(|k| !k.is_empty())
}

/// A YAML scalar as the string YCSB and run names use.
pub(super) fn scalar(v: &serde_json::Value) -> Result<String, String> {
    match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        _ => Err("expected a single value (string, number or boolean)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_file_order_and_expands_first_axis_slowest() {
        let m: RawMatrix = serde_saphyr::from_str("z: [1, 2]\na: [x, y, w]\n").unwrap();
        assert_eq!(m.0[0].key.value, "z");
        assert_eq!(m.0[1].key.value, "a");
        let c = combinations(&m.0);
        assert_eq!(c.len(), 6);
        assert_eq!(c[0], vec![(0, 0), (1, 0)]);
        assert_eq!(c[1], vec![(0, 0), (1, 1)]);
        assert_eq!(c[5], vec![(0, 1), (1, 2)]);
        assert_eq!(combinations(&[]), vec![Vec::<(usize, usize)>::new()]);
    }
}
