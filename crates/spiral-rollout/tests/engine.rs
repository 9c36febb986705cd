//! The engine against the model's reference paths on a fixture checkpoint: recorded log-probs
//! equal full-sequence log-probs, greedy equals transformers' greedy, results do not depend on
//! batching or splitting, and every stop condition ends a sample where it should.

use std::path::PathBuf;

use burn::backend::Flex;
use spiral_model::Checkpoint;
use spiral_rollout::{
    EngineConfig, FinishReason, RolloutEngine, RolloutRequest, SamplingParams, StopConditions,
};

type B = Flex;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spiral-model/tests/fixtures").join(name)
}

fn ckpt(name: &str) -> Checkpoint<B> {
    Checkpoint::load(fixture(name), &Default::default()).unwrap()
}

fn prompts() -> Vec<Vec<u32>> {
    vec![
        (0..11).map(|i| 40 + i * 3).collect(),
        (0..4).map(|i| 200 + i).collect(),
        (0..7).map(|i| 90 + i * 5).collect(),
    ]
}

fn request(n: usize, sampling: SamplingParams, max_new_tokens: usize) -> RolloutRequest {
    RolloutRequest {
        prompts: prompts(),
        n,
        sampling,
        stop: StopConditions { max_new_tokens, ..Default::default() },
        max_total_tokens: None,
    }
}

#[test]
fn recorded_logprobs_equal_full_sequence_logprobs() {
    let c = ckpt("qwen3");
    let req = request(3, SamplingParams { temperature: 1.0, seed: 5, ..Default::default() }, 20);
    let out = RolloutEngine::default().generate(&c.model, None, &req).unwrap();
    assert_eq!(out.samples.len(), 9);
    assert_eq!(
        out.stats.prefill_tokens,
        prompts().iter().map(Vec::len).sum::<usize>(),
        "each prompt prefilled once"
    );
    let seqs: Vec<Vec<u32>> = out
        .samples
        .iter()
        .map(|s| [prompts()[s.prompt_index].clone(), s.tokens.clone()].concat())
        .collect();
    let starts: Vec<usize> = out.samples.iter().map(|s| s.prompt_tokens).collect();
    let scores = c.model.token_logprobs(&seqs, &starts, false).unwrap().logprobs;
    let [_, t] = scores.dims();
    let flat: Vec<f32> = scores.into_data().into_vec().unwrap();
    let mut worst = 0.0f32;
    for (i, s) in out.samples.iter().enumerate() {
        for (j, &lp) in s.logprobs.iter().enumerate() {
            worst = worst.max((lp - flat[i * t + s.prompt_tokens - 1 + j]).abs());
        }
    }
    assert!(worst < 1e-4, "engine vs full-sequence log-probs differ by {worst}");
}

#[test]
fn greedy_matches_transformers_for_every_sample() {
    let c = ckpt("llama");
    let exp: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("llama").join("expected.json")).unwrap(),
    )
    .unwrap();
    let prompt: Vec<u32> = serde_json::from_value(exp["greedy"]["prompt_ids"].clone()).unwrap();
    let want: Vec<u32> = serde_json::from_value(exp["greedy"]["new_ids"].clone()).unwrap();
    let req = RolloutRequest {
        prompts: vec![prompts()[0].clone(), prompt],
        n: 2,
        sampling: SamplingParams::greedy(),
        stop: StopConditions { max_new_tokens: 24, ..Default::default() },
        max_total_tokens: None,
    };
    let out = RolloutEngine::default().generate(&c.model, None, &req).unwrap();
    for s in out.samples.iter().filter(|s| s.prompt_index == 1) {
        assert_eq!(s.tokens, want, "left-padded next to a longer prompt, greedy still matches");
        assert_eq!(s.finish, FinishReason::Length);
    }
}

