//! The learner: one optimiser step from a batch of token sequences, either supervised (warm
//! start: mean negative log-likelihood of the completion tokens) or policy gradient (the clipped
//! surrogate of `spiral-set-rl`, with per-sequence advantages and weights). Gradients of
//! micro-batches are accumulated, clipped by their global L2 norm, and applied with AdamW at
//! the scheduled learning rate.
//!
//! Each micro-batch is split into shards, one per core, whose forward and backward passes run
//! concurrently on copies of the model with their own autodiff graphs (burn-train's
//! data-parallel step, on one device): burn's CPU kernels run element-wise work on a single
//! thread, so one pass at a time leaves the other cores idle for most of a step. The shards'
//! gradients are summed in a fixed order, so a step is deterministic for a given pool size.
//! Micro-batches and shards are cut from the batch sorted by length (see [`crate::packing`]).
//! Across processes (`with_world`), each rank's batch is its share of the step's, and the ranks'
//! gradients are summed before clipping ([`crate::distributed`]).

use std::path::Path;
use std::sync::Arc;

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsAccumulator, Optimizer};
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use spiral_kernels::shards::shard_count;
use spiral_model::{CausalLm, LayerCheckpoints};
use spiral_set_rl::{LossAggregation, PolicyLossConfig, PolicyLossInput, policy_loss};

mod clip;
mod shards;

use crate::distributed::{Collectives, SingleProcess, World, all_reduce_gradients};
use crate::packing::by_length;
use crate::schedule::{LrSchedule, OptimConfig};
use clip::clip_global_norm;
use shards::{ShardLoss, backward_passes};

/// Errors of a training step.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The batch is malformed (empty, inconsistent lengths).
    #[error("invalid training batch: {0}")]
    Batch(String),
    /// The model refused the tokens.
    #[error(transparent)]
    Model(#[from] spiral_model::ModelError),
    /// The loss configuration or inputs were refused.
    #[error(transparent)]
    Loss(#[from] spiral_set_rl::SetRlError),
    /// Optimiser state could not be written or read.
    #[error("optimizer state: {0}")]
    State(String),
    /// Summing the gradients over the ranks failed.
    #[error("summing gradients over the ranks: {0}")]
    Collective(String),
}

/// AdamW's per-parameter state, as burn records it.
type OptimRecord<B> =
    <OptimizerAdaptor<AdamW, CausalLm<B>, B> as Optimizer<CausalLm<B>, B>>::Record;

/// Every float parameter's id, in the model's visiting order (fixed by its structure).
fn param_ids<B: AutodiffBackend>(model: &CausalLm<B>) -> Vec<ParamId> {
    struct Ids(Vec<ParamId>);
    impl<B: AutodiffBackend> ModuleVisitor<B> for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.id);
        }
    }
    let mut ids = Ids(Vec::new());
    Module::<B>::visit(model, &mut ids);
    ids.0
}

/// One sequence of a training batch: prompt then completion; only completion tokens are
/// trained.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSequence {
    /// Prompt and completion token ids.
    pub tokens: Vec<u32>,
    /// Number of prompt tokens (at least 1).
    pub prompt_len: usize,
    /// The sequence's advantage (ignored by supervised steps).
    pub advantage: f64,
    /// Log-probs of the completion tokens under the policy that sampled them; `None` means the
    /// current policy (ratio 1, on-policy).
    pub old_logprobs: Option<Vec<f32>>,
    /// Log-probs of the completion tokens under the reference policy (the model RL started
    /// from), for the KL penalty; needed only when the loss has `kl_beta > 0`.
    pub ref_logprobs: Option<Vec<f32>>,
    /// Log-probs recorded by the rollout engine, when `old_logprobs` are the learner's own
    /// ([`Learner::recompute_old_logprobs`]); `None` when `old_logprobs` are the rollout's.
    pub rollout_logprobs: Option<Vec<f32>>,
    /// Weight of the sequence in the loss (search and aggregation traces may differ).
    pub weight: f64,
}

