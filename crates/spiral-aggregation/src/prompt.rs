//! Building one aggregation prompt: the candidates shuffled (seeded), fitted into the token
//! budget, and rendered with the [`PromptTemplate`].
//!
//! Aggregators are biased by position (the first and last candidates weigh more), so the order is
//! shuffled by default; the returned [`AggregationPrompt`] records which candidate went where.
//! The builder returns the user-message text (and the chat messages as JSON): the caller renders
//! them through the model's chat template (`spiral_model::TextTokenizer::apply_chat_template`), so
//! this crate needs no model code.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::budget::{BudgetPolicy, Fate, TokenCounter, fit};
use crate::error::AggregationError;
use crate::template::PromptTemplate;

/// How aggregation prompts are built (`[aggregation]` in a run config).
///
/// ```
/// use spiral_aggregation::{AggregationConfig, BudgetPolicy};
///
/// let c: AggregationConfig =
///     serde_json::from_str(r#"{"max_prompt_tokens": 4096, "budget_policy": "drop_candidates"}"#)
///         .unwrap();
/// assert_eq!(c.budget_policy, BudgetPolicy::DropCandidates);
/// assert!(c.shuffle);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregationConfig {
    /// The wording.
    pub template: PromptTemplate,
    /// The most tokens the user message may have (as the caller's [`TokenCounter`] counts them);
    /// `None` for no limit. Leave room for the chat template and the generated trace.
    pub max_prompt_tokens: Option<usize>,
    /// What to do with candidates that do not fit.
    pub budget_policy: BudgetPolicy,
    /// Shuffle the candidates before numbering them (default true).
    pub shuffle: bool,
}

impl Default for AggregationConfig {
    fn default() -> Self {
        Self {
            template: PromptTemplate::default(),
            max_prompt_tokens: None,
            budget_policy: BudgetPolicy::default(),
            shuffle: true,
        }
    }
}

/// One aggregation prompt, ready for the chat template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AggregationPrompt {
    /// The user message.
    pub text: String,
    /// The system message, if the template has one.
    pub system: Option<String>,
    /// Tokens of `text`, as the caller's counter counts them.
    pub tokens: usize,
    /// The candidates shown, in prompt order, as indices into the slice given to
    /// [`PromptBuilder::build`]; "Solution 1" is `order[0]`.
    pub order: Vec<usize>,
    /// The shown candidates cut to their final part (indices as in `order`).
    pub truncated: Vec<usize>,
    /// The candidates left out to fit the budget.
    pub dropped: Vec<usize>,
}

impl AggregationPrompt {
    /// The chat messages, `[{"role": "system", ...}, {"role": "user", "content": text}]` (no
    /// system message when the template has none), as `apply_chat_template` takes them.
    pub fn messages(&self) -> Value {
        let user = json!({"role": "user", "content": self.text});
        match &self.system {
            Some(system) => json!([{"role": "system", "content": system}, user]),
            None => json!([user]),
        }
    }
}

/// Builds aggregation prompts from a validated [`AggregationConfig`].
///
/// ```
/// use rand::SeedableRng;
/// use spiral_aggregation::{AggregationConfig, PromptBuilder};
///
/// let builder = PromptBuilder::new(AggregationConfig::default()).unwrap();
/// let words = |s: &str| s.split_whitespace().count();
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let prompt = builder.build("What is 2+2?", &["2+2 = \\boxed{4}", "\\boxed{5}"], &words, &mut rng)
///     .unwrap();
/// assert!(prompt.text.contains("---- Solution 2 ----"));
/// assert_eq!(prompt.messages()[0]["role"], "user");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptBuilder {
    config: AggregationConfig,
}

impl PromptBuilder {
    /// Checks the template and the budget.
    pub fn new(config: AggregationConfig) -> Result<Self, AggregationError> {
        config.template.validate()?;
        if config.max_prompt_tokens == Some(0) {
            return Err(AggregationError::config(
                "aggregation.max_prompt_tokens",
                "must be positive (leave it out for no limit)",
            ));
        }
        Ok(Self { config })
    }

