//! Correcting for the gap between the policy that sampled and the learner's old policy.
//!
//! The rollout engine and the learner compute the same policy differently (bf16 weights, other
//! kernels, another device), so the tokens were drawn from `pi_rollout`, not from the learner's
//! `pi_old` that PPO's ratio divides by. With `w = pi_old / pi_rollout` at a sampled token (or
//! the product over a sequence's tokens at the sequence level), the policy-gradient term of each
//! token is multiplied by:
//!
//! ```text
//! tis:  min(w, cap)                      truncated importance sampling (Yao et al., 2025, "Your
//!                                        Efficient RL Framework Secretly Brings You Off-Policy
//!                                        RL Training")
//! mis:  1 if 1/cap <= w <= cap, else 0   masked importance sampling: tokens (or whole sequences)
//!                                        whose ratio leaves the band get no gradient (IcePop,
//!                                        Ling Team, 2025; verl's rollout correction)
//! ```
//!
//! The weights are constants of the loss (no gradient flows through them). `pi_old` must be the
//! learner's own scoring of the batch before the update (`recompute_old_logprobs`); with the
//! rollout's log-probs standing in for it, `w` would be 1 and there would be nothing to correct.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use super::kl::LOG_RATIO_CLAMP;
use crate::error::SetRlError;

/// Which correction (`"none"`, `"tis"`, `"mis"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CorrectionKind {
    /// No correction (the default).
    #[default]
    None,
    /// Truncated importance sampling: weights `min(w, cap)`.
    Tis,
    /// Masked importance sampling: no gradient where `w` leaves `[1/cap, cap]`.
    Mis,
}

/// Where a ratio is taken (`"token"`, `"sequence"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// One ratio per token (the default).
    #[default]
    Token,
    /// One ratio per sequence, shared by its tokens.
    Sequence,
}

/// `train.loss.correction`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorrectionConfig {
    /// The correction.
    pub kind: CorrectionKind,
    /// Per token, or per sequence (the product of its tokens' ratios).
    pub level: Level,
    /// The truncation (TIS) or the band's edge (MIS); 2 by default, must be > 1.
    pub cap: f64,
}

impl Default for CorrectionConfig {
    fn default() -> Self {
        Self { kind: CorrectionKind::None, level: Level::Token, cap: 2.0 }
    }
}

impl CorrectionConfig {
    /// Whether a correction is applied.
    pub fn is_on(&self) -> bool {
        self.kind != CorrectionKind::None
    }

    pub(super) fn validate(&self) -> Result<(), SetRlError> {
        if !(self.cap > 1.0 && self.cap.is_finite()) {
            return Err(SetRlError::Config(format!(
                "correction.cap = {}, expected a finite value > 1",
                self.cap
            )));
        }
        Ok(())
    }

    /// `[B, T]` weights of the policy-gradient terms and `[B, T]` 1 where a token was truncated
    /// (TIS) or masked (MIS), both detached, from `old_logp` and `rollout_logp` `[B, T]`.
    pub(super) fn weights<B: Backend>(
        &self,
        old_logp: Tensor<B, 2>,
        rollout_logp: Tensor<B, 2>,
        mask: Tensor<B, 2>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let log_w = (old_logp.detach() - rollout_logp.detach()) * mask;
        let log_w = match self.level {
            Level::Token => log_w,
            Level::Sequence => {
                let dims = log_w.dims();
                log_w.sum_dim(1).expand(dims)
            }
        };
        let w = log_w.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP).exp();
        match self.kind {
            CorrectionKind::None => (w.ones_like(), w.zeros_like()),
            CorrectionKind::Tis => {
                let truncated = w.clone().greater_elem(self.cap).float();
                (w.clamp_max(self.cap), truncated)
            }
            CorrectionKind::Mis => {
                let keep = w
                    .clone()
                    .greater_equal_elem(1.0 / self.cap)
                    .bool_and(w.lower_equal_elem(self.cap))
                    .float();
                (keep.clone(), keep.neg().add_scalar(1.0))
            }
        }
    }
}
