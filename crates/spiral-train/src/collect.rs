//! One RL step's data, per DESIGN.md: for SPIRAL, N1 search traces per problem, K distinct
//! sets of n drawn from them, N2 aggregation traces per set, rewards on the aggregation traces
//! only, and `spiral-set-rl`'s set advantages for search traces and in-set advantages for
//! aggregation traces; for ParaGator, the same sampling with pass@k advantages (k = n, no std
//! division) on the search traces' own rewards and Dr.GRPO advantages over all aggregation traces
//! of a problem (pass@1); for GRPO / Dr.GRPO, one group of N1 traces per problem.

use std::time::Instant;

use burn::tensor::backend::Backend;
use rand::rngs::StdRng;
use spiral_aggregation::draw_distinct_sets;
use spiral_model::CausalLm;
use spiral_model::shards::{map_concurrently, shard_count};
use spiral_rewards::Problem;
use spiral_rollout::{RolloutEngine, RolloutRequest, Sample, SamplingParams};
use spiral_set_rl::{
    SpiralConfig, dr_grpo_advantages, grpo_advantages, pass_at_k_advantages, spiral_advantages,
};

use crate::config::{Algorithm, RunConfig};
use crate::learner::TrainSequence;
use crate::task::{TaskData, reward};

/// The training batch of one step and what was measured while collecting it.
pub struct Collected {
    /// Sequences with their advantages and behaviour log-probs.
    pub batch: Vec<TrainSequence>,
    /// Mean reward of search traces.
    pub search_reward: f64,
    /// Mean reward of aggregation traces (SPIRAL and ParaGator).
    pub aggregation_reward: Option<f64>,
    /// Mean absolute advantage of the trained sequences.
    pub mean_abs_advantage: f64,
    /// Fraction of problems whose advantages were all zero (no learning signal).
    pub zero_signal_fraction: f64,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// Seconds spent sampling.
    pub rollout_seconds: f64,
    /// Seconds spent scoring.
    pub reward_seconds: f64,
    /// Seconds spent scoring the batch under the KL penalty's reference model (0 without one).
    pub reference_seconds: f64,
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
    step_seed: u64,
    rng: &mut StdRng,
) -> anyhow::Result<Collected> {
    let a = &config.algorithm;
    let engine = RolloutEngine::default();
    let (sampling, mut stop) = data.rollout_settings(&config.rollout, step_seed);
    stop.max_new_tokens = config.train_max_new_tokens();
    let search_prompts: Vec<Vec<u32>> =
        problems.iter().map(|p| data.encode(&data.search_prompt(p))).collect();
    let started = Instant::now();
    let search = engine.generate(
        model,
        None,
        &RolloutRequest {
            prompts: search_prompts.clone(),
            n: a.n1,
            sampling,
            stop: stop.clone(),
            max_total_tokens: None,
        },
    )?;
    let mut rollout_seconds = started.elapsed().as_secs_f64();
    let mut generated = search.stats.generated_tokens;
    let started = Instant::now();
    let texts: Vec<String> = search.samples.iter().map(|s| data.decode(&s.tokens)).collect();
    let rewards: Vec<f64> = search
        .samples
        .iter()
        .zip(&texts)
        .map(|(s, t)| reward(problems[s.prompt_index], t))
        .collect();
    let mut reward_seconds = started.elapsed().as_secs_f64();
    let search_reward = mean(&rewards);
    let sequence = |prompt: &[u32], s: &Sample, advantage: f64, weight: f64| TrainSequence {
        tokens: [prompt, &s.tokens[..]].concat(),
        prompt_len: prompt.len(),
        advantage,
        old_logprobs: Some(s.logprobs.clone()),
        ref_logprobs: None,
        weight,
    };
    let mut batch = Vec::new();
    let mut zero_signal = 0;
    let mut aggregation_reward = None;
    match a.name {
        Algorithm::Grpo | Algorithm::DrGrpo => {
            for (p, group) in rewards.chunks(a.n1).enumerate() {
                let adv = if a.name == Algorithm::Grpo {
                    grpo_advantages(group)?
                } else {
                    dr_grpo_advantages(group)?
                };
                zero_signal += usize::from(adv.iter().all(|&x| x == 0.0));
                for (j, &adv) in adv.iter().enumerate() {
                    batch.push(sequence(
                        &search_prompts[p],
                        &search.samples[p * a.n1 + j],
                        adv,
                        a.search_weight,
                    ));
                }
            }
        }
        Algorithm::Spiral | Algorithm::Paragator => {
            // K distinct sets of n traces per problem, one aggregation prompt per set.
            let mut sets = Vec::with_capacity(problems.len());
            let mut agg_prompts = Vec::with_capacity(problems.len() * a.k);
            for (p, problem) in problems.iter().enumerate() {
                let problem_sets = draw_distinct_sets(a.n1, a.n, a.k, rng)?;
                for set in &problem_sets {
                    let candidates: Vec<String> =
                        set.iter().map(|&i| texts[p * a.n1 + i].clone()).collect();
                    agg_prompts.push(data.encode(&data.aggregation_prompt(
                        problem,
                        &candidates,
                        rng,
                    )));
                }
                sets.push(problem_sets);
            }
            let started = Instant::now();
            let agg_sampling = SamplingParams { seed: step_seed ^ 0xA66, ..sampling };
            let aggs = engine.generate(
                model,
                None,
                &RolloutRequest {
                    prompts: agg_prompts.clone(),
                    n: a.n2,
                    sampling: agg_sampling,
                    stop,
                    max_total_tokens: None,
                },
            )?;
            rollout_seconds += started.elapsed().as_secs_f64();
            generated += aggs.stats.generated_tokens;
            let started = Instant::now();
            let agg_rewards: Vec<f64> = aggs
                .samples
                .iter()
                .map(|s| reward(problems[s.prompt_index / a.k], &data.decode(&s.tokens)))
                .collect();
            reward_seconds += started.elapsed().as_secs_f64();
            aggregation_reward = Some(mean(&agg_rewards));
            let per_problem = a.k * a.n2;
            for (p, problem_sets) in sets.iter().enumerate() {
                let problem_agg = &agg_rewards[p * per_problem..(p + 1) * per_problem];
                let (search_adv, agg_adv) = if a.name == Algorithm::Spiral {
                    let set_rewards: Vec<&[f64]> = problem_agg.chunks(a.n2).collect();
                    let spiral = SpiralConfig { normalize_std: a.normalize_std };
                    let adv = spiral_advantages(a.n1, problem_sets, &set_rewards, &spiral)?;
                    // Traces in no set carry no gradient (their advantage is exactly 0).
                    (adv.search_advantages, adv.aggregation_advantages.concat())
                } else {
                    let search = &rewards[p * a.n1..(p + 1) * a.n1];
                    (
                        pass_at_k_advantages(search, a.n, a.normalize_std)?,
                        dr_grpo_advantages(problem_agg)?,
                    )
                };
                zero_signal += usize::from(search_adv.iter().chain(&agg_adv).all(|&x| x == 0.0));
                for (i, &sa) in search_adv.iter().enumerate() {
                    if sa != 0.0 {
                        batch.push(sequence(
                            &search_prompts[p],
                            &search.samples[p * a.n1 + i],
                            sa,
                            a.search_weight,
                        ));
                    }
                }
                for (j, &aa) in agg_adv.iter().enumerate() {
                    if aa != 0.0 {
                        batch.push(sequence(
                            &agg_prompts[p * a.k + j / a.n2],
                            &aggs.samples[p * per_problem + j],
                            aa,
                            a.aggregation_weight,
                        ));
                    }
                }
            }
        }
    }
    let started = Instant::now();
    if let Some(reference) = reference {
        add_reference_logprobs(reference, &mut batch, config.train.micro_batch)?;
    }
    let reference_seconds = started.elapsed().as_secs_f64();
    let mean_abs_advantage = if batch.is_empty() {
        0.0
    } else {
        batch.iter().map(|s| s.advantage.abs()).sum::<f64>() / batch.len() as f64
    };
    Ok(Collected {
        batch,
        search_reward,
        aggregation_reward,
        mean_abs_advantage,
        zero_signal_fraction: zero_signal as f64 / problems.len() as f64,
        generated_tokens: generated,
        rollout_seconds,
        reward_seconds,
        reference_seconds,
    })
}