    /// The configuration.
    pub fn config(&self) -> &AggregationConfig {
        &self.config
    }

    /// The prompt aggregating `candidates` (traces, trimmed before use) for `problem`; `rng`
    /// shuffles their order when the config says so. Errors when `candidates` is empty or the
    /// prompt cannot fit the budget under the configured policy.
    pub fn build<S, C, R>(
        &self,
        problem: &str,
        candidates: &[S],
        counter: &C,
        rng: &mut R,
    ) -> Result<AggregationPrompt, AggregationError>
    where
        S: AsRef<str>,
        C: TokenCounter + ?Sized,
        R: Rng + ?Sized,
    {
        if candidates.is_empty() {
            return Err(AggregationError::config(
                "candidates",
                "an aggregation prompt needs at least one candidate",
            ));
        }
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        if self.config.shuffle {
            order.shuffle(rng);
        }
        let texts: Vec<&str> = order.iter().map(|&i| candidates[i].as_ref().trim()).collect();
        let c = &self.config;
        let fit = fit(&c.template, problem, &texts, c.max_prompt_tokens, c.budget_policy, counter)?;
        let with = |fate: Fate| -> Vec<usize> {
            order.iter().zip(&fit.fates).filter(|(_, f)| **f == fate).map(|(&i, _)| i).collect()
        };
        let (truncated, dropped) = (with(Fate::Truncated), with(Fate::Dropped));
        let shown = order.iter().zip(&fit.fates).filter(|(_, f)| **f != Fate::Dropped);
        Ok(AggregationPrompt {
            order: shown.map(|(&i, _)| i).collect(),
            text: fit.message,
            system: c.template.system.clone(),
            tokens: fit.tokens,
            truncated,
            dropped,
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    fn builder(max: Option<usize>, policy: BudgetPolicy, shuffle: bool) -> PromptBuilder {
        let config = AggregationConfig {
            template: PromptTemplate::compact(),
            max_prompt_tokens: max,
            budget_policy: policy,
            shuffle,
        };
        PromptBuilder::new(config).unwrap()
    }

    /// A trace of `n` words ending in its answer.
    fn trace(tag: &str, n: usize) -> String {
        let mut words: Vec<String> = (0..n - 1).map(|i| format!("{tag}{i}")).collect();
        words.push(format!("\\boxed{{{tag}}}"));
        words.join(" ")
    }

    #[test]
    fn unshuffled_prompt_by_hand() {
        let b = builder(None, BudgetPolicy::Refuse, false);
        let mut rng = StdRng::seed_from_u64(0);
        let p = b.build(" 1+1? ", &["a \\boxed{2} ", "b"], &words, &mut rng).unwrap();
        assert_eq!(p.text, "1+1?\nCandidates:\n(1) a \\boxed{2}\n(2) b\nAnswer:");
        assert_eq!(p.messages(), json!([{"role": "user", "content": p.text}]));
        assert_eq!((p.order, p.tokens, p.truncated, p.dropped), (vec![0, 1], 8, vec![], vec![]));
    }

    #[test]
    fn shuffle_is_seeded_and_moves_every_position() {
        let b = builder(None, BudgetPolicy::Refuse, true);
        let cands: Vec<String> = (0..4).map(|i| format!("c{i}")).collect();
        let order =
            |seed| b.build("q", &cands, &words, &mut StdRng::seed_from_u64(seed)).unwrap().order;
        assert_eq!(order(7), order(7));
        // Over seeds, each candidate is shown first about equally often.
        let mut first = [0usize; 4];
        for seed in 0..4000 {
            first[order(seed)[0]] += 1;
        }
        assert!(first.iter().all(|&f| (850..1150).contains(&f)), "{first:?}");
        // The text follows the order.
        let p = b.build("q", &cands, &words, &mut StdRng::seed_from_u64(3)).unwrap();
        assert!(p.text.contains(&format!("(1) c{}", p.order[0])));
    }

    #[test]
    fn keep_final_part_fits_and_keeps_the_answers() {
        let cands = [trace("a", 5), trace("b", 200), trace("c", 60)];
        for budget in [40, 80, 150, 400] {
            let b = builder(Some(budget), BudgetPolicy::KeepFinalPart, false);
            let p = b.build("q", &cands, &words, &mut StdRng::seed_from_u64(0)).unwrap();
            assert!(p.tokens <= budget && words(&p.text) == p.tokens, "{budget}: {}", p.tokens);
            // Every answer survives: the final parts are kept.
            for tag in ["a", "b", "c"] {
                assert!(p.text.contains(&format!("\\boxed{{{tag}}}")), "{budget} {tag}");
            }
            assert!(p.dropped.is_empty());
            // The short one is never cut; the longest is cut first.
            assert!(!p.truncated.contains(&0));
            if !p.truncated.is_empty() {
                assert!(p.truncated.contains(&1));
                assert!(p.text.contains("... "));
            }
        }
        let b = builder(Some(5), BudgetPolicy::KeepFinalPart, false);
        let err = b.build("q", &cands, &words, &mut StdRng::seed_from_u64(0)).unwrap_err();
        assert!(err.to_string().contains("truncation markers alone need"), "{err}");
    }

    #[test]
    fn keep_final_part_survives_non_additive_counts() {
        // A counter that charges one more for a `}` at the end of a line: a candidate's own count
        // never sees the newline after it, so the parts' counts do not add up to the whole.
        let seams = |s: &str| words(s) + s.matches("}\n").count();
        let cands = [trace("x", 120), trace("y", 90)];
        for budget in [30, 57, 101] {
            let b = builder(Some(budget), BudgetPolicy::KeepFinalPart, true);
            let p = b.build("q1", &cands, &seams, &mut StdRng::seed_from_u64(1)).unwrap();
            assert!(p.tokens <= budget && seams(&p.text) == p.tokens);
        }
    }

    #[test]
    fn drop_candidates_keeps_whole_ones_in_order() {
        let cands = [trace("a", 30), trace("b", 100), trace("c", 20)];
        let b = builder(Some(60), BudgetPolicy::DropCandidates, false);
        let p = b.build("q", &cands, &words, &mut StdRng::seed_from_u64(0)).unwrap();
        assert!(p.tokens <= 60 && p.text.contains("(2) c0"));
        assert_eq!((p.order, p.dropped, p.truncated), (vec![0, 2], vec![1], vec![]));
        let b = builder(Some(10), BudgetPolicy::DropCandidates, false);
        let err = b.build("q", &cands, &words, &mut StdRng::seed_from_u64(0)).unwrap_err();
        assert!(err.to_string().contains("no candidate fits whole"));
    }

    #[test]
    fn refuse_and_bad_configs() {
        let b = builder(Some(10), BudgetPolicy::Refuse, false);
        let err = b.build("q", &[trace("a", 30)], &words, &mut StdRng::seed_from_u64(0));
        assert!(err.unwrap_err().to_string().contains("needs 34 tokens"));
        let empty: [&str; 0] = [];
        assert!(b.build("q", &empty, &words, &mut StdRng::seed_from_u64(0)).is_err());
        let config =
            AggregationConfig { max_prompt_tokens: Some(0), ..AggregationConfig::default() };
        assert!(PromptBuilder::new(config).is_err());
    }

    #[test]
    fn system_message_goes_first() {
        let mut config = AggregationConfig::default();
        config.template.system = Some("Be brief.".into());
        let b = PromptBuilder::new(config).unwrap();
        let p = b.build("q", &["x"], &words, &mut StdRng::seed_from_u64(0)).unwrap();
        assert_eq!(p.messages()[0], json!({"role": "system", "content": "Be brief."}));
        assert_eq!(p.messages()[1]["content"], p.text);
    }
}
