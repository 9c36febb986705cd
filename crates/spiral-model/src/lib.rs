//! Decoder-only transformers on [burn](https://burn.dev) that load and save Hugging Face
//! checkpoints: the Qwen3, Qwen2 and Llama families, generic over the backend.
//!
//! - [`CausalLm::token_logprobs`]: full-sequence log-probs of given tokens, for training and
//!   scoring; ragged batches, vocabulary projected in chunks.
//! - [`CausalLm::decode_step`] with a [`KvCache`]: incremental decoding for sampling.
//! - [`Checkpoint`]: `config.json` + safetensors (single or sharded; f32/f16/bf16) +
//!   `tokenizer.json` + chat template, loaded and saved as transformers does ([`save`]), from a
//!   local folder or a hub id in the local Hugging Face cache ([`HubCache`]).
//! - [`lora`]: LoRA / rsLoRA adapters with frozen base weights, saved and loaded in PEFT's
//!   format, merged into the base, or loaded onto a base as PEFT does
//!   ([`Checkpoint::load_with_adapter`]).
//!
//! How each operation runs on each backend (fused CPU kernels, CUDA products, analytic backward
//! passes, precision casts) lives in the `spiral-kernels` crate; this crate says what the network
//! computes.
//!
//! ```no_run
//! use burn::backend::Flex;
//! use spiral_model::Checkpoint;
//!
//! let ckpt = Checkpoint::<Flex>::load("path/to/Qwen3-0.6B", &Default::default())?;
//! let prompt = ckpt.tokenizer.encode("2 + 2 =", false)?;
//! let completion = ckpt.tokenizer.encode(" 4", false)?;
//! let sequence = [prompt.clone(), completion].concat();
//! let scores = ckpt.model.token_logprobs(&[sequence], &[prompt.len()], false)?;
//! println!("{}", scores.logprobs);
//! # Ok::<(), spiral_model::ModelError>(())
//! ```

mod cache;
mod chat;
mod checkpoint;
mod checkpointing;
mod config;
mod error;
mod generate;
mod hub_cache;
mod layers;
pub mod lora;
mod mask;
pub mod memory;
mod model;
mod rope;
pub mod save;
mod scratch;
mod tokenizer;
mod weights;

pub use cache::{KvCache, LayerCache};
pub use chat::ChatTemplate;
pub use checkpoint::{
    Checkpoint, hf_pending_tensors, hf_tensors, load_model, save_pretrained, save_pretrained_with,
};
pub use checkpointing::LayerCheckpoints;
pub use config::{Family, HfConfig, Llama3RopeScaling, ModelConfig, RopeConfig};
pub use error::{ModelError, Result};
pub use generate::generate_greedy;
pub use hub_cache::{HubCache, HubId, resolve_model};
pub use layers::{Attention, DecoderLayer, Linear, Mlp, RmsNorm};
pub use lora::{LoraAdapter, LoraConfig, Projection};
pub use mask::{AttentionMask, BLOCKWISE_FROM_SCORES};
pub use model::{
    CausalLm, GPU_LOGIT_CHUNK_ELEMENTS, LOGIT_CHUNK_ELEMENTS, TokenScores, position_grid,
};
pub use rope::{RopeTables, inverse_frequencies};
pub use save::{SaveDtype, SaveOptions};
pub use scratch::char_tokenizer;
pub use tokenizer::TextTokenizer;
// The device flag and the compute dtype are part of loading a model; their home is the kernels.
pub use spiral_kernels::{BackendJob, DeviceSpec, Precision};
pub use weights::{
    Init, RandomInit, SafetensorsWeights, WeightSource, write_atomically, write_safetensors,
};
