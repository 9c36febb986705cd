//! Evaluation on held-out problems, the numbers SPIRAL is judged by: `pass@1` (mean accuracy
//! of single search traces), `pass@k` (unbiased, Chen et al. 2021), `maj@n` (majority vote over
//! the n traces' answers) and `agg@1` (accuracy of one aggregation trace that reads the same n
//! traces).

use burn::tensor::backend::Backend;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use spiral_aggregation::majority_vote;
use spiral_model::CausalLm;
use spiral_rewards::{CountdownProblem, extract_answer};
use spiral_rollout::{RolloutEngine, RolloutRequest, SamplingParams};
use spiral_set_rl::pass_at_k;

use crate::config::RunConfig;
use crate::task::{TaskData, reward, search_prompt};

/// One evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvalMetrics {
    /// Mean accuracy of single search traces.
    #[serde(rename = "pass@1")]
    pub pass_at_1: f64,
    /// Unbiased pass@k for k = 2, 4, ... up to n.
    pub pass_at_k: Vec<(usize, f64)>,
    /// Accuracy of the majority answer of the n traces.
    #[serde(rename = "maj@n")]
    pub maj_at_n: f64,
    /// Accuracy of one aggregation over the n traces.
    #[serde(rename = "agg@1")]
    pub agg_at_1: f64,
    /// Problems evaluated.
    pub problems: usize,
    /// Traces per problem.
    pub n: usize,
}

/// Evaluates `model` on the first `eval.problems` test problems.
pub fn evaluate<B: Backend>(
    model: &CausalLm<B>,
    data: &TaskData,
    config: &RunConfig,
    seed: u64,
) -> anyhow::Result<EvalMetrics> {
    let n = config.eval.n;
    let problems: Vec<&CountdownProblem> = data.test.iter().take(config.eval.problems).collect();
    let engine = RolloutEngine::default();
    let (sampling, stop) = data.rollout_settings(&config.rollout, seed);
    let prompts = problems.iter().map(|p| data.encode(&search_prompt(p))).collect();
    let search = engine.generate(
        model,
        None,
        &RolloutRequest { prompts, n, sampling, stop: stop.clone(), max_total_tokens: None },
    )?;
    let texts: Vec<String> = search.samples.iter().map(|s| data.decode(&s.tokens)).collect();
    let correct: Vec<f64> = search
        .samples
        .iter()
        .zip(&texts)
        .map(|(s, t)| reward(problems[s.prompt_index], t))
        .collect();

    let mut rng = StdRng::seed_from_u64(seed);
    let mut maj = 0.0;
    let mut pass_k: Vec<(usize, f64)> = (1..=n.ilog2()).map(|e| (1usize << e, 0.0)).collect();
    let mut agg_prompts = Vec::with_capacity(problems.len());
    for (p, problem) in problems.iter().enumerate() {
        let group = &texts[p * n..(p + 1) * n];
        let c = correct[p * n..(p + 1) * n].iter().filter(|&&r| r > 0.0).count();
        for (k, total) in &mut pass_k {
            *total += pass_at_k(n, c, *k)?;
        }
        let answers: Vec<Option<&str>> = group.iter().map(|t| extract_answer(t)).collect();
        if let Some(vote) = majority_vote(&answers, &mut rng) {
            maj += correct[p * n + vote.winner];
        }
        agg_prompts.push(data.encode(&data.aggregation_prompt(problem, group, &mut rng)));
    }
    let agg_sampling = SamplingParams { seed: seed ^ 0xA66, ..sampling };
    let aggs = engine.generate(
        model,
        None,
        &RolloutRequest {
            prompts: agg_prompts,
            n: 1,
            sampling: agg_sampling,
            stop,
            max_total_tokens: None,
        },
    )?;
    let agg: f64 = aggs
        .samples
        .iter()
        .map(|s| reward(problems[s.prompt_index], &data.decode(&s.tokens)))
        .sum();
    let count = problems.len().max(1) as f64;
    Ok(EvalMetrics {
        pass_at_1: correct.iter().sum::<f64>() / (count * n as f64),
        pass_at_k: pass_k.into_iter().map(|(k, t)| (k, t / count)).collect(),
        maj_at_n: maj / count,
        agg_at_1: agg / count,
        problems: problems.len(),
        n,
    })
}
