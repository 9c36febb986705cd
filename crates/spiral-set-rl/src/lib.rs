//! Set reinforcement learning: SPIRAL's set advantages, pass@k and GRPO-family advantages, and the
//! clipped policy-gradient loss.
//!
//! The estimators are pure functions of `f64` rewards with no model code, so other projects can
//! take them alone (`default-features = false`); the loss (feature `loss`, on by default) works on
//! burn tensors for any backend. Formulas and papers are in each module's header:
//! GRPO (DeepSeekMath), Dr.GRPO (Liu et al., 2025), RLOO (Ahmadian et al., 2024), pass@k
//! (Chen et al., 2021 and 2025; ParaGator), SPIRAL (Ibn Hamid et al., 2026), and the DAPO /
//! PPO clipped loss.
//!
//! ```
//! use spiral_set_rl::{Estimator, SpiralConfig, spiral_advantages};
//!
//! // A group of four responses to one prompt, scored 0/1.
//! let a = Estimator::DrGrpo.advantages(&[1.0, 0.0, 0.0, 1.0]).unwrap();
//! assert_eq!(a, vec![0.5, -0.5, -0.5, 0.5]);
//!
//! // SPIRAL: 4 search traces, two sets of two, two aggregation traces per set.
//! let sets = [[0, 1], [1, 2]];
//! let aggregation_rewards = [[1.0, 1.0], [0.0, 1.0]];
//! let adv = spiral_advantages(4, &sets, &aggregation_rewards, &SpiralConfig::default()).unwrap();
//! assert_eq!(adv.set_advantages, vec![0.25, -0.25]);
//! assert_eq!(adv.search_advantages, vec![0.25, 0.0, -0.25, 0.0]); // trace 3 is in no set
//! assert_eq!(adv.aggregation_advantages, vec![vec![0.0, 0.0], vec![-0.5, 0.5]]);
//! ```

mod error;
mod estimator;
mod grpo;
mod jsonl;
#[cfg(feature = "loss")]
mod loss;
mod pass_at_k;
mod rloo;
mod spiral;
mod stats;

pub use error::SetRlError;
pub use estimator::Estimator;
pub use grpo::{GRPO_EPS, dr_grpo_advantages, grpo_advantages};
pub use jsonl::{AdvantageRequest, AdvantageResponse, process_jsonl};
#[cfg(feature = "loss")]
pub use loss::{
    CorrectionConfig, CorrectionKind, KlEstimator, Level, LossAggregation, PolicyLossConfig,
    PolicyLossInput, PolicyLossOutput, PolicyLossStats, policy_loss,
};
pub use pass_at_k::{binomial_ratio, pass_at_k, pass_at_k_advantages};
pub use rloo::rloo_advantages;
pub use spiral::{
    MAX_SEARCH_TRACES, SetBaseline, SpiralAdvantages, SpiralConfig, spiral_advantages,
};
pub use stats::{GroupStats, SpiralStats, Summary, is_constant, mean, sample_std};
