//! Hugging Face model folders: [`Checkpoint::load`] reads `config.json`, the safetensors weights
//! and the tokenizer files, from a local folder or a hub id in the local cache
//! ([`crate::HubCache`]), and PEFT adapter folders onto their base;
//! [`Checkpoint::save`] writes a folder transformers' `from_pretrained` loads back (safetensors,
//! sharded above a size limit, `config.json`, `generation_config.json`, `tokenizer.json`,
//! `tokenizer_config.json`), each file written atomically.

use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, backend::Backend};

use spiral_kernels::precision::Precision;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::hub_cache::HubCache;
use crate::layers::{Linear, RmsNorm};
use crate::lora::ADAPTER_CONFIG;
use crate::model::CausalLm;
use crate::save::{PendingTensor, SaveOptions, write_weights};
use crate::tokenizer::TextTokenizer;
use crate::weights::{SafetensorsWeights, write_atomically};

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
    /// [`crate::lora`]). `name` is a local folder or a hub id (`org/name[@revision]`) in the
    /// local Hugging Face cache ([`HubCache::from_env`]); an existing path wins. Every error
    /// names the file and key at fault.
    pub fn load(name: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
        Self::load_in(&HubCache::from_env(), name, device)
    }

    /// [`Checkpoint::load`] with hub ids looked up in `cache`.
    pub fn load_in(cache: &HubCache, name: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
        let dir = cache.resolve(name)?;
        if dir.join(ADAPTER_CONFIG).is_file() && !dir.join("config.json").is_file() {
            let base = Self::load_base(cache, &dir, device)?;
            return base.with_adapter_folder(&dir);
        }
        Self::load_folder(&dir, device)
    }

    /// A base model with a PEFT adapter loaded onto it, as `PeftModel.from_pretrained(base,
    /// adapter)` builds it: `base` and `adapter` are local folders or cached hub ids, and the
    /// adapter's own `base_model_name_or_path` is not consulted. The adapter folder's tokenizer
    /// is used when it has one, else the base's.
    pub fn load_with_adapter(
        base: impl AsRef<Path>,
        adapter: impl AsRef<Path>,
        device: &B::Device,
    ) -> Result<Self> {
        Self::load_with_adapter_in(&HubCache::from_env(), base, adapter, device)
    }

    /// [`Checkpoint::load_with_adapter`] with hub ids looked up in `cache`.
    pub fn load_with_adapter_in(
        cache: &HubCache,
        base: impl AsRef<Path>,
        adapter: impl AsRef<Path>,
        device: &B::Device,
    ) -> Result<Self> {
        let adapter = cache.resolve(adapter)?;
        if !adapter.join(ADAPTER_CONFIG).is_file() {
            return Err(ModelError::io(
                adapter.join(ADAPTER_CONFIG),
                std::io::Error::new(std::io::ErrorKind::NotFound, "not a PEFT adapter folder"),
            ));
        }
        Self::load_in(cache, base, device)?.with_adapter_folder(&adapter)
    }

    /// A plain model folder (`config.json`, weights, tokenizer).
    fn load_folder(dir: &Path, device: &B::Device) -> Result<Self> {
        if !dir.is_dir() {
            return Err(ModelError::io(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "not a model folder"),
            ));
        }
        let config = ModelConfig::from_file(dir.join("config.json"))?;
        let model = load_model(dir, config.clone(), device)?;
        let tokenizer = TextTokenizer::from_dir(dir, &config.eos_token_ids)?;
        Ok(Self { model, tokenizer, dir: dir.to_path_buf() })
    }

    /// The base model an adapter folder names in `base_model_name_or_path`, as
    /// `AutoPeftModelForCausalLM` finds it: a path relative to the adapter folder, else to the
    /// working directory, else a hub id in `cache`. The base must be a plain model folder.
    fn load_base(cache: &HubCache, adapter: &Path, device: &B::Device) -> Result<Self> {
        let config_path = adapter.join(ADAPTER_CONFIG);
        let text =
            std::fs::read_to_string(&config_path).map_err(|e| ModelError::io(&config_path, e))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ModelError::json(&config_path, &e))?;
        let name = json.get("base_model_name_or_path").and_then(|v| v.as_str()).unwrap_or("");
        let refuse = |message: String| ModelError::Config { path: config_path.clone(), message };
        if name.is_empty() {
            return Err(refuse(
                "`base_model_name_or_path` is empty; name the base model there, or load the \
                 adapter onto a base explicitly (`--adapter`, `Checkpoint::load_with_adapter`)"
                    .into(),
            ));
        }
        let base_dir = cache
            .resolve_relative_to(name, &[adapter])
            .map_err(|e| refuse(format!("`base_model_name_or_path` = {name:?}: {e}")))?;
        Self::load_folder(&base_dir, device)
    }

    /// This model with the PEFT adapter in `dir` loaded onto it, and the adapter folder's own
    /// tokenizer when it has one.
    fn with_adapter_folder(self, dir: &Path) -> Result<Self> {
        let model = self.model.load_adapter(dir)?;
        let tokenizer = if dir.join("tokenizer.json").is_file() {
            TextTokenizer::from_dir(dir, &model.config().eos_token_ids)?
        } else {
            self.tokenizer
        };
        Ok(Self { model, tokenizer, dir: dir.to_path_buf() })
    }

    /// Writes this model and tokenizer as a Hugging Face folder (created if needed), float32,
    /// sharded above 5 GB.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        save_pretrained(&self.model, &self.tokenizer, dir.as_ref())
    }

    /// [`Checkpoint::save`] with another on-disk dtype or shard limit.
    pub fn save_with(&self, dir: impl AsRef<Path>, options: &SaveOptions) -> Result<()> {
        save_pretrained_with(&self.model, &self.tokenizer, dir.as_ref(), options)
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

/// Writes `model` and `tokenizer` into `dir` as transformers expects them, in float32 and
/// sharded above transformers' 5 GB default (see [`save_pretrained_with`]).
pub fn save_pretrained<B: Backend>(
    model: &CausalLm<B>,
    tokenizer: &TextTokenizer,
    dir: &Path,
) -> Result<()> {
    save_pretrained_with(model, tokenizer, dir, &SaveOptions::default())
}

/// Writes `model` and `tokenizer` into `dir` with the on-disk dtype and shard limit of
/// `options`: `config.json` (its `torch_dtype` the saved dtype), `generation_config.json`, the
/// weights ([`crate::save`]) and the tokenizer files, each written atomically.
pub fn save_pretrained_with<B: Backend>(
    model: &CausalLm<B>,
    tokenizer: &TextTokenizer,
    dir: &Path,
    options: &SaveOptions,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let mut config = model.config().clone();
    if config.eos_token_ids.is_empty() {
        // From-scratch models learn their EOS ids from the tokenizer; loaded ones keep theirs.
        config.eos_token_ids = tokenizer.eos_token_ids().to_vec();
    }
    let mut config_json = config.to_hf_json();
    config_json["torch_dtype"] = serde_json::Value::from(options.dtype.name());
    let config_json = serde_json::to_string_pretty(&config_json).expect("JSON values serialise");
    write_atomically(&dir.join("config.json"), config_json.as_bytes())?;
    let generation = serde_json::json!({ "eos_token_id": tokenizer.eos_token_ids() });
    let generation = serde_json::to_string_pretty(&generation).expect("JSON values serialise");
    write_atomically(&dir.join("generation_config.json"), generation.as_bytes())?;
    write_weights(dir, hf_pending_tensors(model), options)?;
    tokenizer.save(dir)
}

/// Every weight of `model` under its Hugging Face name, in Hugging Face layout (`[out, in]`),
/// with LoRA adapters merged into their projections.
pub fn hf_tensors<B: Backend>(model: &CausalLm<B>) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    hf_pending_tensors(model)
        .into_iter()
        .map(|t| {
            let values = (t.values)().convert::<f32>().into_vec::<f32>().expect("converted to f32");
            (t.name, t.shape, values)
        })
        .collect()
}

