//! YCSB's `CoreWorkload`: which operation comes next, on which key, with which field values.
//! Settings come from the core properties with YCSB's defaults; values YCSB knows but this
//! driver cannot honor are rejected here, before anything connects.

use std::sync::atomic::{AtomicI64, Ordering};

use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::RngExt;

use super::generator::{
    fnv_hash64, random_value, AcknowledgedCounter, Discrete, ScrambledZipfian, SkewedLatest,
    Uniform, Zipfian,
};
use super::properties::Properties;

/// A transaction of the operation mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Read,
    Update,
    Insert,
    ReadModifyWrite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RequestDistribution {
    Uniform,
    Zipfian,
    Latest,
}

#[derive(Clone, Copy, Debug)]
enum FieldLength {
    Constant(i64),
    Uniform(i64, i64),
    Zipfian(i64, i64),
}

/// The workload settings plus the key counters all client threads share.
#[derive(Debug)]
pub struct Workload {
    pub table: String,
    field_names: Vec<String>,
    field_length: FieldLength,
    write_all_fields: bool,
    operations: Discrete<Operation>,
    distribution: RequestDistribution,
    ordered_inserts: bool,
    zero_padding: usize,
    insert_start: i64,
    insert_count: i64,
    expected_new_keys: i64,
    /// Insert retries of the load phase (`core_workload_insertion_retry_limit`).
    pub insertion_retry_limit: u32,
    /// Seconds between insert retries (`core_workload_insertion_retry_interval`).
    pub insertion_retry_interval: u64,
    /// Whether a failed insert keeps the load thread going.
    pub insertion_keep_going: bool,
    load_keys: AtomicI64,
    transaction_inserts: AcknowledgedCounter,
}

/// One client thread's random generators (YCSB uses thread-local randomness too).
pub struct ThreadState {
    rng: StdRng,
    keys: KeyChooser,
    field_length: FieldLengthChooser,
}

enum FieldLengthChooser {
    Constant(i64),
    Uniform(Uniform),
    Zipfian(Zipfian),
}

enum KeyChooser {
    Uniform(Uniform),
    Zipfian(ScrambledZipfian),
    Latest(SkewedLatest),
}

