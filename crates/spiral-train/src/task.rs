//! The default run's task: Countdown problems from `spiral-rewards`, their prompts and solution
//! traces in the compact format, a character-level tokenizer covering every character the run
//! produces, and the warm-start examples (solution traces, and aggregation prompts whose
//! candidates mix correct and corrupted traces, answered with a correct trace).

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use spiral_aggregation::{AggregationConfig, PromptBuilder, PromptTemplate};
use spiral_model::{TextTokenizer, char_tokenizer};
use spiral_rewards::{CountdownConfig, CountdownProblem, CountdownReward, PromptStyle, Reward};

use spiral_rollout::{SamplingParams, StopConditions};

use crate::config::RolloutSection;
use crate::learner::TrainSequence;

/// The end-of-sequence token of the character-level tokenizer.
pub const EOS: &str = "<|end|>";
/// Context length of the from-scratch model (prompt plus trace, in characters).
pub const CONTEXT: usize = 1024;
const UNK: &str = "<unk>";

/// Train and test problems, the tokenizer, and the aggregation prompt builder.
pub struct TaskData {
    /// Problems the RL phase samples from.
    pub train: Vec<CountdownProblem>,
    /// Held-out problems for evaluation.
    pub test: Vec<CountdownProblem>,
    /// Character-level tokenizer with [`EOS`].
    pub tokenizer: TextTokenizer,
    /// Builds aggregation prompts in the compact wording.
    pub aggregation: PromptBuilder,
}

impl TaskData {
    /// Generates `train + test` distinct problems with `seed` and builds the tokenizer.
    pub fn new(
        config: &CountdownConfig,
        train: usize,
        test: usize,
        seed: u64,
    ) -> anyhow::Result<Self> {
        let problems = config.generate(train + test, seed)?;
        let (train, test) = (problems[..train].to_vec(), problems[train..].to_vec());
        let aggregation = aggregation_builder()?;
        // Every character of prompts, traces and the aggregation wording, plus what a model
        // may write in a wrong answer.
        let mut alphabet = String::from("0123456789+-*/()= \n.,:\\{}");
        let sample = &train[..train.len().min(200)];
        for p in sample {
            alphabet.push_str(&search_prompt(p));
            alphabet.push_str(&p.solution_trace().unwrap_or_default());
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let demo = aggregation.build("x", &["y", "z"], &|s: &str| s.chars().count(), &mut rng)?;
        alphabet.push_str(&demo.text);
        let inner = char_tokenizer(&alphabet, &[UNK, EOS]).map_err(anyhow::Error::from)?;
        let eos = inner.token_to_id(EOS).expect("EOS is a special token");
        let tokenizer = TextTokenizer::new(inner, vec![eos], None);
        Ok(Self { train, test, tokenizer, aggregation })
    }

    /// Sampling and stop settings of every rollout in the run: the configured temperature and
    /// top-p, the tokenizer's EOS, the configured length limit.
    pub fn rollout_settings(
        &self,
        rollout: &RolloutSection,
        seed: u64,
    ) -> (SamplingParams, StopConditions) {
        let sampling = SamplingParams {
            temperature: rollout.temperature,
            top_p: rollout.top_p,
            seed,
            ..Default::default()
        };
        let stop = StopConditions {
            eos_token_ids: self.tokenizer.eos_token_ids().to_vec(),
            stop_strings: vec![],
            max_new_tokens: rollout.max_new_tokens,
        };
        (sampling, stop)
    }

    /// Token ids of `text` (without special-token processing).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.tokenizer.encode(text, false).expect("the character tokenizer encodes any text")
    }