/// [`hf_tensors`], each computed only when a writer asks for it.
pub fn hf_pending_tensors<B: Backend>(model: &CausalLm<B>) -> Vec<PendingTensor<'_>> {
    let mut out = Vec::new();
    let embed = &model.embed_tokens;
    push(&mut out, "model.embed_tokens.weight".into(), embed.val().dims(), || embed.val());
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

fn push<'a, B: Backend, const D: usize>(
    out: &mut Vec<PendingTensor<'a>>,
    name: String,
    shape: [usize; D],
    tensor: impl Fn() -> Tensor<B, D> + 'a,
) {
    let shape = shape.to_vec();
    out.push(PendingTensor { name, shape, values: Box::new(move || tensor().into_data()) });
}

fn push_linear<'a, B: Backend>(
    out: &mut Vec<PendingTensor<'a>>,
    prefix: &str,
    linear: &'a Linear<B>,
) {
    // Stored as [in, out] for the forward pass; Hugging Face stores [out, in]. A LoRA adapter
    // is merged in, so a plain folder always computes what the adapted model does.
    let [d_in, d_out] = linear.weight.val().dims();
    push(out, format!("{prefix}.weight"), [d_out, d_in], || linear.effective_weight().transpose());
    if let Some(bias) = &linear.bias {
        push(out, format!("{prefix}.bias"), bias.val().dims(), || bias.val());
    }
}

fn push_norm<'a, B: Backend>(out: &mut Vec<PendingTensor<'a>>, prefix: &str, norm: &'a RmsNorm<B>) {
    push(out, format!("{prefix}.weight"), norm.weight.val().dims(), || norm.weight.val());
}
