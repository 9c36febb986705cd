//! The wording of aggregation prompts: a serde config with `{placeholder}` fields, rendered in one
//! pass.
//!
//! The default wording follows the aggregation prompt of recursive self-aggregation (Venkatraman
//! et al., 2025, "Recursive Self-Aggregation Unlocks Deep Thinking in Large Language Models"),
//! which ParaGator and SPIRAL reuse: the problem, the numbered candidates, and an instruction to
//! check them, combine what is right and end with one final answer in `\boxed{}` (the format the
//! rewards of `spiral-rewards` extract).
//!
//! Placeholders are plain `{name}` markers rather than a template language: the prompts are flat,
//! the budget code needs to render them many times, and `{...}` that is not a known name (such as
//! the `{}` of `\boxed{}`) is left as written. Rendering is a single left-to-right pass, so a
//! problem or candidate that itself contains `{candidates}` is never expanded again.

use serde::{Deserialize, Serialize};

use crate::error::AggregationError;

/// How an aggregation prompt is worded. All fields have defaults; a run config overrides any of
/// them (`[aggregation.template]` in TOML).
///
/// ```
/// use spiral_aggregation::PromptTemplate;
///
/// let t: PromptTemplate = serde_json::from_str(r#"{"candidate": "Attempt {index}: {candidate}"}"#)
///     .unwrap();
/// t.validate().unwrap();
/// assert!(t.message.contains("{problem}"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptTemplate {
    /// The user message. Placeholders: `{problem}` and `{candidates}` (each exactly once) and
    /// `{count}` (the number of candidates shown).
    pub message: String,
    /// One candidate. Placeholders: `{candidate}` (exactly once; the trace text, trimmed) and
    /// `{index}` (its 1-based position in the prompt).
    pub candidate: String,
    /// Put between two rendered candidates.
    pub separator: String,
    /// Put before the kept final part of a candidate that the token budget truncated.
    pub truncation_marker: String,
    /// An optional system message for chat models (only in [`crate::AggregationPrompt::messages`]).
    pub system: Option<String>,
}

impl Default for PromptTemplate {
    fn default() -> Self {
        Self {
            message: "You are given a problem and {count} candidate solutions. Some of them may \
                      contain mistakes. Check each one, keep what is correct and combine it into a \
                      single complete solution of your own. If the candidates disagree, work out \
                      which one is right; if all of them are wrong, solve the problem another way.\
                      \n\nProblem:\n{problem}\n\nCandidate solutions:\n{candidates}\n\nNow write \
                      one improved solution. Reason step by step and put your final answer within \
                      \\boxed{}."
                .into(),
            candidate: "---- Solution {index} ----\n{candidate}".into(),
            separator: "\n\n".into(),
            truncation_marker: "[... earlier part of this solution omitted ...]\n".into(),
            system: None,
        }
    }
}

impl PromptTemplate {
    /// A short wording for small models trained from scratch on compact prompts (the default CPU
    /// run): the problem, the candidates one per block, and `Answer:`.
    pub fn compact() -> Self {
        Self {
            message: "{problem}\nCandidates:\n{candidates}\nAnswer:".into(),
            candidate: "({index}) {candidate}".into(),
            separator: "\n".into(),
            truncation_marker: "... ".into(),
            system: None,
        }
    }

    /// Checks that every placeholder the prompt needs appears exactly once.
    pub fn validate(&self) -> Result<(), AggregationError> {
        for (field, text, name) in [
            ("aggregation.template.message", &self.message, "problem"),
            ("aggregation.template.message", &self.message, "candidates"),
            ("aggregation.template.candidate", &self.candidate, "candidate"),
        ] {
            let marker = format!("{{{name}}}");
            let count = text.matches(&marker).count();
            if count != 1 {
                return Err(AggregationError::config(
                    field,
                    format!("must contain `{marker}` exactly once, found it {count} times"),
                ));
            }
        }
        Ok(())
    }

    /// The user message for `problem` and already rendered candidate blocks.
    pub(crate) fn render_message(&self, problem: &str, blocks: &[String]) -> String {
        let candidates = blocks.join(&self.separator);
        let count = blocks.len().to_string();
        render(
            &self.message,
            &[("problem", problem.trim()), ("candidates", &candidates), ("count", &count)],
        )
    }

    /// One candidate block: `text` (already truncated, marker included) at 1-based `index`.
    pub(crate) fn render_candidate(&self, index: usize, text: &str) -> String {
        render(&self.candidate, &[("candidate", text), ("index", &index.to_string())])
    }
}

/// Replaces each `{name}` of `values` in `template` in one left-to-right pass; other `{...}` and
/// unmatched braces are kept as written, and substituted text is never scanned again.
pub(crate) fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            values.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v, close))
        });
        match value {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_replaces_known_names_once() {
        let got = render("a {x} b {y} {z} \\boxed{} {", &[("x", "{y}"), ("y", "2")]);
        assert_eq!(got, "a {y} b 2 {z} \\boxed{} {");
        assert_eq!(render("{x}{x}", &[("x", "é")]), "éé");
        assert_eq!(render("no braces", &[("x", "1")]), "no braces");
        assert_eq!(render("{{x}}", &[("x", "1")]), "{1}");
    }

    #[test]
    fn default_and_compact_templates_are_valid() {
        PromptTemplate::default().validate().unwrap();
        PromptTemplate::compact().validate().unwrap();
        let t = PromptTemplate::default();
        let blocks = vec![t.render_candidate(1, "x = 1"), t.render_candidate(2, "x = 2")];
        let msg = t.render_message("  Solve it. ", &blocks);
        assert!(msg.contains("Problem:\nSolve it.\n\nCandidate solutions:\n---- Solution 1 ----\nx = 1\n\n---- Solution 2 ----\nx = 2\n\nNow"));
        assert!(msg.starts_with("You are given a problem and 2 candidate solutions."));
        assert!(msg.ends_with("within \\boxed{}."));
    }

    #[test]
    fn validation_names_the_missing_placeholder() {
        let t = PromptTemplate { message: "{problem} only".into(), ..PromptTemplate::default() };
        let err = t.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid aggregation.template.message: must contain `{candidates}` exactly once, found it 0 times"
        );
        let t = PromptTemplate {
            candidate: "{candidate}{candidate}".into(),
            ..PromptTemplate::default()
        };
        assert!(t.validate().unwrap_err().to_string().contains("found it 2 times"));
    }

    #[test]
    fn config_overrides_single_fields_and_refuses_unknown_ones() {
        let t: PromptTemplate = toml::from_str("separator = \"\\n---\\n\"").unwrap();
        assert_eq!(t.separator, "\n---\n");
        assert_eq!(t.message, PromptTemplate::default().message);
        assert!(toml::from_str::<PromptTemplate>("mesage = \"x\"").is_err());
    }
}
