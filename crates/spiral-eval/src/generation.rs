//! Sampling a checkpoint on a dataset's problems, and recursive self-aggregation (RSA,
//! Venkatraman et al., 2025) driven by the batched rollout engine: the library side of
//! `spiral-eval sample` and `spiral-eval rsa`.
//!
//! A problem's prompt is its wording ([`PromptStyle`]) sent as one user message through the
//! model's chat template when it has one, or else the plain text and a newline (the convention of
//! the from-scratch runs in `spiral-train`). Aggregation prompts go the same way. Each engine call
//! gets a seed derived from the user's seed and what the call is for (a chunk of problems, an RSA
//! round), so runs are reproducible and no two calls share a random stream.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::backend::Backend;
use serde::Serialize;
use serde_json::{Value, json};
use spiral_aggregation::{
    AggregationConfig, AggregationPrompt, Aggregator, BoxError, Generation, PromptBuilder,
    PromptTemplate, RsaConfig, RsaDriver, RsaInput, RsaRun,
};
use spiral_model::{CausalLm, TextTokenizer};
use spiral_rewards::{
    FieldNames, Problem, PromptStyle, Reward, Task, TaskReward, is_parquet, load_jsonl, read_jsonl,
};
use spiral_rollout::{
    FinishReason, RolloutEngine, RolloutRequest, SamplingParams, StopConditions, stream_seed,
};

use crate::error::EvalError;
use crate::metrics::bootstrap::BootstrapOptions;
use crate::report::{Figure, Report, Scale, Section, Table};
use crate::scaling::rsa_curves;

/// Problems per engine call in [`sample_problems`]: large enough for full batches, small enough
/// that output streams out and a failure late in a long run loses little.
pub const SAMPLE_CHUNK: usize = 64;

/// Tokens kept free beyond the chat template's own, in case a rendered prompt tokenizes a little
/// differently from its parts counted apart.
const CONTEXT_SLACK: usize = 8;

/// One problem of a dataset, with the id its samples are filed under.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetProblem {
    /// The line's `id` field (a string, or an integer written as one), else its line number
    /// (its row number for Parquet data).
    pub id: String,
    /// The 1-based line of the file it came from (row, across shards, for Parquet data).
    pub line: usize,
    /// The problem.
    pub problem: Problem,
}

/// Loads a JSONL dataset (see [`read_problems`]), or Parquet data (a `.parquet` file, a glob of
/// them, or a folder of them, read by `spiral-rewards`' loader), whose problems are named by
/// their 1-based row number across the shards in name order.
pub fn load_problems(
    path: &Path,
    task: Task,
    fields: &FieldNames,
) -> Result<Vec<DatasetProblem>, EvalError> {
    if is_parquet(path) {
        let problems = load_jsonl(path, task, fields)?;
        let numbered = problems.into_iter().enumerate();
        return Ok(numbered
            .map(|(i, problem)| DatasetProblem { id: (i + 1).to_string(), line: i + 1, problem })
            .collect());
    }
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    read_problems(&text, &path.display().to_string(), task, fields)
}

/// Reads a JSONL dataset with `spiral-rewards`' loader and gives each problem an id: its `id`
/// field, or its 1-based line number. Errors name `source` and the line; ids must be unique.
///
/// ```
/// use spiral_eval::read_problems;
/// use spiral_rewards::{FieldNames, Task};
///
/// let text = "{\"id\": \"a\", \"problem\": \"1+1?\", \"answer\": \"2\"}\n\n\
///             {\"problem\": \"2+2?\", \"answer\": 4}\n";
/// let problems = read_problems(text, "d.jsonl", Task::Math, &FieldNames::for_task(Task::Math))
///     .unwrap();
/// assert_eq!((problems[0].id.as_str(), problems[1].id.as_str()), ("a", "3"));
/// ```
pub fn read_problems(
    text: &str,
    source: &str,
    task: Task,
    fields: &FieldNames,
) -> Result<Vec<DatasetProblem>, EvalError> {
    let problems = read_jsonl(text.as_bytes(), source, task, fields)?;
    // The loader has checked that every non-blank line is an object; it skips the same lines.
    let objects = text.lines().enumerate().filter_map(|(i, line)| {
        let line = if i == 0 { line.strip_prefix('\u{feff}').unwrap_or(line) } else { line };
        (!line.trim().is_empty()).then_some((i + 1, line))
    });
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(problems.len());
    for ((line, object), problem) in objects.zip(problems) {
        let object: Value = serde_json::from_str(object)
            .map_err(|e| EvalError::line(source, line, format!("invalid JSON: {e}")))?;
        let id = match object.get("id") {
            None | Some(Value::Null) => line.to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) if !n.is_f64() => n.to_string(),
            Some(other) => {
                let message = format!("field `id` must be a string or an integer, got {other}");
                return Err(EvalError::line(source, line, message));
            }
        };
        if let Some(first) = seen.insert(id.clone(), line) {
            let message = format!("duplicate id `{id}` (first on line {first})");
            return Err(EvalError::line(source, line, message));
        }
        out.push(DatasetProblem { id, line, problem });
    }
    Ok(out)
}