    /// Text of generated tokens, special tokens removed.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.tokenizer.decode(ids, true).expect("the character tokenizer decodes its ids")
    }

    /// The aggregation prompt over `candidates` (decoded traces), shuffled with `rng`.
    pub fn aggregation_prompt(
        &self,
        problem: &CountdownProblem,
        candidates: &[String],
        rng: &mut StdRng,
    ) -> String {
        let counter = |s: &str| s.chars().count();
        let prompt = self
            .aggregation
            .build(&problem.prompt(PromptStyle::Compact), candidates, &counter, rng)
            .expect("no token budget is set, so every prompt fits");
        format!("{}\n", prompt.text)
    }

    /// Warm-start examples: `count` sequences, a fraction `aggregation_fraction` of them
    /// aggregation prompts over `n` candidates (some corrupted) answered with a correct trace.
    pub fn warm_start_examples(
        &self,
        count: usize,
        n: usize,
        aggregation_fraction: f64,
        rng: &mut StdRng,
    ) -> Vec<TrainSequence> {
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let p = &self.train[rng.random_range(0..self.train.len())];
            let Some(trace) = p.solution_trace() else { continue };
            let prompt = if rng.random::<f64>() < aggregation_fraction {
                let candidates: Vec<String> = (0..n)
                    .map(|_| {
                        if rng.random::<f64>() < 0.5 { trace.clone() } else { corrupt(&trace, rng) }
                    })
                    .collect();
                self.aggregation_prompt(p, &candidates, rng)
            } else {
                search_prompt(p)
            };
            out.push(supervised(self.encode(&prompt), self.encode(&format!("{trace}{EOS}"))));
        }
        out
    }
}

/// The aggregation prompt builder: the compact wording, no token budget.
fn aggregation_builder() -> anyhow::Result<PromptBuilder> {
    Ok(PromptBuilder::new(AggregationConfig {
        template: PromptTemplate::compact(),
        max_prompt_tokens: None,
        ..Default::default()
    })?)
}

/// Characters of the longest prompt a run can build: an aggregation prompt over `n` candidates
/// of `trace_len` characters for the problem with the longest numbers.
pub fn longest_prompt_chars(countdown: &CountdownConfig, n: usize, trace_len: usize) -> usize {
    let problem = CountdownProblem::new(
        vec![countdown.max_number; countdown.max_numbers],
        countdown.max_target,
    );
    let candidates = vec!["x".repeat(trace_len); n];
    let counter = |s: &str| s.chars().count();
    let mut rng = StdRng::seed_from_u64(0);
    aggregation_builder()
        .and_then(|b| {
            Ok(b.build(&problem.prompt(PromptStyle::Compact), &candidates, &counter, &mut rng)?)
        })
        .map_or(usize::MAX, |p| p.text.chars().count() + 1)
}

/// The prompt of a search trace.
pub fn search_prompt(problem: &CountdownProblem) -> String {
    format!("{}\n", problem.prompt(PromptStyle::Compact))
}

/// 1 if `response` solves `problem`, else 0.
pub fn reward(problem: &CountdownProblem, response: &str) -> f64 {
    CountdownReward::default().score(problem, response).reward
}

/// A supervised example: `prompt` then `completion`.
fn supervised(prompt: Vec<u32>, completion: Vec<u32>) -> TrainSequence {
    let prompt_len = prompt.len();
    TrainSequence {
        tokens: [prompt, completion].concat(),
        prompt_len,
        advantage: 0.0,
        old_logprobs: None,
        weight: 1.0,
    }
}

/// A plausible wrong trace: one digit of the final expression changed, so the aggregator must
/// check candidates rather than copy any of them.
fn corrupt(trace: &str, rng: &mut StdRng) -> String {
    let mut chars: Vec<char> = trace.chars().collect();
    let start = trace.rfind("\\boxed{").map_or(0, |i| trace[..i].chars().count());
    let digits: Vec<usize> = (start..chars.len()).filter(|&i| chars[i].is_ascii_digit()).collect();
    if let Some(&i) = digits.choose(rng) {
        let old = chars[i];
        let mut new = old;
        while new == old {
            new = char::from(b'0' + rng.random_range(0..10u8));
        }
        chars[i] = new;
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_are_correct_and_corruptions_are_not() {
        let data = TaskData::new(&CountdownConfig::default(), 50, 10, 1).unwrap();
        let mut rng = StdRng::seed_from_u64(0);
        for p in &data.train {
            let trace = p.solution_trace().unwrap();
            assert_eq!(reward(p, &trace), 1.0, "{trace}");
            assert_eq!(reward(p, &corrupt(&trace, &mut rng)), 0.0);
            let ids = data.encode(&format!("{}{trace}{EOS}", search_prompt(p)));
            assert!(!ids.contains(&0), "no character maps to unk");
            assert_eq!(data.decode(&ids), format!("{}{trace}", search_prompt(p)));
        }
        let examples = data.warm_start_examples(40, 4, 0.5, &mut rng);
        assert_eq!(examples.len(), 40);
        assert!(examples.iter().any(|e| data.decode(&e.tokens).contains("Candidates")));
        assert!(data.test.iter().all(|t| !data.train.contains(t)), "test problems are held out");
    }
}
