//! A micro-batch's forward and backward passes, cut into shards that run concurrently on forks
//! of the model (burn-train's data-parallel step, on one device), their gradients coming back in
//! shard order so that summing them is deterministic.

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};
use spiral_kernels::shards::map_concurrently;
use spiral_model::{CausalLm, LayerCheckpoints};

use super::{TrainError, TrainSequence};
use crate::packing::balanced_pieces;

/// The loss of a shard of a micro-batch (to differentiate), its policy statistics, if any, and
/// the layer checkpoints to differentiate it through, if its forward pass kept them.
pub(super) type ShardLoss<B> = Result<
    (Tensor<B, 1>, Option<spiral_set_rl::PolicyLossStats>, Option<LayerCheckpoints<B>>),
    TrainError,
>;

/// The loss, statistics and gradients of one shard of a micro-batch.
pub(super) struct BackwardPass {
    pub(super) loss: f64,
    pub(super) stats: Option<spiral_set_rl::PolicyLossStats>,
    pub(super) grads: GradientsParams,
}

/// Forward and backward passes over `part`, split into at most `shards` contiguous shards of
/// about equal padded size ([`balanced_pieces`]) that run concurrently; the passes come back in
/// shard order. Each shard differentiates its own fork of the model (same parameter ids,
/// separate autodiff graph), so the gradients add up to those of the whole part.
pub(super) fn backward_passes<B: AutodiffBackend>(
    model: &CausalLm<B>,
    part: &[TrainSequence],
    shards: usize,
    loss_of: &(impl Fn(&CausalLm<B>, &[TrainSequence]) -> ShardLoss<B> + Sync),
) -> Result<Vec<BackwardPass>, TrainError> {
    let pass = |model: &CausalLm<B>, shard: &[TrainSequence]| {
        let (loss, stats, checkpoints) = loss_of(model, shard)?;
        let value = loss.clone().into_scalar().elem::<f64>();
        let grads = match checkpoints {
            None => GradientsParams::from_grads(loss.backward(), model),
            Some(checkpoints) => {
                let mut sum = GradientsAccumulator::<CausalLm<B>>::new();
                checkpoints.backward(loss, model, |grads| {
                    sum.accumulate(model, GradientsParams::from_grads(grads, model))
                });
                sum.grads()
            }
        };
        Ok(BackwardPass { loss: value, stats, grads })
    };
    let shards = shards.clamp(1, part.len());
    if shards == 1 {
        return Ok(vec![pass(model, part)?]);
    }
    let device = model.device();
    let lengths: Vec<usize> = part.iter().map(|s| s.tokens.len()).collect();
    let pieces: Vec<&[TrainSequence]> =
        balanced_pieces(&lengths, shards).into_iter().map(|piece| &part[piece]).collect();
    map_concurrently(pieces, |shard| pass(&model.clone().fork(&device), shard))
        .into_iter()
        .collect()
}
