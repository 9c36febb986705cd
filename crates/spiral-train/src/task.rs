//! A run's task: problems from `spiral-rewards` (generated Countdown or arithmetic problems, or
//! math problems from JSONL files), their prompts and rewards, the tokenizer, and the warm-start
//! examples (solution traces, and aggregation prompts whose candidates mix correct and corrupted
//! traces, answered with a correct trace).
//!
//! A model trained from scratch gets a character-level tokenizer covering every character the
//! run produces and the compact wording; a pretrained checkpoint keeps its own tokenizer and gets
//! the instruct wording, through its chat template when it has one.

use anyhow::Context;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use spiral_aggregation::{AggregationConfig, PromptBuilder, PromptTemplate};
use spiral_model::{TextTokenizer, char_tokenizer};
use spiral_rewards::{
    CountdownProblem, FieldNames, Problem, PromptStyle, Reward, Task, TaskReward, TrialTraces,
    load_jsonl,
};

use spiral_rollout::{SamplingParams, StopConditions};

use crate::config::{RolloutSection, TaskSection};
use crate::learner::TrainSequence;

/// The end-of-sequence token of the character-level tokenizer.
pub const EOS: &str = "<|end|>";
/// Default context length of the from-scratch model (prompt plus trace, in characters).
pub const CONTEXT: usize = 1024;
const UNK: &str = "<unk>";

/// Train and test problems, the tokenizer, and the aggregation prompt builder.
pub struct TaskData {
    /// Problems the RL phase samples from.
    pub train: Vec<Problem>,
    /// Held-out problems for evaluation.
    pub test: Vec<Problem>,
    /// The tokenizer: character-level with [`EOS`], or the checkpoint's.
    pub tokenizer: TextTokenizer,
    /// Builds aggregation prompts.
    pub aggregation: PromptBuilder,
    /// The wording of problems.
    style: PromptStyle,
    /// Whether prompts go through the tokenizer's chat template.
    chat: bool,
    /// Tries a warm-start trace makes (`task.combination.tries` per part,
    /// `task.countdown.tries` per problem); 0 for solution traces and for the other tasks.
    tries: usize,
}

impl TaskData {
    /// Loads or generates (with `seed`) the configured problems. With a `tokenizer` (a
    /// pretrained checkpoint's) prompts use the instruct wording and its chat template if it has
    /// one; without, a character-level tokenizer is built for the compact wording.
    pub fn new(
        task: &TaskSection,
        tokenizer: Option<TextTokenizer>,
        seed: u64,
    ) -> anyhow::Result<Self> {
        let (train, test) = load_problems(task, seed)?;
        let pretrained = tokenizer.is_some();
        let style = if pretrained { PromptStyle::Instruct } else { PromptStyle::Compact };
        let aggregation = aggregation_builder(style)?;
        let tokenizer = match tokenizer {
            Some(t) => t,
            None => {
                anyhow::ensure!(
                    task.kind != Task::Math,
                    "task.kind = \"math\" needs a pretrained model: set model.checkpoint to a \
                     Hugging Face model folder (a from-scratch model has no tokenizer for \
                     arbitrary text)"
                );
                scratch_tokenizer(&train, &aggregation)?
            }
        };
        let chat = pretrained && tokenizer.chat_template().is_some();
        let tries = match task.kind {
            Task::Combination => task.combination.tries,
            Task::Countdown => task.countdown.tries,
            Task::Arith | Task::Math => 0,
        };
        Ok(Self { train, test, tokenizer, aggregation, style, chat, tries })
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
        self.tokenizer
            .encode(text, false)
            .expect("tokenizers encode any text without special-token processing")
    }

