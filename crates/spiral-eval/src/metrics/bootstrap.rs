//! Percentile bootstrap confidence intervals over problems (Efron, 1979; Efron and Tibshirani,
//! 1993, chapter 13).
//!
//! A benchmark score is the mean over problems of a per-problem value (pass@k, maj@k); its
//! uncertainty comes mostly from which problems the benchmark happens to hold. The interval
//! resamples the problems with replacement `resamples` times (seeded), takes the mean of each
//! resample, and reports the `(1 - confidence) / 2` and `(1 + confidence) / 2` quantiles of those
//! means.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// A confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
}

impl Interval {
    /// Whether `x` lies in the interval (ends included).
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

/// How bootstrap intervals are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BootstrapOptions {
    /// Number of resamples.
    pub resamples: usize,
    /// Coverage, e.g. 0.95.
    pub confidence: f64,
    /// Seed of the resampling.
    pub seed: u64,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        Self { resamples: 1000, confidence: 0.95, seed: 0 }
    }
}

/// The percentile bootstrap interval of the mean of `values` (module docs). A single value, or
/// none, gives a zero-width interval at the mean.
///
/// ```
/// use spiral_eval::{BootstrapOptions, bootstrap_mean_ci};
///
/// let values = [0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0];
/// let ci = bootstrap_mean_ci(&values, &BootstrapOptions::default());
/// assert!(ci.lo < 0.625 && 0.625 < ci.hi);
/// ```
pub fn bootstrap_mean_ci(values: &[f64], options: &BootstrapOptions) -> Interval {
    let n = values.len();
    if n < 2 || options.resamples == 0 {
        let mean = spiral_set_rl::mean(values);
        return Interval { lo: mean, hi: mean };
    }
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut means: Vec<f64> = (0..options.resamples)
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let tail = (1.0 - options.confidence.clamp(0.0, 1.0)) / 2.0;
    Interval { lo: quantile(&means, tail), hi: quantile(&means, 1.0 - tail) }
}

/// The q-quantile of sorted values, linearly interpolated (numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (below, frac) = (pos.floor() as usize, pos.fract());
    let above = (below + 1).min(sorted.len() - 1);
    sorted[below] + frac * (sorted[above] - sorted[below])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_hand() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!((quantile(&v, 0.0), quantile(&v, 0.5), quantile(&v, 1.0)), (1.0, 3.0, 5.0));
        assert_eq!(quantile(&v, 0.125), 1.5);
    }

    #[test]
    fn degenerate_inputs() {
        let o = BootstrapOptions::default();
        assert_eq!(bootstrap_mean_ci(&[], &o), Interval { lo: 0.0, hi: 0.0 });
        assert_eq!(bootstrap_mean_ci(&[0.3], &o), Interval { lo: 0.3, hi: 0.3 });
        assert_eq!(bootstrap_mean_ci(&[1.0; 50], &o), Interval { lo: 1.0, hi: 1.0 });
        let none = BootstrapOptions { resamples: 0, ..o };
        assert_eq!(bootstrap_mean_ci(&[0.0, 1.0], &none), Interval { lo: 0.5, hi: 0.5 });
    }

    #[test]
    fn seeded_and_about_as_wide_as_the_normal_interval() {
        let values: Vec<f64> = (0..400).map(|i| f64::from(u8::from(i % 10 < 3))).collect();
        let o = BootstrapOptions::default();
        assert_eq!(bootstrap_mean_ci(&values, &o), bootstrap_mean_ci(&values, &o));
        let ci = bootstrap_mean_ci(&values, &o);
        // Normal approximation: 0.3 +- 1.96 * sqrt(0.3 * 0.7 / 400) = 0.3 +- 0.0449.
        let half = (ci.hi - ci.lo) / 2.0;
        assert!((half - 0.0449).abs() < 0.006, "{ci:?}");
        assert!(ci.contains(0.3));
    }

    #[test]
    fn intervals_cover_the_true_mean_about_95_percent_of_the_time() {
        // 400 simulated benchmarks of 150 problems with pass rate p = 0.3; each problem's
        // value is its accuracy over 4 samples. The bootstrap interval should cover p in about
        // 95% of them (binomial std of the coverage over 400 runs: 1.1%).
        let mut rng = StdRng::seed_from_u64(11);
        let p = 0.3;
        let runs = 400;
        let mut covered = 0;
        for run in 0..runs {
            let values: Vec<f64> = (0..150)
                .map(|_| (0..4).filter(|_| rng.random_bool(p)).count() as f64 / 4.0)
                .collect();
            let options = BootstrapOptions { resamples: 500, confidence: 0.95, seed: run };
            covered += usize::from(bootstrap_mean_ci(&values, &options).contains(p));
        }
        let coverage = covered as f64 / runs as f64;
        assert!((0.91..=0.99).contains(&coverage), "coverage {coverage}");
    }
}
