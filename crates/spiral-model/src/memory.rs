//! How much memory a forward or training pass will take, estimated from the shapes before any
//! work, so that a pass too large for the machine stops with an error that names the length and
//! the option to change, instead of the process being killed half-way.
//!
//! The estimate counts what the passes hold at their peak, in float32 (bf16 compute keeps most
//! activations at half the size, so it only overestimates there):
//!
//! - weights; for training also the gradients and AdamW's two moments of those trained (all of
//!   them, or none of the base's with LoRA, whose adapters are small enough to leave out);
//! - activations: per token and layer, the tensors a decoder layer keeps for its backward pass
//!   (norm outputs, projections before and after the rotary embedding, the attention output, the
//!   MLP's gate, up and product) in training, or one layer's worth in flight when scoring. With
//!   activation checkpointing, every layer's input plus one layer's activations;
//! - attention: the `heads x t x t` scores and weights per layer on the dense path (kept for the
//!   backward pass in training); nothing quadratic on the blockwise path
//!   ([`crate::BLOCKWISE_FROM_SCORES`]);
//! - the vocabulary projection: one chunk of logits when scoring; in training the scored rows'
//!   logits, which the backward pass of the log-softmax reads.
//!
//! Allocator slack and burn's temporaries come on top: the activation terms carry a factor of
//! 1.5 for them, calibrated against the peak resident memory that `cargo xtask bench
//! long-context` measures.

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::mask::BLOCKWISE_FROM_SCORES;
use crate::model::LOGIT_CHUNK_ELEMENTS;

const F32: u64 = 4;
/// Allocator slack and temporaries, on activations.
const SLACK: f64 = 1.5;

/// The shape of one pass: `sequences` padded to `tokens` each, `scored` rows projected onto the
/// vocabulary in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassShape {
    /// Sequences in the batch.
    pub sequences: usize,
    /// Tokens per (padded) sequence.
    pub tokens: usize,
    /// Positions whose next token is scored, over the whole batch.
    pub scored: usize,
}

/// Floats one decoder layer keeps per token for its backward pass.
fn layer_floats_per_token(c: &ModelConfig) -> u64 {
    let (h, i) = (c.hidden_size as u64, c.intermediate_size as u64);
    let q = (c.num_heads * c.head_dim) as u64;
    let kv = (c.num_kv_heads * c.head_dim) as u64;
    // Two norms and two residual sums; q, k, v before and after the rotary embedding; the
    // attention output and its projection; gate, up and their product, and the down projection.
    4 * h + 2 * (q + 2 * kv) + q + h + 3 * i + h
}

/// Bytes of the attention scores per layer: `heads x t x t` scores and weights on the dense path,
/// none on the blockwise one.
fn attention_bytes(c: &ModelConfig, shape: PassShape) -> u64 {
    let scores = shape.tokens * shape.tokens;
    if scores >= BLOCKWISE_FROM_SCORES {
        return 0;
    }
    2 * (shape.sequences * c.num_heads * scores) as u64 * F32
}

fn with_slack(bytes: u64) -> u64 {
    (bytes as f64 * SLACK) as u64
}

/// Peak bytes of scoring `shape` without gradients ([`crate::CausalLm::token_logprobs`]).
pub fn scoring_bytes(c: &ModelConfig, shape: PassShape) -> u64 {
    let tokens = (shape.sequences * shape.tokens) as u64;
    let weights = c.num_parameters() as u64 * F32;
    let in_flight = layer_floats_per_token(c) * tokens * F32 + attention_bytes(c, shape);
    let logits = 3 * LOGIT_CHUNK_ELEMENTS.min(shape.scored.max(1) * c.vocab_size) as u64 * F32;
    weights + with_slack(in_flight) + logits
}

/// Peak bytes of one training step on `shape` (forward, backward, AdamW), with every weight
/// trained or LoRA adapters only, and with or without activation checkpointing.
pub fn training_bytes(c: &ModelConfig, shape: PassShape, checkpointing: bool, lora: bool) -> u64 {
    let tokens = (shape.sequences * shape.tokens) as u64;
    let layers = c.num_layers as u64;
    // Weights, and the gradients and AdamW's two moments of those trained.
    let state = if lora { 1 } else { 4 } * c.num_parameters() as u64 * F32;
    let layer = layer_floats_per_token(c) * tokens * F32 + attention_bytes(c, shape);
    let activations = if checkpointing {
        layers * c.hidden_size as u64 * tokens * F32 + layer
    } else {
        layers * layer
    };
    let logits = 2 * (shape.scored * c.vocab_size) as u64 * F32;
    state + with_slack(activations) + logits
}

/// The memory the operating system reports as available to a new allocation (Linux's
/// `MemAvailable`), or `None` where it cannot be read.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses a pass estimated at `needed` bytes when the machine has less available: the error
/// names the pass (`what`), both figures and `advice` (which option lowers the need).
pub fn ensure_fits(needed: u64, what: &str, advice: &str) -> Result<()> {
    match available_bytes() {
        Some(available) if needed > available => Err(ModelError::Input(format!(
            "{what} needs about {} of memory and this machine has {} available: {advice}",
            gib(needed),
            gib(available)
        ))),
        _ => Ok(()),
    }
}

/// Bytes as GiB with two decimals.
pub fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long_context_model() -> ModelConfig {
        ModelConfig {
            vocab_size: 151_936,
            hidden_size: 32,
            intermediate_size: 88,
            num_layers: 2,
            num_heads: 2,
            num_kv_heads: 1,
            head_dim: 16,
            max_position_embeddings: 40_960,
            ..ModelConfig::small(151_936, 32, 2, 2)
        }
    }

    #[test]
    fn long_sequences_grow_linearly_on_the_blockwise_path() {
        let c = long_context_model();
        let shape = |tokens| PassShape { sequences: 1, tokens, scored: 64 };
        let (at_16k, at_32k) = (scoring_bytes(&c, shape(16_384)), scoring_bytes(&c, shape(32_768)));
        let weights = c.num_parameters() as u64 * F32;
        // Twice the tokens, twice the activations: linear, not quadratic.
        let growth = (at_32k - weights) as f64 / (at_16k - weights) as f64;
        assert!((1.5..2.1).contains(&growth), "{growth}");
        // Below the blockwise threshold the scores are quadratic.
        let short = PassShape { sequences: 8, tokens: 1024, scored: 64 };
        assert!(attention_bytes(&c, short) == 2 * 8 * 2 * 1024 * 1024 * F32);
    }

    #[test]
    fn checkpointing_keeps_one_layer_of_activations() {
        // Activations dominate: a narrow vocabulary, few scored rows, many layers.
        let c = ModelConfig::small(1000, 256, 24, 4);
        let shape = PassShape { sequences: 1, tokens: 16_384, scored: 64 };
        let (plain, checkpointed) =
            (training_bytes(&c, shape, false, false), training_bytes(&c, shape, true, false));
        assert!(checkpointed * 3 < plain, "{plain} vs {checkpointed}");
    }

    #[test]
    fn a_pass_larger_than_the_machine_is_refused_with_advice() {
        let Some(available) = available_bytes() else { return };
        let error = ensure_fits(available * 2, "scoring 1 sequence of 9 tokens", "use fewer")
            .unwrap_err()
            .to_string();
        assert!(error.contains("scoring 1 sequence of 9 tokens") && error.contains("use fewer"));
        assert!(ensure_fits(1, "a byte", "").is_ok());
    }
}