/// Whether prompts go through the model's chat template.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChatMode {
    /// When the tokenizer has a template.
    #[default]
    Auto,
    /// Always; an error when the tokenizer has no template.
    On,
    /// Never: the plain text and a newline.
    Off,
}

/// How a [`ModelSampler`] generates.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerSettings {
    /// Token choice; its seed is the run's seed.
    pub sampling: SamplingParams,
    /// Most tokens per generated trace.
    pub max_new_tokens: usize,
    /// Chat template use.
    pub chat: ChatMode,
}

/// One generated trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// The decoded text, special tokens removed.
    pub text: String,
    /// Generated tokens (the stop token included).
    pub tokens: usize,
    /// `log p` of the generated tokens under the sampling distribution, summed: minus it over
    /// `tokens` estimates the policy's per-token entropy (the mean surprise of its own samples).
    pub logprob: f64,
    /// Why it ended.
    pub finish: FinishReason,
}

/// A model, its tokenizer and the rollout engine, turning prompt texts into completions.
#[derive(Debug)]
pub struct ModelSampler<'a, B: Backend> {
    model: &'a CausalLm<B>,
    tokenizer: &'a TextTokenizer,
    engine: RolloutEngine,
    sampling: SamplingParams,
    max_new_tokens: usize,
    chat: bool,
}

impl<'a, B: Backend> ModelSampler<'a, B> {
    /// Checks the settings and resolves [`ChatMode::Auto`].
    pub fn new(
        model: &'a CausalLm<B>,
        tokenizer: &'a TextTokenizer,
        settings: &SamplerSettings,
    ) -> Result<Self, EvalError> {
        settings.sampling.validate().map_err(EvalError::Settings)?;
        if settings.max_new_tokens == 0 {
            return Err(EvalError::Settings("max_new_tokens must be at least 1".into()));
        }
        let has_template = tokenizer.chat_template().is_some();
        let chat = match settings.chat {
            ChatMode::Auto => has_template,
            ChatMode::Off => false,
            ChatMode::On if has_template => true,
            ChatMode::On => {
                return Err(EvalError::Settings(
                    "chat prompts asked for, but the tokenizer has no chat template".into(),
                ));
            }
        };
        Ok(Self {
            model,
            tokenizer,
            engine: RolloutEngine::default(),
            sampling: settings.sampling,
            max_new_tokens: settings.max_new_tokens,
            chat,
        })
    }

    /// Whether prompts go through the chat template.
    pub fn chat(&self) -> bool {
        self.chat
    }

    /// The prompt text of chat `messages` (`TextTokenizer::prompt_text`).
    pub fn render(&self, messages: &Value) -> Result<String, EvalError> {
        Ok(self.tokenizer.prompt_text(messages, self.chat)?)
    }

    /// The prompt text of one user message.
    pub fn render_user(&self, text: &str) -> Result<String, EvalError> {
        self.render(&json!([{ "role": "user", "content": text }]))
    }

