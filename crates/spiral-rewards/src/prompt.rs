//! How problems are worded for the policy.
//!
//! Two styles: `compact` for the small models the default run trains from scratch (short prompts
//! cost little context and are quick to learn; the warm-start traces carry the format), and
//! `instruct` for pretrained chat models, which need to be told the format. The instruct wording
//! of math problems is the Qwen2.5-Math chain-of-thought prompt ("Please reason step by step, and
//! put your final answer within \boxed{}."). Chat templates are applied later, by the model crate.

use serde::{Deserialize, Serialize};

/// The wording of prompts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptStyle {
    /// A short statement (`Use 75 25 2 to make 100.`, `Compute 3+4*2.`); the default.
    #[default]
    Compact,
    /// The statement with instructions on the reasoning and answer format.
    Instruct,
}

/// The Qwen2.5-Math chain-of-thought instruction appended to math questions.
pub(crate) const MATH_INSTRUCTION: &str =
    "Please reason step by step, and put your final answer within \\boxed{}.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_are_lowercase() {
        assert_eq!(serde_json::to_string(&PromptStyle::Instruct).unwrap(), "\"instruct\"");
        let s: PromptStyle = serde_json::from_str("\"compact\"").unwrap();
        assert_eq!(s, PromptStyle::Compact);
        assert_eq!(PromptStyle::default(), PromptStyle::Compact);
    }
}
