//! The clipped policy-gradient loss and the statistics a trainer logs with it.
//!
//! Per token t of sequence i, with `rho = exp(logp - logp_old)` (the log-ratio clamped to
//! `[-20, 20]`) and the sequence's advantage `A_i`:
//!
//! ```text
//! pg_it = -min(rho * A_i, clip(rho, 1 - eps_low, 1 + eps_high) * A_i)        PPO / DAPO
//! pg_it = min(pg_it, -c * A_i)                     if A_i < 0 and dual clip c   Ye et al. (2020)
//! l_it  = pg_it + beta * KL_it                     KL_it from k1 / k2 / k3 against pi_ref
//! ```
//!
//! then reduced by a [`LossAggregation`] mode with per-sequence weights. Schulman et al. (2017)
//! for the clipped surrogate, DAPO (Yu et al., 2025) for the decoupled `eps_low` / `eps_high`
//! ("clip-higher"), DeepSeekMath's GRPO for the KL term in the loss.
//!
//! With `ratio_level = sequence` (GSPO, Zheng et al., 2025, "Group Sequence Policy
//! Optimization") every token of sequence i takes the sequence's ratio
//! `s_i = exp(mean_t(logp_it - logp_old_it))`, clipped as a whole; with
//! `aggregation = seq-mean-token-mean` the loss is then GSPO's `mean_i(-min(s_i A_i,
//! clip(s_i) A_i))`. A [`CorrectionConfig`] multiplies each `pg_it` by an importance weight
//! between the rollout's and the learner's old policy. Given the rollout's log-probs, the
//! statistics also measure that mismatch before any update: the mean k3 estimate of
//! `KL(pi_rollout || pi_theta)` and the largest factor by which the two disagree on a token.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use super::aggregate::LossAggregation;
use super::correction::{CorrectionConfig, Level};
use super::kl::{KlEstimator, LOG_RATIO_CLAMP};
use crate::error::SetRlError;

/// Hyper-parameters of the policy loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyLossConfig {
    /// `eps_low`: the ratio is clipped below at `1 - eps_low` (0.2; must lie in `[0, 1)`).
    pub clip_low: f64,
    /// `eps_high`: the ratio is clipped above at `1 + eps_high` (0.2; DAPO clip-higher: 0.28).
    pub clip_high: f64,
    /// Dual-clip constant `c > 1`: for negative advantages the loss is capped at `-c * A`
    /// (verl's `clip_ratio_c`, usually 3). `None` turns dual clipping off.
    pub dual_clip: Option<f64>,
    /// KL coefficient beta (0: no KL term, and no reference log-probs are needed).
    pub kl_beta: f64,
    /// The KL estimator when `kl_beta > 0`.
    pub kl_estimator: KlEstimator,
    /// How per-token losses become one number.
    pub aggregation: LossAggregation,
    /// Ratios per token (PPO, GRPO; the default) or per sequence (GSPO).
    pub ratio_level: Level,
    /// The correction of the rollout-learner mismatch (none by default).
    pub correction: CorrectionConfig,
    /// For the trainer: score every batch with the learner before its update and use those
    /// log-probs as the old policy's, the rollout's then feeding only the correction and the
    /// mismatch statistics. Needed by a correction.
    pub recompute_old_logprobs: bool,
}

impl Default for PolicyLossConfig {
    fn default() -> Self {
        PolicyLossConfig {
            clip_low: 0.2,
            clip_high: 0.2,
            dual_clip: None,
            kl_beta: 0.0,
            kl_estimator: KlEstimator::K3,
            aggregation: LossAggregation::TokenMean,
            ratio_level: Level::Token,
            correction: CorrectionConfig::default(),
            recompute_old_logprobs: false,
        }
    }
}

impl PolicyLossConfig {
    /// Checks every value is in range; the error names the field.
    pub fn validate(&self) -> Result<(), SetRlError> {
        let bad = |msg: String| Err(SetRlError::Config(msg));
        if !(0.0..1.0).contains(&self.clip_low) {
            return bad(format!("clip_low = {}, expected 0 <= clip_low < 1", self.clip_low));
        }
        if !(self.clip_high >= 0.0 && self.clip_high.is_finite()) {
            return bad(format!("clip_high = {}, expected a finite value >= 0", self.clip_high));
        }
        if let Some(c) = self.dual_clip
            && !(c > 1.0 && c.is_finite())
        {
            return bad(format!("dual_clip = {c}, expected a finite value > 1"));
        }
        if !(self.kl_beta >= 0.0 && self.kl_beta.is_finite()) {
            return bad(format!("kl_beta = {}, expected a finite value >= 0", self.kl_beta));
        }
        if let LossAggregation::SeqMeanTokenSumNorm { max_len: 0 } = self.aggregation {
            return bad("aggregation max_len = 0, expected >= 1".to_string());
        }
        self.correction.validate()?;
        if self.correction.is_on() && !self.recompute_old_logprobs {
            return bad("a correction (correction.kind) needs recompute_old_logprobs = true: \
                        without it the old policy is the rollout's and there is nothing to correct"
                .to_string());
        }
        Ok(())
    }
}

