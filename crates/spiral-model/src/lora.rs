//! LoRA adapters (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models") in
//! PEFT's conventions, so adapters move between this crate and `peft` unchanged.
//!
//! A targeted projection computes `y = x W + s * dropout(x) A B` with `A: [in, r]`,
//! `B: [r, out]` and `s = alpha / r`, or `s = alpha / sqrt(r)` with rsLoRA (Kalajdzievski, 2023,
//! "A Rank Stabilization Scaling Factor for Fine-Tuning with LoRA"). New adapters start as PEFT's
//! do: `A` Kaiming-uniform with PEFT's `a = sqrt(5)` (bound `1 / sqrt(in)`) and `B = 0`, so the
//! adapted model starts equal to the base. [`CausalLm::with_lora`] freezes every base weight
//! (`require_grad = false`), so gradients and optimiser state exist for the adapters only.
//!
//! Files: `adapter_config.json` (PEFT's `LoraConfig`) and `adapter_model.safetensors` with keys
//! `base_model.model.<module>.lora_A.weight` `[r, in]` and `...lora_B.weight` `[out, r]`
//! (PEFT's layout is the transpose of ours, which keeps `[in, out]` for a plain matmul).

use std::path::Path;

use burn::module::{Module, Param};
use burn::tensor::{Distribution, Tensor, TensorData, backend::Backend};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use spiral_kernels::contiguous::materialized;
use spiral_kernels::precision::{cast, matmul};

use crate::error::{ModelError, Result};
use crate::layers::{DecoderLayer, Linear};
use crate::model::CausalLm;
use crate::weights::{Init, SafetensorsWeights, WeightSource, write_atomically, write_safetensors};

/// PEFT's file names.
pub const ADAPTER_CONFIG: &str = "adapter_config.json";
/// PEFT's file names.
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";
/// Prefix PEFT puts before a module's path in adapter files (`PeftModel.base_model.model`).
const PEFT_PREFIX: &str = "base_model.model.";

/// A projection LoRA can adapt, named as in Hugging Face checkpoints and PEFT's
/// `target_modules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Projection {
    /// `self_attn.q_proj`.
    #[serde(rename = "q_proj")]
    Q,
    /// `self_attn.k_proj`.
    #[serde(rename = "k_proj")]
    K,
    /// `self_attn.v_proj`.
    #[serde(rename = "v_proj")]
    V,
    /// `self_attn.o_proj`.
    #[serde(rename = "o_proj")]
    O,
    /// `mlp.gate_proj`.
    #[serde(rename = "gate_proj")]
    Gate,
    /// `mlp.up_proj`.
    #[serde(rename = "up_proj")]
    Up,
    /// `mlp.down_proj`.
    #[serde(rename = "down_proj")]
    Down,
}

impl Projection {
    /// Every projection of a decoder layer (PEFT's `"all-linear"` for these models).
    pub const ALL: [Projection; 7] = [
        Projection::Q,
        Projection::K,
        Projection::V,
        Projection::O,
        Projection::Gate,
        Projection::Up,
        Projection::Down,
    ];

    /// The module name (`q_proj`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Projection::Q => "q_proj",
            Projection::K => "k_proj",
            Projection::V => "v_proj",
            Projection::O => "o_proj",
            Projection::Gate => "gate_proj",
            Projection::Up => "up_proj",
            Projection::Down => "down_proj",
        }
    }

    /// Parses a module name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// Rank, scaling, dropout and targets of a set of adapters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// Rank `r` of `A B`.
    pub rank: usize,
    /// `alpha`: the update is scaled by `alpha / r` (or `alpha / sqrt(r)` with rsLoRA).
    pub alpha: f64,
    /// Dropout on the adapter's input during training (PEFT's `lora_dropout`).
    pub dropout: f64,
    /// rsLoRA scaling `alpha / sqrt(r)`, which keeps the update's size stable across ranks.
    pub use_rslora: bool,
    /// Adapted projections, in every decoder layer.
    pub targets: Vec<Projection>,
}

