//! YCSB's number generators (`site.ycsb.generator`), reproduced so that key popularity, key
//! names and value shapes match what real YCSB sends for the same workload.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use rand::{Rng, RngExt};

/// YCSB's `Utils.fnvhash64`: 64-bit FNV-1 over the 8 little-endian bytes, made non-negative
/// with Java's `Math.abs` (which leaves `i64::MIN` negative).
pub fn fnv_hash64(value: i64) -> i64 {
    const OFFSET_BASIS: i64 = 0xCBF2_9CE4_8422_2325_u64 as i64;
    const PRIME: i64 = 1_099_511_628_211;
    let mut hash = OFFSET_BASIS;
    let mut v = value;
    for _ in 0..8 {
        hash ^= v & 0xff;
        hash = hash.wrapping_mul(PRIME);
        v >>= 8;
    }
    hash.wrapping_abs()
}

/// Uniform over `[lower, upper]` (`UniformLongGenerator`).
#[derive(Clone, Debug)]
pub struct Uniform {
    lower: i64,
    upper: i64,
}

impl Uniform {
    /// Both bounds included.
    pub fn new(lower: i64, upper: i64) -> Self {
        Self { lower, upper }
    }

    /// The next value.
    pub fn next(&self, rng: &mut impl Rng) -> i64 {
        rng.random_range(self.lower..=self.upper)
    }
}

/// The Zipfian constant YCSB uses everywhere.
const ZIPFIAN_CONSTANT: f64 = 0.99;

/// Zipfian over `[base, base + items)`, most popular first (`ZipfianGenerator`), Gray et al.'s
/// algorithm; the item count may grow between calls (for `latest`).
#[derive(Clone, Debug)]
pub struct Zipfian {
    items: i64,
    base: i64,
    theta: f64,
    zeta2theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
    count_for_zeta: i64,
}

impl Zipfian {
    /// Zipfian over `[min, max]`, computing zeta(n) (O(n), as YCSB does).
    pub fn new(min: i64, max: i64) -> Self {
        let zetan = zeta(0, max - min + 1, ZIPFIAN_CONSTANT, 0.0);
        Self::with_zetan(min, max, zetan)
    }

    fn with_zetan(min: i64, max: i64, zetan: f64) -> Self {
        let items = max - min + 1;
        let theta = ZIPFIAN_CONSTANT;
        let zeta2theta = zeta(0, 2, theta, 0.0);
        Self {
            items,
            base: min,
            theta,
            zeta2theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta: (1.0 - (2.0 / items as f64).powf(1.0 - theta)) / (1.0 - zeta2theta / zetan),
            count_for_zeta: items,
        }
    }

    /// The next value for the current item count.
    pub fn next(&mut self, rng: &mut impl Rng) -> i64 {
        self.next_of(rng, self.items)
    }

    /// The next value when `item_count` items exist; zeta is extended incrementally when the
    /// count grew (YCSB never shrinks it).
    fn next_of(&mut self, rng: &mut impl Rng, item_count: i64) -> i64 {
        if item_count > self.count_for_zeta {
            self.zetan = zeta(self.count_for_zeta, item_count, self.theta, self.zetan);
            self.count_for_zeta = item_count;
            self.eta = (1.0 - (2.0 / self.items as f64).powf(1.0 - self.theta))
                / (1.0 - self.zeta2theta / self.zetan);
        }
        let u: f64 = rng.random();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return self.base;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return self.base + 1;
        }
        self.base + (item_count as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as i64
    }
}

/// Sum of 1/(i+1)^theta for i in [start, n), added to `initial`.
fn zeta(start: i64, n: i64, theta: f64, initial: f64) -> f64 {
    (start..n).fold(initial, |sum, i| sum + 1.0 / ((i + 1) as f64).powf(theta))
}