/// Scores every sequence's completion under `reference`: the batch is split into one piece per
/// core (as the learner splits it; [`shard_count`]), each scored `chunk` sequences per forward
/// pass. A sequence's scores do not depend on the others in its pass (right padding).
fn add_reference_logprobs<B: Backend>(
    reference: &CausalLm<B>,
    batch: &mut [TrainSequence],
    chunk: usize,
) -> anyhow::Result<()> {
    let shards = shard_count::<B>(0).clamp(1, batch.len().max(1));
    let pieces: Vec<&mut [TrainSequence]> =
        batch.chunks_mut(batch.len().div_ceil(shards).max(1)).collect();
    let results = map_concurrently(pieces, |piece| -> anyhow::Result<()> {
        for part in piece.chunks_mut(chunk.max(1)) {
            let tokens: Vec<Vec<u32>> = part.iter().map(|s| s.tokens.clone()).collect();
            let starts: Vec<usize> = part.iter().map(|s| s.prompt_len).collect();
            let scores = reference.token_logprobs(&tokens, &starts, false)?.logprobs;
            let [_, t] = scores.dims();
            let rows: Vec<f32> = scores.into_data().convert::<f32>().into_vec().expect("f32 data");
            for (i, s) in part.iter_mut().enumerate() {
                let at = i * t + s.prompt_len - 1;
                s.ref_logprobs = Some(rows[at..at + s.tokens.len() - s.prompt_len].to_vec());
            }
        }
        Ok(())
    });
    results.into_iter().collect()
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() { 0.0 } else { xs.iter().sum::<f64>() / xs.len() as f64 }
}
