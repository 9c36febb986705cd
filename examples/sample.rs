//! Sample `n` completions of a prompt from a Hugging Face checkpoint folder with the batched
//! rollout engine, printing each with its finish reason and total log-prob.
//!
//! ```sh
//! cargo run --release -p spiral-examples --example sample -- crates/spiral-model/tests/fixtures/qwen3 "The quick brown fox" 4
//! ```

use burn::backend::Flex;
use spiral_model::Checkpoint;
use spiral_rollout::{RolloutEngine, RolloutRequest, SamplingParams, StopConditions};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(prompt)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: sample MODEL_DIR PROMPT [N]");
    };
    let n: usize = args.next().map_or(Ok(4), |s| s.parse())?;
    let ckpt = Checkpoint::<Flex>::load(&dir, &Default::default())?;
    let request = RolloutRequest {
        prompts: vec![ckpt.tokenizer.encode(&prompt, false)?],
        n,
        sampling: SamplingParams { temperature: 1.0, top_p: 0.95, seed: 0, ..Default::default() },
        stop: StopConditions {
            eos_token_ids: ckpt.tokenizer.eos_token_ids().to_vec(),
            stop_strings: vec![],
            max_new_tokens: 32,
        },
        max_total_tokens: None,
    };
    let out = RolloutEngine::default().generate(&ckpt.model, Some(&ckpt.tokenizer), &request)?;
    for s in &out.samples {
        let logprob: f32 = s.logprobs.iter().sum();
        println!(
            "[{}] {:?}, {} tokens, log-prob {logprob:.2}: {:?}",
            s.sample_index,
            s.finish,
            s.tokens.len(),
            ckpt.tokenizer.decode(&s.tokens, true)?
        );
    }
    println!(
        "{} tokens in {:.3}s",
        out.stats.generated_tokens,
        out.stats.prefill_seconds + out.stats.decode_seconds
    );
    Ok(())
}