/// The tensors of one (micro-)batch. `B` sequences of up to `T` tokens, right-padded.
#[derive(Debug, Clone)]
pub struct PolicyLossInput<B: Backend> {
    /// `[B, T]` log-probs of the sampled tokens under the current policy, with autodiff.
    pub logp: Tensor<B, 2>,
    /// `[B, T]` log-probs under the policy that sampled them (detached here).
    pub old_logp: Tensor<B, 2>,
    /// `[B, T]` log-probs under the reference policy (detached here); needed only if `kl_beta > 0`.
    pub ref_logp: Option<Tensor<B, 2>>,
    /// `[B, T]` log-probs recorded by the rollout engine that sampled the tokens (detached here),
    /// when `old_logp` is the learner's; needed by a correction, and measured against `logp`.
    pub rollout_logp: Option<Tensor<B, 2>>,
    /// `[B]` one advantage per sequence.
    pub advantages: Tensor<B, 1>,
    /// `[B, T]` 1 for a real response token, 0 for prompt or padding. Padded positions of the
    /// other tensors are multiplied by 0, so they must hold finite values (0 is customary).
    pub mask: Tensor<B, 2>,
    /// `[B]` per-sequence weights (e.g. search vs aggregation traces); `None` means all 1.
    pub weights: Option<Tensor<B, 1>>,
    /// `[B, T]` per-token entropy of the policy, for the statistics only.
    pub entropy: Option<Tensor<B, 2>>,
    /// Replaces the aggregation's denominator for gradient accumulation (see
    /// [`LossAggregation::reduce`]).
    pub denominator: Option<f64>,
}

impl<B: Backend> PolicyLossInput<B> {
    /// The required inputs; no reference, weights, entropy or denominator.
    pub fn new(
        logp: Tensor<B, 2>,
        old_logp: Tensor<B, 2>,
        advantages: Tensor<B, 1>,
        mask: Tensor<B, 2>,
    ) -> Self {
        PolicyLossInput {
            logp,
            old_logp,
            ref_logp: None,
            rollout_logp: None,
            advantages,
            mask,
            weights: None,
            entropy: None,
            denominator: None,
        }
    }
}

/// Statistics of one loss evaluation, each a token mean over unmasked tokens (unweighted) unless
/// said otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PolicyLossStats {
    /// The loss value.
    pub loss: f64,
    /// The policy-gradient part of the loss, aggregated like the loss.
    pub pg_loss: f64,
    /// Fraction of tokens where the clipped term is the active one (the token gets no gradient).
    pub clip_fraction: f64,
    /// Fraction of tokens where the dual clip is the active one (0 when off).
    pub dual_clip_fraction: f64,
    /// k3 estimate of `KL(pi_old || pi_theta)`: `rho - 1 - log rho`.
    pub approx_kl: f64,
    /// Mean KL estimate to the reference policy (with the configured estimator), when given one.
    pub ref_kl: Option<f64>,
    /// Mean importance ratio `rho`.
    pub mean_ratio: f64,
    /// Mean per-token entropy, when the caller passed it.
    pub entropy: Option<f64>,
    /// Number of unmasked tokens.
    pub num_tokens: f64,
    /// Fraction of tokens whose correction weight was truncated (TIS) or that were masked (MIS).
    pub corrected_fraction: f64,
    /// Given the rollout's log-probs: the mean k3 estimate of `KL(pi_rollout || pi_theta)`.
    pub rollout_mismatch_kl: Option<f64>,
    /// Given the rollout's log-probs: the largest `exp(|logp - logp_rollout|)` over tokens.
    pub rollout_mismatch_max_ratio: Option<f64>,
}

/// The loss to call `backward` on, and its statistics.
#[derive(Debug, Clone)]
pub struct PolicyLossOutput<B: Backend> {
    /// `[1]` the scalar loss, differentiable through `logp`.
    pub loss: Tensor<B, 1>,
    /// Statistics, read back from the device in one transfer.
    pub stats: PolicyLossStats,
}

