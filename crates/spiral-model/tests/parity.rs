//! Parity with transformers on the fixture checkpoints (`fixtures/make_fixtures.py`): per-token
//! log-probs within 1e-4, greedy continuations token for token, tokenization and chat templates
//! exactly.

mod common;

use common::{B, FAMILIES, expected, fixture, to_vec};
use spiral_model::{Checkpoint, generate_greedy};

const LOGPROB_TOLERANCE: f64 = 1e-4;

#[test]
fn logprobs_match_transformers() {
    let device = Default::default();
    for name in FAMILIES {
        let ckpt = Checkpoint::<B>::load(fixture(name), &device).unwrap();
        let exp = expected(name);
        let mut worst: f64 = 0.0;
        for case in &exp.logprob_cases {
            // The tokenizer agrees with transformers' encoding of prompt + completion.
            let ids = ckpt
                .tokenizer
                .encode(&format!("{}{}", case.prompt, case.completion), false)
                .unwrap();
            assert_eq!(ids, case.input_ids, "{name}: tokenization differs");
            let scores =
                ckpt.model.token_logprobs(std::slice::from_ref(&ids), &[1], false).unwrap();
            let got = &to_vec(scores.logprobs)[0];
            assert_eq!(got.len(), case.full_logprobs.len());
            for (g, e) in got.iter().zip(&case.full_logprobs) {
                worst = worst.max((*g as f64 - e).abs());
            }
            let completion = ckpt.model.token_logprobs(&[ids], &[case.prompt_len], false).unwrap();
            let got = &to_vec(completion.logprobs)[0][case.prompt_len - 1..];
            for (g, e) in got.iter().zip(&case.logprobs) {
                worst = worst.max((*g as f64 - e).abs());
            }
        }
        println!("{name}: worst |logprob - transformers| = {worst:.3e}");
        assert!(worst < LOGPROB_TOLERANCE, "{name}: worst log-prob difference {worst:e}");
    }
}

#[test]
fn greedy_continuation_matches_transformers() {
    let device = Default::default();
    for name in FAMILIES {
        let ckpt = Checkpoint::<B>::load(fixture(name), &device).unwrap();
        let exp = expected(name).greedy;
        assert_eq!(ckpt.tokenizer.encode(&exp.prompt, false).unwrap(), exp.prompt_ids);
        let new = generate_greedy(&ckpt.model, &exp.prompt_ids, exp.new_ids.len(), &[]).unwrap();
        assert_eq!(new, exp.new_ids, "{name}: greedy tokens differ");
    }
}

#[test]
fn fixture_chat_template_matches_transformers() {
    let ckpt = Checkpoint::<B>::load(fixture("qwen3"), &Default::default()).unwrap();
    for case in expected("qwen3").chat {
        let text = ckpt
            .tokenizer
            .apply_chat_template(&case.messages, case.add_generation_prompt, &case.kwargs)
            .unwrap();
        assert_eq!(text, case.text);
        assert_eq!(ckpt.tokenizer.encode(&text, false).unwrap(), case.ids);
    }
}

#[test]
fn eos_ids_come_from_every_config_file() {
    let ckpt = Checkpoint::<B>::load(fixture("qwen3"), &Default::default()).unwrap();
    // generation_config.json lists [<|im_end|>, <|endoftext|>]; config.json names <|im_end|>.
    assert_eq!(ckpt.tokenizer.eos_token_ids(), &[399, 397]);
}
