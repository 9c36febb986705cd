//! Text <-> token ids for a model folder: `tokenizer.json` through the `tokenizers` crate, the
//! end-of-sequence ids (from `generation_config.json`, `config.json` and
//! `tokenizer_config.json`: every one of them stops generation), and the chat template.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::chat::{ChatTemplate, special_tokens};
use crate::config::token_ids;
use crate::error::{ModelError, Result};

/// A Hugging Face tokenizer with the metadata generation needs.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    eos_token_ids: Vec<u32>,
    chat_template: Option<ChatTemplate>,
    tokenizer_config: Map<String, Value>,
    path: PathBuf,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("path", &self.path)
            .field("vocab_size", &self.vocab_size())
            .field("eos_token_ids", &self.eos_token_ids)
            .finish_non_exhaustive()
    }
}

impl TextTokenizer {
    /// Loads `tokenizer.json`, `tokenizer_config.json`, `generation_config.json` and the chat
    /// template from `dir`. `config_eos` are the EOS ids of the model's `config.json`.
    pub fn from_dir(dir: &Path, config_eos: &[u32]) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.exists() {
            return Err(ModelError::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
            ));
        }
        let inner = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| ModelError::Tokenizer { path: path.clone(), message: e.to_string() })?;
        let tokenizer_config = read_json_object(&dir.join("tokenizer_config.json"))?;
        let generation_config = read_json_object(&dir.join("generation_config.json"))?;

        let mut eos = token_ids(
            &dir.join("generation_config.json"),
            "eos_token_id",
            generation_config.as_ref().and_then(|g| g.get("eos_token_id")),
        )?;
        eos.extend_from_slice(config_eos);
        let config_value = tokenizer_config.clone().map(Value::Object);
        if let Some(Value::String(token)) = special_tokens(config_value.as_ref()).get("eos_token")
            && let Some(id) = inner.token_to_id(token)
        {
            eos.push(id);
        }
        let chat_template = ChatTemplate::from_dir(dir, config_value.as_ref())?;
        let mut this = Self::new(inner, eos, chat_template);
        this.tokenizer_config = tokenizer_config.unwrap_or_default();
        this.path = path;
        Ok(this)
    }

    /// Wraps a tokenizer built in code (for example [`crate::char_tokenizer`]).
    pub fn new(
        inner: tokenizers::Tokenizer,
        eos_token_ids: Vec<u32>,
        chat_template: Option<ChatTemplate>,
    ) -> Self {
        let mut unique = Vec::new();
        for id in eos_token_ids {
            if !unique.contains(&id) {
                unique.push(id);
            }
        }
        Self {
            inner,
            eos_token_ids: unique,
            chat_template,
            tokenizer_config: Map::new(),
            path: PathBuf::from("<in memory tokenizer>"),
        }
    }

    /// Token ids of `text`; `add_special_tokens` applies the post-processor (BOS, ...).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let encoding = self.inner.encode(text, add_special_tokens).map_err(|e| {
            ModelError::Tokenizer { path: self.path.clone(), message: e.to_string() }
        })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of `ids`. Ids the tokenizer does not know (models often pad the embedding matrix
    /// beyond the vocabulary) decode to nothing rather than failing.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        let known: Vec<u32> =
            ids.iter().copied().filter(|&id| self.inner.id_to_token(id).is_some()).collect();
        self.inner
            .decode(&known, skip_special_tokens)
            .map_err(|e| ModelError::Tokenizer { path: self.path.clone(), message: e.to_string() })
    }

    /// Ids that end a generation (several allowed, in the order found).
    pub fn eos_token_ids(&self) -> &[u32] {
        &self.eos_token_ids
    }

    /// Number of tokens including added special tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Id of a token string, if the vocabulary has it.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// The chat template, if the model folder has one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat_template.as_ref()
    }

    /// Renders a conversation as transformers' `apply_chat_template(..., tokenize=False)`.
    pub fn apply_chat_template(
        &self,
        messages: &Value,
        add_generation_prompt: bool,
        extra: &Map<String, Value>,
    ) -> Result<String> {
        let template = self.chat_template.as_ref().ok_or_else(|| ModelError::ChatTemplate {
            path: self.path.with_file_name("tokenizer_config.json"),
            message: "this tokenizer has no chat template (no `chat_template` in tokenizer_config.json and no chat_template.jinja)".into(),
        })?;
        template.render(messages, add_generation_prompt, extra)
    }

    /// The prompt text a model is given for `messages` (`[{"role": ..., "content": ...}]`): with
    /// `chat`, the chat template with the generation prompt; without, the messages' contents
    /// joined by blank lines and ended by a newline. Every prompt of the trainer and of
    /// `spiral-eval` is made here.
    pub fn prompt_text(&self, messages: &Value, chat: bool) -> Result<String> {
        if chat {
            return self.apply_chat_template(messages, true, &Map::new());
        }
        let contents = messages.as_array().into_iter().flatten();
        let texts: Vec<&str> = contents.filter_map(|m| m["content"].as_str()).collect();
        Ok(format!("{}\n", texts.join("\n\n")))
    }

    /// Writes `tokenizer.json` and `tokenizer_config.json` (with the chat template) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join("tokenizer.json");
        let json = self
            .inner
            .to_string(false)
            .map_err(|e| ModelError::Tokenizer { path: path.clone(), message: e.to_string() })?;
        crate::weights::write_atomically(&path, json.as_bytes())?;
        let mut config = self.tokenizer_config.clone();
        config.entry("tokenizer_class").or_insert_with(|| "PreTrainedTokenizerFast".into());
        if let Some(template) = &self.chat_template {
            config.insert("chat_template".into(), template.source().into());
        }
        if !config.contains_key("eos_token")
            && let Some(token) =
                self.eos_token_ids.first().and_then(|&id| self.inner.id_to_token(id))
        {
            config.insert("eos_token".into(), token.into());
        }
        let path = dir.join("tokenizer_config.json");
        let text =
            serde_json::to_string_pretty(&Value::Object(config)).expect("JSON values serialise");
        crate::weights::write_atomically(&path, text.as_bytes())
    }
}

/// Reads an optional JSON object file: `None` if absent, an error naming the file if malformed.
pub(crate) fn read_json_object(path: &Path) -> Result<Option<Map<String, Value>>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    match serde_json::from_str(&text).map_err(|e| ModelError::json(path, &e))? {
        Value::Object(map) => Ok(Some(map)),
        _ => Err(ModelError::Json {
            path: path.to_path_buf(),
            message: "expected a JSON object".into(),
        }),
    }
}