/// The clipped policy-gradient loss with optional dual clip and KL penalty (formulas in the
/// module doc).
///
/// Shapes: `logp`, `old_logp`, `ref_logp`, `mask`, `entropy` `[B, T]`; `advantages`, `weights`
/// `[B]`; returns a `[1]` loss. Errors on an invalid config, a shape mismatch (naming the input),
/// or `kl_beta > 0` without `ref_logp`. A reference passed with `kl_beta = 0` only feeds
/// `stats.ref_kl`.
pub fn policy_loss<B: Backend>(
    config: &PolicyLossConfig,
    input: PolicyLossInput<B>,
) -> Result<PolicyLossOutput<B>, SetRlError> {
    config.validate()?;
    check_shapes(&input)?;
    if config.kl_beta > 0.0 && input.ref_logp.is_none() {
        return Err(SetRlError::MissingReference { beta: config.kl_beta });
    }
    if config.correction.is_on() && input.rollout_logp.is_none() {
        return Err(SetRlError::Config(
            "a correction needs the rollout's log-probs (rollout_logp)".to_string(),
        ));
    }
    let PolicyLossInput {
        logp,
        old_logp,
        ref_logp,
        rollout_logp,
        advantages,
        mask,
        weights,
        entropy,
        denominator,
    } = input;
    let adv = advantages.unsqueeze_dim::<2>(1); // [B, 1], broadcast over time

    let log_ratio = match config.ratio_level {
        Level::Token => logp.clone() - old_logp.clone().detach(),
        Level::Sequence => {
            // The mean over the sequence's tokens, the same for each of them.
            let dims = logp.dims();
            let sum = ((logp.clone() - old_logp.clone().detach()) * mask.clone()).sum_dim(1);
            (sum / mask.clone().sum_dim(1).clamp_min(1.0)).expand(dims)
        }
    };
    let log_ratio = log_ratio.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP);
    let ratio = log_ratio.clone().exp();
    let pg_unclipped = -(ratio.clone() * adv.clone());
    let clipped_ratio = ratio.clone().clamp(1.0 - config.clip_low, 1.0 + config.clip_high);
    let pg_clipped = -(clipped_ratio * adv.clone());
    let clip_active = pg_clipped.clone().greater(pg_unclipped.clone());
    let mut pg = pg_unclipped.max_pair(pg_clipped);
    let mut dual_active = None;
    if let Some(c) = config.dual_clip {
        let cap = adv.clone().mul_scalar(-c); // [B, 1]
        let negative = adv.lower_elem(0.0); // [B, 1]
        let capped = pg.clone().min_pair(cap.clone());
        let active = pg.clone().greater(cap).bool_and(negative.clone().expand(pg.dims()));
        pg = pg.clone().mask_where(negative.expand(pg.dims()), capped);
        dual_active = Some(active);
    }
    let mut corrected = None;
    if let (true, Some(rollout)) = (config.correction.is_on(), &rollout_logp) {
        let (weight, hit) = config.correction.weights(old_logp, rollout.clone(), mask.clone());
        pg = pg * weight;
        corrected = Some(hit);
    }

    let mode = config.aggregation;
    let pg_loss = mode.reduce(pg, mask.clone(), weights.clone(), denominator);
    let ref_kl = ref_logp.map(|r| config.kl_estimator.per_token(logp.clone(), r.detach()));
    let loss = match &ref_kl {
        Some(kl) if config.kl_beta > 0.0 => {
            let kl_loss = mode.reduce(kl.clone(), mask.clone(), weights, denominator);
            pg_loss.clone() + kl_loss.mul_scalar(config.kl_beta)
        }
        _ => pg_loss.clone(),
    };

    let stats = read_stats(StatTensors {
        loss: loss.clone().detach(),
        pg_loss: pg_loss.detach(),
        mask,
        clip_active: clip_active.float(),
        dual_active: dual_active.map(|d| d.float()),
        log_ratio: log_ratio.detach(),
        ref_kl: ref_kl.map(|k| k.detach()),
        entropy,
        corrected,
        rollout_log_ratio: rollout_logp.map(|r| logp.detach() - r.detach()),
    });
    Ok(PolicyLossOutput { loss, stats })
}

