//! Aggregation for SPIRAL (Ibn Hamid et al., 2026) and recursive self-aggregation (RSA,
//! Venkatraman et al., 2025): everything between sampling traces and scoring the final answer,
//! without model code.
//!
//! - **Prompts** ([`PromptBuilder`], [`AggregationConfig`], [`PromptTemplate`]): the problem and
//!   numbered candidate traces with an instruction to check them and give one final answer; the
//!   wording is a serde config with `{problem}` / `{candidates}` placeholders; candidates are
//!   shuffled (seeded) because aggregators are biased by position.
//! - **Token budget** ([`BudgetPolicy`], [`TokenCounter`]): the prompt never exceeds
//!   `max_prompt_tokens` as the caller's tokenizer counts them; long candidates keep their final
//!   part, or are dropped, or the prompt is refused.
//! - **Sets** ([`draw_distinct_sets`], [`draw_rsa_sets`]): K distinct sets of n out of N1 search
//!   traces for SPIRAL training; N sets of K members per RSA round.
//! - **Majority vote** ([`majority_vote`]) through `spiral-rewards`' answer equivalence, with a
//!   seeded tie-break.
//! - **RSA** ([`RsaDriver`]): T rounds in which the aggregations of round t become the population
//!   of round t+1, generic over an [`Aggregator`] (the rollout engine, or a mock in tests).
//!
//! The crate renders the user message only: the caller passes
//! [`AggregationPrompt::messages`] through the model's chat template and counts tokens with its
//! tokenizer (any `Fn(&str) -> usize`).
//!
//! ```
//! use rand::SeedableRng;
//! use spiral_aggregation::{AggregationConfig, PromptBuilder, draw_distinct_sets, majority_vote};
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let traces = ["... \\boxed{4}", "... \\boxed{5}", "... \\boxed{4}", "I am not sure."];
//! // SPIRAL: two distinct sets of two traces out of four, one aggregation prompt each.
//! let builder = PromptBuilder::new(AggregationConfig::default()).unwrap();
//! let count_words = |s: &str| s.split_whitespace().count();
//! for set in draw_distinct_sets(traces.len(), 2, 2, &mut rng).unwrap() {
//!     let candidates: Vec<&str> = set.iter().map(|&i| traces[i]).collect();
//!     let prompt = builder.build("What is 2+2?", &candidates, &count_words, &mut rng).unwrap();
//!     assert!(prompt.text.contains("Solution 2"));
//! }
//! // Majority vote over the traces' answers.
//! let answers: Vec<Option<&str>> = traces.iter().map(|t| spiral_rewards::extract_answer(t)).collect();
//! assert_eq!(majority_vote(&answers, &mut rng).unwrap().winner, 0);
//! ```

mod budget;
mod error;
mod prompt;
mod rsa;
mod sets;
mod template;
mod vote;

pub use budget::{BudgetPolicy, TokenCounter};
pub use error::AggregationError;
pub use prompt::{AggregationConfig, AggregationPrompt, PromptBuilder};
pub use rsa::{
    Aggregator, BoxError, Generation, Member, ProblemRound, RoundSummary, RsaConfig, RsaDriver,
    RsaInput, RsaRound, RsaRun,
};
pub use sets::{SetSampling, Subsets, binomial, draw_distinct_sets, draw_rsa_sets};
pub use template::PromptTemplate;
pub use vote::{Vote, answer_class_ids, majority_vote, vote_on_classes};