impl Workload {
    /// Reads CoreWorkload's properties (YCSB's defaults) and rejects what cannot be honored.
    pub fn new(p: &Properties) -> Result<Self> {
        reject_unsupported(p)?;
        let field_count: usize = p.number("fieldcount", 10)?;
        let prefix = p.string("fieldnameprefix", "field");
        let field_length: i64 = p.number("fieldlength", 100)?;
        let min_field_length: i64 = p.number("minfieldlength", 1)?;
        let field_length = match p.string("fieldlengthdistribution", "constant").as_str() {
            "constant" => FieldLength::Constant(field_length),
            "uniform" => FieldLength::Uniform(min_field_length, field_length),
            "zipfian" => FieldLength::Zipfian(min_field_length, field_length),
            other => bail!(
                "fieldlengthdistribution={other} is not supported by orch-node ycsb \
                 (constant, uniform, zipfian)"
            ),
        };
        if field_count == 0 {
            bail!("fieldcount must be at least 1");
        }
        if let FieldLength::Uniform(lo, hi) | FieldLength::Zipfian(lo, hi) = field_length {
            if lo > hi || lo < 0 {
                bail!("minfieldlength={lo} and fieldlength={hi} give no valid length");
            }
        }

        let mut record_count: i64 = p.number("recordcount", 0)?;
        if record_count == 0 {
            record_count = i64::from(i32::MAX);
        }
        let insert_start: i64 = p.number("insertstart", 0)?;
        let insert_count: i64 = p.number("insertcount", record_count - insert_start)?;
        if record_count < insert_start + insert_count {
            bail!(
                "insertstart={insert_start} + insertcount={insert_count} exceed \
                 recordcount={record_count}"
            );
        }
        if insert_count < 1 {
            bail!("insertcount={insert_count}: the key space is empty");
        }

        let read: f64 = p.number("readproportion", 0.95)?;
        let update: f64 = p.number("updateproportion", 0.05)?;
        let insert: f64 = p.number("insertproportion", 0.0)?;
        let rmw: f64 = p.number("readmodifywriteproportion", 0.0)?;
        let operations = Discrete::new([
            (read, Operation::Read),
            (update, Operation::Update),
            (insert, Operation::Insert),
            (rmw, Operation::ReadModifyWrite),
        ]);
        let operation_count: i64 = p.number("operationcount", 0)?;

        let distribution = match p.string("requestdistribution", "uniform").as_str() {
            "uniform" => RequestDistribution::Uniform,
            "zipfian" => RequestDistribution::Zipfian,
            "latest" => RequestDistribution::Latest,
            other => bail!(
                "requestdistribution={other} is not supported by orch-node ycsb \
                 (uniform, zipfian, latest)"
            ),
        };
        let ordered_inserts = match p.string("insertorder", "hashed").as_str() {
            "hashed" => false,
            "ordered" => true,
            other => bail!("insertorder={other}: expected hashed or ordered"),
        };

        Ok(Self {
            table: p.string("table", "usertable"),
            field_names: (0..field_count).map(|i| format!("{prefix}{i}")).collect(),
            field_length,
            write_all_fields: p.flag("writeallfields", false),
            operations,
            distribution,
            ordered_inserts,
            zero_padding: p.number("zeropadding", 1)?,
            insert_start,
            insert_count,
            expected_new_keys: (operation_count as f64 * insert * 2.0) as i64,
            insertion_retry_limit: p.number("core_workload_insertion_retry_limit", 0)?,
            insertion_retry_interval: p.number("core_workload_insertion_retry_interval", 3)?,
            insertion_keep_going: p.flag("core_workload_insertion_keep_going_on_error", false),
            load_keys: AtomicI64::new(insert_start),
            transaction_inserts: AcknowledgedCounter::new(record_count),
        })
    }

    /// Whether the run phase has any operation to choose from.
    pub fn has_operations(&self) -> bool {
        !self.operations.is_empty()
    }

    /// Fresh generators for one client thread.
    pub fn thread_state(&self, rng: StdRng) -> ThreadState {
        let keys = match self.distribution {
            RequestDistribution::Uniform => KeyChooser::Uniform(Uniform::new(
                self.insert_start,
                self.insert_start + self.insert_count - 1,
            )),
            RequestDistribution::Zipfian => KeyChooser::Zipfian(ScrambledZipfian::new(
                self.insert_start,
                self.insert_start + self.insert_count + self.expected_new_keys,
            )),
            RequestDistribution::Latest => {
                KeyChooser::Latest(SkewedLatest::new(self.transaction_inserts.last()))
            }
        };
        let field_length = match self.field_length {
            FieldLength::Constant(n) => FieldLengthChooser::Constant(n),
            FieldLength::Uniform(lo, hi) => FieldLengthChooser::Uniform(Uniform::new(lo, hi)),
            FieldLength::Zipfian(lo, hi) => FieldLengthChooser::Zipfian(Zipfian::new(lo, hi)),
        };
        ThreadState {
            rng,
            keys,
            field_length,
        }
    }

    /// The next operation of the mix.
    pub fn next_operation(&self, t: &mut ThreadState) -> Operation {
        self.operations.next(&mut t.rng)
    }

    /// The key of the next load-phase insert.
    pub fn next_load_key(&self) -> String {
        self.key_name(self.load_keys.fetch_add(1, Ordering::Relaxed))
    }

    /// An existing key for a read or update, never one still being inserted.
    pub fn next_key(&self, t: &mut ThreadState) -> String {
        let latest = self.transaction_inserts.last();
        let n = loop {
            let n = match &mut t.keys {
                KeyChooser::Uniform(g) => g.next(&mut t.rng),
                KeyChooser::Zipfian(g) => g.next(&mut t.rng),
                KeyChooser::Latest(g) => g.next(&mut t.rng, latest),
            };
            if n <= latest {
                break n;
            }
        };
        self.key_name(n)
    }

