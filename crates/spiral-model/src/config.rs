//! Model configuration in two layers (after candle's `llama.rs` `into_config`): [`HfConfig`] is
//! `config.json` exactly as Hugging Face writes it, old and new spellings alike; [`ModelConfig`] is
//! the validated description the model is built from. Features the model does not implement
//! (sliding-window attention, mixture of experts, other RoPE scalings, quantized weights, ...) are
//! refused here, at load, naming the key that asks for them.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ModelError, Result};

/// The decoder families this crate implements. They share one transformer
/// ([`crate::CausalLm`]) and differ only in three switches: per-head q/k RMSNorm (Qwen3),
/// q/k/v projection biases (Qwen2, or Llama with `attention_bias`), and RoPE scaling (Llama 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Qwen3 dense models: q/k RMSNorm per head, explicit `head_dim`, no biases.
    Qwen3,
    /// Qwen2 / Qwen2.5 dense models: biases on q/k/v projections.
    Qwen2,
    /// Llama 2 / 3 / 3.x, including `rope_scaling` of type `llama3`.
    Llama,
}

impl Family {
    /// The `model_type` string of `config.json`.
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Qwen3 => "qwen3",
            Family::Qwen2 => "qwen2",
            Family::Llama => "llama",
        }
    }

    /// The `architectures` entry transformers uses for the causal-LM head.
    pub fn architecture(self) -> &'static str {
        match self {
            Family::Qwen3 => "Qwen3ForCausalLM",
            Family::Qwen2 => "Qwen2ForCausalLM",
            Family::Llama => "LlamaForCausalLM",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.model_type())
    }
}

/// Llama 3 frequency-dependent RoPE scaling (`rope_type = "llama3"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Llama3RopeScaling {
    /// Divisor applied to low frequencies.
    pub factor: f64,
    /// Wavelengths longer than `original_max_position_embeddings / low_freq_factor` are scaled.
    pub low_freq_factor: f64,
    /// Wavelengths shorter than `original_max_position_embeddings / high_freq_factor` are kept.
    pub high_freq_factor: f64,
    /// Context length of the model before scaling.
    pub original_max_position_embeddings: usize,
}

/// Rotary position embedding parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RopeConfig {
    /// Base of the geometric frequency progression (`rope_theta`).
    pub theta: f64,
    /// Optional Llama 3 scaling of the frequencies.
    pub llama3: Option<Llama3RopeScaling>,
}

/// The validated configuration a [`crate::CausalLm`] is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Which family's conventions apply.
    pub family: Family,
    /// Rows of the embedding matrix (may exceed the tokenizer's size, as Qwen pads it).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Number of decoder blocks.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `num_heads`).
    pub num_kv_heads: usize,
    /// Width of one head (explicit in Qwen3; `hidden_size / num_heads` otherwise).
    pub head_dim: usize,
    /// Epsilon inside every RMSNorm.
    pub rms_norm_eps: f64,
    /// Rotary embedding parameters.
    pub rope: RopeConfig,
    /// Longest sequence the model accepts.
    pub max_position_embeddings: usize,
    /// Whether the output head reuses the input embedding matrix.
    pub tie_word_embeddings: bool,
    /// Biases on the q/k/v projections (Qwen2; Llama's and Qwen3's `attention_bias`, which also
    /// adds one on the output projection).
    pub qkv_bias: bool,
    /// Bias on the attention output projection (`attention_bias` in Llama and Qwen3).
    pub o_bias: bool,
    /// Biases on the MLP projections (Llama's `mlp_bias`).
    pub mlp_bias: bool,
    /// Per-head RMSNorm on queries and keys before RoPE (Qwen3).
    pub qk_norm: bool,
    /// Beginning-of-sequence token, when the config names one.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence tokens named by `config.json` (the tokenizer may add more).
    pub eos_token_ids: Vec<u32>,
}

