//! Hugging Face model folders: [`Checkpoint::load`] reads `config.json`, the safetensors weights
//! and the tokenizer files; [`Checkpoint::save`] writes a folder transformers'
//! `from_pretrained` loads back (float32 safetensors, `config.json`, `generation_config.json`,
//! `tokenizer.json`, `tokenizer_config.json`), each file written atomically.

use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, backend::Backend};

use spiral_kernels::precision::Precision;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::layers::{Linear, RmsNorm};
use crate::lora::ADAPTER_CONFIG;
use crate::model::CausalLm;
use crate::tokenizer::TextTokenizer;
use crate::weights::{SafetensorsWeights, write_atomically, write_safetensors};

/// A model with its tokenizer, as found in a Hugging Face model folder.
#[derive(Debug)]
pub struct Checkpoint<B: Backend> {
    /// The language model.
    pub model: CausalLm<B>,
    /// Its tokenizer, EOS ids and chat template.
    pub tokenizer: TextTokenizer,
    /// The folder it was loaded from.
    pub dir: PathBuf,
}

impl<B: Backend> Checkpoint<B> {
    /// For inference: see [`CausalLm::for_inference_in`].
    pub fn for_inference_in(mut self, precision: Precision) -> Self {
        self.model = self.model.for_inference_in(precision);
        self
    }

    /// Loads a model folder onto `device`, or a PEFT adapter folder onto its base (see
    /// [`crate::lora`]). Every error names the file and key at fault.
    pub fn load(dir: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(ModelError::io(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "not a model folder"),
            ));
        }
        if dir.join(ADAPTER_CONFIG).is_file() && !dir.join("config.json").is_file() {
            return Self::load_adapter_folder(dir, device);
        }
        let config = ModelConfig::from_file(dir.join("config.json"))?;
        let model = load_model(dir, config.clone(), device)?;
        let tokenizer = TextTokenizer::from_dir(dir, &config.eos_token_ids)?;
        Ok(Self { model, tokenizer, dir: dir.to_path_buf() })
    }

    /// A PEFT adapter folder, as `AutoPeftModelForCausalLM` reads one: the base model named by
    /// `base_model_name_or_path` (a local folder; relative paths are taken from `dir`) with the
    /// adapters loaded onto it, and the folder's own tokenizer when it has one.
    fn load_adapter_folder(dir: &Path, device: &B::Device) -> Result<Self> {
        let config_path = dir.join(ADAPTER_CONFIG);
        let text =
            std::fs::read_to_string(&config_path).map_err(|e| ModelError::io(&config_path, e))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ModelError::json(&config_path, &e))?;
        let name = json.get("base_model_name_or_path").and_then(|v| v.as_str()).unwrap_or("");
        let base_dir = dir.join(name);
        if name.is_empty() || !base_dir.join("config.json").is_file() {
            return Err(ModelError::Config {
                path: config_path,
                message: format!(
                    "`base_model_name_or_path` = {name:?} is not a local model folder (looked \
                     in {}); adapters load onto a base checkpoint on disk",
                    base_dir.display()
                ),
            });
        }
        let base = Self::load(&base_dir, device)?;
        let model = base.model.load_adapter(dir)?;
        let tokenizer = if dir.join("tokenizer.json").is_file() {
            TextTokenizer::from_dir(dir, &model.config().eos_token_ids)?
        } else {
            base.tokenizer
        };
        Ok(Self { model, tokenizer, dir: dir.to_path_buf() })
    }

    /// Writes this model and tokenizer as a Hugging Face folder (created if needed).
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        save_pretrained(&self.model, &self.tokenizer, dir.as_ref())
    }
}

/// Builds the model from the safetensors in `dir`, refusing missing, unexpected and misshapen
/// weights.
pub fn load_model<B: Backend>(
    dir: &Path,
    config: ModelConfig,
    device: &B::Device,
) -> Result<CausalLm<B>> {
    let mut weights = SafetensorsWeights::<B>::open(dir, device)?;
    if config.tie_word_embeddings {
        // Some exports of tied models still store the (identical) head; it is not used.
        weights.ignore_if_present("lm_head.weight");
    }
    let family = config.family.to_string();
    let model = CausalLm::from_weights(config, &mut weights)?;
    weights.finish(&family)?;
    Ok(model)
}