    /// Starts a run-phase insert: its key number and name. Pass the number to
    /// [`Self::finish_insert`] when done.
    pub fn begin_insert(&self) -> (i64, String) {
        let n = self.transaction_inserts.next();
        (n, self.key_name(n))
    }

    /// Makes key `n` choosable for reads once all earlier inserts are done too.
    pub fn finish_insert(&self, n: i64) {
        self.transaction_inserts.acknowledge(n);
    }

    /// Values for every field of a new record.
    pub fn all_values(&self, t: &mut ThreadState) -> Vec<(String, String)> {
        self.field_names
            .iter()
            .map(|f| (f.clone(), Self::value(t)))
            .collect()
    }

    /// Values an update writes: one random field, or all with `writeallfields=true`.
    pub fn update_values(&self, t: &mut ThreadState) -> Vec<(String, String)> {
        if self.write_all_fields {
            self.all_values(t)
        } else {
            let field = self.random_field(t).to_string();
            vec![(field, Self::value(t))]
        }
    }

    fn random_field(&self, t: &mut ThreadState) -> &str {
        &self.field_names[t.rng.random_range(0..self.field_names.len())]
    }

    fn value(t: &mut ThreadState) -> String {
        let len = match &mut t.field_length {
            FieldLengthChooser::Constant(n) => *n,
            FieldLengthChooser::Uniform(g) => g.next(&mut t.rng),
            FieldLengthChooser::Zipfian(g) => g.next(&mut t.rng),
        };
        random_value(&mut t.rng, usize::try_from(len).unwrap_or(0))
    }

    /// `user` + the (hashed unless `insertorder=ordered`) key number, zero-padded to
    /// `zeropadding` digits, as YCSB's `CoreWorkload.buildKeyName`.
    fn key_name(&self, n: i64) -> String {
        let n = if self.ordered_inserts {
            n
        } else {
            fnv_hash64(n)
        };
        format!("user{n:0>width$}", width = self.zero_padding)
    }
}