impl ModelConfig {
    /// Reads and validates a `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let hf: HfConfig = serde_json::from_str(&text).map_err(|e| ModelError::json(path, &e))?;
        hf.into_config(path)
    }

    /// A small Qwen3-style config for from-scratch models (tied embeddings, explicit head_dim).
    pub fn small(
        vocab_size: usize,
        hidden_size: usize,
        num_layers: usize,
        num_heads: usize,
    ) -> Self {
        let head_dim = hidden_size / num_heads;
        Self {
            family: Family::Qwen3,
            vocab_size,
            hidden_size,
            intermediate_size: hidden_size * 11 / 4,
            num_layers,
            num_heads,
            num_kv_heads: num_heads,
            head_dim,
            rms_norm_eps: 1e-6,
            rope: RopeConfig { theta: 10_000.0, llama3: None },
            max_position_embeddings: 2048,
            tie_word_embeddings: true,
            qkv_bias: false,
            o_bias: false,
            mlp_bias: false,
            qk_norm: true,
            bos_token_id: None,
            eos_token_ids: Vec::new(),
        }
    }

    /// Checks the relations between sizes that the model relies on.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_layers),
            ("num_attention_heads", self.num_heads),
            ("num_key_value_heads", self.num_kv_heads),
            ("head_dim", self.head_dim),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(format!("`{key}` must be positive, found 0"));
            }
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return Err(format!(
                "`num_attention_heads` ({}) must be a multiple of `num_key_value_heads` ({})",
                self.num_heads, self.num_kv_heads
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(format!(
                "`head_dim` must be even for rotary embeddings, found {}",
                self.head_dim
            ));
        }
        if !(self.rope.theta.is_finite() && self.rope.theta > 0.0) {
            return Err(format!(
                "`rope_theta` must be a positive number, found {}",
                self.rope.theta
            ));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return Err(format!("`rms_norm_eps` must be positive, found {}", self.rms_norm_eps));
        }
        Ok(())
    }

    /// Number of parameters of a model with this config.
    pub fn num_parameters(&self) -> usize {
        let (h, i, d) = (self.hidden_size, self.intermediate_size, self.head_dim);
        let q = self.num_heads * d;
        let kv = self.num_kv_heads * d;
        let mut attn = h * q + 2 * h * kv + q * h;
        if self.qkv_bias {
            attn += q + 2 * kv;
        }
        if self.o_bias {
            attn += h;
        }
        if self.qk_norm {
            attn += 2 * d;
        }
        let mut mlp = 3 * h * i;
        if self.mlp_bias {
            mlp += 2 * i + h;
        }
        let block = attn + mlp + 2 * h;
        let head = if self.tie_word_embeddings { 0 } else { self.vocab_size * h };
        self.vocab_size * h + self.num_layers * block + h + head
    }

    /// The `config.json` transformers needs to load this model back.
    pub fn to_hf_json(&self) -> Value {
        let mut map = Map::new();
        let mut put = |k: &str, v: Value| {
            map.insert(k.to_string(), v);
        };
        put("architectures", Value::from(vec![self.family.architecture()]));
        put("model_type", Value::from(self.family.model_type()));
        put("vocab_size", Value::from(self.vocab_size));
        put("hidden_size", Value::from(self.hidden_size));
        put("intermediate_size", Value::from(self.intermediate_size));
        put("num_hidden_layers", Value::from(self.num_layers));
        put("num_attention_heads", Value::from(self.num_heads));
        put("num_key_value_heads", Value::from(self.num_kv_heads));
        put("head_dim", Value::from(self.head_dim));
        put("hidden_act", Value::from("silu"));
        put("rms_norm_eps", Value::from(self.rms_norm_eps));
        // The legacy spelling: every transformers release reads it (v5 converts it to
        // `rope_parameters` on load).
        put("rope_theta", Value::from(self.rope.theta));
        let scaling = match self.rope.llama3 {
            None => Value::Null,
            Some(s) => serde_json::json!({
                "rope_type": "llama3",
                "factor": s.factor,
                "low_freq_factor": s.low_freq_factor,
                "high_freq_factor": s.high_freq_factor,
                "original_max_position_embeddings": s.original_max_position_embeddings,
            }),
        };
        put("rope_scaling", scaling);
        put("max_position_embeddings", Value::from(self.max_position_embeddings));
        put("tie_word_embeddings", Value::from(self.tie_word_embeddings));
        match self.family {
            // Qwen2's q/k/v biases are fixed by the architecture, not a config key.
            Family::Qwen2 => {}
            Family::Qwen3 | Family::Llama => put("attention_bias", Value::from(self.o_bias)),
        }
        if self.family == Family::Llama {
            put("mlp_bias", Value::from(self.mlp_bias));
        }
        put("attention_dropout", Value::from(0.0));
        put("use_cache", Value::from(true));
        put("torch_dtype", Value::from("float32"));
        if let Some(bos) = self.bos_token_id {
            put("bos_token_id", Value::from(bos));
        }
        match self.eos_token_ids.as_slice() {
            [] => {}
            [one] => put("eos_token_id", Value::from(*one)),
            many => put("eos_token_id", Value::from(many.to_vec())),
        }
        Value::Object(map)
    }
}

