//! Saving writes a Hugging Face folder that loads back to the same numbers. With
//! `SPIRAL_RESAVE_DIR` set, the fixtures are re-saved there (with their `expected.json`) so that
//! `cargo xtask fixtures` can check them with transformers (`make_fixtures.py --verify`).

mod common;

use common::{B, FAMILIES, fixture, to_vec};
use spiral_model::{CausalLm, Checkpoint, ModelConfig, TextTokenizer, char_tokenizer};

#[test]
fn every_family_round_trips_through_save() {
    let device = Default::default();
    let resave_root = std::env::var_os("SPIRAL_RESAVE_DIR").map(std::path::PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    for name in FAMILIES {
        let ckpt = Checkpoint::<B>::load(fixture(name), &device).unwrap();
        let out = resave_root.clone().unwrap_or_else(|| tmp.path().to_path_buf()).join(name);
        ckpt.save(&out).unwrap();
        std::fs::copy(fixture(name).join("expected.json"), out.join("expected.json")).unwrap();
        let again = Checkpoint::<B>::load(&out, &device).unwrap();
        assert_eq!(again.model.config(), ckpt.model.config());
        assert_eq!(again.tokenizer.eos_token_ids(), ckpt.tokenizer.eos_token_ids());
        let seq: Vec<u32> = (0..20).map(|i| (i * 13 + 1) % 400).collect();
        let a = to_vec(
            ckpt.model.token_logprobs(std::slice::from_ref(&seq), &[1], false).unwrap().logprobs,
        );
        let b = to_vec(again.model.token_logprobs(&[seq], &[1], false).unwrap().logprobs);
        assert_eq!(a, b, "{name}: float32 save must be lossless");
        let messages = serde_json::json!([{"role": "user", "content": "hi"}]);
        let extra = Default::default();
        assert_eq!(
            again.tokenizer.apply_chat_template(&messages, true, &extra).unwrap(),
            ckpt.tokenizer.apply_chat_template(&messages, true, &extra).unwrap()
        );
    }
}

#[test]
fn from_scratch_model_and_tokenizer_save_and_reload() {
    let device = Default::default();
    let tokenizer = char_tokenizer("0123456789+-*= \n", &["<unk>", "<|im_end|>"]).unwrap();
    let eos = tokenizer.token_to_id("<|im_end|>").unwrap();
    let tokenizer = TextTokenizer::new(tokenizer, vec![eos], None);
    let config = ModelConfig::small(tokenizer.vocab_size(), 32, 2, 4);
    let model = CausalLm::<B>::random(config.clone(), 7, 0.02, &device).unwrap();
    let same_seed = CausalLm::<B>::random(config, 7, 0.02, &device).unwrap();
    let ids = tokenizer.encode("12+34=46", false).unwrap();
    let a = to_vec(model.token_logprobs(std::slice::from_ref(&ids), &[1], false).unwrap().logprobs);
    let b =
        to_vec(same_seed.token_logprobs(std::slice::from_ref(&ids), &[1], false).unwrap().logprobs);
    assert_eq!(a, b, "seeded initialisation is deterministic");

    let dir = tempfile::tempdir().unwrap();
    spiral_model::save_pretrained(&model, &tokenizer, dir.path()).unwrap();
    let again = Checkpoint::<B>::load(dir.path(), &device).unwrap();
    assert_eq!(again.tokenizer.eos_token_ids(), &[eos]);
    let c = to_vec(again.model.token_logprobs(&[ids], &[1], false).unwrap().logprobs);
    assert_eq!(a, c);
}
