//! Reference greedy decoding of one prompt with the KV cache: the simplest path from the model
//! to tokens, used to check the model against transformers' greedy continuation. Batched
//! sampling for training and evaluation (temperature, top-k/p, min-p, stop strings) is
//! `spiral-rollout`'s engine.

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

use spiral_kernels::long_rows::argmax_rows;

use crate::cache::KvCache;
use crate::error::{ModelError, Result};
use crate::model::CausalLm;

/// Continues `prompt` greedily for up to `max_new_tokens` tokens, stopping after any of
/// `stop_token_ids`, and returns only the new token ids. Ties go to the lowest id, as
/// `torch.argmax`.
pub fn generate_greedy<B: Backend>(
    model: &CausalLm<B>,
    prompt: &[u32],
    max_new_tokens: usize,
    stop_token_ids: &[u32],
) -> Result<Vec<u32>> {
    if prompt.is_empty() {
        return Err(ModelError::Input("generation needs a non-empty prompt".into()));
    }
    let limit = model.config().max_position_embeddings;
    if prompt.len() + max_new_tokens > limit {
        return Err(ModelError::Input(format!(
            "prompt ({}) + max_new_tokens ({max_new_tokens}) exceeds max_position_embeddings ({limit})",
            prompt.len()
        )));
    }
    model.check_tokens(&[prompt.to_vec()])?;
    let device = model.device();
    let mut cache =
        KvCache::with_capacity(model.config().num_layers, prompt.len() + max_new_tokens);
    let mut input: Vec<u32> = prompt.to_vec();
    let mut out = Vec::with_capacity(max_new_tokens);
    while out.len() < max_new_tokens {
        let (start, n) = (cache.len(), input.len());
        let ids: Vec<i64> = input.iter().map(|&t| t as i64).collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, n]), &device);
        let positions =
            Tensor::<B, 1, Int>::arange(start as i64..(start + n) as i64, &device).reshape([1, n]);
        let logits = argmax_rows(model.decode_step(ids, positions, None, &mut cache));
        let next =
            logits.into_data().convert::<i64>().into_vec::<i64>().expect("int ids")[0] as u32;
        out.push(next);
        if stop_token_ids.contains(&next) {
            break;
        }
        input = vec![next];
    }
    Ok(out)
}