    /// Tokens of `text` without special-token processing (bytes if it cannot be encoded, which
    /// over-counts and so stays within any budget).
    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer.encode(text, false).map_or(text.len(), |ids| ids.len())
    }

    /// The aggregation wording for `style` (compact for from-scratch models, the RSA-paper
    /// wording for instruct models), with prompts cut to fit the model's context.
    pub fn aggregation_config(&self, style: PromptStyle) -> Result<AggregationConfig, EvalError> {
        let template = match style {
            PromptStyle::Compact => PromptTemplate::compact(),
            PromptStyle::Instruct => PromptTemplate::default(),
        };
        let room = self.user_message_room(template.system.as_deref())?;
        Ok(AggregationConfig { template, max_prompt_tokens: Some(room), ..Default::default() })
    }

    /// The most tokens a user message may have so that, rendered with `system` and followed by a
    /// full-length trace, it fits the model's context.
    pub fn user_message_room(&self, system: Option<&str>) -> Result<usize, EvalError> {
        let user = json!({ "role": "user", "content": "" });
        let messages = match system {
            Some(s) => json!([{ "role": "system", "content": s }, user]),
            None => json!([user]),
        };
        let overhead = self.count_tokens(&self.render(&messages)?) + CONTEXT_SLACK;
        let context = self.model.config().max_position_embeddings;
        let room = context.saturating_sub(overhead + self.max_new_tokens);
        if room == 0 {
            return Err(EvalError::Settings(format!(
                "no room for a prompt: the context is {context} tokens, the chat template takes \
                 {overhead} and max_new_tokens is {}",
                self.max_new_tokens
            )));
        }
        Ok(room)
    }

    /// `n` completions of every prompt text, in one engine call seeded with `seed`; the outer
    /// vector follows `prompts`.
    pub fn generate(
        &self,
        prompts: &[String],
        n: usize,
        seed: u64,
    ) -> Result<Vec<Vec<Completion>>, EvalError> {
        let ids = prompts
            .iter()
            .map(|p| self.tokenizer.encode(p, false))
            .collect::<Result<Vec<_>, _>>()?;
        let request = RolloutRequest {
            prompts: ids,
            n,
            sampling: SamplingParams { seed, ..self.sampling },
            stop: StopConditions {
                eos_token_ids: self.tokenizer.eos_token_ids().to_vec(),
                stop_strings: Vec::new(),
                max_new_tokens: self.max_new_tokens,
            },
            max_total_tokens: None,
        };
        let out = self.engine.generate(self.model, Some(self.tokenizer), &request)?;
        let mut grouped: Vec<Vec<Completion>> = (0..prompts.len()).map(|_| Vec::new()).collect();
        for sample in out.samples {
            let text = self.tokenizer.decode(&sample.tokens, true)?;
            let completion = Completion {
                text,
                tokens: sample.tokens.len(),
                logprob: sample.logprobs.iter().map(|&l| f64::from(l)).sum(),
                finish: sample.finish,
            };
            grouped[sample.prompt_index].push(completion);
        }
        Ok(grouped)
    }
}

/// The name of a finish reason as samples files write it: `eos`, `stop_string`, `length` or
/// `budget`.
pub fn finish_reason_name(finish: &FinishReason) -> &'static str {
    match finish {
        FinishReason::Eos(_) => "eos",
        FinishReason::StopString(_) => "stop_string",
        FinishReason::Length => "length",
        FinishReason::Budget => "budget",
    }
}

/// One line of a samples file, as `spiral-eval passk` reads it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SampleRecord {
    /// The problem's [`DatasetProblem::id`].
    pub problem_id: String,
    /// Index among the problem's samples.
    pub sample: usize,
    /// The task's reward of the response.
    pub reward: f64,
    /// The extracted final answer, `null` when there is none.
    pub answer: Option<String>,
    /// The generated text.
    pub response: String,
    /// Generated tokens.
    pub tokens: usize,
    /// See [`finish_reason_name`].
    pub finish_reason: &'static str,
}

/// Purposes of the random streams of `spiral-eval`'s engine calls (see
/// [`spiral_rollout::stream_seed`]).
pub mod purpose {
    /// Chunk `c` of [`super::sample_problems`].
    pub const SAMPLE_CHUNK: u64 = 1;
    /// Round `t` of RSA ([`super::EngineAggregator`]).
    pub const RSA_ROUND: u64 = 2;
    /// The shuffling of the aggregation prompts over `N` candidates (`spiral-eval scaling`).
    pub const AGGREGATION_SHUFFLE: u64 = 3;
}

/// Samples `n` responses to every problem ([`SAMPLE_CHUNK`] problems per engine call, chunk `c`
/// seeded with `stream_seed(seed, purpose::SAMPLE_CHUNK, c)`), scores them with the task's reward
/// and hands each problem's records to `emit` in order (whose errors, such as a failed write, end
/// the run).
pub fn sample_problems<B: Backend, E: From<EvalError>>(
    sampler: &ModelSampler<'_, B>,
    problems: &[DatasetProblem],
    n: usize,
    style: PromptStyle,
    mut emit: impl FnMut(Vec<SampleRecord>) -> Result<(), E>,
) -> Result<(), E> {
    let reward = TaskReward::default();
    for (chunk, batch) in problems.chunks(SAMPLE_CHUNK).enumerate() {
        let prompts = batch
            .iter()
            .map(|p| sampler.render_user(&p.problem.prompt(style)))
            .collect::<Result<Vec<_>, _>>()?;
        let seed = stream_seed(sampler.sampling.seed, purpose::SAMPLE_CHUNK, chunk as u64);
        for (p, completions) in batch.iter().zip(sampler.generate(&prompts, n, seed)?) {
            let records = completions
                .into_iter()
                .enumerate()
                .map(|(sample, c)| {
                    let scored = reward.score(&p.problem, &c.text);
                    SampleRecord {
                        problem_id: p.id.clone(),
                        sample,
                        reward: scored.reward,
                        answer: scored.extracted,
                        response: c.text,
                        tokens: c.tokens,
                        finish_reason: finish_reason_name(&c.finish),
                    }
                })
                .collect();
            emit(records)?;
        }
    }
    Ok(())
}

