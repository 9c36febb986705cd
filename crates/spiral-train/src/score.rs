//! Scoring a batch's completions under a model, without gradients: the log-probs of the KL
//! penalty's reference policy, and the learner's own scoring of the old policy before an update
//! (`train.loss.recompute_old_logprobs`).

use burn::tensor::backend::Backend;
use spiral_kernels::shards::{map_concurrently, shard_count};
use spiral_model::CausalLm;

use crate::learner::TrainSequence;

/// Each sequence's completion log-probs under `model` at `temperature`: the batch is split into
/// one piece per core (as the learner splits it; [`shard_count`]), each scored `chunk`
/// sequences per forward pass. A sequence's scores do not depend on the others in its pass
/// (right padding).
pub(crate) fn completion_logprobs<B: Backend>(
    model: &CausalLm<B>,
    batch: &[TrainSequence],
    chunk: usize,
    temperature: f64,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let shards = shard_count::<B>(0).clamp(1, batch.len().max(1));
    let pieces: Vec<&[TrainSequence]> = batch.chunks(batch.len().div_ceil(shards).max(1)).collect();
    let results = map_concurrently(pieces, |piece| -> anyhow::Result<Vec<Vec<f32>>> {
        let mut scored = Vec::with_capacity(piece.len());
        for part in piece.chunks(chunk.max(1)) {
            let tokens: Vec<Vec<u32>> = part.iter().map(|s| s.tokens.clone()).collect();
            let starts: Vec<usize> = part.iter().map(|s| s.prompt_len).collect();
            let scores =
                model.token_logprobs_tempered(&tokens, &starts, false, temperature)?.logprobs;
            let [_, t] = scores.dims();
            let rows: Vec<f32> = scores.into_data().convert::<f32>().into_vec().expect("f32 data");
            for (i, s) in part.iter().enumerate() {
                let at = i * t + s.prompt_len - 1;
                scored.push(rows[at..at + s.tokens.len() - s.prompt_len].to_vec());
            }
        }
        Ok(scored)
    });
    let mut all = Vec::with_capacity(batch.len());
    for piece in results {
        all.extend(piece?);
    }
    Ok(all)
}