/// What one optimiser step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StepStats {
    /// Loss of the whole batch.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate applied.
    pub lr: f64,
    /// Completion tokens trained.
    pub tokens: usize,
    /// Fraction of tokens whose ratio was clipped (policy steps).
    pub clip_fraction: f64,
    /// Approximate KL(old || new) (policy steps).
    pub approx_kl: f64,
    /// KL to the reference policy, with the loss's estimator (policy steps with `kl_beta > 0`).
    pub ref_kl: f64,
    /// Mean token entropy of the current policy.
    pub entropy: f64,
    /// Mean k3 estimate of `KL(pi_rollout || pi_learner)` over the sampled tokens, before this
    /// step's update (policy steps whose sequences carry the rollout's log-probs).
    pub rollout_mismatch_kl: Option<f64>,
    /// The largest `exp(|log pi_learner - log pi_rollout|)` over the sampled tokens.
    pub rollout_mismatch_max_ratio: Option<f64>,
    /// Fraction of tokens the loss's correction truncated or masked.
    pub corrected_fraction: f64,
    /// The loss or gradient was NaN or infinite, so the update was skipped.
    pub skipped: bool,
    /// The most pieces a micro-batch was split into ([`Learner::with_shards`]; fewer when it
    /// holds fewer sequences); their gradients are summed in order, so the step's numbers
    /// depend on it up to float rounding.
    pub shards: usize,
}

/// A model with its AdamW state and schedule.
pub struct Learner<B: AutodiffBackend> {
    model: Option<CausalLm<B>>,
    optim: OptimizerAdaptor<AdamW, CausalLm<B>, B>,
    config: OptimConfig,
    micro_batch: usize,
    shards: usize,
    checkpointing: bool,
    temperature: f64,
    world: Arc<dyn Collectives>,
    step: usize,
}

impl<B: AutodiffBackend> Learner<B> {
    /// A learner starting at step 0.
    pub fn new(model: CausalLm<B>, config: OptimConfig) -> Self {
        let optim = AdamWConfig::new()
            .with_beta_1(config.beta1)
            .with_beta_2(config.beta2)
            .with_epsilon(config.eps)
            .with_weight_decay(config.weight_decay)
            .init();
        Self {
            model: Some(model),
            optim,
            config,
            micro_batch: usize::MAX,
            shards: 0,
            checkpointing: false,
            temperature: 1.0,
            world: Arc::new(SingleProcess),
            step: 0,
        }
    }

    /// Splits every batch into micro-batches of at most `size` sequences (memory bound); the
    /// step is the same as with the whole batch at once.
    pub fn with_micro_batch(mut self, size: usize) -> Self {
        self.micro_batch = size.max(1);
        self
    }

    /// Splits every micro-batch into `shards` pieces whose passes run concurrently (see the
    /// module's header); 0, the default, means one per core on the CPU and one on a GPU
    /// ([`spiral_kernels::shards::shard_count`]). The step is the same up to float
    /// rounding whatever the number.
    pub fn with_shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// Keeps only each decoder layer's input through the forward pass and re-runs one layer at
    /// a time in the backward pass ([`spiral_model::LayerCheckpoints`]): activation memory of
    /// one layer instead of all of them, for about a third more compute. The step is the same
    /// up to float rounding.
    pub fn with_activation_checkpointing(mut self, on: bool) -> Self {
        self.checkpointing = on;
        self
    }

    /// Policy steps train `softmax(logits / temperature)`, the distribution a rollout at that
    /// temperature samples from (1 by default; supervised steps always use 1).
    pub fn with_temperature(mut self, temperature: f64) -> Self {
        self.temperature = temperature;
        self
    }

