//! Parity with transformers on the fixture checkpoints (`fixtures/make_fixtures.py`): per-token
//! log-probs within 1e-4 (on a sequence of 2,304 tokens too), greedy continuations token for token, tokenization and chat templates
//! exactly.

mod common;

use common::{B, FAMILIES, expected, fixture, greedy_tokens, worst_logprob_difference};
use spiral_model::{Checkpoint, Precision};

const LOGPROB_TOLERANCE: f64 = 1e-4;

#[test]
fn logprobs_match_transformers() {
    for name in FAMILIES {
        let worst = worst_logprob_difference::<B>(name, &Default::default(), Precision::Float32);
        println!("{name}: worst |logprob - transformers| = {worst:.3e}");
        assert!(worst < LOGPROB_TOLERANCE, "{name}: worst log-prob difference {worst:e}");
    }
}

/// A sequence of 2,304 tokens, which the model attends block by block
/// (`spiral_model::BLOCKWISE_FROM_SCORES`), scores as transformers' eager attention does.
#[test]
fn long_sequence_logprobs_match_transformers() {
    for name in FAMILIES {
        let ckpt = Checkpoint::<B>::load(fixture(name), &Default::default()).unwrap();
        let case = expected(name).long_case.expect("every model fixture has a long case");
        let n = case.input_ids.len();
        assert!(n * n >= spiral_model::BLOCKWISE_FROM_SCORES, "{name}: {n} tokens");
        let scores = ckpt.model.token_logprobs(&[case.input_ids], &[1], false).unwrap();
        let got = &common::to_vec(scores.logprobs)[0];
        assert_eq!(got.len(), case.full_logprobs.len());
        let worst = got
            .iter()
            .zip(&case.full_logprobs)
            .map(|(g, e)| (*g as f64 - e).abs())
            .fold(0.0, f64::max);
        println!("{name}: {n} tokens, worst |logprob - transformers| = {worst:.3e}");
        assert!(worst < LOGPROB_TOLERANCE, "{name}: worst log-prob difference {worst:e}");
    }
}

#[test]
fn greedy_continuation_matches_transformers() {
    for name in FAMILIES {
        let (ours, theirs) = greedy_tokens::<B>(name, &Default::default());
        assert_eq!(ours, theirs, "{name}: greedy tokens differ");
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
