//! Per-token estimators of `KL(pi_theta || pi_ref)` from tokens sampled by the policy.
//!
//! John Schulman, "Approximating KL Divergence" (2020). With `x = log pi_theta - log pi_ref` at a
//! sampled token: `k1 = x` (unbiased, high variance, can be negative), `k2 = x^2 / 2` (biased, low
//! variance), `k3 = exp(-x) - 1 + x` (unbiased, low variance, never negative; GRPO's choice).

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

/// Bound on the log-ratio inside `exp`, so one wild token cannot overflow (as verl's clamp).
pub(crate) const LOG_RATIO_CLAMP: f64 = 20.0;

/// Which per-token KL estimator the loss penalises (`"k1"`, `"k2"`, `"k3"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KlEstimator {
    /// `k1 = log pi - log pi_ref`.
    K1,
    /// `k2 = (log pi - log pi_ref)^2 / 2`.
    K2,
    /// `k3 = exp(log pi_ref - log pi) - (log pi_ref - log pi) - 1`, the exponent clamped to
    /// `[-20, 20]`. GRPO's estimator, and the default.
    #[default]
    K3,
}

impl KlEstimator {
    /// Per-token KL estimate; `logp`, `ref_logp` `[batch, time]` -> `[batch, time]`.
    /// Gradients flow through `logp` only if `ref_logp` is detached.
    pub fn per_token<B: Backend>(self, logp: Tensor<B, 2>, ref_logp: Tensor<B, 2>) -> Tensor<B, 2> {
        let x = logp - ref_logp;
        match self {
            KlEstimator::K1 => x,
            KlEstimator::K2 => x.powi_scalar(2).mul_scalar(0.5),
            KlEstimator::K3 => {
                let d = x.neg().clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP);
                d.clone().exp() - d - 1.0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::tensor::TensorData;

    use super::*;

    fn t(values: &[f64]) -> Tensor<Flex, 2> {
        let data: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        Tensor::from_data(TensorData::new(data, [1, values.len()]), &Default::default())
    }

    #[test]
    fn estimators_by_hand() {
        let logp = [-1.0, -2.0, -0.5];
        let reference = [-1.0, -1.5, -1.0];
        let x = [0.0f64, -0.5, 0.5];
        for (est, want) in [
            (KlEstimator::K1, x.to_vec()),
            (KlEstimator::K2, x.iter().map(|v| v * v / 2.0).collect::<Vec<_>>()),
            (KlEstimator::K3, x.iter().map(|v| (-v).exp() - 1.0 + v).collect::<Vec<_>>()),
        ] {
            let got: Vec<f64> = est.per_token(t(&logp), t(&reference)).into_data().iter().collect();
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-6, "{est:?}: {got:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn names() {
        assert_eq!(serde_json::to_string(&KlEstimator::K3).unwrap(), "\"k3\"");
        assert_eq!(serde_json::from_str::<KlEstimator>("\"k1\"").unwrap(), KlEstimator::K1);
    }
}