impl Default for LoraConfig {
    /// Rank 16, alpha 32, no dropout, every projection.
    fn default() -> Self {
        Self {
            rank: 16,
            alpha: 32.0,
            dropout: 0.0,
            use_rslora: false,
            targets: Projection::ALL.to_vec(),
        }
    }
}

impl LoraConfig {
    /// The factor `s` applied to `x A B`.
    pub fn scaling(&self) -> f64 {
        if self.use_rslora {
            self.alpha / (self.rank as f64).sqrt()
        } else {
            self.alpha / self.rank as f64
        }
    }

    /// Refuses a zero rank, a non-finite or non-positive alpha, dropout outside `[0, 1)`, and
    /// empty or repeated targets.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.rank == 0 {
            return Err("LoRA rank must be at least 1".into());
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(format!("LoRA alpha must be a positive number, got {}", self.alpha));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("LoRA dropout must be in [0, 1), got {}", self.dropout));
        }
        if self.targets.is_empty() {
            return Err("LoRA needs at least one target projection".into());
        }
        let mut sorted = self.targets.clone();
        sorted.sort();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("LoRA target `{}` is listed twice", w[0].name()));
        }
        Ok(())
    }

    /// PEFT's `adapter_config.json` for these adapters on `base_model` (a path or hub id).
    pub fn to_peft_json(&self, base_model: &str) -> Value {
        let targets: Vec<&str> = self.targets.iter().map(|p| p.name()).collect();
        serde_json::json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": base_model,
            "r": self.rank,
            "lora_alpha": self.alpha,
            "lora_dropout": self.dropout,
            "use_rslora": self.use_rslora,
            "target_modules": targets,
            "bias": "none",
            "lora_bias": false,
            "use_dora": false,
            "fan_in_fan_out": false,
            "init_lora_weights": true,
            "inference_mode": true,
            "modules_to_save": null,
            "layers_to_transform": null,
            "layers_pattern": null,
            "rank_pattern": {},
            "alpha_pattern": {},
        })
    }

    /// Reads PEFT's `adapter_config.json`, refusing the PEFT features this crate does not
    /// implement (DoRA, per-module ranks, adapted biases, extra trained modules, ...) by key.
    pub fn from_peft_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let json: Value = serde_json::from_str(&text).map_err(|e| ModelError::json(path, &e))?;
        Self::from_peft_json(&json)
            .map_err(|message| ModelError::Config { path: path.into(), message })
    }

    /// [`LoraConfig::from_peft_file`] on parsed JSON; the error names the key.
    pub fn from_peft_json(json: &Value) -> std::result::Result<Self, String> {
        let get = |key: &str| json.get(key).filter(|v| !v.is_null());
        let peft_type = get("peft_type").and_then(Value::as_str);
        if peft_type != Some("LORA") {
            return Err(format!("`peft_type` is {peft_type:?}, expected \"LORA\""));
        }
        let rank = get("r")
            .and_then(Value::as_u64)
            .ok_or("`r` must be a positive integer (the LoRA rank)")? as usize;
        let alpha = get("lora_alpha").and_then(Value::as_f64).unwrap_or(8.0);
        let dropout = get("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0);
        let use_rslora = get("use_rslora").and_then(Value::as_bool).unwrap_or(false);
        let targets = match get("target_modules") {
            Some(Value::String(s)) if s == "all-linear" => Projection::ALL.to_vec(),
            Some(Value::String(s)) => {
                return Err(format!(
                    "`target_modules` is the pattern {s:?}; expected a list of module names or \
                     \"all-linear\""
                ));
            }
            Some(Value::Array(names)) => names
                .iter()
                .map(|n| {
                    n.as_str().and_then(Projection::parse).ok_or_else(|| {
                        format!(
                            "`target_modules` entry {n} is not one of q_proj, k_proj, v_proj, \
                             o_proj, gate_proj, up_proj, down_proj"
                        )
                    })
                })
                .collect::<std::result::Result<Vec<_>, _>>()?,
            _ => return Err("`target_modules` must be a list of module names".into()),
        };
        // Settings that would change the numbers if ignored.
        let refuse = |key: &str, why: &str| -> std::result::Result<(), String> {
            let set = match get(key) {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(Value::Object(m)) => !m.is_empty(),
                Some(Value::Array(a)) => !a.is_empty(),
                Some(Value::String(s)) => key != "bias" || s != "none",
                Some(_) => true,
            };
            if set {
                Err(format!("`{key}` = {} is not supported: {why}", json[key]))
            } else {
                Ok(())
            }
        };
        refuse("use_dora", "DoRA adapters are not implemented")?;
        refuse("rank_pattern", "every adapted module must share `r`")?;
        refuse("alpha_pattern", "every adapted module must share `lora_alpha`")?;
        refuse("bias", "only `bias = \"none\"` (frozen biases) is supported")?;
        refuse("lora_bias", "adapters with a bias on B are not implemented")?;
        refuse("fan_in_fan_out", "only nn.Linear-style [out, in] weights are supported")?;
        refuse("modules_to_save", "fully trained extra modules are not supported")?;
        refuse("layers_to_transform", "adapters must cover every layer")?;
        refuse("target_parameters", "only module targets are supported")?;
        refuse("trainable_token_indices", "trainable tokens are not supported")?;
        let mut config = Self { rank, alpha, dropout, use_rslora, targets };
        // PEFT stores the targets as a set, in no fixed order.
        config.targets.sort();
        config.validate()?;
        Ok(config)
    }
}

