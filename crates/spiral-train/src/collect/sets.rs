//! Credit through aggregation sets (SPIRAL, ParaGator): K distinct sets of n traces are drawn
//! from each problem's N1 search traces, one aggregation prompt per set is sampled N2 times, the
//! aggregation traces are scored, and both kinds of traces are credited by the algorithm's
//! estimators. A trace with a zero advantage (a search trace in no set has exactly 0 under set
//! RL) is trained as `algorithm.zero_advantage` says.

use std::time::Instant;

use burn::tensor::backend::Backend;
use rand::SeedableRng;
use rand::rngs::StdRng;
use spiral_aggregation::draw_distinct_sets;
use spiral_model::CausalLm;
use spiral_rewards::Problem;
use spiral_rollout::{RolloutEngine, RolloutRequest, SamplingParams, StopConditions, stream_seed};
use spiral_set_rl::{
    SpiralAdvantages, SpiralConfig, dr_grpo_advantages, mean, pass_at_k_advantages,
    spiral_advantages,
};

use super::{Credited, Draws, OverlongConfig, Search, TraceLayout, sequence};
use crate::algorithm::{AggregationAdvantage, SearchAdvantage};
use crate::config::AlgorithmSection;
use crate::task::{TaskData, reward};

/// The estimators of the two kinds of traces.
pub(super) struct Estimators {
    pub(super) search: SearchAdvantage,
    pub(super) aggregation: AggregationAdvantage,
}

/// What sampling the aggregation traces needs.
pub(super) struct Context<'a, B: Backend> {
    pub(super) model: &'a CausalLm<B>,
    pub(super) engine: &'a RolloutEngine,
    pub(super) data: &'a TaskData,
    /// The search traces' sampling; aggregation traces draw from a stream of their own.
    pub(super) sampling: SamplingParams,
    pub(super) stop: StopConditions,
    pub(super) draws: Draws,
    pub(super) overlong: &'a OverlongConfig,
}

/// Where a problem's aggregation prompts and traces sit: `k` prompts (one per set) per problem,
/// `n2` traces per prompt.
#[derive(Debug, Clone, Copy)]
struct SetLayout {
    k: usize,
    n2: usize,
}

impl SetLayout {
    /// The aggregation prompt of set `set` of problem `problem`.
    fn prompt(self, problem: usize, set: usize) -> usize {
        problem * self.k + set
    }

    /// The layout of aggregation traces: `k * n2` per problem, set after set.
    fn traces(self) -> TraceLayout {
        TraceLayout { per_problem: self.k * self.n2 }
    }
}

