//! Group statistics: the mean / sample standard deviation every estimator shares, and the
//! per-batch summaries a trainer logs (how many groups carry no learning signal, and so on).
//!
//! A group whose rewards are all equal gets zero advantage from every group-relative estimator
//! (GRPO, Dr.GRPO, RLOO, pass@k): DAPO (Yu et al., 2025) calls these the groups that "dynamic
//! sampling" filters out, and their fraction is the first thing to watch when a run stalls.

use serde::{Deserialize, Serialize};

use crate::error::{SetRlError, check_finite};
use crate::spiral::SpiralAdvantages;

/// Arithmetic mean `sum(x) / len(x)`; 0 for an empty slice.
///
/// Finite values always have a finite mean: when the sum overflows (`[1e308, 1e308, 0]`), the
/// mean is taken as `sum(x / len(x))` instead.
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let n = values.len() as f64;
    let sum: f64 = values.iter().sum();
    if sum.is_finite() { sum / n } else { values.iter().map(|v| v / n).sum() }
}

/// Sample standard deviation `sqrt(sum((x - mean)^2) / (n - 1))` (Bessel's correction, as
/// `torch.std` and verl's GRPO use); 0 when `n < 2`.
///
/// When the squares overflow although the deviations do not (values near `1e154` and above),
/// the deviations are scaled by the largest one first, so the std stays finite.
pub fn sample_std(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 2 {
        return 0.0;
    }
    let m = mean(values);
    let ss: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    if ss.is_finite() {
        return (ss / (n - 1) as f64).sqrt();
    }
    let largest = values.iter().fold(0.0f64, |a, v| a.max((v - m).abs()));
    let scaled: f64 = values.iter().map(|v| ((v - m) / largest).powi(2)).sum();
    largest * (scaled / (n - 1) as f64).sqrt()
}

/// Whether all values are equal (a group with no reward variance; true for 0 or 1 values).
pub fn is_constant(values: &[f64]) -> bool {
    values.windows(2).all(|w| w[0] == w[1])
}

/// Mean, sample std, min and max of a list of numbers (advantages, rewards, set scores).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of values.
    pub count: usize,
    /// Arithmetic mean (0 when empty).
    pub mean: f64,
    /// Sample standard deviation, n - 1 (0 when fewer than two values).
    pub std: f64,
    /// Smallest value (0 when empty).
    pub min: f64,
    /// Largest value (0 when empty).
    pub max: f64,
}

impl Summary {
    /// Summarises `values`.
    pub fn of(values: &[f64]) -> Self {
        let (min, max) = if values.is_empty() {
            (0.0, 0.0)
        } else {
            values
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)))
        };
        Summary { count: values.len(), mean: mean(values), std: sample_std(values), min, max }
    }
}

/// What a trainer logs about a batch of reward groups (one group per prompt).
///
/// "Solved" means reward 1 and "unsolved" reward 0, the verifiable-reward convention; groups
/// with rewards strictly between count in neither of those two fractions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    /// Number of groups.
    pub num_groups: usize,
    /// Number of rewards over all groups.
    pub num_samples: usize,
    /// Mean reward over all samples (every sample weighs the same).
    pub mean_reward: f64,
    /// Mean over groups of the within-group sample std.
    pub mean_group_std: f64,
    /// Fraction of groups whose rewards are all equal: zero advantage, no gradient.
    pub zero_variance_fraction: f64,
    /// Fraction of groups where every reward is 1.
    pub all_solved_fraction: f64,
    /// Fraction of groups where every reward is 0.
    pub none_solved_fraction: f64,
    /// Mean group size.
    pub mean_group_size: f64,
}