    /// Scores `batch` with the learner's current weights (its own precision, before the update)
    /// and makes those the old policy's log-probs, keeping the rollout's in `rollout_logprobs`
    /// for the loss's correction and mismatch statistics. Sequences without recorded log-probs
    /// are left alone.
    pub fn recompute_old_logprobs(&self, batch: &mut [TrainSequence]) -> Result<(), TrainError> {
        let model = self.model().valid();
        let chunk = self.micro_batch.min(batch.len()).max(1);
        let scored = crate::score::completion_logprobs(&model, batch, chunk, self.temperature)
            .map_err(|e| TrainError::Batch(format!("scoring the old policy: {e:#}")))?;
        for (s, learner) in batch.iter_mut().zip(scored) {
            if let Some(rollout) = s.old_logprobs.replace(learner) {
                s.rollout_logprobs = Some(rollout);
            } else {
                s.old_logprobs = None;
            }
        }
        Ok(())
    }

    /// Trains data-parallel with the other ranks of `world` ([`crate::distributed`]): every
    /// step's batch is this rank's share of the whole batch (which may be empty), and the step
    /// taken is the whole batch's, the same on every rank. Every rank must start from the same
    /// weights and call the same steps.
    pub fn with_world(mut self, world: Arc<dyn Collectives>) -> Self {
        self.world = world;
        self
    }

    /// The current model.
    pub fn model(&self) -> &CausalLm<B> {
        self.model.as_ref().expect("the model is only taken during a step")
    }

    /// The model without autodiff, for sampling and evaluation. LoRA adapters are merged into
    /// this copy (one matmul per projection instead of three at every decode step), and its
    /// weights are stored in the compute dtype (in bf16 a decode step reads half the bytes).
    pub fn inference_model(&self) -> CausalLm<B::InnerBackend> {
        self.model().valid().merge_lora().with_weights_in_compute_dtype()
    }

    /// Optimiser steps taken.
    pub fn steps(&self) -> usize {
        self.step
    }

