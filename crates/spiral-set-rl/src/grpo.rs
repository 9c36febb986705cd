//! GRPO and Dr.GRPO group-relative advantages.
//!
//! - GRPO, DeepSeekMath (Shao et al., 2024, "outcome supervision"): `A_i = (r_i - mean(r)) /
//!   (std(r) + eps)` with the sample std (n - 1) and `eps = 1e-6`, as verl computes it.
//! - Dr.GRPO, "Understanding R1-Zero-Like Training: A Critical Perspective" (Liu et al., 2025):
//!   `A_i = r_i - mean(r)`. Dividing by the std up-weights groups that are nearly all right or all
//!   wrong (a question-difficulty bias), so Dr.GRPO drops it.
//!
//! Both take one group (the N responses to one prompt) and return one advantage per response.

use crate::error::{SetRlError, check_finite, check_overflow};
use crate::stats::{mean, sample_std};

/// The `eps` added to the std in GRPO's denominator.
pub const GRPO_EPS: f64 = 1e-6;

/// GRPO advantages of one group: `A_i = (r_i - mean(r)) / (std(r) + 1e-6)`.
///
/// Shapes: `rewards` `[N]` -> `[N]`. `std` is the sample std (n - 1) and is taken as 0 for
/// `N = 1`, so a lone response gets advantage 0. A group with no reward variance gets all zeros.
/// Follows DeepSeekMath (Shao et al., 2024). Errors on a non-finite reward, and on rewards so
/// large that `r - mean` overflows (finite rewards beyond ~`1e154` are otherwise handled).
pub fn grpo_advantages(rewards: &[f64]) -> Result<Vec<f64>, SetRlError> {
    check_finite("rewards", rewards)?;
    let (m, s) = (mean(rewards), sample_std(rewards));
    let advantages: Vec<f64> = rewards.iter().map(|r| (r - m) / (s + GRPO_EPS)).collect();
    check_overflow("advantages", &advantages)?;
    Ok(advantages)
}

/// Dr.GRPO advantages of one group: `A_i = r_i - mean(r)` (no std division).
///
/// Shapes: `rewards` `[N]` -> `[N]`; `N = 1` gives 0. Follows "Understanding R1-Zero-Like
/// Training" (Liu et al., 2025). Errors on a non-finite reward, and on rewards so far apart that
/// `r - mean` overflows `f64`.
pub fn dr_grpo_advantages(rewards: &[f64]) -> Result<Vec<f64>, SetRlError> {
    check_finite("rewards", rewards)?;
    let m = mean(rewards);
    let advantages: Vec<f64> = rewards.iter().map(|r| r - m).collect();
    check_overflow("advantages", &advantages)?;
    Ok(advantages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= tol, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn grpo_by_hand() {
        // [1, 0, 0, 0]: mean 1/4; deviations 3/4, -1/4 x3; ss = 9/16 + 3/16 = 3/4; std = 1/2.
        let a = grpo_advantages(&[1.0, 0.0, 0.0, 0.0]).unwrap();
        let d = 0.5 + GRPO_EPS;
        close(&a, &[0.75 / d, -0.25 / d, -0.25 / d, -0.25 / d], 1e-15);
        assert!((a[0] - 1.5).abs() < 1e-5);
    }

    #[test]
    fn dr_grpo_by_hand() {
        let a = dr_grpo_advantages(&[1.0, 0.0, 0.5, 0.5]).unwrap();
        close(&a, &[0.5, -0.5, 0.0, 0.0], 0.0);
    }

    #[test]
    fn constant_and_singleton_groups_give_zero() {
        for r in [vec![1.0; 5], vec![0.0; 5], vec![0.3]] {
            close(&grpo_advantages(&r).unwrap(), &vec![0.0; r.len()], 0.0);
            close(&dr_grpo_advantages(&r).unwrap(), &vec![0.0; r.len()], 0.0);
        }
        assert!(grpo_advantages(&[]).unwrap().is_empty());
    }

    #[test]
    fn grpo_is_dr_grpo_over_std() {
        let r = [0.2, 0.9, 0.4, 0.4, 1.0, 0.0];
        let s = sample_std(&r) + GRPO_EPS;
        let dr: Vec<f64> = dr_grpo_advantages(&r).unwrap().iter().map(|a| a / s).collect();
        close(&grpo_advantages(&r).unwrap(), &dr, 1e-15);
    }

    /// `[1e308, 1e308, 0]` summed to ∞ and gave NaN advantages.
    #[test]
    fn huge_finite_rewards_give_finite_advantages_or_an_error() {
        let r = [1e308, 1e308, 0.0];
        let dr = dr_grpo_advantages(&r).unwrap();
        close(
            &dr.iter().map(|a| a / 1e308).collect::<Vec<_>>(),
            &[1.0 / 3.0, 1.0 / 3.0, -2.0 / 3.0],
            1e-12,
        );
        // Deviations 1/3, 1/3, -2/3 over std sqrt(1/3): 1/sqrt(3), 1/sqrt(3), -2/sqrt(3).
        let g = grpo_advantages(&r).unwrap();
        let t = 3.0f64.sqrt();
        close(&g, &[1.0 / t, 1.0 / t, -2.0 / t], 1e-9);
        // Differences beyond f64 are refused, not NaN.
        let err = dr_grpo_advantages(&[f64::MAX, -f64::MAX, -f64::MAX]).unwrap_err();
        assert!(matches!(err, SetRlError::Overflow { index: 0, .. }), "{err}");
        assert!(err.to_string().contains("rescale the rewards"), "{err}");
        let err = grpo_advantages(&[f64::MAX, -f64::MAX, -f64::MAX]).unwrap_err();
        assert!(matches!(err, SetRlError::Overflow { .. }), "{err}");
    }

    #[test]
    fn non_finite_reward_is_an_error() {
        let err = grpo_advantages(&[0.0, f64::NAN]).unwrap_err();
        assert!(err.to_string().contains("rewards[1]"), "{err}");
    }
}