/// The low-rank update of one projection: `s * dropout(x) A B`.
#[derive(Module, Debug)]
pub struct LoraAdapter<B: Backend> {
    /// `[in, r]` (PEFT's `lora_A.weight` transposed).
    pub a: Param<Tensor<B, 2>>,
    /// `[r, out]` (PEFT's `lora_B.weight` transposed).
    pub b: Param<Tensor<B, 2>>,
    #[module(skip)]
    scaling: f64,
    #[module(skip)]
    dropout: f64,
}

impl<B: Backend> LoraAdapter<B> {
    /// `s * dropout(x) A B` for `x: [rows, in]`. Dropout is active only on autodiff backends
    /// (training), as in `burn::nn::Dropout`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let x = if self.dropout > 0.0 && B::ad_enabled(&x.device()) {
            let drop = x.random_like(Distribution::Bernoulli(self.dropout));
            x.mask_fill(drop.equal_elem(1.0), 0.0).div_scalar(1.0 - self.dropout)
        } else {
            x
        };
        let dtype = x.dtype();
        let down = matmul(x, cast(self.a.val(), dtype));
        matmul(down, cast(self.b.val(), dtype)).mul_scalar(self.scaling)
    }

    /// The dense update `s * A B`, `[in, out]`.
    pub fn delta(&self) -> Tensor<B, 2> {
        matmul(self.a.val(), self.b.val()).mul_scalar(self.scaling)
    }
}

impl<B: Backend> Linear<B> {
    /// The weight the projection applies, `[in, out]`: its own plus its adapter's update.
    pub fn effective_weight(&self) -> Tensor<B, 2> {
        match &self.lora {
            Some(lora) => self.weight.val() + lora.delta(),
            None => self.weight.val(),
        }
    }
}

fn adapter<B: Backend>(a: Tensor<B, 2>, b: Tensor<B, 2>, config: &LoraConfig) -> LoraAdapter<B> {
    LoraAdapter {
        a: Param::from_tensor(a),
        b: Param::from_tensor(b),
        scaling: config.scaling(),
        dropout: config.dropout,
    }
}

/// The module path of `projection` in decoder layer `layer` (`model.layers.3.mlp.up_proj`).
pub fn module_path(layer: usize, projection: Projection) -> String {
    let block = match projection {
        Projection::Q | Projection::K | Projection::V | Projection::O => "self_attn",
        Projection::Gate | Projection::Up | Projection::Down => "mlp",
    };
    format!("model.layers.{layer}.{block}.{}", projection.name())
}

