//! Descriptive statistics of repeated measurements: what `cells.csv` reports per column.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// n, mean, sample standard deviation, 95 % confidence interval of the mean (Student t with
/// n - 1 degrees of freedom), min and max of a set of values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Describe {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1); 0 for one value.
    pub stddev: f64,
    /// Half-width of the 95 % confidence interval of the mean; `None` for one value.
    pub ci95: Option<f64>,
    pub min: f64,
    pub max: f64,
}

impl Describe {
    /// `None` for no (finite) values.
    pub fn of(values: &[f64]) -> Option<Describe> {
        let xs: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let n = xs.len();
        if n == 0 {
            return None;
        }
        let mean = xs.iter().sum::<f64>() / n as f64;
        let stddev = if n > 1 {
            (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        let ci95 = (n > 1).then(|| t_quantile(0.975, n - 1) * stddev / (n as f64).sqrt());
        Some(Describe {
            n,
            mean,
            stddev,
            ci95,
            min: xs.iter().copied().fold(f64::INFINITY, f64::min),
            max: xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// The `p` quantile of Student's t distribution with `df` degrees of freedom.
fn t_quantile(p: f64, df: usize) -> f64 {
    StudentsT::new(0.0, 1.0, df as f64)
        .expect("df >= 1 is a valid t distribution")
        .inverse_cdf(p)
}

/// The `q` quantile (0..=1) of `values` by linear interpolation between order statistics;
/// `None` when empty.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut xs: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (xs.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_with_student_t_interval() {
        let d = Describe::of(&[10.0, 12.0, 14.0, 16.0]).unwrap();
        assert_eq!((d.n, d.mean, d.min, d.max), (4, 13.0, 10.0, 16.0));
        let sd = (20.0f64 / 3.0).sqrt();
        assert!((d.stddev - sd).abs() < 1e-12);
        // t(0.975, 3) = 3.182446 (tables).
        let want = 3.182_446 * sd / 2.0;
        assert!((d.ci95.unwrap() - want).abs() < 1e-5, "{d:?}");
        let one = Describe::of(&[5.0]).unwrap();
        assert_eq!((one.stddev, one.ci95), (0.0, None));
        assert_eq!(Describe::of(&[f64::NAN]), None);
    }

    #[test]
    fn t_approaches_the_normal_quantile() {
        assert!((t_quantile(0.975, 1) - 12.706_2).abs() < 1e-3);
        assert!((t_quantile(0.975, 1000) - 1.962_3).abs() < 1e-3);
    }

    #[test]
    fn quantiles_interpolate() {
        let xs = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&xs, 0.5), Some(2.5));
        assert_eq!(quantile(&xs, 0.0), Some(1.0));
        assert_eq!(quantile(&xs, 1.0), Some(4.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