/// The model side of RSA: renders each aggregation prompt's messages like a problem prompt and
/// generates one trace per prompt, one engine call per round (round `t` seeded with
/// `stream_seed(seed, purpose::RSA_ROUND, t)`).
#[derive(Debug)]
pub struct EngineAggregator<'s, 'a, B: Backend> {
    sampler: &'s ModelSampler<'a, B>,
    round: u64,
    /// The engine calls made, with the number of prompts in each.
    pub calls: Vec<usize>,
}

impl<'s, 'a, B: Backend> EngineAggregator<'s, 'a, B> {
    /// An aggregator about to run round 1.
    pub fn new(sampler: &'s ModelSampler<'a, B>) -> Self {
        Self { sampler, round: 0, calls: Vec::new() }
    }
}

impl<B: Backend> Aggregator for EngineAggregator<'_, '_, B> {
    fn generate(&mut self, prompts: &[AggregationPrompt]) -> Result<Vec<Generation>, BoxError> {
        self.round += 1;
        let texts = prompts
            .iter()
            .map(|p| self.sampler.render(&p.messages()))
            .collect::<Result<Vec<_>, _>>()?;
        let seed = stream_seed(self.sampler.sampling.seed, purpose::RSA_ROUND, self.round);
        let out = self.sampler.generate(&texts, 1, seed)?;
        self.calls.push(texts.len());
        Ok(out
            .into_iter()
            .flatten()
            .map(|c| Generation { text: c.text, tokens: c.tokens })
            .collect())
    }
}

/// RSA settings beyond the sampler's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsaOptions {
    /// Population N: traces per problem in every round.
    pub population: usize,
    /// Rounds, K, set sampling and the seed of set drawing and shuffling.
    pub rsa: RsaConfig,
    /// How problems are worded, in first prompts and inside aggregation prompts; `compact` also
    /// picks the compact aggregation wording ([`PromptTemplate::compact`]).
    pub style: PromptStyle,
}

/// The outcome of [`run_rsa`].
#[derive(Clone, Debug, PartialEq)]
pub struct RsaOutcome {
    /// Every round's populations and scores.
    pub run: RsaRun,
    /// The aggregation prompts' config, with the token budget that was used.
    pub aggregation: AggregationConfig,
    /// Prompts per engine call of each aggregation round.
    pub calls: Vec<usize>,
}

/// Runs RSA on `problems`: N traces per problem with [`sample_problems`]' seeding, then
/// `rsa.rounds` rounds of aggregation through an [`EngineAggregator`], scored with the task's
/// reward. Aggregation prompts are cut to fit the context ([`ModelSampler::user_message_room`]).
pub fn run_rsa<B: Backend>(
    sampler: &ModelSampler<'_, B>,
    problems: &[DatasetProblem],
    options: &RsaOptions,
) -> Result<RsaOutcome, EvalError> {
    let aggregation = sampler.aggregation_config(options.style)?;
    let builder = PromptBuilder::new(aggregation.clone())?;
    let questions: Vec<String> = problems.iter().map(|p| p.problem.prompt(options.style)).collect();
    let mut populations = Vec::with_capacity(problems.len());
    sample_problems(sampler, problems, options.population, options.style, |records| {
        let population =
            records.into_iter().map(|r| Generation { text: r.response, tokens: r.tokens });
        populations.push(population.collect());
        Ok::<_, EvalError>(())
    })?;
    let inputs: Vec<RsaInput<'_, Problem>> = problems
        .iter()
        .zip(&questions)
        .zip(populations)
        .map(|((p, question), population)| RsaInput { question, problem: &p.problem, population })
        .collect();
    let counter = |s: &str| sampler.count_tokens(s);
    let driver = RsaDriver::new(options.rsa.clone(), &builder, &counter)?;
    let mut aggregator = EngineAggregator::new(sampler);
    let run = driver.run(&inputs, &TaskReward::default(), &mut aggregator)?;
    Ok(RsaOutcome { run, aggregation, calls: aggregator.calls })
}