impl<B: Backend> DecoderLayer<B> {
    /// The layer's projections, in [`Projection::ALL`] order.
    pub fn projections(&self) -> [(Projection, &Linear<B>); 7] {
        let (a, m) = (&self.self_attn, &self.mlp);
        [
            (Projection::Q, &a.q_proj),
            (Projection::K, &a.k_proj),
            (Projection::V, &a.v_proj),
            (Projection::O, &a.o_proj),
            (Projection::Gate, &m.gate_proj),
            (Projection::Up, &m.up_proj),
            (Projection::Down, &m.down_proj),
        ]
    }

    /// [`DecoderLayer::projections`], mutably.
    pub fn projections_mut(&mut self) -> [(Projection, &mut Linear<B>); 7] {
        let (a, m) = (&mut self.self_attn, &mut self.mlp);
        [
            (Projection::Q, &mut a.q_proj),
            (Projection::K, &mut a.k_proj),
            (Projection::V, &mut a.v_proj),
            (Projection::O, &mut a.o_proj),
            (Projection::Gate, &mut m.gate_proj),
            (Projection::Up, &mut m.up_proj),
            (Projection::Down, &mut m.down_proj),
        ]
    }
}

impl<B: Backend> CausalLm<B> {
    /// The adapters' configuration, when the model has adapters.
    pub fn lora(&self) -> Option<&LoraConfig> {
        self.lora.as_ref()
    }

    /// Number of adapter parameters (0 without adapters).
    pub fn lora_parameters(&self) -> usize {
        self.layers
            .iter()
            .flat_map(|l| l.projections())
            .filter_map(|(_, linear)| linear.lora.as_ref())
            .map(|l| {
                l.a.val().dims().iter().product::<usize>()
                    + l.b.val().dims().iter().product::<usize>()
            })
            .sum()
    }

