//! Parity with transformers on the fixture checkpoints (`fixtures/make_fixtures.py`): per-token
//! log-probs within 1e-4, greedy continuations token for token, tokenization and chat templates
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
