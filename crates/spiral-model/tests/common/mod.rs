//! Shared helpers of the integration tests: fixture paths and the expected numbers that
//! `fixtures/make_fixtures.py` computed with transformers.
#![allow(dead_code, missing_docs)]

use std::path::PathBuf;

use serde::Deserialize;

pub type B = burn::backend::Flex;

/// The four fixture checkpoints, one per family variant.
pub const FAMILIES: [&str; 4] = ["qwen3", "qwen3_tied", "qwen2", "llama"];

/// The PEFT LoRA adapter fixtures (each names its base in `expected.json`).
pub const ADAPTERS: [&str; 2] = ["qwen3_lora", "qwen2_lora"];

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// `../shared/tokenizers/<name>` next to the repository, when present.
pub fn shared_tokenizer(name: &str) -> Option<PathBuf> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tokenizers").join(name);
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
    pub greedy: Greedy,
    /// Chat renderings (absent for adapter fixtures).
    #[serde(default)]
    pub chat: Vec<ChatCase>,
    /// The base checkpoint of an adapter fixture.
    #[serde(default)]
    pub base: Option<String>,
}

pub fn expected(name: &str) -> Expected {
    let path = fixture(name).join("expected.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

pub fn to_vec(t: burn::tensor::Tensor<B, 2>) -> Vec<Vec<f32>> {
    let [b, t_len] = t.dims();
    let flat: Vec<f32> = t.into_data().convert::<f32>().into_vec().unwrap();
    (0..b).map(|i| flat[i * t_len..(i + 1) * t_len].to_vec()).collect()
}
