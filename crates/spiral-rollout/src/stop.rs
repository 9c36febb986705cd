//! When a sample ends: any of several EOS ids, stop strings matched on the decoded text across
//! token boundaries, or the token limits.

use serde::{Deserialize, Serialize};
use spiral_model::TextTokenizer;

/// Why a sample stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "detail")]
pub enum FinishReason {
    /// The model emitted one of the EOS ids (included in the tokens).
    Eos(u32),
    /// The decoded text came to contain this stop string (the tokens that completed it are
    /// included).
    StopString(String),
    /// `max_new_tokens` reached.
    Length,
    /// The call's total-token budget ran out before this sample finished.
    Budget,
}

impl FinishReason {
    /// Whether the sample ended on its own (EOS or stop string) rather than being cut.
    pub fn is_natural(&self) -> bool {
        matches!(self, FinishReason::Eos(_) | FinishReason::StopString(_))
    }
}

/// The stop conditions of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StopConditions {
    /// Tokens that end a sample (usually the tokenizer's EOS ids).
    pub eos_token_ids: Vec<u32>,
    /// Strings that end a sample when they appear in its decoded text.
    pub stop_strings: Vec<String>,
    /// Most tokens generated per sample.
    pub max_new_tokens: usize,
}

impl Default for StopConditions {
    fn default() -> Self {
        Self { eos_token_ids: Vec::new(), stop_strings: Vec::new(), max_new_tokens: 256 }
    }
}

/// Finds stop strings in a growing token sequence by decoding only a window of the latest
/// tokens. Every token decodes to at least one byte, so a window one token longer than the
/// longest stop string (in bytes) holds any match that the newest token completes; a match
/// that ended earlier was caught at its own step.
pub struct StopStringMatcher<'a> {
    tokenizer: &'a TextTokenizer,
    stops: &'a [String],
    window: usize,
}

impl<'a> StopStringMatcher<'a> {
    /// A matcher for `stops` (none if `stops` is empty).
    pub fn new(tokenizer: &'a TextTokenizer, stops: &'a [String]) -> Self {
        let window = stops.iter().map(String::len).max().unwrap_or(0) + 1;
        Self { tokenizer, stops, window }
    }

    /// The stop string that the completion `tokens` now contains, if any.
    pub fn check(&self, tokens: &[u32]) -> Option<&'a str> {
        if self.stops.is_empty() || tokens.is_empty() {
            return None;
        }
        let tail = &tokens[tokens.len().saturating_sub(self.window)..];
        let text = self.tokenizer.decode(tail, false).ok()?;
        self.stops.iter().find(|s| text.contains(s.as_str())).map(String::as_str)
    }
}