    /// Writes the AdamW moments to `path` (burn's binary record format). Parameters are keyed
    /// by their position in the model's visiting order, not by their in-memory `ParamId`, so a
    /// model rebuilt from its safetensors finds its own moments again.
    pub fn save_optimizer(&self, path: &Path) -> Result<(), TrainError> {
        let ids = param_ids(self.model());
        let mut record = self.optim.to_record();
        let by_position: OptimRecord<B> = ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| Some((ParamId::from(i as u64), record.remove(id)?)))
            .collect();
        BinFileRecorder::<FullPrecisionSettings>::new()
            .record(by_position, path.to_path_buf())
            .map_err(|e| TrainError::State(format!("{}: {e}", path.display())))
    }

    /// Restores what [`Learner::save_optimizer`] wrote and the number of steps taken (which
    /// sets the learning rate schedule's position).
    pub fn restore(mut self, optimizer: &Path, steps: usize) -> Result<Self, TrainError> {
        let device = self.model().device();
        let by_position: OptimRecord<B> = BinFileRecorder::<FullPrecisionSettings>::new()
            .load(optimizer.to_path_buf(), &device)
            .map_err(|e| TrainError::State(format!("{}: {e}", optimizer.display())))?;
        let ids = param_ids(self.model());
        let mut record = OptimRecord::<B>::default();
        for (position, state) in by_position {
            let id = ids.get(position.val() as usize).ok_or_else(|| {
                TrainError::State(format!(
                    "{}: optimizer state for parameter {} but the model has {}",
                    optimizer.display(),
                    position.val(),
                    ids.len()
                ))
            })?;
            record.insert(*id, state);
        }
        self.optim = self.optim.load_record(record);
        self.step = steps;
        Ok(self)
    }

    /// Supervised step: mean negative log-likelihood over all completion tokens of the batch.
    pub fn sft_step(&mut self, batch: &[TrainSequence]) -> Result<StepStats, TrainError> {
        let [total_tokens, _] = self.global_counts(check_batch(batch, self.sharded())?);
        let checkpointing = self.checkpointing;
        self.run_step(batch, total_tokens, |model, part| {
            let (logp, mask, _, checkpoints) =
                completion_logprobs(model, part, false, checkpointing, 1.0)?;
            let loss = logp.mul(mask).sum().neg().div_scalar(total_tokens);
            Ok((loss, None, checkpoints))
        })
    }

    /// Policy-gradient step with the clipped surrogate of `spiral-set-rl`.
    pub fn policy_step(
        &mut self,
        batch: &[TrainSequence],
        loss: &PolicyLossConfig,
    ) -> Result<StepStats, TrainError> {
        let [total_tokens, sequences] = self.global_counts(check_batch(batch, self.sharded())?);
        if loss.kl_beta > 0.0 && batch.iter().any(|s| s.ref_logprobs.is_none()) {
            return Err(TrainError::Batch(
                "kl_beta > 0 needs every sequence's reference log-probs (ref_logprobs)".into(),
            ));
        }
        // Micro-batches share the denominator of the whole batch so they add up to its loss.
        let denominator = match loss.aggregation {
            LossAggregation::TokenMean => total_tokens,
            _ => sequences,
        };
        let (checkpointing, temperature) = (self.checkpointing, self.temperature);
        self.run_step(batch, total_tokens, |model, part| {
            let device = model.device();
            let (logp, mask, entropy, checkpoints) =
                completion_logprobs(model, part, true, checkpointing, temperature)?;
            let [b, t] = logp.dims();
            let reference = (loss.kl_beta > 0.0).then(|| {
                let mut values = vec![0.0f32; b * t];
                for (i, s) in part.iter().enumerate() {
                    let lp = s.ref_logprobs.as_ref().expect("checked above");
                    let at = i * t + s.prompt_len - 1;
                    values[at..at + lp.len()].copy_from_slice(lp);
                }
                Tensor::from_data(TensorData::new(values, [b, t]), &device)
            });
            let mut old = vec![0.0f32; b * t];
            let logp_host: Option<Vec<f32>> = if part.iter().any(|s| s.old_logprobs.is_none()) {
                Some(logp.clone().detach().into_data().convert::<f32>().into_vec().expect("f32"))
            } else {
                None
            };
            for (i, s) in part.iter().enumerate() {
                for j in 0..s.tokens.len() - s.prompt_len {
                    let at = i * t + s.prompt_len - 1 + j;
                    old[at] = match &s.old_logprobs {
                        Some(lp) => lp[j],
                        None => logp_host.as_ref().expect("computed when needed")[at],
                    };
                }
            }
            // What the rollout recorded: its own log-probs, or the old policy's when those are
            // the rollout's; measured against the learner's, and corrected for by the loss.
            fn recorded(s: &TrainSequence) -> Option<&Vec<f32>> {
                s.rollout_logprobs.as_ref().or(s.old_logprobs.as_ref())
            }
            let rollout = part.iter().all(|s| recorded(s).is_some()).then(|| {
                let mut values = vec![0.0f32; b * t];
                for (i, s) in part.iter().enumerate() {
                    let lp = recorded(s).expect("checked");
                    let at = i * t + s.prompt_len - 1;
                    values[at..at + lp.len()].copy_from_slice(lp);
                }
                Tensor::from_data(TensorData::new(values, [b, t]), &device)
            });
            let adv: Vec<f32> = part.iter().map(|s| s.advantage as f32).collect();
            let weights: Vec<f32> = part.iter().map(|s| s.weight as f32).collect();
            let mut input = PolicyLossInput::new(
                logp,
                Tensor::from_data(TensorData::new(old, [b, t]), &device),
                Tensor::from_data(TensorData::new(adv, [b]), &device),
                mask,
            );
            input.weights = Some(Tensor::from_data(TensorData::new(weights, [b]), &device));
            input.ref_logp = reference;
            input.rollout_logp = rollout;
            input.entropy = entropy;
            input.denominator = Some(denominator);
            let out = policy_loss(loss, input)?;
            Ok((out.loss.reshape([1]), Some(out.stats), checkpoints))
        })
    }

    /// Whether batches are shares of a batch split across ranks (and may be empty).
    fn sharded(&self) -> bool {
        self.world.world_size() > 1
    }

    /// The whole batch's `[completion tokens, sequences with a completion]`, summed over ranks.
    fn global_counts(&self, local: [usize; 2]) -> [f64; 2] {
        let mut counts = local.map(|x| x as f64);
        self.world.sum_f64(&mut counts);
        counts
    }

    /// Runs the micro-batches, accumulates gradients, sums them over ranks, clips and applies
    /// them.
    fn run_step(
        &mut self,
        batch: &[TrainSequence],
        total_tokens: f64,
        loss_of: impl Fn(&CausalLm<B>, &[TrainSequence]) -> ShardLoss<B> + Sync,
    ) -> Result<StepStats, TrainError> {
        let model = self.model.take().expect("model present between steps");
        let mut accumulator = GradientsAccumulator::<CausalLm<B>>::new();
        let mut stats = StepStats { tokens: total_tokens as usize, ..Default::default() };
        let mut weighted = 0.0;
        // Token-weighted sums of the mismatch KL, the tokens it was measured on, and the
        // largest log mismatch ratio.
        let (mut mismatch, mut mismatch_tokens, mut mismatch_max) = (0.0, 0.0, 0.0f64);
        let shards = self.shards(&model);
        stats.shards = shards;
        let batch = by_length(batch);
        for part in batch.chunks(self.micro_batch.min(batch.len()).max(1)) {
            let passes = match backward_passes(&model, part, shards, &loss_of) {
                Ok(passes) => passes,
                Err(e) => {
                    self.model = Some(model);
                    return Err(e);
                }
            };
            for pass in passes {
                stats.loss += pass.loss;
                if let Some(s) = pass.stats {
                    let share = s.num_tokens;
                    stats.clip_fraction += s.clip_fraction * share;
                    stats.approx_kl += s.approx_kl * share;
                    stats.ref_kl += s.ref_kl.unwrap_or(0.0) * share;
                    stats.entropy += s.entropy.unwrap_or(0.0) * share;
                    stats.corrected_fraction += s.corrected_fraction * share;
                    weighted += share;
                    if let (Some(kl), Some(max)) =
                        (s.rollout_mismatch_kl, s.rollout_mismatch_max_ratio)
                    {
                        mismatch += kl * share;
                        mismatch_tokens += share;
                        mismatch_max = mismatch_max.max(max.ln());
                    }
                }
                accumulator.accumulate(&model, pass.grads);
            }
        }
        // Every rank's sums, added over the ranks in one collective.
        let mut totals = [
            &mut stats.loss,
            &mut stats.clip_fraction,
            &mut stats.approx_kl,
            &mut stats.ref_kl,
            &mut stats.entropy,
            &mut stats.corrected_fraction,
            &mut weighted,
            &mut mismatch,
            &mut mismatch_tokens,
        ];
        let mut sums: Vec<f64> = totals.iter().map(|x| **x).collect();
        self.world.sum_f64(&mut sums);
        for (total, sum) in totals.iter_mut().zip(sums) {
            **total = sum;
        }
        if weighted > 0.0 {
            stats.clip_fraction /= weighted;
            stats.approx_kl /= weighted;
            stats.ref_kl /= weighted;
            stats.entropy /= weighted;
            stats.corrected_fraction /= weighted;
        }
        // Every rank takes part in the maximum, measured or not.
        let max_log_ratio = World(self.world.clone()).sum_and_max(mismatch_max)[1];
        if mismatch_tokens > 0.0 {
            stats.rollout_mismatch_kl = Some(mismatch / mismatch_tokens);
            stats.rollout_mismatch_max_ratio = Some(max_log_ratio.exp());
        }
        let mut grads = accumulator.grads();
        if let Err(e) = all_reduce_gradients(&model, &mut grads, self.world.as_ref()) {
            self.model = Some(model);
            return Err(TrainError::Collective(e));
        }
        stats.grad_norm = clip_global_norm(&model, &mut grads, self.config.max_grad_norm);
        stats.lr = self.config.lr_at(self.step);
        if !(stats.loss.is_finite() && stats.grad_norm.is_finite()) {
            // A non-finite update would poison the weights and the optimiser state: skip it and
            // let the caller decide whether to stop.
            stats.skipped = true;
            self.model = Some(model);
            return Ok(stats);
        }
        self.model = Some(self.optim.step(stats.lr, model, grads));
        self.step += 1;
        Ok(stats)
    }

    /// How many shards a micro-batch is split into: as configured, but one when LoRA dropout
    /// draws from burn's global generator, whose draws would then depend on how the threads
    /// interleave.
    fn shards(&self, model: &CausalLm<B>) -> usize {
        if model.lora().is_some_and(|l| l.dropout > 0.0) {
            1
        } else {
            shard_count::<B>(self.shards)
        }
    }
}

