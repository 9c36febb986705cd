//! Single-prompt generation with the KV cache: greedy or temperature / top-p sampling with a
//! seeded generator. The batched engine for reinforcement learning is `spiral-rollout`; this is
//! the reference path used by `spiral-eval generate` and by tests.

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cache::KvCache;
use crate::error::{ModelError, Result};
use crate::model::CausalLm;

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// The most likely token (lowest id on ties, as `torch.argmax`).
    Greedy,
    /// Sample from `softmax(logits / temperature)` restricted to the top-p nucleus.
    Sample {
        /// Softmax temperature (> 0).
        temperature: f64,
        /// Nucleus mass in (0, 1]; 1 disables the cut.
        top_p: f64,
        /// Seed of the generator; the same seed and inputs give the same tokens.
        seed: u64,
    },
}

/// Options of [`generate`].
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Most tokens to add.
    pub max_new_tokens: usize,
    /// Token choice.
    pub sampling: Sampling,
    /// Stop after emitting any of these (the stop token is included in the output).
    pub stop_token_ids: Vec<u32>,
}

/// Continues `prompt` and returns only the new token ids.
pub fn generate<B: Backend>(model: &CausalLm<B>, prompt: &[u32], options: &GenerateOptions) -> Result<Vec<u32>> {
    if prompt.is_empty() {
        return Err(ModelError::Input("generation needs a non-empty prompt".into()));
    }
    if let Sampling::Sample { temperature, top_p, .. } = options.sampling {
        if !(temperature > 0.0 && temperature.is_finite()) || !(top_p > 0.0 && top_p <= 1.0) {
            return Err(ModelError::Input(format!(
                "sampling needs temperature > 0 and 0 < top_p <= 1, got temperature {temperature}, top_p {top_p}"
            )));
        }
    }
    let total = prompt.len() + options.max_new_tokens;
    let limit = model.config().max_position_embeddings;
    if total > limit {
        return Err(ModelError::Input(format!(
            "prompt ({}) + max_new_tokens ({}) exceeds max_position_embeddings ({limit})",
            prompt.len(),
            options.max_new_tokens
        )));
    }
    model.check_tokens(&[prompt.to_vec()])?;
    let device = model.device();
    let mut rng = match options.sampling {
        Sampling::Sample { seed, .. } => Some(StdRng::seed_from_u64(seed)),
        Sampling::Greedy => None,
    };
    let mut cache = KvCache::new(model.config().num_layers);
    let mut input: Vec<u32> = prompt.to_vec();
    let mut out = Vec::with_capacity(options.max_new_tokens);
    while out.len() < options.max_new_tokens {
        let start = cache.len();
        let n = input.len();
        let ids: Vec<i64> = input.iter().map(|&t| t as i64).collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, n]), &device);
        let positions = Tensor::<B, 1, Int>::arange(start as i64..(start + n) as i64, &device).reshape([1, n]);
        let logits = model.decode_step(ids, positions, None, &mut cache);
        let logits: Vec<f32> = logits.into_data().convert::<f32>().into_vec().expect("f32 logits");
        let next = match (options.sampling, rng.as_mut()) {
            (Sampling::Sample { temperature, top_p, .. }, Some(rng)) => sample(&logits, temperature, top_p, rng),
            _ => argmax(&logits),
        };
        out.push(next);
        if options.stop_token_ids.contains(&next) {
            break;
        }
        input = vec![next];
    }
    Ok(out)
}

/// Index of the largest value; the first one on ties.
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best as u32
}

/// Draws from `softmax(logits / temperature)` cut to the smallest set of most likely tokens
/// whose mass reaches `top_p` (Holtzman et al., 2020).
fn sample(logits: &[f32], temperature: f64, top_p: f64, rng: &mut StdRng) -> u32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let mut probs: Vec<(usize, f64)> =
        logits.iter().enumerate().map(|(i, &l)| (i, ((l as f64 - max) / temperature).exp())).collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut kept = 0.0;
    let mut cut = probs.len();
    for (i, p) in probs.iter().enumerate() {
        kept += p.1 / total;
        if kept >= top_p {
            cut = i + 1;
            break;
        }
    }
    let nucleus = &probs[..cut];
    let mass: f64 = nucleus.iter().map(|p| p.1).sum();
    let mut u = rng.random::<f64>() * mass;
    for &(i, p) in nucleus {
        if u < p {
            return i as u32;
        }
        u -= p;
    }
    nucleus.last().map_or(0, |p| p.0 as u32)
}