/// `config.json` as Hugging Face writes it. Only the keys the three families use are typed; the
/// rest is kept in `extra` so that unsupported features can be recognised and refused by name.
#[derive(Debug, Clone, Deserialize)]
pub struct HfConfig {
    /// `qwen3`, `qwen2` or `llama`.
    pub model_type: Option<String>,
    /// For example `["Qwen3ForCausalLM"]`.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Embedding rows.
    pub vocab_size: usize,
    /// Residual width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Decoder blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads; defaults to `num_attention_heads`.
    pub num_key_value_heads: Option<usize>,
    /// Head width; defaults to `hidden_size / num_attention_heads`.
    pub head_dim: Option<usize>,
    /// RMSNorm epsilon.
    pub rms_norm_eps: Option<f64>,
    /// Legacy spelling of the RoPE base.
    pub rope_theta: Option<f64>,
    /// Legacy spelling of RoPE scaling.
    pub rope_scaling: Option<Value>,
    /// transformers v5 spelling: `{"rope_theta": .., "rope_type": .., ...}`.
    pub rope_parameters: Option<Value>,
    /// Context length.
    pub max_position_embeddings: Option<usize>,
    /// Whether `lm_head` reuses `embed_tokens`.
    pub tie_word_embeddings: Option<bool>,
    /// Llama/Qwen3: biases on q/k/v/o.
    pub attention_bias: Option<bool>,
    /// Llama: biases on the MLP.
    pub mlp_bias: Option<bool>,
    /// Must be `silu`.
    pub hidden_act: Option<String>,
    /// BOS id.
    pub bos_token_id: Option<Value>,
    /// One EOS id or a list.
    pub eos_token_id: Option<Value>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl HfConfig {
    /// Validates and converts to the internal config; `path` is named in errors.
    pub fn into_config(self, path: &Path) -> Result<ModelConfig> {
        let family = self.family(path)?;
        self.refuse_unsupported(path)?;
        let bad = |message: String| ModelError::Config { path: path.to_path_buf(), message };

        let num_kv_heads = self.num_key_value_heads.unwrap_or(self.num_attention_heads);
        if self.num_attention_heads == 0 {
            return Err(bad("`num_attention_heads` must be positive, found 0".into()));
        }
        let head_dim = self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads);
        let rope = self.rope_config(path)?;
        let attention_bias = self.attention_bias.unwrap_or(false);
        let config = ModelConfig {
            family,
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_layers: self.num_hidden_layers,
            num_heads: self.num_attention_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: self.rms_norm_eps.unwrap_or(1e-6),
            rope,
            max_position_embeddings: self.max_position_embeddings.unwrap_or(4096),
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(false),
            qkv_bias: family == Family::Qwen2 || attention_bias,
            o_bias: family != Family::Qwen2 && attention_bias,
            mlp_bias: family == Family::Llama && self.mlp_bias.unwrap_or(false),
            qk_norm: family == Family::Qwen3,
            bos_token_id: token_ids(path, "bos_token_id", self.bos_token_id.as_ref())?
                .first()
                .copied(),
            eos_token_ids: token_ids(path, "eos_token_id", self.eos_token_id.as_ref())?,
        };
        config.validate().map_err(bad)?;
        Ok(config)
    }

    fn family(&self, path: &Path) -> Result<Family> {
        let from_arch = self.architectures.iter().find_map(|a| match a.as_str() {
            "Qwen3ForCausalLM" => Some("qwen3"),
            "Qwen2ForCausalLM" => Some("qwen2"),
            "LlamaForCausalLM" => Some("llama"),
            _ => None,
        });
        let model_type =
            self.model_type.as_deref().or(from_arch).ok_or_else(|| ModelError::Config {
                path: path.to_path_buf(),
                message: "missing `model_type` (expected \"qwen3\", \"qwen2\" or \"llama\")".into(),
            })?;
        match model_type {
            "qwen3" => Ok(Family::Qwen3),
            "qwen2" => Ok(Family::Qwen2),
            "llama" => Ok(Family::Llama),
            other => Err(ModelError::Unsupported {
                path: path.to_path_buf(),
                key: "model_type".into(),
                value: format!("{other:?}"),
                why: "supported families are \"qwen3\", \"qwen2\" and \"llama\"".into(),
            }),
        }
    }