/// Refuses empty batches (unless `may_be_empty`: a rank's share) and sequences without
/// completion tokens; returns the completion tokens and the sequences that have any.
fn check_batch(batch: &[TrainSequence], may_be_empty: bool) -> Result<[usize; 2], TrainError> {
    if batch.is_empty() && !may_be_empty {
        return Err(TrainError::Batch("the batch is empty".into()));
    }
    let (mut total, mut sequences) = (0, 0);
    for (i, s) in batch.iter().enumerate() {
        if s.prompt_len == 0 || s.prompt_len > s.tokens.len() {
            return Err(TrainError::Batch(format!(
                "sequence {i}: prompt_len {} outside 1..={}",
                s.prompt_len,
                s.tokens.len()
            )));
        }
        let completion = s.tokens.len() - s.prompt_len;
        let recorded = [
            ("old", &s.old_logprobs),
            ("reference", &s.ref_logprobs),
            ("rollout", &s.rollout_logprobs),
        ];
        for (what, logprobs) in recorded {
            if let Some(lp) = logprobs
                && lp.len() != completion
            {
                return Err(TrainError::Batch(format!(
                    "sequence {i}: {} {what} log-probs for {completion} completion tokens",
                    lp.len()
                )));
            }
        }
        total += completion;
        sequences += usize::from(completion > 0);
    }
    Ok([total, sequences])
}

