//! Chat templates as transformers renders them (`apply_chat_template`): the Jinja source from
//! `tokenizer_config.json` or `chat_template.jinja`, rendered with minijinja configured like
//! transformers' sandboxed Jinja environment (`trim_blocks`, `lstrip_blocks`, Python string
//! methods, `raise_exception`, a `tojson` that writes what Python's `json.dumps` writes).

use std::path::{Path, PathBuf};

use minijinja::{Environment, Error, ErrorKind, Value};
use serde_json::Map;

use crate::error::{ModelError, Result};

const TEMPLATE_NAME: &str = "chat";

/// A compiled chat template plus the special-token strings it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    origin: PathBuf,
    special_tokens: Map<String, serde_json::Value>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").field("origin", &self.origin).finish_non_exhaustive()
    }
}

impl Clone for ChatTemplate {
    fn clone(&self) -> Self {
        Self::new(self.source.clone(), self.origin.clone(), self.special_tokens.clone())
            .expect("a template that compiled once compiles again")
    }
}

impl ChatTemplate {
    /// Compiles `source`. `origin` is named in errors; `special_tokens` (`bos_token`,
    /// `eos_token`, ...) are passed to every render as transformers does.
    pub fn new(
        source: String,
        origin: PathBuf,
        special_tokens: Map<String, serde_json::Value>,
    ) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(false);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_template_owned(TEMPLATE_NAME, source.clone()).map_err(|e| {
            ModelError::ChatTemplate { path: origin.clone(), message: describe(&e) }
        })?;
        Ok(Self { env, source, origin, special_tokens })
    }

    /// The Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders `messages` (a JSON array of `{"role", "content", ...}` objects).
    ///
    /// `extra` holds further template variables such as `enable_thinking` or `tools`.
    pub fn render(
        &self,
        messages: &serde_json::Value,
        add_generation_prompt: bool,
        extra: &Map<String, serde_json::Value>,
    ) -> Result<String> {
        let mut ctx = self.special_tokens.clone();
        ctx.insert("messages".into(), messages.clone());
        ctx.insert("add_generation_prompt".into(), add_generation_prompt.into());
        for (k, v) in extra {
            ctx.insert(k.clone(), v.clone());
        }
        let template = self.env.get_template(TEMPLATE_NAME).map_err(|e| {
            ModelError::ChatTemplate { path: self.origin.clone(), message: describe(&e) }
        })?;
        template.render(Value::from_serialize(&ctx)).map_err(|e| ModelError::ChatTemplate {
            path: self.origin.clone(),
            message: describe(&e),
        })
    }

    /// Reads the template of a model folder: `chat_template.jinja` if present, else the
    /// `chat_template` entry of `tokenizer_config.json` (a string, or a list of named templates
    /// of which `default` is taken). `None` when the folder has no template.
    pub fn from_dir(
        dir: &Path,
        tokenizer_config: Option<&serde_json::Value>,
    ) -> Result<Option<Self>> {
        let special = special_tokens(tokenizer_config);
        let jinja = dir.join("chat_template.jinja");
        if jinja.exists() {
            let source = std::fs::read_to_string(&jinja).map_err(|e| ModelError::io(&jinja, e))?;
            return Self::new(source, jinja, special).map(Some);
        }
        let origin = dir.join("tokenizer_config.json");
        let Some(entry) = tokenizer_config.and_then(|c| c.get("chat_template")) else {
            return Ok(None);
        };
        let source = match entry {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(named) => named
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .and_then(|t| t.get("template")?.as_str())
                .ok_or_else(|| ModelError::ChatTemplate {
                    path: origin.clone(),
                    message: "`chat_template` is a list without a template named \"default\""
                        .into(),
                })?
                .to_string(),
            serde_json::Value::Null => return Ok(None),
            other => {
                return Err(ModelError::ChatTemplate {
                    path: origin,
                    message: format!("`chat_template` must be a string or a list, found {other}"),
                });
            }
        };
        Self::new(source, origin, special).map(Some)
    }
}

