//! pass@k: the unbiased estimator and the pass@k-training advantages.
//!
//! - Unbiased pass@k from N samples with c correct, "Evaluating Large Language Models Trained on
//!   Code" (Chen et al., 2021, arXiv:2107.03374): `pass@k = 1 - C(N - c, k) / C(N, k)`.
//! - pass@k advantages, "Pass@k Training for Adaptively Balancing Exploration and Exploitation of
//!   Large Reasoning Models" (Chen et al., 2025, arXiv:2508.10751), as ParaGator ("ParaGator:
//!   Learning to Aggregate through Online RL", 2026, arXiv:2603.18886) uses them for its
//!   candidate stage: with `rho` the pass@k above, `A_correct = 1 - rho` and
//!   `A_incorrect = 1 - rho - C(N - c - 1, k - 1) / C(N - 1, k - 1)`.
//!   These are the exact mean, over all k-subsets that contain a response, of the subset's reward
//!   `max_j r_j` minus the mean subset reward `rho` (the tests enumerate the subsets to check it).
//!   ParaGator drops Chen et al.'s division by the std, and so does the default here.
//!
//! Ratios of binomials are never formed from factorials or from the binomials themselves: they
//! are products of at most `min(k, b - a)` factors in `[0, 1]`, so N in the thousands neither
//! overflows nor loses precision (the relative error grows like the number of factors times the
//! machine epsilon).

use crate::error::{SetRlError, check_finite};

/// `C(a, k) / C(b, k)` for `a <= b`, computed stably; `None` when undefined (`a > b` or `k > b`).
///
/// Uses whichever product is shorter:
/// `prod_{i<k} (a - i) / (b - i)` or, by `C(a, k) / C(b, k) = C(b - k, b - a) / C(b, b - a)`,
/// `prod_{i<b-a} (b - k - i) / (b - i)`. Every factor lies in `[0, 1]`; the result is exactly 0
/// when `k > a`.
pub fn binomial_ratio(a: usize, b: usize, k: usize) -> Option<f64> {
    if a > b || k > b {
        return None;
    }
    if k > a {
        return Some(0.0);
    }
    let (top, terms) = if k <= b - a { (a, k) } else { (b - k, b - a) };
    let mut ratio = 1.0;
    for i in 0..terms {
        ratio *= (top - i) as f64 / (b - i) as f64;
        if ratio == 0.0 {
            break;
        }
    }
    Some(ratio)
}

/// Unbiased pass@k from `n` samples of which `c` are correct: `1 - C(n - c, k) / C(n, k)`.
///
/// The probability that a uniformly drawn k-subset of the n samples holds at least one correct
/// one (Chen et al., 2021). Errors unless `1 <= k <= n` and `c <= n`.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> Result<f64, SetRlError> {
    if k == 0 || k > n {
        return Err(SetRlError::InvalidK { k, n });
    }
    if c > n {
        return Err(SetRlError::Config(format!("{c} correct out of only {n} samples")));
    }
    let none_correct = binomial_ratio(n - c, n, k).expect("n - c <= n and k <= n");
    Ok(1.0 - none_correct)
}