/// Writes `model` and `tokenizer` into `dir` as transformers expects them.
pub fn save_pretrained<B: Backend>(
    model: &CausalLm<B>,
    tokenizer: &TextTokenizer,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let mut config = model.config().clone();
    if config.eos_token_ids.is_empty() {
        // From-scratch models learn their EOS ids from the tokenizer; loaded ones keep theirs.
        config.eos_token_ids = tokenizer.eos_token_ids().to_vec();
    }
    let config_json =
        serde_json::to_string_pretty(&config.to_hf_json()).expect("JSON values serialise");
    write_atomically(&dir.join("config.json"), config_json.as_bytes())?;
    let generation = serde_json::json!({ "eos_token_id": tokenizer.eos_token_ids() });
    let generation = serde_json::to_string_pretty(&generation).expect("JSON values serialise");
    write_atomically(&dir.join("generation_config.json"), generation.as_bytes())?;
    let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    write_safetensors(&dir.join("model.safetensors"), hf_tensors(model), Some(metadata))?;
    tokenizer.save(dir)
}

/// Every weight of `model` under its Hugging Face name, in Hugging Face layout (`[out, in]`),
/// with LoRA adapters merged into their projections.
pub fn hf_tensors<B: Backend>(model: &CausalLm<B>) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut out = Vec::new();
    push(&mut out, "model.embed_tokens.weight".into(), model.embed_tokens.val());
    for (i, layer) in model.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        let a = &layer.self_attn;
        for (name, linear) in [
            ("q_proj", &a.q_proj),
            ("k_proj", &a.k_proj),
            ("v_proj", &a.v_proj),
            ("o_proj", &a.o_proj),
        ] {
            push_linear(&mut out, &format!("{p}.self_attn.{name}"), linear);
        }
        for (name, norm) in [("q_norm", &a.q_norm), ("k_norm", &a.k_norm)] {
            if let Some(norm) = norm {
                push_norm(&mut out, &format!("{p}.self_attn.{name}"), norm);
            }
        }
        let m = &layer.mlp;
        for (name, linear) in
            [("gate_proj", &m.gate_proj), ("up_proj", &m.up_proj), ("down_proj", &m.down_proj)]
        {
            push_linear(&mut out, &format!("{p}.mlp.{name}"), linear);
        }
        push_norm(&mut out, &format!("{p}.input_layernorm"), &layer.input_layernorm);
        push_norm(
            &mut out,
            &format!("{p}.post_attention_layernorm"),
            &layer.post_attention_layernorm,
        );
    }
    push_norm(&mut out, "model.norm", &model.norm);
    if let Some(head) = &model.lm_head {
        push_linear(&mut out, "lm_head", head);
    }
    out
}

fn push<B: Backend, const D: usize>(
    out: &mut Vec<(String, Vec<usize>, Vec<f32>)>,
    name: String,
    t: Tensor<B, D>,
) {
    let shape = t.dims().to_vec();
    let values = t.into_data().convert::<f32>().into_vec::<f32>().expect("converted to f32");
    out.push((name, shape, values));
}

fn push_linear<B: Backend>(
    out: &mut Vec<(String, Vec<usize>, Vec<f32>)>,
    prefix: &str,
    linear: &Linear<B>,
) {
    // Stored as [in, out] for the forward pass; Hugging Face stores [out, in]. A LoRA adapter
    // is merged in, so a plain folder always computes what the adapted model does.
    push(out, format!("{prefix}.weight"), linear.effective_weight().transpose());
    if let Some(bias) = &linear.bias {
        push(out, format!("{prefix}.bias"), bias.val());
    }
}

fn push_norm<B: Backend>(
    out: &mut Vec<(String, Vec<usize>, Vec<f32>)>,
    prefix: &str,
    norm: &RmsNorm<B>,
) {
    push(out, format!("{prefix}.weight"), norm.weight.val());
}
