//! Criterion benchmarks of the SPIRAL crates live in `benches/`; this package only hosts them
//! (`cargo bench -p spiral-benches`). Shapes follow `docs/benchmarks.md`.

use spiral_model::{Family, ModelConfig, RopeConfig};

/// The `rollout-cpu` / `train-cpu` model of BENCHMARKS.md: Qwen3 shape, vocab 512, hidden 256,
/// 4 layers, 8 heads / 4 KV heads, head_dim 32, FFN 704, untied (about 3.2M parameters).
pub fn bench_cpu_config() -> ModelConfig {
    ModelConfig {
        family: Family::Qwen3,
        vocab_size: 512,
        hidden_size: 256,
        intermediate_size: 704,
        num_layers: 4,
        num_heads: 8,
        num_kv_heads: 4,
        head_dim: 32,
        rms_norm_eps: 1e-6,
        rope: RopeConfig { theta: 1e6, llama3: None },
        max_position_embeddings: 4096,
        tie_word_embeddings: false,
        qkv_bias: false,
        o_bias: false,
        mlp_bias: false,
        qk_norm: true,
        bos_token_id: None,
        eos_token_ids: vec![],
    }
}

/// The `rollout-gpu` / `train-gpu` model of BENCHMARKS.md: Qwen3-0.6B's shape (vocab 151936,
/// hidden 1024, 28 layers, 16 heads / 8 KV heads, head_dim 128, FFN 3072, tied embeddings).
pub fn bench_gpu_config() -> ModelConfig {
    ModelConfig {
        vocab_size: 151_936,
        hidden_size: 1024,
        intermediate_size: 3072,
        num_layers: 28,
        num_heads: 16,
        num_kv_heads: 8,
        head_dim: 128,
        tie_word_embeddings: true,
        ..bench_cpu_config()
    }
}

/// The `long-context` model of docs/benchmarks.md: Qwen3 shape with the real 151,936-token
/// vocabulary, hidden 32, 2 layers, 2 heads / 1 KV head, head_dim 16, 40,960 positions, so that
/// attention over the context, not the weights, is what grows.
pub fn bench_long_context_config() -> ModelConfig {
    ModelConfig {
        vocab_size: 151_936,
        hidden_size: 32,
        intermediate_size: 88,
        num_layers: 2,
        num_heads: 2,
        num_kv_heads: 1,
        head_dim: 16,
        max_position_embeddings: 40_960,
        tie_word_embeddings: true,
        ..bench_cpu_config()
    }
}

/// A standard workload's shape: its model, batch and lengths.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The model.
    pub model: ModelConfig,
    /// Sequences per batch.
    pub sequences: usize,
    /// Prompt tokens per sequence.
    pub prompt: usize,
    /// New tokens per sequence (generated in rollout, scored in training).
    pub new: usize,
}

impl Workload {
    /// `cpu` or `gpu`, as the workload names' suffixes.
    pub fn named(kind: &str) -> Option<Self> {
        match kind {
            "cpu" => Some(Self { model: bench_cpu_config(), sequences: 64, prompt: 32, new: 96 }),
            "gpu" => Some(Self { model: bench_gpu_config(), sequences: 64, prompt: 256, new: 512 }),
            _ => None,
        }
    }
}