/// Draws the sets, samples and scores the aggregation traces, and credits both kinds.
pub(super) fn credit<B: Backend>(
    search: &Search,
    problems: &[&Problem],
    estimators: Estimators,
    a: &AlgorithmSection,
    context: &Context<'_, B>,
) -> anyhow::Result<Credited> {
    let data = context.data;
    let layout = SetLayout { k: a.k, n2: a.n2 };
    // K distinct sets of n traces per problem, one aggregation prompt per set.
    let mut sets = Vec::with_capacity(problems.len());
    let mut prompts = Vec::with_capacity(problems.len() * a.k);
    let first = context.draws.first_problem;
    for (p, problem) in problems.iter().enumerate() {
        // Each problem's own stream, keyed by its index in the step.
        let seed = stream_seed(context.draws.sets, 0, (first + p) as u64);
        let rng = &mut StdRng::seed_from_u64(seed);
        let problem_sets = draw_distinct_sets(a.n1, a.n, a.k, rng)?;
        for set in &problem_sets {
            let candidates: Vec<String> =
                set.iter().map(|&i| search.texts[search.layout.trace(p, i)].clone()).collect();
            prompts.push(data.encode(&data.aggregation_prompt(problem, &candidates, rng)));
        }
        sets.push(problem_sets);
    }
    let started = Instant::now();
    let request = RolloutRequest {
        prompts: prompts.clone(),
        n: a.n2,
        sampling: SamplingParams {
            seed: context.draws.rollout ^ 0xA66,
            first_prompt: first * a.k,
            ..context.sampling
        },
        stop: context.stop.clone(),
        max_total_tokens: None,
    };
    let aggregations = context.engine.generate(context.model, None, &request)?;
    let rollout_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let raw: Vec<f64> = aggregations
        .samples
        .iter()
        .map(|s| reward(problems[s.prompt_index / a.k], &data.decode(&s.tokens)))
        .collect();
    let limit = context.stop.max_new_tokens;
    let rewards: Vec<f64> = raw
        .iter()
        .zip(&aggregations.samples)
        .map(|(&r, s)| context.overlong.shaped(r, s.tokens.len(), limit))
        .collect();
    let mut credited = Credited {
        aggregation_reward: Some(mean(&raw)),
        generated_tokens: aggregations.stats.generated_tokens,
        rollout_seconds,
        reward_seconds: started.elapsed().as_secs_f64(),
        ..Credited::default()
    };

    let traces = layout.traces();
    for (p, problem_sets) in sets.iter().enumerate() {
        let problem_rewards = &rewards[traces.problem(p)];
        // Set RL's search advantages and in-set centring come from one computation.
        let spiral = match (estimators.search, estimators.aggregation) {
            (SearchAdvantage::SetRl, _) | (_, AggregationAdvantage::InSet) => {
                let set_rewards: Vec<&[f64]> = problem_rewards.chunks(a.n2).collect();
                let config =
                    SpiralConfig { normalize_std: a.normalize_std, baseline: a.set_baseline };
                Some(spiral_advantages(a.n1, problem_sets, &set_rewards, &config)?)
            }
            _ => None,
        };
        let spiral = |part: fn(&SpiralAdvantages) -> Vec<f64>| {
            spiral.as_ref().map(part).expect("computed above when needed")
        };
        let search_advantages = match estimators.search {
            SearchAdvantage::SetRl => spiral(|s| s.search_advantages.clone()),
            SearchAdvantage::PassAtK => {
                let own = &search.rewards[search.layout.problem(p)];
                pass_at_k_advantages(own, a.n, a.normalize_std)?
            }
            SearchAdvantage::OwnReward => {
                dr_grpo_advantages(&search.rewards[search.layout.problem(p)])?
            }
        };
        let aggregation_advantages = match estimators.aggregation {
            AggregationAdvantage::InSet => spiral(|s| s.aggregation_advantages.concat()),
            AggregationAdvantage::PerProblem => dr_grpo_advantages(problem_rewards)?,
        };
        for (i, &advantage) in search_advantages.iter().enumerate() {
            let own = search.raw_rewards[search.layout.trace(p, i)];
            credited.search_credit.push((advantage, own));
        }
        let all = search_advantages.iter().chain(&aggregation_advantages);
        credited.zero_signal += usize::from(all.clone().all(|&x| x == 0.0));
        for (i, &advantage) in search_advantages.iter().enumerate() {
            let sample = &search.output.samples[search.layout.trace(p, i)];
            if a.trains(advantage) && context.overlong.trains(sample) {
                let prompt = &search.prompts[p];
                credited.batch.push(sequence(prompt, sample, advantage, a.search_weight));
                credited.problem_of.push(p);
            }
        }
        for (j, &advantage) in aggregation_advantages.iter().enumerate() {
            let sample = &aggregations.samples[traces.trace(p, j)];
            if a.trains(advantage) && context.overlong.trains(sample) {
                let prompt = &prompts[layout.prompt(p, j / a.n2)];
                credited.batch.push(sequence(prompt, sample, advantage, a.aggregation_weight));
                credited.problem_of.push(p);
            }
        }
    }
    credited.aggregation_raw = raw;
    Ok(credited)
}