    /// Text of generated tokens, special tokens removed.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.tokenizer.decode(ids, true).expect("ids come from this tokenizer")
    }

    /// The prompt of a search trace.
    pub fn search_prompt(&self, problem: &Problem) -> String {
        self.wrap(&problem.prompt(self.style))
    }

    /// The trace a warm start teaches for `problem`: a trial-and-error trace when the task's
    /// `tries > 0` (combination, Countdown; drawn with `rng`), else the solution trace. `None`
    /// for problems without one (math).
    pub fn trace(&self, problem: &Problem, rng: &mut StdRng) -> Option<String> {
        if self.tries > 0 { problem.trial_trace(self.tries, rng) } else { problem.solution_trace() }
    }

    /// The answer an aggregator is taught over `candidates` when trial traces are taught: a
    /// candidate's try that checks, or a new search where none does
    /// ([`TrialTraces::assemble`]); `None` without trial traces, where the aggregator copies a
    /// correct candidate.
    pub fn assembled_answer(
        &self,
        problem: &Problem,
        candidates: &[String],
        rng: &mut StdRng,
    ) -> Option<String> {
        if self.tries == 0 {
            return None;
        }
        let texts: Vec<&str> = candidates.iter().map(String::as_str).collect();
        problem.assemble(&texts, self.tries, rng)
    }

    /// The aggregation prompt over `candidates` (decoded traces), shuffled with `rng`.
    pub fn aggregation_prompt(
        &self,
        problem: &Problem,
        candidates: &[String],
        rng: &mut StdRng,
    ) -> String {
        let counter = |s: &str| s.chars().count();
        let prompt = self
            .aggregation
            .build(&problem.prompt(self.style), candidates, &counter, rng)
            .expect("no token budget is set, so every prompt fits");
        self.wrap(&prompt.text)
    }

    /// A user message as the model expects it (`TextTokenizer::prompt_text`); a chat template
    /// that fails on it gives the plain prompt instead.
    fn wrap(&self, text: &str) -> String {
        let messages = serde_json::json!([{ "role": "user", "content": text }]);
        self.tokenizer.prompt_text(&messages, self.chat).unwrap_or_else(|_| format!("{text}\n"))
    }

    /// `n` candidates for an aggregation prompt of `problem` made up from the task rather than
    /// sampled from a model, as the warm start's aggregation examples are; `trace` is the
    /// problem's warm-start trace ([`Self::trace`]).
    fn made_up_around(
        &self,
        problem: &Problem,
        trace: &str,
        n: usize,
        rng: &mut StdRng,
    ) -> Vec<String> {
        if self.tries > 0 {
            // Trial traces as the warm-started model will write them (a combination trace solves
            // a part `tries / modulus` of the time); the answer copies their checking tries.
            return (0..n).map(|_| self.trace(problem, rng).unwrap_or_default()).collect();
        }
        // Mostly wrong candidates, as a weak policy writes them: the aggregator learns to check
        // each one rather than to copy any of them.
        (0..n)
            .map(|_| match (rng.random::<f64>(), problem) {
                (u, _) if u < CORRECT_CANDIDATE_RATE => trace.to_string(),
                (_, Problem::Countdown(c)) if rng.random::<bool>() => fabricate(c, rng),
                _ => corrupt(trace, rng),
            })
            .collect()
    }

    /// Candidates for an aggregation prompt of `problem` made up as the warm start's aggregation
    /// examples are, not written by the model: how well an aggregator reads these, against its
    /// own search traces, tells a weak aggregator from weak candidates. `None` for problems
    /// without a warm-start trace (math).
    pub fn made_up_candidates(
        &self,
        problem: &Problem,
        n: usize,
        rng: &mut StdRng,
    ) -> Option<Vec<String>> {
        let trace = self.trace(problem, rng)?;
        Some(self.made_up_around(problem, &trace, n, rng))
    }

    /// Warm-start examples: `count` sequences, a fraction `aggregation_fraction` of them
    /// aggregation prompts over `n` candidates (correct and corrupted traces, answered with a
    /// correct trace; or, with trial traces, independent trial traces answered with the answer
    /// assembled from them).
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
            let Some(trace) = self.trace(p, rng) else { continue };
            let (prompt, target) = if rng.random::<f64>() < aggregation_fraction {
                let candidates = self.made_up_around(p, &trace, n, rng);
                let answer = self.assembled_answer(p, &candidates, rng).unwrap_or(trace);
                (self.aggregation_prompt(p, &candidates, rng), answer)
            } else {
                (self.search_prompt(p), trace)
            };
            out.push(supervised(self.encode(&prompt), self.encode(&format!("{target}{EOS}"))));
        }
        out
    }
}

