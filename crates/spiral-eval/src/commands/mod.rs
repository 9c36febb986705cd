//! One module per `spiral-eval` subcommand: its clap arguments and its `run` function, and the
//! model loading every model command shares.

use std::path::Path;

use burn::tensor::backend::Backend;
use spiral_model::{Checkpoint, Precision};

pub mod advantages;
pub mod export;
pub mod generate;
pub mod logprobs;
pub mod passk;
pub mod rsa;
pub mod sample;
pub mod scaling;
pub mod score;

/// The help of every `--model` flag.
pub const MODEL_HELP: &str = "Hugging Face model folder (config.json, *.safetensors, \
    tokenizer.json), or a hub id `org/name[@revision]` found in the local Hugging Face cache \
    ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub; never downloaded). A PEFT \
    adapter folder loads onto the base model its adapter_config.json names.";

/// The help of every `--adapter` flag.
pub const ADAPTER_HELP: &str = "PEFT LoRA adapter (adapter_config.json and \
    adapter_model.safetensors; a folder or a cached hub id) loaded onto --model, as \
    `PeftModel.from_pretrained(model, adapter)` does.";

/// The checkpoint named by `--model`, with `--adapter` loaded onto it when given, ready for
/// inference in `precision`.
pub fn load_checkpoint<B: Backend>(
    model: &Path,
    adapter: Option<&Path>,
    precision: Precision,
    device: &B::Device,
) -> anyhow::Result<Checkpoint<B>> {
    let ckpt = match adapter {
        Some(adapter) => Checkpoint::<B>::load_with_adapter(model, adapter, device)?,
        None => Checkpoint::<B>::load(model, device)?,
    };
    Ok(ckpt.for_inference_in(precision))
}
