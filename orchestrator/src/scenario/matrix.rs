//! The `matrix:` section: keys in the order written, each with a list of values; every
//! combination becomes a run.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

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