#[test]
fn samples_do_not_depend_on_batching_or_splitting() {
    let c = ckpt("qwen2");
    let req = request(
        4,
        SamplingParams { temperature: 0.9, top_p: 0.95, top_k: 50, seed: 3, ..Default::default() },
        12,
    );
    let whole = RolloutEngine::default().generate(&c.model, None, &req).unwrap();
    // 40 positions per chunk: a prompt's 4 samples get split over several chunks and prefills.
    let split = RolloutEngine::new(EngineConfig { max_batch_tokens: 40, threads: 1 })
        .generate(&c.model, None, &req)
        .unwrap();
    assert!(split.stats.chunks > whole.stats.chunks);
    for (a, b) in whole.samples.iter().zip(&split.samples) {
        assert_eq!(
            (a.prompt_index, a.sample_index, &a.tokens),
            (b.prompt_index, b.sample_index, &b.tokens)
        );
        for (x, y) in a.logprobs.iter().zip(&b.logprobs) {
            assert!((x - y).abs() < 1e-4);
        }
    }
    let again = RolloutEngine::default().generate(&c.model, None, &req).unwrap();
    assert_eq!(whole.samples, again.samples, "same seed, same samples");
    let other = RolloutEngine::default()
        .generate(
            &c.model,
            None,
            &RolloutRequest { sampling: SamplingParams { seed: 4, ..req.sampling }, ..req.clone() },
        )
        .unwrap();
    assert_ne!(whole.samples, other.samples);
    // Samples of one prompt differ from each other (they are not copies of one draw).
    assert_ne!(whole.samples[0].tokens, whole.samples[1].tokens);
}

#[test]
fn samples_do_not_depend_on_the_number_of_shards() {
    let c = ckpt("qwen3");
    let mut req =
        request(5, SamplingParams { temperature: 1.0, seed: 9, ..Default::default() }, 10);
    // Three prompts (whole prompts per shard, each prefilled once) and one prompt (its five
    // samples split across shards).
    for prompts in [prompts(), vec![prompts()[0].clone()]] {
        req.prompts = prompts;
        let engine = |threads| RolloutEngine::new(EngineConfig { threads, ..Default::default() });
        let serial = engine(1).generate(&c.model, None, &req).unwrap();
        assert_eq!(serial.stats.shards, 1);
        for threads in [2, 3, 7] {
            let out = engine(threads).generate(&c.model, None, &req).unwrap();
            assert_eq!(out.stats.shards, threads.min(req.prompts.len() * req.n));
            if req.prompts.len() >= threads {
                assert_eq!(out.stats.prefill_tokens, serial.stats.prefill_tokens);
            }
            assert_eq!(out.stats.generated_tokens, serial.stats.generated_tokens);
            for (a, b) in serial.samples.iter().zip(&out.samples) {
                assert_eq!(
                    (a.prompt_index, a.sample_index, &a.tokens, &a.finish),
                    (b.prompt_index, b.sample_index, &b.tokens, &b.finish),
                    "{threads} shards"
                );
                for (x, y) in a.logprobs.iter().zip(&b.logprobs) {
                    assert!((x - y).abs() < 1e-4, "{threads} shards: {x} vs {y}");
                }
            }
        }
    }
}

#[test]
fn eos_and_length_end_samples_and_finished_rows_leave_the_batch() {
    let c = ckpt("qwen3");
    let free = RolloutEngine::default()
        .generate(&c.model, None, &request(1, SamplingParams::greedy(), 16))
        .unwrap();
    // Make the 6th greedy token of prompt 0 an EOS: that sample stops there, the others run on.
    let eos = free.samples[0].tokens[5];
    let mut req = request(1, SamplingParams::greedy(), 16);
    req.stop.eos_token_ids = vec![eos];
    let out = RolloutEngine::default().generate(&c.model, None, &req).unwrap();
    let first_eos = free.samples[0].tokens.iter().position(|&t| t == eos).unwrap();
    assert_eq!(out.samples[0].tokens, free.samples[0].tokens[..=first_eos]);
    assert_eq!(out.samples[0].finish, FinishReason::Eos(eos));
    for (a, b) in out.samples.iter().zip(&free.samples).skip(1) {
        let cut = b.tokens.iter().position(|&t| t == eos).map_or(b.tokens.len(), |p| p + 1);
        assert_eq!(a.tokens, b.tokens[..cut], "other rows are unaffected by compaction");
    }
}

