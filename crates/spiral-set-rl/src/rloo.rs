//! RLOO: REINFORCE with a leave-one-out baseline.
//!
//! "Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human Feedback in
//! LLMs" (Ahmadian et al., 2024), after Kool et al. (2019): each response's baseline is the mean
//! reward of the *other* N - 1 responses to the same prompt, which keeps the estimator unbiased
//! (the baseline does not depend on the response it scores).

use crate::error::{SetRlError, check_finite, check_overflow};
use crate::stats::mean;

/// RLOO advantages of one group: `A_i = r_i - (1 / (N - 1)) * sum_{j != i} r_j`.
///
/// Computed in closed form as `A_i = N / (N - 1) * (r_i - mean(r))`. Shapes: `rewards` `[N]` ->
/// `[N]`. With `N = 1` there is no other response to form a baseline; the advantage is defined
/// as 0 (no signal), like the group-relative estimators. Follows Ahmadian et al. (2024).
/// Errors on a non-finite reward, and on rewards so far apart that an advantage overflows `f64`.
pub fn rloo_advantages(rewards: &[f64]) -> Result<Vec<f64>, SetRlError> {
    check_finite("rewards", rewards)?;
    let n = rewards.len();
    if n < 2 {
        return Ok(vec![0.0; n]);
    }
    let m = mean(rewards);
    let scale = n as f64 / (n - 1) as f64;
    let advantages: Vec<f64> = rewards.iter().map(|r| scale * (r - m)).collect();
    check_overflow("advantages", &advantages)?;
    Ok(advantages)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, literally: a loop over the other responses for every response.
    fn rloo_loop(r: &[f64]) -> Vec<f64> {
        let n = r.len();
        (0..n)
            .map(|i| {
                let others: f64 = (0..n).filter(|&j| j != i).map(|j| r[j]).sum();
                r[i] - others / (n - 1) as f64
            })
            .collect()
    }

    #[test]
    fn rloo_by_hand() {
        // [1, 0, 0]: baselines 0, 1/2, 1/2.
        assert_eq!(rloo_advantages(&[1.0, 0.0, 0.0]).unwrap(), vec![1.0, -0.5, -0.5]);
    }

    #[test]
    fn closed_form_matches_leave_one_out_loop() {
        let groups: [&[f64]; 4] =
            [&[0.3, 0.9], &[1.0, 0.0, 1.0, 1.0], &[0.1, 0.7, 0.2, 0.9, 0.4], &[0.5; 6]];
        for r in groups {
            let fast = rloo_advantages(r).unwrap();
            for (a, b) in fast.iter().zip(rloo_loop(r)) {
                assert!((a - b).abs() < 1e-14, "{r:?}");
            }
        }
    }

    #[test]
    fn huge_rewards_are_finite_or_an_error() {
        let a = rloo_advantages(&[1e308, 1e308, 0.0]).unwrap();
        assert!(a.iter().all(|x| x.is_finite()), "{a:?}");
        assert!((a[2] / 1e308 + 1.0).abs() < 1e-12, "{a:?}");
        let err = rloo_advantages(&[f64::MAX, -f64::MAX]).unwrap_err();
        assert!(matches!(err, SetRlError::Overflow { .. }), "{err}");
    }

    #[test]
    fn singleton_and_empty_groups() {
        assert_eq!(rloo_advantages(&[1.0]).unwrap(), vec![0.0]);
        assert!(rloo_advantages(&[]).unwrap().is_empty());
    }
}
