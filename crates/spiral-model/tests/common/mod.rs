//! Shared helpers of the integration tests: fixture paths and the expected numbers that
//! `fixtures/make_fixtures.py` computed with transformers.
#![allow(dead_code, missing_docs)]

use std::path::PathBuf;

use burn::tensor::backend::Backend;
use serde::Deserialize;
use spiral_model::{CausalLm, Checkpoint, Precision, generate_greedy};

pub type B = burn::backend::Flex;

/// The four fixture checkpoints, one per family variant.
pub const FAMILIES: [&str; 4] = ["qwen3", "qwen3_tied", "qwen2", "llama"];

/// The PEFT LoRA adapter fixtures (each names its base in `expected.json`).
pub const ADAPTERS: [&str; 2] = ["qwen3_lora", "qwen2_lora"];

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The folder of the optional real tokenizers: `$SPIRAL_TOKENIZERS_DIR`, else `tokenizers/`
/// beside the checkout (`<checkout>/../shared/tokenizers`).
pub fn tokenizers_dir() -> PathBuf {
    match std::env::var_os("SPIRAL_TOKENIZERS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tokenizers"),
    }
}

/// The real tokenizer `<tokenizers_dir>/<name>`, when present.
pub fn real_tokenizer(name: &str) -> Option<PathBuf> {
    let path = tokenizers_dir().join(name);
    path.is_dir().then_some(path)
}

#[derive(Debug, Deserialize)]
pub struct LogprobCase {
    pub prompt: String,
    pub completion: String,
    pub input_ids: Vec<u32>,
    pub prompt_len: usize,
    pub logprobs: Vec<f64>,
    pub full_logprobs: Vec<f64>,
}

#[derive(Debug, Deserialize)]
pub struct Greedy {
    pub prompt: String,
    pub prompt_ids: Vec<u32>,
    pub new_ids: Vec<u32>,
}

#[derive(Debug, Deserialize)]
pub struct ChatCase {
    #[serde(default)]
    pub tokenizer: Option<String>,
    pub messages: serde_json::Value,
    pub add_generation_prompt: bool,
    #[serde(default)]
    pub kwargs: serde_json::Map<String, serde_json::Value>,
    pub text: String,
    pub ids: Vec<u32>,
}

#[derive(Debug, Deserialize)]
pub struct Expected {
    pub family: String,
    pub logprob_cases: Vec<LogprobCase>,
    /// `full_logprobs` of each case with transformers computing in bfloat16 (absent for
    /// adapter fixtures).
    #[serde(default)]
    pub bf16_full_logprobs: Vec<Vec<f64>>,
    pub greedy: Greedy,
    /// Chat renderings (absent for adapter fixtures).
    #[serde(default)]
    pub chat: Vec<ChatCase>,
    /// The base checkpoint of an adapter fixture.
    #[serde(default)]
    pub base: Option<String>,
    /// One sequence as long as the model's context (absent for adapter fixtures).
    #[serde(default)]
    pub long_case: Option<LongCase>,
}

/// Full-sequence log-probs of a sequence long enough to attend block by block.
#[derive(Debug, Deserialize)]
pub struct LongCase {
    pub input_ids: Vec<u32>,
    pub full_logprobs: Vec<f64>,
}

pub fn expected(name: &str) -> Expected {
    let path = fixture(name).join("expected.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

pub fn to_vec<Be: Backend>(t: burn::tensor::Tensor<Be, 2>) -> Vec<Vec<f32>> {
    let [b, t_len] = t.dims();
    let flat: Vec<f32> = t.into_data().convert::<f32>().into_vec().unwrap();
    (0..b).map(|i| flat[i * t_len..(i + 1) * t_len].to_vec()).collect()
}

/// Worst |log-prob - transformers| over every case of fixture `name`, with the model on `device`
/// computing in `precision` (compared with transformers' float32 or bf16 numbers), checking
/// tokenization on the way. Both the full-sequence and the completion-only paths are scored.
pub fn worst_logprob_difference<Be: Backend>(
    name: &str,
    device: &Be::Device,
    precision: Precision,
) -> f64 {
    let ckpt = Checkpoint::<Be>::load(fixture(name), device).unwrap().for_inference_in(precision);
    let exp = expected(name);
    let mut worst: f64 = 0.0;
    for (i, case) in exp.logprob_cases.iter().enumerate() {
        let ids =
            ckpt.tokenizer.encode(&format!("{}{}", case.prompt, case.completion), false).unwrap();
        assert_eq!(ids, case.input_ids, "{name}: tokenization differs");
        let (full, completion) = match precision {
            Precision::Float32 => (&case.full_logprobs, &case.logprobs),
            Precision::Bfloat16 => {
                let full = &exp.bf16_full_logprobs[i];
                (full, &full[case.prompt_len - 1..].to_vec())
            }
        };
        let scores = ckpt.model.token_logprobs(std::slice::from_ref(&ids), &[1], false).unwrap();
        let got = &to_vec(scores.logprobs)[0];
        assert_eq!(got.len(), full.len());
        for (g, e) in got.iter().zip(full) {
            worst = worst.max((*g as f64 - e).abs());
        }
        let scores = ckpt.model.token_logprobs(&[ids], &[case.prompt_len], false).unwrap();
        let got = &to_vec(scores.logprobs)[0][case.prompt_len - 1..];
        for (g, e) in got.iter().zip(completion.iter()) {
            worst = worst.max((*g as f64 - e).abs());
        }
    }
    worst
}

/// The greedy continuation of fixture `name`'s prompt on `device` (KV-cached decoding), and
/// transformers' (float32).
pub fn greedy_tokens<Be: Backend>(name: &str, device: &Be::Device) -> (Vec<u32>, Vec<u32>) {
    let ckpt = Checkpoint::<Be>::load(fixture(name), device).unwrap();
    let exp = expected(name).greedy;
    assert_eq!(ckpt.tokenizer.encode(&exp.prompt, false).unwrap(), exp.prompt_ids);
    let model: &CausalLm<Be> = &ckpt.model;
    let new = generate_greedy(model, &exp.prompt_ids, exp.new_ids.len(), &[]).unwrap();
    (new, exp.new_ids)
}