#[test]
fn stop_strings_match_across_token_boundaries() {
    let c = ckpt("qwen3");
    let free = RolloutEngine::default()
        .generate(&c.model, Some(&c.tokenizer), &request(1, SamplingParams::greedy(), 24))
        .unwrap();
    let tokens = &free.samples[2].tokens;
    // A stop string made of the last character of token k and the first of token k + 1.
    let (k, stop) = (3..tokens.len() - 1)
        .find_map(|k| {
            let a = c.tokenizer.decode(&tokens[k..=k], false).unwrap();
            let b = c.tokenizer.decode(&tokens[k + 1..=k + 1], false).unwrap();
            let (Some(x), Some(y)) = (a.chars().last(), b.chars().next()) else { return None };
            let stop = format!("{x}{y}");
            let before = c.tokenizer.decode(&tokens[..=k], false).unwrap();
            (!before.contains(&stop) && x.is_alphanumeric() && y.is_alphanumeric())
                .then_some((k, stop))
        })
        .expect("a boundary-spanning pair in 24 tokens");
    let mut req = request(1, SamplingParams::greedy(), 24);
    req.stop.stop_strings = vec![stop.clone()];
    let out = RolloutEngine::default().generate(&c.model, Some(&c.tokenizer), &req).unwrap();
    assert_eq!(out.samples[2].finish, FinishReason::StopString(stop));
    assert_eq!(out.samples[2].tokens, tokens[..=k + 1]);
}

#[test]
fn total_token_budget_is_respected() {
    let c = ckpt("qwen3");
    let mut req = request(2, SamplingParams::default(), 8);
    req.max_total_tokens = Some(21);
    // Shards split the budget in fixed shares, so the total holds whatever their number.
    for threads in [1, 2, 4] {
        let engine = RolloutEngine::new(EngineConfig { threads, ..Default::default() });
        let out = engine.generate(&c.model, None, &req).unwrap();
        let total: usize = out.samples.iter().map(|s| s.tokens.len()).sum();
        assert_eq!(total, 21, "{threads} shards");
        assert_eq!(out.stats.generated_tokens, 21);
        assert!(out.samples.iter().any(|s| s.finish == FinishReason::Budget));
    }
}

#[test]
fn bad_requests_are_refused_with_the_reason() {
    let c = ckpt("qwen3");
    let mut req = request(0, SamplingParams::default(), 8);
    let err = RolloutEngine::default().generate(&c.model, None, &req).unwrap_err().to_string();
    assert!(err.contains("n must be"), "{err}");
    req.n = 1;
    req.stop.max_new_tokens = 10_000;
    let err = RolloutEngine::default().generate(&c.model, None, &req).unwrap_err().to_string();
    assert!(err.contains("context"), "{err}");
    req.stop.max_new_tokens = 4;
    req.prompts.push(vec![9999]);
    let err = RolloutEngine::default().generate(&c.model, None, &req).unwrap_err().to_string();
    assert!(err.contains("9999"), "{err}");
}

/// A request split into pieces, each naming the index of its first prompt in the whole
/// (`SamplingParams::first_prompt`, as data-parallel ranks do), samples what the whole request
/// does, token for token.
#[test]
fn pieces_of_a_request_sample_what_the_whole_does() {
    let c = ckpt("qwen3");
    let sampling = SamplingParams { temperature: 1.0, seed: 21, ..Default::default() };
    let whole =
        RolloutEngine::default().generate(&c.model, None, &request(2, sampling, 12)).unwrap();
    let mut pieces = Vec::new();
    for (first, part) in [(0, 0..1), (1, 1..3)] {
        let mut req = request(2, SamplingParams { first_prompt: first, ..sampling }, 12);
        req.prompts = prompts()[part].to_vec();
        let out = RolloutEngine::default().generate(&c.model, None, &req).unwrap();
        pieces.extend(out.samples.into_iter().map(|s| s.tokens));
    }
    let whole: Vec<Vec<u32>> = whole.samples.into_iter().map(|s| s.tokens).collect();
    assert_eq!(whole, pieces);
    // Without the offset the second piece would draw the first prompt's streams.
    let mut req = request(2, sampling, 12);
    req.prompts = prompts()[1..3].to_vec();
    let unshifted = RolloutEngine::default().generate(&c.model, None, &req).unwrap();
    assert_ne!(unshifted.samples[0].tokens, whole[2]);
}
