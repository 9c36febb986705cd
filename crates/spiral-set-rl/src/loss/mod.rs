//! The clipped policy-gradient loss on burn tensors (feature `loss`).
//!
//! PPO's clipped surrogate (Schulman et al., 2017) as GRPO (DeepSeekMath), Dr.GRPO and DAPO
//! (Yu et al., 2025) use it for LLMs: decoupled clip range (DAPO's clip-higher), optional dual clip
//! (Ye et al., 2020), optional KL to a reference policy (Schulman's k1 / k2 / k3 estimators), and
//! the three loss aggregation modes named as in verl, sequence-level ratios (GSPO), and the
//! correction of the rollout-learner mismatch ([`CorrectionConfig`]). [`policy_loss`] is the
//! entry point.

mod aggregate;
mod correction;
mod kl;
mod policy;
#[cfg(test)]
mod reference;

pub use aggregate::LossAggregation;
pub use correction::{CorrectionConfig, CorrectionKind, Level};
pub use kl::KlEstimator;
pub use policy::{
    PolicyLossConfig, PolicyLossInput, PolicyLossOutput, PolicyLossStats, policy_loss,
};