impl GroupStats {
    /// Statistics of `groups` (each a slice of rewards). All fractions are 0 for no groups.
    ///
    /// Errors on a NaN or infinite reward, naming its group (`groups[3]`) and position: a NaN
    /// would otherwise pass for a varying group and turn every mean into NaN.
    pub fn of<G: AsRef<[f64]>>(groups: &[G]) -> Result<Self, SetRlError> {
        let num_groups = groups.len();
        let mut rewards = Vec::new();
        let mut stds = Vec::with_capacity(num_groups);
        let (mut zero_var, mut all, mut none) = (0usize, 0usize, 0usize);
        for (g, group) in groups.iter().enumerate() {
            let r = group.as_ref();
            check_finite(&format!("groups[{g}]"), r)?;
            rewards.extend_from_slice(r);
            stds.push(sample_std(r));
            zero_var += usize::from(is_constant(r));
            all += usize::from(!r.is_empty() && r.iter().all(|&v| v == 1.0));
            none += usize::from(!r.is_empty() && r.iter().all(|&v| v == 0.0));
        }
        let num_samples = rewards.len();
        let per_group = |count: f64| if num_groups == 0 { 0.0 } else { count / num_groups as f64 };
        Ok(GroupStats {
            num_groups,
            num_samples,
            mean_reward: mean(&rewards),
            mean_group_std: mean(&stds),
            zero_variance_fraction: per_group(zero_var as f64),
            all_solved_fraction: per_group(all as f64),
            none_solved_fraction: per_group(none as f64),
            mean_group_size: per_group(num_samples as f64),
        })
    }
}

/// What a trainer logs about a batch of SPIRAL problems (one [`SpiralAdvantages`] each).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpiralStats {
    /// Number of problems.
    pub num_problems: usize,
    /// Mean set score `f(G)` over all sets of all problems (the aggregated accuracy).
    pub mean_set_score: f64,
    /// Fraction of problems whose K set scores are all equal: the search traces get no gradient.
    pub no_search_signal_fraction: f64,
    /// Fraction of sets whose aggregation rewards are all equal: those aggregation traces get no
    /// gradient.
    pub no_aggregation_signal_fraction: f64,
    /// Fraction of search traces that sit in at least one set (the others get no gradient).
    pub search_coverage: f64,
}