/// Zipfian popularity spread over the key space by hashing (`ScrambledZipfianGenerator`), so
/// popular keys are not clustered.
#[derive(Clone, Debug)]
pub struct ScrambledZipfian {
    min: i64,
    item_count: i64,
    zipfian: Zipfian,
}

impl ScrambledZipfian {
    /// YCSB's precomputed zeta for 10^10 items at constant 0.99.
    const ZETAN: f64 = 26.46902820178302;
    const ITEM_COUNT: i64 = 10_000_000_000;

    /// Keys in `[min, max]`.
    pub fn new(min: i64, max: i64) -> Self {
        Self {
            min,
            item_count: max - min + 1,
            zipfian: Zipfian::with_zetan(0, Self::ITEM_COUNT, Self::ZETAN),
        }
    }

    /// The next key number.
    pub fn next(&mut self, rng: &mut impl Rng) -> i64 {
        let v = self.zipfian.next(rng);
        self.min + fnv_hash64(v) % self.item_count
    }
}

/// Recently inserted keys most popular (`SkewedLatestGenerator`): latest minus a Zipfian offset.
#[derive(Clone, Debug)]
pub struct SkewedLatest {
    zipfian: Zipfian,
}

impl SkewedLatest {
    /// `latest` is the highest acknowledged key number when the run starts.
    pub fn new(latest: i64) -> Self {
        Self {
            zipfian: Zipfian::new(0, latest - 1),
        }
    }

    /// The next key number, given the latest acknowledged one now.
    pub fn next(&mut self, rng: &mut impl Rng, latest: i64) -> i64 {
        latest - self.zipfian.next_of(rng, latest)
    }
}

/// Hands out insert key numbers and tracks the highest number below which every insert has
/// completed (`AcknowledgedCounterGenerator`), so readers never choose a key still being
/// inserted.
#[derive(Debug)]
pub struct AcknowledgedCounter {
    next: AtomicI64,
    limit: AtomicI64,
    pending: Mutex<BTreeSet<i64>>,
}

impl AcknowledgedCounter {
    /// Numbers from `start` on; everything below counts as acknowledged.
    pub fn new(start: i64) -> Self {
        Self {
            next: AtomicI64::new(start),
            limit: AtomicI64::new(start - 1),
            pending: Mutex::new(BTreeSet::new()),
        }
    }

    /// The next key number to insert.
    pub fn next(&self) -> i64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// The highest key number with all inserts up to it acknowledged.
    pub fn last(&self) -> i64 {
        self.limit.load(Ordering::Acquire)
    }

    /// Marks the insert of `value` done (successful or not, as YCSB does).
    pub fn acknowledge(&self, value: i64) {
        let mut pending = self.pending.lock().unwrap();
        pending.insert(value);
        let mut limit = self.limit.load(Ordering::Acquire);
        while pending.remove(&(limit + 1)) {
            limit += 1;
        }
        self.limit.store(limit, Ordering::Release);
    }
}

/// Picks among weighted values (`DiscreteGenerator`); weights need not sum to 1.
#[derive(Clone, Debug)]
pub struct Discrete<T> {
    values: Vec<(f64, T)>,
}

impl<T: Copy> Discrete<T> {
    /// Only values with a positive weight are ever chosen.
    pub fn new(weighted: impl IntoIterator<Item = (f64, T)>) -> Self {
        Self {
            values: weighted.into_iter().filter(|(w, _)| *w > 0.0).collect(),
        }
    }

    /// True when no value has a positive weight (nothing can be chosen).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// A value, with probability proportional to its weight.
    pub fn next(&self, rng: &mut impl Rng) -> T {
        let sum: f64 = self.values.iter().map(|(w, _)| w).sum();
        let mut u: f64 = rng.random();
        for (w, v) in &self.values {
            let share = w / sum;
            if u < share {
                return *v;
            }
            u -= share;
        }
        self.values[self.values.len() - 1].1
    }
}