/// The training and test problems: generated for synthetic tasks (distinct, the test problems
/// held out), read from `train_file` / `test_file` for math.
fn load_problems(task: &TaskSection, seed: u64) -> anyhow::Result<(Vec<Problem>, Vec<Problem>)> {
    let (train, test) = (task.train_problems, task.test_problems);
    let generated: Vec<Problem> = match task.kind {
        Task::Countdown => {
            task.countdown.generate(train + test, seed)?.into_iter().map(Problem::from).collect()
        }
        Task::Arith => {
            task.arith.generate(train + test, seed)?.into_iter().map(Problem::from).collect()
        }
        Task::Combination => {
            let problems = task.combination.generate(train + test, seed)?;
            problems.into_iter().map(Problem::from).collect()
        }
        Task::Math => {
            let fields = task.fields.clone().unwrap_or_else(|| FieldNames::for_task(Task::Math));
            let read = |file: &Option<std::path::PathBuf>, key: &str, count: usize| {
                let path = file.as_ref().with_context(|| {
                    format!("task.kind = \"math\" reads its problems from files: set task.{key}")
                })?;
                let mut problems = load_jsonl(path, Task::Math, &fields)?;
                anyhow::ensure!(
                    !problems.is_empty(),
                    "{} (task.{key}) has no problems",
                    path.display()
                );
                problems.truncate(count);
                Ok(problems)
            };
            return Ok((
                read(&task.train_file, "train_file", train)?,
                read(&task.test_file, "test_file", test)?,
            ));
        }
    };
    let mut generated = generated;
    let test_part = generated.split_off(train);
    Ok((generated, test_part))
}

/// A character-level tokenizer over every character of the problems' prompts and traces, the
/// aggregation wording, and what a model may write in a wrong answer.
fn scratch_tokenizer(
    problems: &[Problem],
    aggregation: &PromptBuilder,
) -> anyhow::Result<TextTokenizer> {
    let mut alphabet = String::from("0123456789+-*/()= \n.,:\\{}");
    for p in &problems[..problems.len().min(200)] {
        alphabet.push_str(&p.prompt(PromptStyle::Compact));
        alphabet.push_str(&p.solution_trace().unwrap_or_default());
    }
    let mut rng = StdRng::seed_from_u64(0);
    let demo = aggregation.build("x", &["y", "z"], &|s: &str| s.chars().count(), &mut rng)?;
    alphabet.push_str(&demo.text);
    let inner = char_tokenizer(&alphabet, &[UNK, EOS]).map_err(anyhow::Error::from)?;
    let eos = inner.token_to_id(EOS).expect("EOS is a special token");
    Ok(TextTokenizer::new(inner, vec![eos], None))
}

/// The aggregation prompt builder, no token budget: the compact wording for models trained
/// from scratch, the default (RSA paper's) wording for pretrained ones.
fn aggregation_builder(style: PromptStyle) -> anyhow::Result<PromptBuilder> {
    let template = match style {
        PromptStyle::Compact => PromptTemplate::compact(),
        PromptStyle::Instruct => PromptTemplate::default(),
    };
    Ok(PromptBuilder::new(AggregationConfig {
        template,
        max_prompt_tokens: None,
        ..Default::default()
    })?)
}

/// 1 if `response` solves `problem`, else 0 (the task's verifier).
pub fn reward(problem: &Problem, response: &str) -> f64 {
    TaskReward::default().score(problem, response).reward
}

/// A supervised example: `prompt` then `completion`.
pub(crate) fn supervised(prompt: Vec<u32>, completion: Vec<u32>) -> TrainSequence {
    let prompt_len = prompt.len();
    TrainSequence {
        tokens: [prompt, completion].concat(),
        prompt_len,
        advantage: 0.0,
        old_logprobs: None,
        ref_logprobs: None,
        rollout_logprobs: None,
        weight: 1.0,
    }
}

/// Share of correct candidates in warm-start aggregation prompts.
const CORRECT_CANDIDATE_RATE: f64 = 0.35;