    /// Refuses features that would silently change the computation if ignored.
    fn refuse_unsupported(&self, path: &Path) -> Result<()> {
        let unsupported = |key: &str, value: &Value, why: &str| ModelError::Unsupported {
            path: path.to_path_buf(),
            key: key.to_string(),
            value: value.to_string(),
            why: why.to_string(),
        };
        if let Some(act) = &self.hidden_act
            && act != "silu"
        {
            return Err(unsupported(
                "hidden_act",
                &Value::from(act.clone()),
                "only \"silu\" (SwiGLU) is implemented",
            ));
        }
        let extra = &self.extra;
        if let Some(v) = extra.get("use_sliding_window")
            && v.as_bool() == Some(true)
        {
            return Err(unsupported(
                "use_sliding_window",
                v,
                "sliding-window attention is not implemented; set it to false",
            ));
        }
        if let Some(v @ Value::Array(types)) = extra.get("layer_types")
            && types.iter().any(|t| t.as_str() != Some("full_attention"))
        {
            return Err(unsupported(
                "layer_types",
                v,
                "only \"full_attention\" layers are implemented",
            ));
        }
        for key in ["num_experts", "num_local_experts", "n_routed_experts", "moe_intermediate_size"]
        {
            if let Some(v) = extra.get(key)
                && v.as_u64().is_some_and(|n| n > 0)
            {
                return Err(unsupported(key, v, "mixture-of-experts layers are not implemented"));
            }
        }
        if let Some(v) = extra.get("quantization_config") {
            return Err(unsupported(
                "quantization_config",
                v,
                "quantized checkpoints are not supported; use float32/float16/bfloat16 weights",
            ));
        }
        if let Some(v) = extra.get("pretraining_tp")
            && v.as_u64().is_some_and(|n| n > 1)
        {
            return Err(unsupported("pretraining_tp", v, "only pretraining_tp = 1 is implemented"));
        }
        Ok(())
    }

