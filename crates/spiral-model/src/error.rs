//! The one error type of `spiral-model`: every message names the file, key or value at fault and
//! what was expected, so a user can fix a checkpoint without reading this crate's source.

use std::path::PathBuf;

/// Errors from loading, validating and saving models, tokenizers and chat templates.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    // The I/O error is part of the message rather than a `source`, so that printing the
    // error chain (`{:#}`) does not repeat it.
    #[error("{path}: {error}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying I/O error.
        error: std::io::Error,
    },
    /// A JSON file is not valid JSON or does not have the expected shape.
    #[error("{path}: malformed JSON: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What serde reported (line, column, what was expected).
        message: String,
    },
    /// `config.json` is well-formed but describes something this crate refuses.
    #[error("{path}: {message}")]
    Config {
        /// The `config.json` (or `<in memory>` for configs built in code).
        path: PathBuf,
        /// Which key, what it held, and what was expected.
        message: String,
    },
    /// The model uses a feature this crate does not implement (sliding window, MoE, ...).
    #[error("{path}: unsupported `{key}` = {value}: {why}")]
    Unsupported {
        /// The `config.json`.
        path: PathBuf,
        /// The key that requests the feature.
        key: String,
        /// The value found.
        value: String,
        /// What is supported instead.
        why: String,
    },
    /// A safetensors file is truncated or malformed.
    #[error("{path}: invalid safetensors file: {message}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// A weight the model needs is absent from the checkpoint.
    #[error("{path}: missing weight `{key}` (expected shape {expected:?})")]
    MissingWeight {
        /// The checkpoint file or folder.
        path: PathBuf,
        /// The tensor name.
        key: String,
        /// The shape the model config implies.
        expected: Vec<usize>,
    },
    /// The checkpoint holds weights the model does not use (often a config/weights mismatch).
    #[error("{path}: unexpected weight(s) {keys:?}: not used by a {family} model with this config")]
    UnexpectedWeights {
        /// The checkpoint file or folder.
        path: PathBuf,
        /// The unused tensor names.
        keys: Vec<String>,
        /// The model family.
        family: String,
    },
    /// A weight has the wrong shape for the config.
    #[error("{path}: weight `{key}` has shape {found:?}, expected {expected:?} from config.json")]
    ShapeMismatch {
        /// The file holding the tensor.
        path: PathBuf,
        /// The tensor name.
        key: String,
        /// The shape in the file.
        found: Vec<usize>,
        /// The shape the config implies.
        expected: Vec<usize>,
    },
    /// A weight is stored in a dtype this crate does not read.
    #[error("{path}: weight `{key}` has dtype {dtype}, expected F32, F16 or BF16")]
    Dtype {
        /// The file holding the tensor.
        path: PathBuf,
        /// The tensor name.
        key: String,
        /// The dtype found.
        dtype: String,
    },
    /// `tokenizer.json` could not be loaded or used.
    #[error("{path}: tokenizer: {message}")]
    Tokenizer {
        /// The tokenizer file (or folder).
        path: PathBuf,
        /// What the tokenizers crate reported.
        message: String,
    },
    /// A chat template failed to compile or render.
    #[error("{path}: chat template: {message}")]
    ChatTemplate {
        /// Where the template came from.
        path: PathBuf,
        /// The template engine's message (with line where known).
        message: String,
    },
    /// A model or adapter name is neither a local folder nor a cached hub id.
    #[error("{name}: {message}")]
    NotFound {
        /// The name as given (a path or `org/name[@revision]`).
        name: String,
        /// The folders searched and how to fill the cache.
        message: String,
    },
    /// An adapter was made for a base whose projections have other shapes.
    #[error(
        "{path}: the adapter of `{module}` does not fit the base model: its lora_A.weight is \
         {lora_a:?} and lora_B.weight {lora_b:?} ([r, in] and [out, r]), but the base's \
         `{module}.weight` is {base:?} ([out, in]); the adapter was made for another base"
    )]
    AdapterMismatch {
        /// The adapter's safetensors file.
        path: PathBuf,
        /// The module path (`model.layers.0.self_attn.q_proj`).
        module: String,
        /// Shape of `lora_A.weight` in the file.
        lora_a: [usize; 2],
        /// Shape of `lora_B.weight` in the file.
        lora_b: [usize; 2],
        /// Shape of the base projection's weight, in Hugging Face layout.
        base: [usize; 2],
    },
    /// Bad arguments to a model call (token id out of range, sequence too long, ...).
    #[error("{0}")]
    Input(String),
}

impl ModelError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), error: source }
    }

    /// Wraps a serde_json error with the path of the file being parsed.
    pub fn json(path: impl Into<PathBuf>, err: &serde_json::Error) -> Self {
        Self::Json { path: path.into(), message: err.to_string() }
    }
}

/// Result alias for this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