/// The per-round summaries of a run as one JSON object:
/// `{"rounds": [{"round", "pass@1", "maj@N", "pass@N", "generated_tokens", "prompt_tokens"}]}`,
/// the token counts being means per problem.
pub fn rsa_summary_json(run: &RsaRun) -> Value {
    let rounds: Vec<Value> = run
        .summaries()
        .iter()
        .map(|s| {
            json!({
                "round": s.round,
                "pass@1": s.pass_at_1,
                "maj@N": s.majority,
                "pass@N": s.pass_at_n,
                "generated_tokens": s.generated_tokens,
                "prompt_tokens": s.prompt_tokens,
            })
        })
        .collect();
    json!({ "rounds": rounds })
}

/// A report of an RSA run: the per-round table with 95% bootstrap intervals over problems, the
/// RSA curve (pass@1, maj@N, pass@N against the round) as PNG and SVG, tokens per round, and the
/// run's `config` and `command`; the commit is the caller's (see
/// [`git_commit`](crate::git_commit)).
pub fn rsa_report(
    outcome: &RsaOutcome,
    title: impl Into<String>,
    config: String,
    command: Option<String>,
    commit: Option<String>,
) -> Report {
    let curves = rsa_curves(&outcome.run, &BootstrapOptions::default()).to_vec();
    let table = Table::from_curves("round", &curves);
    let figure = Figure {
        name: "rsa".into(),
        title: "RSA: accuracy per round".into(),
        x_label: "aggregation round (0 = initial population)".into(),
        y_label: "accuracy (mean over problems)".into(),
        x_scale: Scale::Linear,
        curves,
    };
    let problems = outcome.run.rounds.first().map_or(0, |r| r.problems.len());
    let text = format!(
        "{problems} problems. pass@1 is the mean reward of the population, maj@N the reward of its \
         majority answer, pass@N whether any member is correct; intervals are 95% percentile \
         bootstrap over problems."
    );
    let rounds = Section {
        heading: "RSA rounds".into(),
        text,
        table: Some(table),
        figures: vec![figure],
        ..Default::default()
    };
    let rows = outcome.run.summaries().into_iter().map(|s| {
        vec![
            s.round.to_string(),
            format!("{:.1}", s.generated_tokens),
            format!("{:.1}", s.prompt_tokens),
        ]
    });
    let tokens = Section {
        heading: "Tokens".into(),
        text: "Means per problem: tokens generated in the round, and tokens of its aggregation \
               prompts (user messages)."
            .into(),
        table: Some(Table {
            columns: vec!["round".into(), "generated".into(), "aggregation prompts".into()],
            rows: rows.collect(),
        }),
        ..Default::default()
    };
    Report {
        title: title.into(),
        commit,
        command,
        config: Some(config),
        sections: vec![rounds, tokens],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<DatasetProblem>, EvalError> {
        read_problems(text, "d.jsonl", Task::Arith, &FieldNames::for_task(Task::Arith))
    }

    #[test]
    fn ids_come_from_the_id_field_or_the_line() {
        let text = "\u{feff}{\"problem\": \"1+2\", \"answer\": 3}\n\n\
                    {\"id\": 7, \"problem\": \"2*3\", \"answer\": 6}\n\
                    {\"id\": \"x\", \"problem\": \"4-1\", \"answer\": 3}\n";
        let ids: Vec<(String, usize)> =
            read(text).unwrap().into_iter().map(|p| (p.id, p.line)).collect();
        assert_eq!(ids, [("1".into(), 1), ("7".into(), 3), ("x".into(), 4)]);
    }

    #[test]
    fn bad_lines_and_ids_name_file_and_line() {
        let cases = [
            ("{\"problem\": \"1+2\", \"answer\": 3}\n{\"problem\": \"1+\"}", "d.jsonl:2:"),
            ("{\"id\": 1.5, \"problem\": \"1\", \"answer\": 1}", "d.jsonl:1: field `id`"),
            (
                "{\"id\": \"a\", \"problem\": \"1\", \"answer\": 1}\n{\"id\": \"a\", \"problem\": \
                 \"2\", \"answer\": 2}",
                "d.jsonl:2: duplicate id `a` (first on line 1)",
            ),
        ];
        for (text, expected) in cases {
            let message = read(text).unwrap_err().to_string();
            assert!(message.starts_with(expected), "{message}");
        }
    }
}