/// The special-token strings of `tokenizer_config.json` (`bos_token`, `eos_token`, `pad_token`,
/// `unk_token`), each either a string or an AddedToken object with a `content` field.
pub(crate) fn special_tokens(
    tokenizer_config: Option<&serde_json::Value>,
) -> Map<String, serde_json::Value> {
    let mut out = Map::new();
    for key in ["bos_token", "eos_token", "pad_token", "unk_token"] {
        let value = tokenizer_config.and_then(|c| c.get(key)).and_then(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
            _ => None,
        });
        if let Some(v) = value {
            out.insert(key.into(), v.into());
        }
    }
    out
}

/// Template errors carry the line they happened on; keep it in the message.
fn describe(err: &Error) -> String {
    match err.line() {
        Some(line) => format!("{err} (template line {line})"),
        None => err.to_string(),
    }
}

/// `raise_exception(message)`: how templates reject a conversation (for example a bad role).
fn raise_exception(message: String) -> std::result::Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

/// `strftime_now(format)`: Llama 3 templates print today's date. Rendering must be
/// reproducible, so this returns the UNIX epoch day formatted with the common directives.
fn strftime_now(format: String) -> String {
    format
        .replace("%d", "01")
        .replace("%b", "Jan")
        .replace("%B", "January")
        .replace("%Y", "1970")
        .replace("%m", "01")
}

/// `tojson`: Python's `json.dumps(x, ensure_ascii=False, indent=indent)`, as transformers
/// installs it. minijinja's own filter escapes HTML characters and uses other separators, which
/// would change the prompt the model sees.
fn tojson(value: Value, indent: Option<usize>) -> std::result::Result<Value, Error> {
    let json: serde_json::Value = serde_json::to_value(&value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}")))?;
    let mut out = String::new();
    python_json(&json, indent, 0, &mut out);
    Ok(Value::from_safe_string(out))
}

/// Writes `value` as Python's `json.dumps` does: `", "` and `": "` separators without indent,
/// `","` and `": "` with indent, non-ASCII kept, floats with a decimal point.
fn python_json(value: &serde_json::Value, indent: Option<usize>, depth: usize, out: &mut String) {
    use serde_json::Value as J;
    let newline = |out: &mut String, depth: usize| {
        if let Some(width) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(width * depth));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match value {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (_, Some(u), _) => out.push_str(&u.to_string()),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e16 => {
                out.push_str(&format!("{f:.1}"))
            }
            (_, _, Some(f)) => out.push_str(&f.to_string()),
            _ => out.push_str(&n.to_string()),
        },
        J::String(s) => out.push_str(&serde_json::to_string(s).expect("strings serialise")),
        J::Array(items) if items.is_empty() => out.push_str("[]"),
        J::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                python_json(item, indent, depth + 1, out);
            }
            newline(out, depth);
            out.push(']');
        }
        J::Object(map) if map.is_empty() => out.push_str("{}"),
        J::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                out.push_str(&serde_json::to_string(k).expect("strings serialise"));
                out.push_str(": ");
                python_json(v, indent, depth + 1, out);
            }
            newline(out, depth);
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tojson_matches_python_json_dumps() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"name": "f", "args": [1, 2.5, "é<>", null, true], "x": {}}"#)
                .unwrap();
        let mut out = String::new();
        python_json(&v, None, 0, &mut out);
        // json.dumps({...}, ensure_ascii=False)
        assert_eq!(out, r#"{"name": "f", "args": [1, 2.5, "é<>", null, true], "x": {}}"#);
        let mut out = String::new();
        python_json(&serde_json::json!({"a": [1, 2]}), Some(2), 0, &mut out);
        assert_eq!(out, "{\n  \"a\": [\n    1,\n    2\n  ]\n}");
    }

    #[test]
    fn raise_exception_surfaces_the_message_and_origin() {
        let t = ChatTemplate::new(
            "{% for m in messages %}{% if m.role == 'tool' %}{{ raise_exception('no tools') }}{% endif %}{% endfor %}".into(),
            "tokenizer_config.json".into(),
            Map::new(),
        )
        .unwrap();
        let err = t
            .render(&serde_json::json!([{"role": "tool", "content": ""}]), false, &Map::new())
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("no tools") && msg.contains("tokenizer_config.json"), "{msg}");
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let err = ChatTemplate::new("{% for %}".into(), "chat_template.jinja".into(), Map::new())
            .unwrap_err();
        assert!(err.to_string().contains("chat_template.jinja"), "{err}");
    }
}