/// The detached tensors the statistics are read from.
struct StatTensors<B: Backend> {
    loss: Tensor<B, 1>,
    pg_loss: Tensor<B, 1>,
    mask: Tensor<B, 2>,
    clip_active: Tensor<B, 2>,
    dual_active: Option<Tensor<B, 2>>,
    log_ratio: Tensor<B, 2>,
    ref_kl: Option<Tensor<B, 2>>,
    entropy: Option<Tensor<B, 2>>,
    corrected: Option<Tensor<B, 2>>,
    /// `logp - logp_rollout`, when the rollout's log-probs were given.
    rollout_log_ratio: Option<Tensor<B, 2>>,
}

/// Token means of the statistics, gathered into one tensor so one device read returns them all.
fn read_stats<B: Backend>(t: StatTensors<B>) -> PolicyLossStats {
    let mask = t.mask.detach();
    let num_tokens = mask.clone().sum();
    let denom = num_tokens.clone().clamp_min(1.0);
    let token_mean = |x: Tensor<B, 2>| (x * mask.clone()).sum() / denom.clone();
    let ratio = t.log_ratio.clone().exp();
    let approx_kl = ratio.clone() - t.log_ratio - 1.0;
    let mut scalars = vec![
        t.loss,
        t.pg_loss,
        token_mean(t.clip_active),
        token_mean(approx_kl),
        token_mean(ratio),
        num_tokens,
    ];
    // k3 of KL(pi_rollout || pi_theta) from x = log(pi_theta / pi_rollout) at tokens the rollout
    // drew, and the largest |x| among real tokens.
    let mismatch = t.rollout_log_ratio.map(|x| {
        let x = x.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP);
        (x.clone().exp() - x.clone() - 1.0, x.abs() * mask.clone())
    });
    let (mismatch_kl, mismatch_abs) = match mismatch {
        Some((kl, abs)) => (Some(kl), Some(abs)),
        None => (None, None),
    };
    let optional =
        [t.dual_active, t.ref_kl, t.entropy.map(Tensor::detach), t.corrected, mismatch_kl];
    let present: Vec<bool> = optional.iter().map(Option::is_some).collect();
    scalars.extend(optional.into_iter().flatten().map(token_mean));
    let has_max = mismatch_abs.is_some();
    scalars.extend(mismatch_abs.map(|abs| abs.max().reshape([1])));
    let values: Vec<f64> = Tensor::cat(scalars, 0).into_data().iter::<f64>().collect();

    let mut extra = values[6..].iter().copied();
    let mut next = |is_present: bool| if is_present { extra.next() } else { None };
    let dual = next(present[0]);
    let ref_kl = next(present[1]);
    let entropy = next(present[2]);
    let corrected = next(present[3]);
    let rollout_mismatch_kl = next(present[4]);
    let rollout_mismatch_max_ratio = next(has_max).map(f64::exp);
    PolicyLossStats {
        loss: values[0],
        pg_loss: values[1],
        clip_fraction: values[2],
        dual_clip_fraction: dual.unwrap_or(0.0),
        approx_kl: values[3],
        ref_kl,
        mean_ratio: values[4],
        entropy,
        num_tokens: values[5],
        corrected_fraction: corrected.unwrap_or(0.0),
        rollout_mismatch_kl,
        rollout_mismatch_max_ratio,
    }
}

/// Checks every input's shape against `logp`'s `[B, T]`.
fn check_shapes<B: Backend>(input: &PolicyLossInput<B>) -> Result<(), SetRlError> {
    let [b, t] = input.logp.dims();
    let expect = |what: &str, actual: Vec<usize>, expected: Vec<usize>| {
        if actual == expected {
            Ok(())
        } else {
            Err(SetRlError::Shape { what: what.to_string(), expected, actual })
        }
    };
    expect("old_logp", input.old_logp.dims().to_vec(), vec![b, t])?;
    expect("mask", input.mask.dims().to_vec(), vec![b, t])?;
    expect("advantages", input.advantages.dims().to_vec(), vec![b])?;
    if let Some(r) = &input.ref_logp {
        expect("ref_logp", r.dims().to_vec(), vec![b, t])?;
    }
    if let Some(r) = &input.rollout_logp {
        expect("rollout_logp", r.dims().to_vec(), vec![b, t])?;
    }
    if let Some(w) = &input.weights {
        expect("weights", w.dims().to_vec(), vec![b])?;
    }
    if let Some(e) = &input.entropy {
        expect("entropy", e.dims().to_vec(), vec![b, t])?;
    }
    if let Some(d) = input.denominator
        && !(d > 0.0 && d.is_finite())
    {
        return Err(SetRlError::Config(format!("denominator = {d}, expected a finite value > 0")));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
