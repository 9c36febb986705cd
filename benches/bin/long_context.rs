//! `long-context --tokens N --part score|train|decode`: one measurement of the `long-context`
//! workload of `docs/benchmarks.md` on one sequence of N tokens, printed as a JSON line with the
//! wall time, the process's peak resident memory (so each measurement runs in a process of its
//! own) and the memory `spiral_model::memory` estimates for the pass. `cargo xtask bench
//! long-context` runs every length and part beside the PyTorch peer.
//!
//! - `score`: log-probs of the last 64 tokens (`--scored`) under the model (one forward pass);
//! - `train`: one clipped policy-gradient step on those tokens (forward, backward, AdamW;
//!   `--checkpointing` for activation checkpointing);
//! - `decode`: prefill of the N tokens, then 256 sampled tokens with the KV cache.

use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use spiral_benches::bench_long_context_config;
use spiral_model::memory::{self, PassShape};
use spiral_model::{CausalLm, ModelConfig};
use spiral_rollout::{RolloutEngine, RolloutRequest, SamplingParams, StopConditions};
use spiral_set_rl::PolicyLossConfig;
use spiral_train::{Learner, OptimConfig, TrainSequence};

/// See [`spiral_kernels::allocator`] for why.
#[global_allocator]
static ALLOCATOR: spiral_kernels::allocator::MiMalloc = spiral_kernels::allocator::MiMalloc;

/// Tokens scored or trained at the end of the sequence by default, as the peer.
const TAIL: usize = 64;
/// Tokens sampled after the prefill in `decode`.
const DECODE: usize = 256;

/// One long-context measurement on the CPU.
#[derive(Parser)]
#[command(name = "long-context")]
struct Cli {
    /// Tokens in the sequence.
    #[arg(long)]
    tokens: usize,
    /// What to measure.
    #[arg(long, value_parser = ["score", "train", "decode"])]
    part: String,
    /// Tokens scored or trained at the end of the sequence (a trace after its prompt).
    #[arg(long, default_value_t = TAIL)]
    scored: usize,
    /// Train with activation checkpointing (`--part train`).
    #[arg(long)]
    checkpointing: bool,
}

fn main() {
    spiral_kernels::allocator::keep_freed_memory();
    let cli = Cli::parse();
    let config = bench_long_context_config();
    let limit = config.max_position_embeddings;
    let extra = if cli.part == "decode" { DECODE } else { 0 };
    if cli.tokens <= cli.scored || cli.tokens + extra > limit {
        eprintln!(
            "error: --tokens must be over --scored ({}) and at most {} for --part {}",
            cli.scored,
            limit - extra,
            cli.part
        );
        std::process::exit(2);
    }
    let mut rng = StdRng::seed_from_u64(0);
    let vocab = config.vocab_size as u32;
    let tokens: Vec<u32> = (0..cli.tokens).map(|_| rng.random_range(3..vocab)).collect();
    let shape = PassShape { sequences: 1, tokens: cli.tokens, scored: cli.scored };
    let estimate = match cli.part.as_str() {
        "train" => memory::training_bytes(&config, shape, cli.checkpointing, false),
        _ => memory::scoring_bytes(&config, shape),
    };
    let seconds = match cli.part.as_str() {
        "score" => score(config, tokens, cli.scored),
        "train" => train(config, tokens, cli.scored, cli.checkpointing),
        _ => decode(config, tokens),
    };
    let line = serde_json::json!({
        "workload": "long-context",
        "part": cli.part,
        "tokens": cli.tokens,
        "seconds": seconds,
        "peak_rss_mib": peak_rss_mib(),
        "estimate_mib": estimate as f64 / (1 << 20) as f64,
    });
    println!("{line}");
}

/// Seconds to score the last `scored` tokens (read back, so the clock covers the work).
fn score(config: ModelConfig, tokens: Vec<u32>, scored: usize) -> f64 {
    let model = CausalLm::<Flex>::random(config, 0, 0.02, &Default::default()).expect("valid");
    let start = tokens.len() - scored;
    let started = Instant::now();
    let scores = model.token_logprobs(&[tokens], &[start], false).expect("fits the context");
    let _ = scores.logprobs.into_data();
    started.elapsed().as_secs_f64()
}

/// Seconds of one policy-gradient step on the last `scored` tokens.
fn train(config: ModelConfig, tokens: Vec<u32>, scored: usize, checkpointing: bool) -> f64 {
    let model =
        CausalLm::<Autodiff<Flex>>::random(config, 0, 0.02, &Default::default()).expect("valid");
    let optim =
        OptimConfig { lr: 1e-5, max_grad_norm: Some(1.0), total_steps: 10, ..Default::default() };
    let mut learner = Learner::new(model, optim).with_activation_checkpointing(checkpointing);
    let loss = PolicyLossConfig { clip_low: 0.2, clip_high: 0.28, ..Default::default() };
    let prompt_len = tokens.len() - scored;
    let batch = [TrainSequence {
        tokens,
        prompt_len,
        advantage: 1.0,
        old_logprobs: None,
        ref_logprobs: None,
        rollout_logprobs: None,
        weight: 1.0,
    }];
    // The step reads its loss back, so it ends when the work does.
    let started = Instant::now();
    learner.policy_step(&batch, &loss).expect("valid batch");
    started.elapsed().as_secs_f64()
}

/// Seconds to prefill the sequence and sample [`DECODE`] tokens after it.
fn decode(config: ModelConfig, tokens: Vec<u32>) -> f64 {
    let model = CausalLm::<Flex>::random(config, 0, 0.02, &Default::default()).expect("valid");
    let request = RolloutRequest {
        prompts: vec![tokens],
        n: 1,
        sampling: SamplingParams { temperature: 1.0, top_p: 1.0, seed: 0, ..Default::default() },
        // No EOS: exactly DECODE tokens, as the peer's min_new_tokens.
        stop: StopConditions {
            eos_token_ids: vec![],
            stop_strings: vec![],
            max_new_tokens: DECODE,
        },
        max_total_tokens: None,
    };
    let started = Instant::now();
    RolloutEngine::default().generate(&model, None, &request).expect("valid request");
    started.elapsed().as_secs_f64()
}

/// The process's peak resident memory (`VmHWM` of `/proc/self/status`), in MiB; `None` where
/// the kernel does not report it.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