    /// Reads `rope_theta` and the scaling from either spelling.
    fn rope_config(&self, path: &Path) -> Result<RopeConfig> {
        let params = self.rope_parameters.as_ref().filter(|v| !v.is_null());
        let theta = self
            .rope_theta
            .or_else(|| params.and_then(|p| p.get("rope_theta")).and_then(Value::as_f64))
            .unwrap_or(10_000.0);
        // Both spellings carry the scaling kind as `rope_type` (older files: `type`).
        let (key, scaling) = match (self.rope_scaling.as_ref().filter(|v| !v.is_null()), params) {
            (Some(s), _) => ("rope_scaling", Some(s)),
            (None, Some(p)) => ("rope_parameters", Some(p)),
            (None, None) => ("rope_scaling", None),
        };
        let Some(scaling) = scaling else { return Ok(RopeConfig { theta, llama3: None }) };
        let kind = scaling
            .get("rope_type")
            .or_else(|| scaling.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        match kind {
            "default" => Ok(RopeConfig { theta, llama3: None }),
            "llama3" => {
                let num = |name: &str| {
                    scaling.get(name).and_then(Value::as_f64).ok_or_else(|| ModelError::Config {
                        path: path.to_path_buf(),
                        message: format!("`{key}.{name}` is required for rope_type \"llama3\" and must be a number"),
                    })
                };
                Ok(RopeConfig {
                    theta,
                    llama3: Some(Llama3RopeScaling {
                        factor: num("factor")?,
                        low_freq_factor: num("low_freq_factor")?,
                        high_freq_factor: num("high_freq_factor")?,
                        original_max_position_embeddings: num("original_max_position_embeddings")?
                            as usize,
                    }),
                })
            }
            other => Err(ModelError::Unsupported {
                path: path.to_path_buf(),
                key: format!("{key}.rope_type"),
                value: format!("{other:?}"),
                why: "only \"default\" and \"llama3\" RoPE are implemented".into(),
            }),
        }
    }
}

/// Reads a token id field that may be absent, null, a number, or a list of numbers.
pub(crate) fn token_ids(path: &Path, key: &str, value: Option<&Value>) -> Result<Vec<u32>> {
    let bad = || ModelError::Config {
        path: path.to_path_buf(),
        message: format!(
            "`{key}` must be a token id or a list of token ids, found {}",
            value.map_or("nothing".into(), Value::to_string)
        ),
    };
    let one = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(bad);
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(one).collect(),
        Some(v) => Ok(vec![one(v)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ModelConfig> {
        let hf: HfConfig =
            serde_json::from_str(json).map_err(|e| ModelError::json("config.json", &e))?;
        hf.into_config(Path::new("config.json"))
    }

    const QWEN3: &str = r#"{"architectures":["Qwen3ForCausalLM"],"model_type":"qwen3","vocab_size":512,
        "hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,
        "num_key_value_heads":2,"head_dim":32,"rms_norm_eps":1e-6,"rope_theta":1000000.0,
        "max_position_embeddings":512,"tie_word_embeddings":false,"use_sliding_window":false,
        "sliding_window":null,"eos_token_id":7}"#;

    #[test]
    fn qwen3_legacy_spelling() {
        let c = parse(QWEN3).unwrap();
        assert_eq!(c.family, Family::Qwen3);
        assert_eq!((c.head_dim, c.num_kv_heads), (32, 2));
        assert!(c.qk_norm && !c.qkv_bias && !c.tie_word_embeddings);
        assert_eq!(c.rope.theta, 1e6);
        assert_eq!(c.eos_token_ids, vec![7]);
    }

    #[test]
    fn rope_parameters_spelling_matches_legacy() {
        let new = QWEN3.replace(
            r#""rope_theta":1000000.0"#,
            r#""rope_parameters":{"rope_theta":1000000.0,"rope_type":"default"}"#,
        );
        assert_eq!(parse(&new).unwrap(), parse(QWEN3).unwrap());
    }

    #[test]
    fn llama3_scaling_in_both_spellings() {
        let base = r#"{"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":16,
            "num_hidden_layers":1,"num_attention_heads":2,"eos_token_id":[1,2],"#;
        let scaling = r#"{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":64}"#;
        let old = format!(r#"{base}"rope_theta":500000.0,"rope_scaling":{scaling}}}"#);
        let new_scaling = scaling.replace('{', r#"{"rope_theta":500000.0,"#);
        let new = format!(r#"{base}"rope_parameters":{new_scaling}}}"#);
        let (a, b) = (parse(&old).unwrap(), parse(&new).unwrap());
        assert_eq!(a, b);
        let s = a.rope.llama3.unwrap();
        assert_eq!((s.factor, s.original_max_position_embeddings), (8.0, 64));
        assert_eq!(a.rope.theta, 500000.0);
        assert_eq!(a.eos_token_ids, vec![1, 2]);
        assert_eq!(a.head_dim, 4);
    }

    #[test]
    fn refuses_unsupported_features_by_name() {
        let cases = [
            (
                QWEN3.replace(r#""use_sliding_window":false"#, r#""use_sliding_window":true"#),
                "use_sliding_window",
            ),
            (QWEN3.replace(r#""eos_token_id":7"#, r#""num_experts":8"#), "num_experts"),
            (QWEN3.replace(r#""eos_token_id":7"#, r#""hidden_act":"gelu""#), "hidden_act"),
            (
                QWEN3.replace(
                    r#""rope_theta":1000000.0"#,
                    r#""rope_scaling":{"type":"yarn","factor":4.0}"#,
                ),
                "rope_scaling.rope_type",
            ),
            (QWEN3.replace(r#""model_type":"qwen3""#, r#""model_type":"gpt2""#), "model_type"),
            (
                QWEN3.replace(
                    r#""eos_token_id":7"#,
                    r#""layer_types":["full_attention","sliding_attention"]"#,
                ),
                "layer_types",
            ),
        ];
        for (json, key) in cases {
            let err = parse(&json).unwrap_err().to_string();
            assert!(err.contains(key), "error for {key} does not name it: {err}");
            assert!(err.contains("config.json"), "error does not name the file: {err}");
        }
    }

    #[test]
    fn malformed_values_are_named() {
        let err = parse(&QWEN3.replace(r#""num_key_value_heads":2"#, r#""num_key_value_heads":3"#))
            .unwrap_err();
        assert!(err.to_string().contains("num_key_value_heads"), "{err}");
        let err =
            parse(&QWEN3.replace(r#""vocab_size":512"#, r#""vocab_size":"big""#)).unwrap_err();
        assert!(matches!(err, ModelError::Json { .. }), "{err}");
        let err =
            parse(&QWEN3.replace(r#""eos_token_id":7"#, r#""eos_token_id":"x""#)).unwrap_err();
        assert!(err.to_string().contains("eos_token_id"), "{err}");
    }

    #[test]
    fn hf_json_round_trips() {
        for json in
            [QWEN3.to_string(), QWEN3.replace(r#""model_type":"qwen3""#, r#""model_type":"qwen2""#)]
        {
            let c = parse(&json).unwrap();
            let again = parse(&c.to_hf_json().to_string()).unwrap();
            assert_eq!(c, again);
        }
    }

    #[test]
    fn parameter_count_of_a_known_shape() {
        // Qwen3-0.6B: 596,049,920 parameters with tied embeddings (151936 x 1024 counted once).
        let mut c = ModelConfig::small(151_936, 1024, 28, 16);
        c.num_kv_heads = 8;
        c.head_dim = 128;
        c.intermediate_size = 3072;
        assert_eq!(c.num_parameters(), 596_049_920);
    }
}