impl SpiralStats {
    /// Statistics of `problems`. All fractions are 0 for no problems.
    pub fn of(problems: &[SpiralAdvantages]) -> Self {
        let ratio = |num: usize, den: usize| if den == 0 { 0.0 } else { num as f64 / den as f64 };
        let scores: Vec<f64> = problems.iter().flat_map(|p| p.set_scores.iter().copied()).collect();
        let silent_problems = problems.iter().filter(|p| is_constant(&p.set_scores)).count();
        let sets = problems.iter().flat_map(|p| &p.aggregation_advantages);
        let num_sets = sets.clone().count();
        let silent_sets = sets.filter(|a| a.iter().all(|&x| x == 0.0)).count();
        let counts = problems.iter().flat_map(|p| &p.search_counts);
        let covered = counts.clone().filter(|&&c| c > 0).count();
        SpiralStats {
            num_problems: problems.len(),
            mean_set_score: mean(&scores),
            no_search_signal_fraction: ratio(silent_problems, problems.len()),
            no_aggregation_signal_fraction: ratio(silent_sets, num_sets),
            search_coverage: ratio(covered, counts.count()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std_by_hand() {
        // [1, 0, 1, 0]: mean 0.5, squared deviations 4 * 0.25 = 1, / (4 - 1) -> std sqrt(1/3).
        let r = [1.0, 0.0, 1.0, 0.0];
        assert_eq!(mean(&r), 0.5);
        assert!((sample_std(&r) - (1.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(sample_std(&[3.0]), 0.0);
        assert_eq!(mean(&[]), 0.0);
    }

    #[test]
    fn summary_of_values() {
        let s = Summary::of(&[-1.0, 0.5, 2.0]);
        assert_eq!((s.count, s.min, s.max), (3, -1.0, 2.0));
        assert!((s.mean - 0.5).abs() < 1e-15);
        assert!((s.std - 1.5).abs() < 1e-15);
        assert_eq!(Summary::of(&[]), Summary { count: 0, mean: 0.0, std: 0.0, min: 0.0, max: 0.0 });
    }

    #[test]
    fn group_stats_by_hand() {
        let groups = vec![vec![1.0, 1.0], vec![0.0, 0.0], vec![1.0, 0.0], vec![0.5, 0.5]];
        let s = GroupStats::of(&groups).unwrap();
        assert_eq!(s.num_groups, 4);
        assert_eq!(s.num_samples, 8);
        assert_eq!(s.mean_reward, 4.0 / 8.0);
        assert_eq!(s.zero_variance_fraction, 0.75);
        assert_eq!(s.all_solved_fraction, 0.25);
        assert_eq!(s.none_solved_fraction, 0.25);
        // Only [1, 0] varies: std sqrt(0.5); mean over 4 groups.
        assert!((s.mean_group_std - 0.5f64.sqrt() / 4.0).abs() < 1e-15);
        assert_eq!(s.mean_group_size, 2.0);
    }

    #[test]
    fn spiral_stats_by_hand() {
        use crate::spiral::{SpiralConfig, spiral_advantages};
        let cfg = SpiralConfig::default();
        // Problem 1: scores [1, 0] (signal); both sets unanimous (no aggregation signal); trace 3
        // in no set.
        let p1 = spiral_advantages(4, &[[0usize, 1], [1, 2]], &[[1.0, 1.0], [0.0, 0.0]], &cfg);
        // Problem 2: scores [1/2, 1/2] (no search signal), both sets mixed; full coverage.
        let p2 = spiral_advantages(2, &[[0usize], [1]], &[[1.0, 0.0], [0.0, 1.0]], &cfg);
        let s = SpiralStats::of(&[p1.unwrap(), p2.unwrap()]);
        assert_eq!(s.num_problems, 2);
        assert_eq!(s.mean_set_score, 0.5);
        assert_eq!(s.no_search_signal_fraction, 0.5);
        assert_eq!(s.no_aggregation_signal_fraction, 0.5);
        assert_eq!(s.search_coverage, 5.0 / 6.0);
        assert_eq!(SpiralStats::of(&[]).search_coverage, 0.0);
    }

    /// A NaN reward made a group count as "varying" and every mean NaN, silently.
    #[test]
    fn group_stats_refuse_non_finite_rewards() {
        let err = GroupStats::of(&[vec![1.0, 0.0], vec![0.0, f64::NAN]]).unwrap_err();
        assert!(matches!(err, SetRlError::NonFinite { index: 1, .. }), "{err}");
        assert!(err.to_string().starts_with("groups[1][1] is NaN"), "{err}");
        assert!(GroupStats::of(&[[f64::INFINITY]]).is_err());
    }

    #[test]
    fn huge_finite_values_keep_finite_statistics() {
        let r = [1e308, 1e308, 0.0];
        let m = mean(&r);
        assert!((m / 1e308 - 2.0 / 3.0).abs() < 1e-12, "{m}");
        // Deviations 1/3, 1/3, -2/3 (times 1e308): ss = 6/9, / 2 -> std sqrt(1/3) * 1e308.
        let s = sample_std(&r);
        assert!((s / 1e308 - (1.0f64 / 3.0).sqrt()).abs() < 1e-12, "{s}");
        let stats = GroupStats::of(&[r.to_vec(), vec![-1e308, -1e308]]).unwrap();
        assert!(stats.mean_reward.is_finite() && stats.mean_group_std.is_finite(), "{stats:?}");
        // Small values keep the plain formulas bit for bit.
        assert_eq!(mean(&[0.1, 0.2, 0.3]), (0.1 + 0.2 + 0.3) / 3.0);
    }

    #[test]
    fn group_stats_of_nothing_is_zero() {
        let s = GroupStats::of::<Vec<f64>>(&[]).unwrap();
        assert_eq!((s.num_groups, s.zero_variance_fraction, s.mean_reward), (0, 0.0, 0.0));
    }
}
