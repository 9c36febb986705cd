//! One RL step's data. Every algorithm samples N1 search traces per problem and scores them; then
//! its [`Credit`] decides the rest:
//!
//! - [`groups`] (GRPO, Dr.GRPO): each problem's N1 traces are one group, each trace credited
//!   against its group's rewards;
//! - [`sets`] (SPIRAL, ParaGator): K distinct sets of n traces are drawn from each problem's N1,
//!   each set aggregated N2 times, and both kinds of traces credited by the algorithm's
//!   estimators (set RL and in-set centring for SPIRAL; pass@k and per-problem Dr.GRPO for
//!   ParaGator).
//!
//! With a reference model (a KL penalty), every trained sequence also carries its log-probs
//! under it.

mod groups;
mod overlong;
mod sets;

use std::ops::Range;
use std::time::Instant;

use burn::tensor::backend::Backend;
use spiral_model::CausalLm;
use spiral_rewards::Problem;
use spiral_rollout::{RolloutEngine, RolloutOutput, RolloutRequest, Sample};
use spiral_set_rl::mean;

use crate::algorithm::Credit;
use crate::config::RunConfig;
use crate::learner::TrainSequence;
use crate::task::{TaskData, reward};

pub use overlong::OverlongConfig;

/// The training batch of one step and what was measured while collecting it.
pub struct Collected {
    /// Sequences with their advantages and behaviour log-probs.
    pub batch: Vec<TrainSequence>,
    /// The index among the collected problems of each sequence's problem.
    pub problem_of: Vec<usize>,
    /// The problems collected.
    pub problems: usize,
    /// Per problem: whether its traces differ in raw correctness (search traces, and the
    /// aggregation traces of every set), so that it carries a training signal.
    pub informative: Vec<bool>,
    /// Mean reward of search traces.
    pub search_reward: f64,
    /// Mean reward of aggregation traces (SPIRAL and ParaGator).
    pub aggregation_reward: Option<f64>,
    /// Mean absolute advantage of the trained sequences.
    pub mean_abs_advantage: f64,
    /// Fraction of problems whose advantages were all zero (no learning signal).
    pub zero_signal_fraction: f64,
    /// Each search trace's `(advantage, own raw reward)`, for algorithms that credit search
    /// traces through aggregation: how much a trace's credit says about its own correctness.
    pub search_credit: Vec<(f64, f64)>,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// Seconds spent sampling.
    pub rollout_seconds: f64,
    /// Seconds spent scoring.
    pub reward_seconds: f64,
    /// Seconds spent scoring the batch under the KL penalty's reference model (0 without one).
    pub reference_seconds: f64,
}

impl Collected {
    /// Leaves out of the batch the sequences of every problem `p` with `keep[p]` false.
    pub fn keep_problems(&mut self, keep: &[bool]) {
        let kept: Vec<_> = std::mem::take(&mut self.batch)
            .into_iter()
            .zip(std::mem::take(&mut self.problem_of))
            .filter(|(_, p)| keep[*p])
            .collect();
        (self.batch, self.problem_of) = kept.into_iter().unzip();
        self.mean_abs_advantage = mean_abs_advantage(&self.batch);
    }

    /// Adds `other`, collected for further problems: their sequences join the batch, the means
    /// cover every problem collected, and the tokens and seconds add up.
    pub fn absorb(&mut self, other: Collected) {
        let (n, m) = (self.problems as f64, other.problems as f64);
        let weighted = |a: f64, b: f64| if n + m > 0.0 { (a * n + b * m) / (n + m) } else { 0.0 };
        self.search_reward = weighted(self.search_reward, other.search_reward);
        self.aggregation_reward = match (self.aggregation_reward, other.aggregation_reward) {
            (Some(a), Some(b)) => Some(weighted(a, b)),
            (a, b) => a.or(b),
        };
        self.zero_signal_fraction = weighted(self.zero_signal_fraction, other.zero_signal_fraction);
        self.search_credit.extend(other.search_credit);
        let offset = self.problems;
        self.batch.extend(other.batch);
        self.problem_of.extend(other.problem_of.iter().map(|p| p + offset));
        self.informative.extend(other.informative);
        self.problems += other.problems;
        self.mean_abs_advantage = mean_abs_advantage(&self.batch);
        self.generated_tokens += other.generated_tokens;
        self.rollout_seconds += other.rollout_seconds;
        self.reward_seconds += other.reward_seconds;
        self.reference_seconds += other.reference_seconds;
    }
}

