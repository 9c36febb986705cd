//! Unbiased pass@k and mean accuracy over problems.
//!
//! pass@k of a problem with n samples of which c are correct is `1 - C(n - c, k) / C(n, k)`
//! (Chen et al., 2021, "Evaluating Large Language Models Trained on Code"): the chance that k of
//! its n samples, drawn without replacement, hold a correct one. It is computed by
//! `spiral_set_rl::pass_at_k` (a product of at most min(k, c) factors in [0, 1], stable for n in
//! the thousands) and averaged over problems, every problem weighing the same.

use spiral_set_rl::mean;
use spiral_set_rl::pass_at_k;

use crate::error::EvalError;
use crate::metrics::samples::ProblemSamples;

/// Each problem's unbiased pass@k. Errors when a problem has fewer than k samples (or k is 0).
///
/// ```
/// use spiral_eval::{ProblemSamples, pass_at_k_per_problem};
///
/// let p = ProblemSamples { id: "a".into(), correct: vec![true, false, false, false], answers: vec![] };
/// // 1 - C(3, 2) / C(4, 2) = 1/2.
/// assert_eq!(pass_at_k_per_problem(&[p], 2).unwrap(), [0.5]);
/// ```
pub fn pass_at_k_per_problem(problems: &[ProblemSamples], k: usize) -> Result<Vec<f64>, EvalError> {
    problems
        .iter()
        .map(|p| pass_at_k(p.n(), p.num_correct(), k).map_err(|_| too_few(p, k, "pass")))
        .collect()
}

/// Each problem's fraction of correct samples; their mean is pass@1.
pub fn accuracy_per_problem(problems: &[ProblemSamples]) -> Vec<f64> {
    problems.iter().map(|p| p.num_correct() as f64 / p.n().max(1) as f64).collect()
}

/// The mean over problems of each problem's fraction of correct samples (= mean pass@1).
pub fn mean_accuracy(problems: &[ProblemSamples]) -> f64 {
    mean(&accuracy_per_problem(problems))
}

/// The error for a metric@k asked of a problem with fewer than k samples.
pub(crate) fn too_few(p: &ProblemSamples, k: usize, metric: &str) -> EvalError {
    if k == 0 {
        return EvalError::Metric(format!("{metric}@k needs k >= 1, got 0"));
    }
    EvalError::Metric(format!(
        "{metric}@{k} needs at least {k} samples per problem, but problem `{}` has {}",
        p.id,
        p.n()
    ))
}

#[cfg(test)]
mod tests {
    use spiral_aggregation::Subsets;

    use super::*;

    fn problem(n: usize, c: usize) -> ProblemSamples {
        // Correct samples spread out in a fixed pseudo-random order, not all first.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (i * 7919) % 10007);
        let mut correct = vec![false; n];
        order[..c].iter().for_each(|&i| correct[i] = true);
        ProblemSamples { id: format!("{n}/{c}"), correct, answers: vec![] }
    }

    #[test]
    fn by_hand() {
        let problems = [problem(4, 1), problem(4, 0), problem(5, 5)];
        assert_eq!(pass_at_k_per_problem(&problems, 2).unwrap(), [0.5, 0.0, 1.0]);
        // n = 10, c = 3, k = 3: 1 - C(7, 3) / C(10, 3) = 1 - 35/120.
        let got = pass_at_k_per_problem(&[problem(10, 3)], 3).unwrap()[0];
        assert!((got - 85.0 / 120.0).abs() < 1e-15);
        assert!((mean_accuracy(&problems) - (0.25 + 0.0 + 1.0) / 3.0).abs() < 1e-15);
    }

    #[test]
    fn matches_subset_enumeration() {
        for n in 1..=9 {
            for c in 0..=n {
                let p = problem(n, c);
                for k in 1..=n {
                    let subsets: Vec<Vec<usize>> = Subsets::new(n, k).collect();
                    let hit = subsets.iter().filter(|s| s.iter().any(|&i| p.correct[i])).count();
                    let exact = hit as f64 / subsets.len() as f64;
                    let got = pass_at_k_per_problem(std::slice::from_ref(&p), k).unwrap()[0];
                    assert!((got - exact).abs() < 1e-12, "n={n} c={c} k={k}");
                }
            }
        }
    }

    /// The O(n^2) reference: Pascal's triangle with each row scaled by 2^-n (so entries stay
    /// in [0, 1]), then `C(n - c, k) / C(n, k) = row[n - c][k] / row[n][k] * 2^-c`.
    #[test]
    fn matches_a_quadratic_pascal_reference_up_to_n_1000() {
        let n_max = 1000;
        let mut rows: Vec<Vec<f64>> = vec![vec![1.0]];
        for m in 1..=n_max {
            let prev = &rows[m - 1];
            let row = (0..=m)
                .map(|j| {
                    let left = if j > 0 { prev[j - 1] } else { 0.0 };
                    let right = if j < m { prev[j] } else { 0.0 };
                    (left + right) / 2.0
                })
                .collect();
            rows.push(row);
        }
        let mut checked = 0;
        for (n, c, k) in
            [(1000, 3, 500), (1000, 10, 37), (1000, 1, 999), (500, 250, 5), (777, 40, 300)]
        {
            let reference = 1.0 - rows[n - c][k] / rows[n][k] * 0.5f64.powi(c as i32);
            let got = pass_at_k_per_problem(&[problem(n, c)], k).unwrap()[0];
            assert!((got - reference).abs() < 1e-9, "n={n} c={c} k={k}: {got} vs {reference}");
            checked += 1;
        }
        assert_eq!(checked, 5);
    }

    #[test]
    fn too_few_samples_name_the_problem() {
        let err = pass_at_k_per_problem(&[problem(8, 2), problem(3, 1)], 4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pass@4 needs at least 4 samples per problem, but problem `3/1` has 3"
        );
        let err = pass_at_k_per_problem(&[problem(8, 2)], 0).unwrap_err();
        assert_eq!(err.to_string(), "pass@k needs k >= 1, got 0");
    }
}
