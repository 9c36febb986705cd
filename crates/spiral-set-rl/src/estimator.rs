//! The choice of group estimator, as a serde-tagged enum a config file or a JSONL line names.
//!
//! One group is the N responses to one prompt, scored independently; SPIRAL's two-level rollouts
//! (sets of search traces, aggregation traces per set) have their own entry point,
//! [`crate::spiral_advantages`], because their input is not one list of rewards.

use serde::{Deserialize, Serialize};

use crate::error::SetRlError;
use crate::grpo::{dr_grpo_advantages, grpo_advantages};
use crate::pass_at_k::pass_at_k_advantages;
use crate::rloo::rloo_advantages;

/// A group-relative advantage estimator.
///
/// Serialised with an `estimator` tag, e.g. `{"estimator": "grpo"}` or
/// `{"estimator": "pass_at_k", "k": 4}` (TOML: `estimator = "pass_at_k"`, `k = 4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "estimator", rename_all = "snake_case", deny_unknown_fields)]
pub enum Estimator {
    /// GRPO, DeepSeekMath: `(r - mean) / (std + 1e-6)`, sample std.
    Grpo,
    /// Dr.GRPO, Liu et al. (2025): `r - mean`.
    DrGrpo,
    /// RLOO, Ahmadian et al. (2024): `r_i - mean_{j != i} r_j`.
    Rloo,
    /// pass@k, Chen et al. (2025) as ParaGator uses it; binary rewards.
    PassAtK {
        /// Subset size k, `1 <= k <= N`.
        k: usize,
        /// Divide by `sqrt(rho (1 - rho))` as Chen et al.; ParaGator does not (default false).
        #[serde(default)]
        normalize_std: bool,
    },
}

impl Estimator {
    /// Advantages of one group: `rewards` `[N]` -> `[N]`. See each variant's function for the
    /// formula and its edge cases.
    pub fn advantages(&self, rewards: &[f64]) -> Result<Vec<f64>, SetRlError> {
        match *self {
            Estimator::Grpo => grpo_advantages(rewards),
            Estimator::DrGrpo => dr_grpo_advantages(rewards),
            Estimator::Rloo => rloo_advantages(rewards),
            Estimator::PassAtK { k, normalize_std } => {
                pass_at_k_advantages(rewards, k, normalize_std)
            }
        }
    }

    /// Advantages of many groups, one output row per group; the first bad group is the error.
    pub fn advantages_batch<G: AsRef<[f64]>>(
        &self,
        groups: &[G],
    ) -> Result<Vec<Vec<f64>>, SetRlError> {
        groups.iter().map(|g| self.advantages(g.as_ref())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        let cases = [
            (r#"{"estimator":"grpo"}"#, Estimator::Grpo),
            (r#"{"estimator":"dr_grpo"}"#, Estimator::DrGrpo),
            (r#"{"estimator":"rloo"}"#, Estimator::Rloo),
            (
                r#"{"estimator":"pass_at_k","k":4}"#,
                Estimator::PassAtK { k: 4, normalize_std: false },
            ),
        ];
        for (json, want) in cases {
            let got: Estimator = serde_json::from_str(json).unwrap();
            assert_eq!(got, want);
            let back: Estimator =
                serde_json::from_str(&serde_json::to_string(&got).unwrap()).unwrap();
            assert_eq!(back, want);
        }
    }

    #[test]
    fn unknown_names_and_fields_are_refused() {
        let err = serde_json::from_str::<Estimator>(r#"{"estimator":"ppo"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant `ppo`"), "{err}");
        assert!(serde_json::from_str::<Estimator>(r#"{"estimator":"pass_at_k"}"#).is_err());
        assert!(
            serde_json::from_str::<Estimator>(r#"{"estimator":"pass_at_k","k":2,"x":1}"#).is_err()
        );
    }

    #[test]
    fn dispatch_matches_the_functions() {
        let r = [1.0, 0.0, 0.0, 1.0, 1.0];
        assert_eq!(Estimator::Grpo.advantages(&r).unwrap(), grpo_advantages(&r).unwrap());
        assert_eq!(Estimator::Rloo.advantages(&r).unwrap(), rloo_advantages(&r).unwrap());
        let pk = Estimator::PassAtK { k: 2, normalize_std: false };
        assert_eq!(pk.advantages(&r).unwrap(), pass_at_k_advantages(&r, 2, false).unwrap());
        let batch = Estimator::DrGrpo.advantages_batch(&[vec![1.0, 0.0], vec![0.5]]).unwrap();
        assert_eq!(batch, vec![vec![0.5, -0.5], vec![0.0]]);
    }
}