/// A Countdown attempt as a weak model writes one: two numbers combined by a random operation,
/// then the third, each line claiming a result (right or not) and the last one claiming the
/// target. Wrong traces of this shape (arithmetic bent to reach the target) are what the
/// warm-started model actually produces.
fn fabricate(problem: &CountdownProblem, rng: &mut StdRng) -> String {
    let mut numbers = problem.numbers.clone();
    numbers.shuffle(rng);
    let ops = ['+', '-', '*', '/'];
    let mut acc = numbers[0].to_string();
    let mut value = numbers[0] as i64;
    let mut lines = String::new();
    let last = numbers.len() - 1;
    for (i, &x) in numbers.iter().enumerate().skip(1) {
        let op = *ops.choose(rng).expect("four operations");
        let exact = match op {
            '+' => value + x as i64,
            '-' => value - x as i64,
            '*' => value * x as i64,
            _ => value / (x as i64).max(1),
        };
        let claimed = if i == last {
            problem.target as i64
        } else if rng.random::<bool>() {
            exact
        } else {
            exact + rng.random_range(1..=5)
        };
        lines.push_str(&format!("{value}{op}{x}={claimed}\n"));
        acc = if i == 1 { format!("{acc}{op}{x}") } else { format!("({acc}){op}{x}") };
        value = claimed;
    }
    format!("{lines}\\boxed{{{acc}}}")
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
    use spiral_rewards::{CombinationConfig, CountdownConfig};

    use super::*;

    /// 50 training and 10 test problems of `kind`, default generators.
    fn section(kind: Task) -> TaskSection {
        TaskSection {
            kind,
            train_problems: 50,
            test_problems: 10,
            countdown: CountdownConfig::default(),
            arith: Default::default(),
            combination: Default::default(),
            train_file: None,
            test_file: None,
            fields: None,
        }
    }

    /// Over trial traces, the assembled answer is right whenever some candidate is, and right
    /// more than twice as often as one candidate; every character is in the vocabulary. Returns
    /// the traces drawn.
    fn assembled_answers_beat_single_traces(data: &TaskData) -> Vec<String> {
        let mut rng = StdRng::seed_from_u64(0);
        let (mut single, mut assembled, mut traces) = (0.0, 0.0, Vec::new());
        for p in &data.train {
            let candidates: Vec<String> =
                (0..4).map(|_| data.trace(p, &mut rng).unwrap()).collect();
            let answer = data.assembled_answer(p, &candidates, &mut rng).unwrap();
            single += candidates.iter().map(|c| reward(p, c)).sum::<f64>() / 4.0;
            assembled += reward(p, &answer);
            if candidates.iter().any(|c| reward(p, c) == 1.0) {
                assert_eq!(reward(p, &answer), 1.0, "{answer}\n{candidates:?}");
            }
            let ids = data.encode(&format!("{}{}{EOS}", data.search_prompt(p), candidates[0]));
            assert!(!ids.contains(&0), "no character maps to unk");
            traces.push(candidates[0].clone());
        }
        assert!(assembled > 2.0 * single, "assembled {assembled}, single {single}");
        let examples = data.warm_start_examples(20, 4, 1.0, &mut rng);
        assert!(examples.iter().all(|e| data.decode(&e.tokens).contains("Candidates")));
        traces
    }

    /// Without tries, `kind`'s warm start teaches solution traces and assembles no answer.
    fn without_tries_solution_traces(kind: Task) {
        let mut rng = StdRng::seed_from_u64(0);
        let direct = TaskData::new(&section(kind), None, 1).unwrap();
        let p = &direct.train[0];
        assert_eq!(direct.trace(p, &mut rng), p.solution_trace());
        assert_eq!(direct.assembled_answer(p, &["x".into()], &mut rng), None);
    }

    /// With `task.combination.tries`, warm-start traces try values, and aggregation examples are
    /// answered with the answer assembled from their candidates; without, solution traces.
    #[test]
    fn combination_trial_traces_teach_assembled_answers() {
        let mut task = section(Task::Combination);
        task.combination = CombinationConfig { parts: 2, modulus: 10, tries: 3 };
        let data = TaskData::new(&task, None, 1).unwrap();
        for trace in assembled_answers_beat_single_traces(&data) {
            assert!(trace.lines().all(|l| (2..=4).contains(&l.split(' ').count())), "{trace}");
        }
        without_tries_solution_traces(Task::Combination);
    }

    /// With `task.countdown.tries`, each line but the box is a try checked against the target;
    /// without, the solver's solution trace.
    #[test]
    fn countdown_trial_traces_teach_assembled_answers() {
        let mut task = section(Task::Countdown);
        task.countdown.tries = 4;
        let data = TaskData::new(&task, None, 1).unwrap();
        for (trace, p) in assembled_answers_beat_single_traces(&data).iter().zip(&data.train) {
            let Problem::Countdown(p) = p else { panic!("a countdown problem") };
            let (boxed, tries) =
                trace.lines().collect::<Vec<_>>().split_last().map(|(b, t)| (*b, t.len())).unwrap();
            assert!(boxed.starts_with("\\boxed{") && (1..=4).contains(&tries), "{trace}");
            let target = format!(":{}", p.target);
            let checked = |l: &str| l.ends_with(&target) || l.ends_with(&format!("{target} ok"));
            assert!(trace.lines().take(tries).all(checked), "{trace}");
        }
        without_tries_solution_traces(Task::Countdown);
    }

    /// The made-up candidates an evaluation aggregates over are the warm start's kind: about
    /// `CORRECT_CANDIDATE_RATE` correct traces among corruptions, or independent trial traces;
    /// none for a problem without a trace.
    #[test]
    fn made_up_candidates_are_the_warm_starts_kind() {
        let mut rng = StdRng::seed_from_u64(3);
        let data = TaskData::new(&section(Task::Countdown), None, 1).unwrap();
        let (mut correct, mut total) = (0.0, 0.0);
        for p in &data.train {
            let candidates = data.made_up_candidates(p, 4, &mut rng).unwrap();
            assert_eq!(candidates.len(), 4);
            correct += candidates.iter().map(|c| reward(p, c)).sum::<f64>();
            total += 4.0;
        }
        let rate = correct / total;
        assert!((rate - CORRECT_CANDIDATE_RATE).abs() < 0.05, "{rate}");
        let math = Problem::Math(spiral_rewards::MathProblem::new("What is 2+2?", "4"));
        assert_eq!(data.made_up_candidates(&math, 4, &mut rng), None);

        let mut task = section(Task::Combination);
        task.combination = CombinationConfig { parts: 2, modulus: 10, tries: 3 };
        let trials = TaskData::new(&task, None, 1).unwrap();
        for p in &trials.train {
            for c in trials.made_up_candidates(p, 4, &mut rng).unwrap() {
                assert!(c.lines().all(|l| (2..=4).contains(&l.split(' ').count())), "{c}");
            }
        }
    }

    #[test]
    fn traces_are_correct_and_corruptions_are_not() {
        let data = TaskData::new(&section(Task::Countdown), None, 1).unwrap();
        let mut rng = StdRng::seed_from_u64(0);
        for p in &data.train {
            let trace = p.solution_trace().unwrap();
            assert_eq!(reward(p, &trace), 1.0, "{trace}");
            assert_eq!(reward(p, &corrupt(&trace, &mut rng)), 0.0);
            let Problem::Countdown(c) = p else { panic!("a Countdown task") };
            let attempt = fabricate(c, &mut rng);
            assert_eq!(attempt.lines().count(), c.numbers.len(), "{attempt}");
            assert!(attempt.contains(&format!("={}\n\\boxed{{", c.target)), "{attempt}");
            let ids = data.encode(&format!("{}{trace}{EOS}", data.search_prompt(p)));
            assert!(!ids.contains(&0), "no character maps to unk");
            assert_eq!(data.decode(&ids), format!("{}{trace}", data.search_prompt(p)));
        }
        let examples = data.warm_start_examples(40, 4, 0.5, &mut rng);
        assert_eq!(examples.len(), 40);
        assert!(examples.iter().any(|e| data.decode(&e.tokens).contains("Candidates")));
        assert!(data.test.iter().all(|t| !data.train.contains(t)), "test problems are held out");
    }
}
