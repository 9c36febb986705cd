//! Criterion benchmarks of the SPIRAL crates live in `benches/`; this package only hosts them
//! (`cargo bench -p spiral-benches`). Shapes follow `../shared/BENCHMARKS.md`.

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