/// `(log-probs, mask, entropy)`, each `[b, t-1]`, and the layer checkpoints when asked for.
type CompletionScores<B> =
    (Tensor<B, 2>, Tensor<B, 2>, Option<Tensor<B, 2>>, Option<LayerCheckpoints<B>>);

/// Log-probs `[b, t-1]` of every completion token, the 0/1 completion mask, and (optionally)
/// the per-token entropy; with `checkpointing`, through a checkpointed forward pass.
fn completion_logprobs<B: AutodiffBackend>(
    model: &CausalLm<B>,
    part: &[TrainSequence],
    with_entropy: bool,
    checkpointing: bool,
    temperature: f64,
) -> Result<CompletionScores<B>, TrainError> {
    let seqs: Vec<Vec<u32>> = part.iter().map(|s| s.tokens.clone()).collect();
    let starts: Vec<usize> = part.iter().map(|s| s.prompt_len).collect();
    let (scores, checkpoints) = if checkpointing {
        model.token_logprobs_checkpointed(&seqs, &starts, with_entropy, temperature)?
    } else {
        (model.token_logprobs_tempered(&seqs, &starts, with_entropy, temperature)?, None)
    };
    let [b, t] = scores.logprobs.dims();
    let mut mask = vec![0.0f32; b * t];
    for (i, s) in part.iter().enumerate() {
        for pos in s.prompt_len.max(1)..s.tokens.len() {
            mask[i * t + pos - 1] = 1.0;
        }
    }
    let mask = Tensor::from_data(TensorData::new(mask, [b, t]), &model.device());
    Ok((scores.logprobs, mask, scores.entropy.map(|e| e.detach()), checkpoints))
}
