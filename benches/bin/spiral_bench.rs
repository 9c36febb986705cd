//! `spiral-bench WORKLOAD`: the project's side of the standard workloads of
//! `../shared/BENCHMARKS.md`, printing one JSON line per measurement with the peer script's
//! fields (`workload`, `generated_tokens`, `seconds`, `tokens_per_s`). Run it through
//! `cargo xtask bench`, which builds it in release mode and can run the PyTorch peer beside it.

use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use spiral_benches::bench_cpu_config;
use spiral_model::CausalLm;
use spiral_rollout::{RolloutEngine, RolloutRequest, SamplingParams, StopConditions};
use spiral_set_rl::PolicyLossConfig;
use spiral_train::{Learner, OptimConfig, TrainSequence};

type B = Flex;

/// `rollout-cpu`: 64 sequences, 32-token prompts, exactly 96 new tokens, temperature 1, top-p 1.
const SEQS: usize = 64;
const PROMPT: usize = 32;
const NEW: usize = 96;

fn main() {
    let workload = std::env::args().nth(1).unwrap_or_else(|| "rollout-cpu".into());
    match workload.as_str() {
        "rollout-cpu" => rollout_cpu(),
        "train-cpu" => train_cpu(),
        other => {
            eprintln!("error: unknown workload `{other}` (expected rollout-cpu or train-cpu)");
            std::process::exit(2);
        }
    }
}

fn rollout_cpu() {
    let device = Default::default();
    let model = CausalLm::<B>::random(bench_cpu_config(), 0, 0.02, &device).expect("valid config");
    let vocab = model.config().vocab_size as u32;
    let mut rng = StdRng::seed_from_u64(0);
    let engine = RolloutEngine::default();
    let run = |batch: usize, new: usize, rng: &mut StdRng| {
        let prompts: Vec<Vec<u32>> =
            (0..batch).map(|_| (0..PROMPT).map(|_| rng.random_range(3..vocab)).collect()).collect();
        let request = RolloutRequest {
            prompts,
            n: 1,
            sampling: SamplingParams {
                temperature: 1.0,
                top_p: 1.0,
                seed: 0,
                ..Default::default()
            },
            // No EOS: every sequence generates exactly `new` tokens, as the peer's min_new_tokens.
            stop: StopConditions {
                eos_token_ids: vec![],
                stop_strings: vec![],
                max_new_tokens: new,
            },
            max_total_tokens: None,
        };
        let start = Instant::now();
        let out = engine.generate(&model, None, &request).expect("valid request");
        (out.stats.generated_tokens, start.elapsed().as_secs_f64())
    };
    run(SEQS, 8, &mut rng); // warm-up, as the peer does
    let (tokens, seconds) = run(SEQS, NEW, &mut rng);
    println!(
        "{}",
        serde_json::json!({"workload": "rollout-cpu", "generated_tokens": tokens, "seconds": seconds, "tokens_per_s": tokens as f64 / seconds})
    );
    for batch in [1, 8, 64] {
        let (tokens, seconds) = run(batch, NEW, &mut rng);
        println!(
            "{}",
            serde_json::json!({"workload": "rollout-cpu", "batch": batch, "generated_tokens": tokens, "seconds": seconds, "tokens_per_s": tokens as f64 / seconds})
        );
    }
}

/// `train-cpu`: 64 sequences x 128 tokens, clipped policy-gradient loss on the last 96 (clip
/// 0.2 / 0.28, token mean), backward, global grad-norm clip 1.0, AdamW; tokens/s counts all
/// 128 tokens of every sequence, as the peer does.
fn train_cpu() {
    const TOTAL: usize = PROMPT + NEW;
    let device = Default::default();
    let model = CausalLm::<Autodiff<B>>::random(bench_cpu_config(), 0, 0.02, &device)
        .expect("valid config");
    let vocab = model.config().vocab_size as u32;
    let optim = OptimConfig {
        lr: 1e-5,
        weight_decay: 0.01,
        max_grad_norm: Some(1.0),
        total_steps: 10,
        ..Default::default()
    };
    let mut learner = Learner::new(model, optim);
    let loss = PolicyLossConfig { clip_low: 0.2, clip_high: 0.28, ..Default::default() };
    let mut rng = StdRng::seed_from_u64(0);
    let batch: Vec<TrainSequence> = (0..SEQS)
        .map(|_| TrainSequence {
            tokens: (0..TOTAL).map(|_| rng.random_range(3..vocab)).collect(),
            prompt_len: PROMPT,
            advantage: rng.random_range(-1.0..1.0),
            old_logprobs: None,
            weight: 1.0,
        })
        .collect();
    learner.policy_step(&batch, &loss).expect("valid batch"); // warm-up, as the peer does
    let steps = 3;
    let start = Instant::now();
    for _ in 0..steps {
        learner.policy_step(&batch, &loss).expect("valid batch");
    }
    let per_step = start.elapsed().as_secs_f64() / steps as f64;
    let tokens = SEQS * TOTAL;
    println!(
        "{}",
        serde_json::json!({"workload": "train-cpu", "tokens_per_step": tokens, "seconds_per_step": per_step, "tokens_per_s": tokens as f64 / per_step})
    );
}