/// pass@k advantages of one group of binary rewards (Chen et al., 2025; ParaGator's candidates).
///
/// With N responses, c correct and `rho = 1 - C(N - c, k) / C(N, k)`:
/// `A_correct = 1 - rho`, `A_incorrect = 1 - rho - C(N - c - 1, k - 1) / C(N - 1, k - 1)`.
/// With `normalize_std` both are divided by `sqrt(rho * (1 - rho)) + 1e-6`, the std of the
/// Bernoulli subset reward, as Chen et al. do; ParaGator (and the default) does not divide.
///
/// Shapes: `rewards` `[N]`, each exactly 0 or 1 -> `[N]`. Errors unless `1 <= k <= N` (k > N has
/// no k-subset; k = 0 no reward) and on a reward that is not 0 or 1. All-correct and
/// none-correct groups get all zeros; `k = 1` reduces to Dr.GRPO `r - c / N`.
pub fn pass_at_k_advantages(
    rewards: &[f64],
    k: usize,
    normalize_std: bool,
) -> Result<Vec<f64>, SetRlError> {
    check_finite("rewards", rewards)?;
    if let Some(index) = rewards.iter().position(|&r| r != 0.0 && r != 1.0) {
        return Err(SetRlError::NonBinaryReward { index, value: rewards[index] });
    }
    let n = rewards.len();
    let c = rewards.iter().filter(|&&r| r == 1.0).count();
    let rho = pass_at_k(n, c, k)?;
    let a_correct = 1.0 - rho;
    // The chance that the k - 1 other members of a subset holding this incorrect response are all
    // incorrect too (only needed, and only defined, when some response is incorrect).
    let a_incorrect = if c < n {
        1.0 - rho - binomial_ratio(n - c - 1, n - 1, k - 1).expect("n - c - 1 <= n - 1, k <= n")
    } else {
        0.0
    };
    let scale = if normalize_std { 1.0 / ((rho * (1.0 - rho)).sqrt() + 1e-6) } else { 1.0 };
    Ok(rewards.iter().map(|&r| scale * if r == 1.0 { a_correct } else { a_incorrect }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact binomial in u128 (fine for n <= 60).
    fn binom(n: u64, k: u64) -> u128 {
        if k > n {
            return 0;
        }
        let mut c: u128 = 1;
        for i in 0..k as u128 {
            c = c * (n as u128 - i) / (i + 1);
        }
        c
    }

    /// All k-subsets of 0..n, in lexicographic order.
    fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
        fn rec(start: usize, n: usize, k: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
            if cur.len() == k {
                out.push(cur.clone());
                return;
            }
            for i in start..n {
                cur.push(i);
                rec(i + 1, n, k, cur, out);
                cur.pop();
            }
        }
        let mut out = Vec::new();
        rec(0, n, k, &mut Vec::new(), &mut out);
        out
    }

    /// pass@k advantages by brute force: the mean over the k-subsets holding each response of
    /// (subset reward `max r` minus the mean subset reward).
    fn brute_force(r: &[f64], k: usize) -> Vec<f64> {
        let sets = subsets(r.len(), k);
        let score = |s: &Vec<usize>| s.iter().map(|&i| r[i]).fold(0.0, f64::max);
        let rho = sets.iter().map(score).sum::<f64>() / sets.len() as f64;
        (0..r.len())
            .map(|j| {
                let holding: Vec<f64> =
                    sets.iter().filter(|s| s.contains(&j)).map(|s| score(s) - rho).collect();
                holding.iter().sum::<f64>() / holding.len() as f64
            })
            .collect()
    }

    #[test]
    fn binomial_ratio_matches_exact_integers() {
        for b in 0..=40u64 {
            for a in 0..=b {
                for k in 0..=b {
                    let exact = binom(a, k) as f64 / binom(b, k) as f64;
                    let got = binomial_ratio(a as usize, b as usize, k as usize).unwrap();
                    assert!((got - exact).abs() <= 1e-13 * exact.max(1e-300), "{a} {b} {k}");
                }
            }
        }
        assert_eq!(binomial_ratio(5, 4, 1), None);
        assert_eq!(binomial_ratio(3, 4, 5), None);
    }

    #[test]
    fn binomial_ratio_is_stable_for_thousands() {
        // Against an independent log-space sum over the long product, for N = 5000.
        let (a, b, k) = (4990usize, 5000usize, 2500usize);
        let log: f64 = (0..k).map(|i| ((a - i) as f64).ln() - ((b - i) as f64).ln()).sum();
        let got = binomial_ratio(a, b, k).unwrap();
        assert!(got > 0.0 && ((got.ln() - log) / log).abs() < 1e-10, "{got} vs {}", log.exp());
        // Exact: C(4999, k) / C(5000, k) = (5000 - k) / 5000.
        assert!((binomial_ratio(4999, 5000, 1234).unwrap() - 3766.0 / 5000.0).abs() < 1e-14);
        // A ratio far below f64's range underflows to 0, never NaN.
        assert_eq!(binomial_ratio(2000, 5000, 1500), Some(0.0));
    }

    #[test]
    fn pass_at_k_by_hand() {
        // N = 4, c = 1, k = 2: 1 - C(3, 2) / C(4, 2) = 1 - 3/6.
        assert!((pass_at_k(4, 1, 2).unwrap() - 0.5).abs() < 1e-15);
        assert_eq!(pass_at_k(4, 0, 2).unwrap(), 0.0);
        assert_eq!(pass_at_k(4, 4, 4).unwrap(), 1.0);
        assert!((pass_at_k(10, 3, 1).unwrap() - 0.3).abs() < 1e-15);
        assert!(matches!(pass_at_k(4, 1, 5), Err(SetRlError::InvalidK { k: 5, n: 4 })));
        assert!(matches!(pass_at_k(4, 1, 0), Err(SetRlError::InvalidK { k: 0, n: 4 })));
    }

    #[test]
    fn advantages_by_hand() {
        // N = 4, c = 1, k = 2: rho = 1/2, A_correct = 1/2,
        // A_incorrect = 1/2 - C(2, 1) / C(3, 1) = 1/2 - 2/3 = -1/6.
        let a = pass_at_k_advantages(&[1.0, 0.0, 0.0, 0.0], 2, false).unwrap();
        let want = [0.5, -1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0];
        for (x, y) in a.iter().zip(want) {
            assert!((x - y).abs() < 1e-15, "{a:?}");
        }
        // The same with Chen et al.'s std: sqrt(1/2 * 1/2) = 1/2.
        let s = pass_at_k_advantages(&[1.0, 0.0, 0.0, 0.0], 2, true).unwrap();
        assert!((s[0] - 0.5 / (0.5 + 1e-6)).abs() < 1e-15);
    }

    #[test]
    fn formula_matches_subset_enumeration() {
        for n in 1..=8usize {
            for c in 0..=n {
                // c correct responses spread over the group, not all at the front.
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by_key(|&i| (i * 4) % 11);
                let mut r = vec![0.0; n];
                order[..c].iter().for_each(|&i| r[i] = 1.0);
                for k in 1..=n {
                    let fast = pass_at_k_advantages(&r, k, false).unwrap();
                    let slow = brute_force(&r, k);
                    for (x, y) in fast.iter().zip(&slow) {
                        assert!((x - y).abs() < 1e-12, "n={n} c={c} k={k}: {fast:?} {slow:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn k_equal_one_is_dr_grpo() {
        let r = [1.0, 0.0, 1.0, 0.0, 0.0];
        let a = pass_at_k_advantages(&r, 1, false).unwrap();
        let dr = crate::dr_grpo_advantages(&r).unwrap();
        for (x, y) in a.iter().zip(dr) {
            assert!((x - y).abs() < 1e-15);
        }
    }

    #[test]
    fn edge_cases() {
        assert_eq!(pass_at_k_advantages(&[1.0; 6], 3, false).unwrap(), vec![0.0; 6]);
        assert_eq!(pass_at_k_advantages(&[0.0; 6], 3, true).unwrap(), vec![0.0; 6]);
        assert_eq!(pass_at_k_advantages(&[1.0], 1, false).unwrap(), vec![0.0]);
        assert_eq!(pass_at_k_advantages(&[0.0], 1, false).unwrap(), vec![0.0]);
        assert!(matches!(
            pass_at_k_advantages(&[1.0, 0.0], 3, false),
            Err(SetRlError::InvalidK { k: 3, n: 2 })
        ));
        assert!(matches!(pass_at_k_advantages(&[], 1, false), Err(SetRlError::InvalidK { .. })));
        assert!(matches!(
            pass_at_k_advantages(&[1.0, 0.5], 1, false),
            Err(SetRlError::NonBinaryReward { index: 1, .. })
        ));
    }

    #[test]
    fn large_groups_stay_finite_and_bounded() {
        let mut r = vec![0.0; 4096];
        r[17] = 1.0;
        r[900] = 1.0;
        let a = pass_at_k_advantages(&r, 256, false).unwrap();
        assert!(a.iter().all(|x| x.is_finite()));
        assert!(a[17] > 0.0 && a[17] < 1.0 && a[0] < 0.0 && a[17] > a[0]);
        assert_eq!(a[17], a[900]);
    }
}