/// Properties YCSB knows whose values this driver cannot honor: an error naming them beats
/// results that silently differ from what the workload file asked for.
fn reject_unsupported(p: &Properties) -> Result<()> {
    let scan: f64 = p.number("scanproportion", 0.0)?;
    if scan > 0.0 {
        bail!(
            "scanproportion={scan}: the ZooKeeper binding has no scans (in real YCSB every \
             scan returns NOT_IMPLEMENTED); set -p scanproportion=0"
        );
    }
    let exact = [
        ("workload", "site.ycsb.workloads.CoreWorkload"),
        (
            "exporter",
            "site.ycsb.measurements.exporter.TextMeasurementsExporter",
        ),
    ];
    for (name, supported) in exact {
        if let Some(v) = p.get(name) {
            if v.trim() != supported {
                bail!("{name}={v} is not supported by orch-node ycsb (only {supported})");
            }
        }
    }
    for name in [
        "dataintegrity",
        "measurement.trackjvm",
        "hdrhistogram.fileoutput",
    ] {
        if p.flag(name, false) {
            bail!("{name}=true is not supported by orch-node ycsb");
        }
    }
    if let Some(db) = p.get("db") {
        if !matches!(db, "zookeeper" | "site.ycsb.db.zookeeper.ZKClient") {
            bail!("db={db}: orch-node ycsb drives ZooKeeper only");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn props(pairs: &[(&str, &str)]) -> Properties {
        let mut p = Properties::default();
        for (k, v) in pairs {
            p.set(k, v);
        }
        p
    }

    fn state(w: &Workload) -> ThreadState {
        w.thread_state(StdRng::seed_from_u64(7))
    }

    #[test]
    fn key_names_like_ycsb() {
        let w = Workload::new(&props(&[("recordcount", "10")])).unwrap();
        assert_eq!(w.next_load_key(), "user6284781860667377211");
        assert_eq!(w.next_load_key(), "user8517097267634966620");
        let w = Workload::new(&props(&[("insertorder", "ordered"), ("zeropadding", "5")])).unwrap();
        assert_eq!(w.next_load_key(), "user00000");
        assert_eq!(w.key_name(123_456), "user123456");
    }

    #[test]
    fn defaults_are_ycsbs() {
        let w = Workload::new(&props(&[("recordcount", "100")])).unwrap();
        let mut t = state(&w);
        let values = w.all_values(&mut t);
        let names: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            (0..10).map(|i| format!("field{i}")).collect::<Vec<_>>()
        );
        assert!(values.iter().all(|(_, v)| v.len() == 100));
        assert_eq!(w.update_values(&mut t).len(), 1);
        let reads = (0..10_000)
            .filter(|_| w.next_operation(&mut t) == Operation::Read)
            .count();
        assert!((9300..9700).contains(&reads), "{reads} reads of 10000");
    }

    #[test]
    fn keys_stay_within_the_loaded_records() {
        for dist in ["uniform", "zipfian", "latest"] {
            let w = Workload::new(&props(&[
                ("recordcount", "50"),
                ("operationcount", "100"),
                ("requestdistribution", dist),
                ("insertorder", "ordered"),
            ]))
            .unwrap();
            let mut t = state(&w);
            for _ in 0..2000 {
                let k = w.next_key(&mut t);
                let n: i64 = k.strip_prefix("user").unwrap().parse().unwrap();
                assert!((0..50).contains(&n), "{dist}: {k}");
            }
        }
    }

    #[test]
    fn run_inserts_extend_the_key_space_after_acknowledgement() {
        let w = Workload::new(&props(&[("recordcount", "5"), ("insertorder", "ordered")])).unwrap();
        let (n, key) = w.begin_insert();
        assert_eq!((n, key.as_str()), (5, "user5"));
        assert_eq!(w.transaction_inserts.last(), 4);
        w.finish_insert(n);
        assert_eq!(w.transaction_inserts.last(), 5);
    }

    #[test]
    fn unsupported_values_are_rejected_by_name() {
        let err = |pairs: &[(&str, &str)]| Workload::new(&props(pairs)).unwrap_err().to_string();
        assert!(err(&[("scanproportion", "0.05")]).contains("scanproportion=0.05"));
        assert!(err(&[("requestdistribution", "hotspot")]).contains("requestdistribution=hotspot"));
        assert!(err(&[("requestdistribution", "exponential")]).contains("exponential"));
        assert!(err(&[("fieldlengthdistribution", "histogram")]).contains("histogram"));
        assert!(err(&[("dataintegrity", "true")]).contains("dataintegrity"));
        assert!(err(&[("workload", "site.ycsb.workloads.RestWorkload")]).contains("workload="));
        assert!(err(&[("db", "site.ycsb.BasicDB")]).contains("ZooKeeper only"));
        assert!(err(&[("insertorder", "random")]).contains("insertorder"));
        assert!(err(&[("recordcount", "x")]).contains("recordcount=x"));
        assert!(Workload::new(&props(&[
            ("scanproportion", "0"),
            ("maxscanlength", "100"),
            ("some.unknown.property", "1"),
            ("db", "site.ycsb.db.zookeeper.ZKClient"),
        ]))
        .is_ok());
    }

    #[test]
    fn field_length_distributions() {
        let w = Workload::new(&props(&[
            ("fieldlengthdistribution", "uniform"),
            ("minfieldlength", "3"),
            ("fieldlength", "9"),
            ("writeallfields", "true"),
            ("fieldcount", "4"),
        ]))
        .unwrap();
        let mut t = state(&w);
        for _ in 0..100 {
            let values = w.update_values(&mut t);
            assert_eq!(values.len(), 4);
            assert!(values.iter().all(|(_, v)| (3..=9).contains(&v.len())));
        }
    }
}