/// The mean absolute advantage of `batch`'s sequences.
fn mean_abs_advantage(batch: &[TrainSequence]) -> f64 {
    mean(&batch.iter().map(|s| s.advantage.abs()).collect::<Vec<_>>())
}

/// Where each problem's traces sit in a rollout's flat list of samples: `per_problem` of them,
/// problem after problem.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TraceLayout {
    per_problem: usize,
}

impl TraceLayout {
    /// Trace `j` of problem `problem`.
    fn trace(self, problem: usize, j: usize) -> usize {
        problem * self.per_problem + j
    }

    /// Every trace of problem `problem`.
    fn problem(self, problem: usize) -> Range<usize> {
        problem * self.per_problem..(problem + 1) * self.per_problem
    }
}

/// The search traces of one step: sampled, decoded and scored.
struct Search {
    /// The search prompt of each problem.
    prompts: Vec<Vec<u32>>,
    /// N1 samples per problem ([`TraceLayout`] `per_problem = n1`).
    output: RolloutOutput,
    /// Each sample's text.
    texts: Vec<String>,
    /// Each sample's reward, shaped for credit ([`OverlongConfig`]).
    rewards: Vec<f64>,
    /// Each sample's raw reward (correctness).
    raw_rewards: Vec<f64>,
    layout: TraceLayout,
}

/// The batch and counts a credit assignment produces.
#[derive(Default)]
struct Credited {
    batch: Vec<TrainSequence>,
    /// The problem of each sequence of `batch`.
    problem_of: Vec<usize>,
    /// The raw rewards of the aggregation traces, `k * n2` per problem (algorithms that
    /// aggregate).
    aggregation_raw: Vec<f64>,
    /// Each search trace's `(advantage, own raw reward)` (algorithms that aggregate).
    search_credit: Vec<(f64, f64)>,
    /// Problems whose every advantage was zero.
    zero_signal: usize,
    /// Mean reward of the aggregation traces, for algorithms that aggregate.
    aggregation_reward: Option<f64>,
    /// Tokens and seconds spent on aggregation rollouts and their rewards.
    generated_tokens: usize,
    rollout_seconds: f64,
    reward_seconds: f64,
}

/// The random streams of one step's collection. Every draw is keyed by the step and by each
/// problem's index among the step's problems, never by which process collects which problems,
/// so a step split across ranks draws what one process would.
#[derive(Debug, Clone, Copy)]
pub struct Draws {
    /// The step's rollout seed (search traces; aggregation traces derive theirs from it).
    pub rollout: u64,
    /// The step's seed for drawing each problem's sets and ordering their candidates.
    pub sets: u64,
    /// The index among the step's problems of the first problem collected here.
    pub first_problem: usize,
}