/// A random printable ASCII value of `len` bytes built like YCSB's `RandomByteIterator`: six
/// characters from each random 32-bit number, each `' '` plus 5 to 7 random bits.
pub fn random_value(rng: &mut impl Rng, len: usize) -> String {
    const SHAPE: [(u32, u32); 6] = [(0, 31), (5, 63), (10, 95), (15, 31), (20, 63), (25, 95)];
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let bits: u32 = rng.random();
        for &(shift, mask) in SHAPE.iter().take(len - out.len()) {
            out.push(char::from(b' ' + ((bits >> shift) & mask) as u8));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn fnv_matches_ycsb() {
        // Computed with YCSB's Utils.fnvhash64 on Java 17.
        let want = [
            (0, 6_284_781_860_667_377_211),
            (1, 8_517_097_267_634_966_620),
            (2, 1_820_151_046_732_198_393),
            (199, 8_652_283_639_112_666_078),
            (12_345, 1_792_800_413_050_876_852),
            (-1, 8_289_690_350_564_177_859),
            (9_999_999_999, 3_605_131_173_811_637_474),
        ];
        for (v, h) in want {
            assert_eq!(fnv_hash64(v), h, "fnv_hash64({v})");
        }
    }

    #[test]
    fn zipfian_prefers_small_values_and_stays_in_range() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut z = Zipfian::new(10, 109);
        let mut counts = [0u32; 100];
        for _ in 0..100_000 {
            let v = z.next(&mut rng);
            assert!((10..=109).contains(&v), "{v}");
            counts[(v - 10) as usize] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[99]);
    }

    #[test]
    fn scrambled_zipfian_stays_in_range_and_is_skewed() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut z = ScrambledZipfian::new(0, 999);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[z.next(&mut rng) as usize] += 1;
        }
        counts.sort_unstable();
        let top10: u32 = counts.iter().rev().take(10).sum();
        assert!(
            top10 > 10_000,
            "the 1% most popular keys got {top10} of 100000"
        );
    }

    #[test]
    fn skewed_latest_prefers_the_newest_keys() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut g = SkewedLatest::new(999);
        let mut newest = 0;
        for _ in 0..10_000 {
            let v = g.next(&mut rng, 1999);
            assert!((0..=1999).contains(&v), "{v}");
            newest += u32::from(v >= 1990);
        }
        assert!(
            newest > 2500,
            "{newest} of 10000 among the newest 10 of 2000"
        );
    }

    #[test]
    fn acknowledged_counter_waits_for_gaps() {
        let c = AcknowledgedCounter::new(100);
        assert_eq!(c.last(), 99);
        let (a, b, d) = (c.next(), c.next(), c.next());
        assert_eq!((a, b, d), (100, 101, 102));
        c.acknowledge(101);
        assert_eq!(c.last(), 99);
        c.acknowledge(100);
        assert_eq!(c.last(), 101);
        c.acknowledge(102);
        assert_eq!(c.last(), 102);
    }

    #[test]
    fn discrete_follows_weights_and_skips_zero() {
        let mut rng = StdRng::seed_from_u64(4);
        let d = Discrete::new([(0.1, 'r'), (0.0, 's'), (0.9, 'u')]);
        let mut reads = 0;
        for _ in 0..10_000 {
            let v = d.next(&mut rng);
            assert_ne!(v, 's');
            reads += u32::from(v == 'r');
        }
        assert!((800..1200).contains(&reads), "{reads}");
        assert!(Discrete::<char>::new([(0.0, 'x')]).is_empty());
    }

    #[test]
    fn values_are_printable_ascii_of_the_asked_length() {
        let mut rng = StdRng::seed_from_u64(5);
        for len in [0, 1, 5, 6, 7, 100] {
            let v = random_value(&mut rng, len);
            assert_eq!(v.len(), len);
            assert!(v.bytes().all(|b| (32..=127).contains(&b)), "{v:?}");
        }
    }
}