    /// Attaches fresh adapters (PEFT's initialisation, drawn from `seed`) to the configured
    /// projections and freezes every base weight. The adapted model starts equal to `self`.
    pub fn with_lora(self, config: &LoraConfig, seed: u64) -> Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        self.attach(config, |_, d_in, d_out, device| {
            // Kaiming-uniform with a = sqrt(5): bound = sqrt(6 / ((1 + a^2) fan_in)) = 1/sqrt(in).
            let bound = 1.0 / (d_in as f64).sqrt();
            let a: Vec<f32> =
                (0..d_in * config.rank).map(|_| rng.random_range(-bound..bound) as f32).collect();
            let a = Tensor::from_data(TensorData::new(a, [d_in, config.rank]), device);
            let b = Tensor::zeros([config.rank, d_out], device);
            Ok((a, b))
        })
    }

    /// Loads PEFT adapters (`adapter_config.json` + `adapter_model.safetensors` in `dir`) onto
    /// this base model and freezes the base weights. Every adapter tensor the config implies must
    /// be present with its shape, and no other may be.
    pub fn load_adapter(self, dir: &Path) -> Result<Self> {
        let config = LoraConfig::from_peft_file(&dir.join(ADAPTER_CONFIG))?;
        let device = self.device();
        let path = dir.join(ADAPTER_WEIGHTS);
        let mut weights = SafetensorsWeights::<B>::open_file(&path, &device)?;
        let model = self.attach(&config, |module, d_in, d_out, _| {
            let a_key = format!("{PEFT_PREFIX}{module}.lora_A.weight");
            let b_key = format!("{PEFT_PREFIX}{module}.lora_B.weight");
            // An adapter for another base fails here, naming the projection, rather than as a
            // rank disagreement below (which is what a wrong `r` in the config looks like).
            if let (Some(&[a_rank, a_in]), Some(&[b_out, b_rank])) =
                (weights.shape(&a_key), weights.shape(&b_key))
                && (a_in != d_in || b_out != d_out)
            {
                return Err(ModelError::AdapterMismatch {
                    path: path.clone(),
                    module: module.to_string(),
                    lora_a: [a_rank, a_in],
                    lora_b: [b_out, b_rank],
                    base: [d_out, d_in],
                });
            }
            let a: Tensor<B, 2> = weights.tensor(&a_key, [config.rank, d_in], Init::Zeros)?;
            let b: Tensor<B, 2> = weights.tensor(&b_key, [d_out, config.rank], Init::Zeros)?;
            // Contiguous, so a loaded adapter computes bit for bit what the saved one did.
            Ok((materialized(a.transpose()), materialized(b.transpose())))
        })?;
        let targets: Vec<&str> = config.targets.iter().map(|p| p.name()).collect();
        weights
            .finish(&format!("LoRA adapter (r = {}, targets {targets:?}) on this", config.rank))?;
        Ok(model)
    }

    /// Freezes the base and gives each targeted projection the adapter `make(module path, in,
    /// out, device)` returns.
    fn attach(
        self,
        config: &LoraConfig,
        mut make: impl FnMut(&str, usize, usize, &B::Device) -> Result<(Tensor<B, 2>, Tensor<B, 2>)>,
    ) -> Result<Self> {
        config.validate().map_err(ModelError::Input)?;
        if self.lora.is_some() {
            return Err(ModelError::Input(
                "the model already has LoRA adapters; merge them first (merge_lora)".into(),
            ));
        }
        let device = self.device();
        let mut model = self.no_grad();
        for (i, layer) in model.layers.iter_mut().enumerate() {
            for (projection, linear) in layer.projections_mut() {
                if config.targets.contains(&projection) {
                    let [d_in, d_out] = linear.weight.dims();
                    let (a, b) = make(&module_path(i, projection), d_in, d_out, &device)?;
                    linear.lora = Some(adapter(a, b, config));
                }
            }
        }
        model.lora = Some(config.clone());
        Ok(model)
    }

    /// The same adapters trained with input dropout `dropout` (a training choice, which PEFT
    /// saves in `lora_dropout` but which loading must not impose on further training).
    pub fn with_lora_dropout(mut self, dropout: f64) -> Self {
        for (_, linear) in self.layers.iter_mut().flat_map(|l| l.projections_mut()) {
            if let Some(lora) = &mut linear.lora {
                lora.dropout = dropout;
            }
        }
        if let Some(config) = &mut self.lora {
            config.dropout = dropout;
        }
        self
    }

    /// Folds every adapter into its base weight (`W + s A B`) and drops the adapters: a plain
    /// model that computes what the adapted one did (a model without adapters is unchanged).
    pub fn merge_lora(mut self) -> Self {
        for (_, linear) in self.layers.iter_mut().flat_map(|l| l.projections_mut()) {
            if linear.lora.is_some() {
                let merged = linear.effective_weight();
                linear.weight = Param::from_tensor(merged);
                linear.lora = None;
            }
        }
        self.lora = None;
        self
    }

    /// The adapters under PEFT's names and layout (`lora_A.weight` `[r, in]`,
    /// `lora_B.weight` `[out, r]`), float32.
    pub fn adapter_tensors(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            for (projection, linear) in layer.projections() {
                let Some(lora) = &linear.lora else { continue };
                let module = module_path(i, projection);
                for (name, t) in [("lora_A", lora.a.val()), ("lora_B", lora.b.val())] {
                    let t = t.transpose();
                    let shape = t.dims().to_vec();
                    let values = t.into_data().convert::<f32>().into_vec::<f32>().expect("f32");
                    out.push((format!("{PEFT_PREFIX}{module}.{name}.weight"), shape, values));
                }
            }
        }
        out
    }

    /// Writes the adapters as PEFT does (`adapter_config.json`, `adapter_model.safetensors`)
    /// into `dir`, naming `base_model` as the model they adapt. Each file is written atomically.
    pub fn save_adapter(&self, dir: &Path, base_model: &str) -> Result<()> {
        let config = self.lora.as_ref().ok_or_else(|| {
            ModelError::Input("save_adapter: the model has no LoRA adapters".into())
        })?;
        std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
        let json = serde_json::to_string_pretty(&config.to_peft_json(base_model))
            .expect("JSON values serialise");
        let tensors = self.adapter_tensors();
        let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
        write_safetensors(&dir.join(ADAPTER_WEIGHTS), tensors, Some(metadata))?;
        write_atomically(&dir.join(ADAPTER_CONFIG), json.as_bytes())
    }
}