/// Samples, scores and computes advantages for `problems`. With a `reference` model (the policy
/// RL started from, when the loss has a KL penalty), every trained sequence also carries its
/// log-probs under it.
pub fn collect<B: Backend>(
    model: &CausalLm<B>,
    reference: Option<&CausalLm<B>>,
    data: &TaskData,
    problems: &[&Problem],
    config: &RunConfig,
    draws: Draws,
) -> anyhow::Result<Collected> {
    let a = &config.algorithm;
    let engine = RolloutEngine::default();
    let (mut sampling, mut stop) = data.rollout_settings(&config.rollout, draws.rollout);
    sampling.first_prompt = draws.first_problem;
    stop.max_new_tokens = config.train_max_new_tokens();
    let prompts: Vec<Vec<u32>> =
        problems.iter().map(|p| data.encode(&data.search_prompt(p))).collect();
    let started = Instant::now();
    let request = RolloutRequest {
        prompts: prompts.clone(),
        n: a.n1,
        sampling,
        stop: stop.clone(),
        max_total_tokens: None,
    };
    let output = engine.generate(model, None, &request)?;
    let rollout_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let texts: Vec<String> = output.samples.iter().map(|s| data.decode(&s.tokens)).collect();
    let raw: Vec<f64> = output
        .samples
        .iter()
        .zip(&texts)
        .map(|(s, t)| reward(problems[s.prompt_index], t))
        .collect();
    let reward_seconds = started.elapsed().as_secs_f64();
    let search_reward = mean(&raw);
    let overlong = &config.train.overlong;
    let rewards: Vec<f64> = raw
        .iter()
        .zip(&output.samples)
        .map(|(&r, s)| overlong.shaped(r, s.tokens.len(), stop.max_new_tokens))
        .collect();
    let search_tokens = output.stats.generated_tokens;
    let search = Search {
        prompts,
        output,
        texts,
        rewards,
        raw_rewards: raw.clone(),
        layout: TraceLayout { per_problem: a.n1 },
    };

    let credited = match a.name.credit() {
        Credit::Group(estimator) => {
            groups::credit(&search, problems.len(), estimator, a, overlong)?
        }
        Credit::Sets { search: s, aggregation } => {
            let estimators = sets::Estimators { search: s, aggregation };
            let context =
                sets::Context { model, engine: &engine, data, sampling, stop, draws, overlong };
            sets::credit(&search, problems, estimators, a, &context)?
        }
    };
    let Credited {
        mut batch,
        problem_of,
        aggregation_raw,
        search_credit,
        zero_signal,
        aggregation_reward,
        generated_tokens: aggregation_tokens,
        rollout_seconds: aggregation_rollout_seconds,
        reward_seconds: aggregation_reward_seconds,
    } = credited;

    let started = Instant::now();
    if let Some(reference) = reference {
        let temperature = config.scoring_temperature();
        add_reference_logprobs(reference, &mut batch, config.train.micro_batch, temperature)?;
    }
    let reference_seconds = started.elapsed().as_secs_f64();
    let mean_abs_advantage = mean_abs_advantage(&batch);
    let per_problem = aggregation_raw.len() / problems.len().max(1);
    let informative = (0..problems.len())
        .map(|p| {
            let search = &raw[p * a.n1..(p + 1) * a.n1];
            let aggregation = &aggregation_raw[p * per_problem..(p + 1) * per_problem];
            search.iter().chain(aggregation).any(|&r| r != search[0])
        })
        .collect();
    Ok(Collected {
        batch,
        problem_of,
        problems: problems.len(),
        informative,
        search_reward,
        aggregation_reward,
        mean_abs_advantage,
        zero_signal_fraction: zero_signal as f64 / problems.len() as f64,
        search_credit,
        generated_tokens: search_tokens + aggregation_tokens,
        rollout_seconds: rollout_seconds + aggregation_rollout_seconds,
        reward_seconds: reward_seconds + aggregation_reward_seconds,
        reference_seconds,
    })
}

/// A trained sequence: `prompt` then sample `s`, credited with `advantage` and weighted by
/// `weight` (the algorithm's weight for its kind of trace).
fn sequence(prompt: &[u32], s: &Sample, advantage: f64, weight: f64) -> TrainSequence {
    TrainSequence {
        tokens: [prompt, &s.tokens[..]].concat(),
        prompt_len: prompt.len(),
        advantage,
        old_logprobs: Some(s.logprobs.clone()),
        ref_logprobs: None,
        rollout_logprobs: None,
        weight,
    }
}

/// Adds every sequence's completion log-probs under `reference`, at the sampling temperature.
fn add_reference_logprobs<B: Backend>(
    reference: &CausalLm<B>,
    batch: &mut [TrainSequence],
    chunk: usize,
    temperature: f64,
) -> anyhow::Result<()> {
    let scored = crate::score::completion_logprobs(reference, batch, chunk, temperature)?;
    for (s, logprobs) in batch.iter_mut().zip(scored) {
        s.ref_logprobs = Some(logprobs);
    }
    Ok(())
}
