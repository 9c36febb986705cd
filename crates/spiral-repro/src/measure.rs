//! What the reproduction measures on one trained model, on the held-out problems (SPIRAL paper,
//! Ibn Hamid et al., 2026, Sections 5.1-5.4), with `spiral-eval`'s estimators:
//!
//! - **pass@k** for k = 1, 2, 4, ..., `k_max` from `k_max` independent traces per problem
//!   (unbiased estimator), and maj@k from the same traces;
//! - **parallel scaling** up to `n_max` traces: majority vote (maj@N) against model aggregation
//!   over the N traces (agg@1, the mean of `aggregations` aggregation traces), also against
//!   generated tokens per problem;
//! - **sequential scaling**: one trace per problem under each max-new-tokens budget;
//! - **RSA**: pass@1 of the population after each of `rsa_rounds` rounds of recursive
//!   self-aggregation (population `rsa_population`, K = `rsa_k`);
//! - per problem, at the study's primary budget of `pipeline_n` traces plus one aggregation:
//!   agg@1 over `pipeline_n`, maj@(`pipeline_n` + 1) and pass@1 ([`crate::primary`]).

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};
use spiral_aggregation::RsaConfig;
use spiral_eval::ProblemSamples;
use spiral_eval::{
    BootstrapOptions, ChatMode, Curve, CurvePoint, DatasetProblem, MajorityOptions, ModelSampler,
    RsaOptions, SamplerSettings, ScalingOptions, maj_at_k_curve, maj_at_k_per_problem,
    pass_at_k_curve, pass_at_k_per_problem, rsa_curves, rsa_token_curve, run_rsa, run_scaling,
    sample_problems,
};

use crate::primary::PerProblem;
use spiral_model::{CausalLm, TextTokenizer};
use spiral_rewards::PromptStyle;
use spiral_rollout::SamplingParams;

/// How much to measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasureOptions {
    /// Largest k of pass@k (traces sampled per problem).
    pub k_max: usize,
    /// Largest N of the majority-vote against aggregation comparison.
    pub n_max: usize,
    /// Aggregation traces per problem and N; agg@1 is their mean.
    pub aggregations: usize,
    /// Max-new-tokens budgets of the sequential curve.
    pub budgets: Vec<usize>,
    /// RSA population N.
    pub rsa_population: usize,
    /// RSA set size K.
    pub rsa_k: usize,
    /// RSA rounds (round 0 is the initial population).
    pub rsa_rounds: usize,
    /// Longest trace (the runs' `rollout.max_new_tokens`).
    pub max_new_tokens: usize,
    /// Sampling temperature (the runs' `rollout.temperature`).
    pub temperature: f64,
    /// Seed of every sample; the same for every model, so models see the same draws.
    pub seed: u64,
    /// Search traces per aggregation at the primary budget (the trained set size n).
    #[serde(default = "four")]
    pub pipeline_n: usize,
}

fn four() -> usize {
    4
}

/// One model's curves (every `y` is a mean over problems with a bootstrap interval).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCurves {
    /// pass@k against k.
    pub pass_at_k: Curve,
    /// maj@k against k.
    pub maj_at_k: Curve,
    /// maj@N against N (parallel scaling with rule-based aggregation).
    pub parallel_majority: Curve,
    /// agg@1 against N (parallel scaling with model aggregation).
    pub parallel_aggregation: Curve,
    /// maj@N against mean generated tokens per problem.
    pub tokens_majority: Curve,
    /// agg@1 against mean generated tokens per problem (search traces plus the aggregation).
    pub tokens_aggregation: Curve,
    /// Accuracy of one trace against its max-new-tokens budget.
    pub sequential: Curve,
    /// RSA pass@1 against the round.
    pub rsa_pass_at_1: Curve,
    /// Per-problem results at the primary budget, when `n_max` and `k_max` reach it.
    #[serde(default)]
    pub per_problem: Option<PerProblem>,
    /// RSA pass@1 after each round against the tokens generated per problem up to it (the
    /// initial population and every aggregation trace); `None` in older measurements.
    #[serde(default)]
    pub tokens_rsa: Option<Curve>,
}

/// Picks one curve out of a model's measurements.
pub type Pick = fn(&ModelCurves) -> &Curve;

/// Measures `model` on `problems` (module docs).
pub fn measure<B: Backend>(
    model: &CausalLm<B>,
    tokenizer: &TextTokenizer,
    problems: &[DatasetProblem],
    options: &MeasureOptions,
) -> anyhow::Result<ModelCurves> {
    let style = PromptStyle::Compact;
    let settings = SamplerSettings {
        sampling: SamplingParams {
            temperature: options.temperature,
            seed: options.seed,
            ..Default::default()
        },
        max_new_tokens: options.max_new_tokens,
        chat: ChatMode::Off,
    };
    let sampler = ModelSampler::new(model, tokenizer, &settings)?;
    let bootstrap = BootstrapOptions::default();
    // Each part takes minutes to hours on a CPU: say which is running, and how long each took.
    let started = std::time::Instant::now();
    let step = |what: &str| eprintln!("   {what} ({:.0} s in)", started.elapsed().as_secs_f64());
    step(&format!("pass@k: {} traces for each of {} problems", options.k_max, problems.len()));

    let mut samples = Vec::with_capacity(problems.len());
    sample_problems(&sampler, problems, options.k_max, style, |records| {
        samples.push(ProblemSamples {
            id: records.first().map(|r| r.problem_id.clone()).unwrap_or_default(),
            correct: records.iter().map(|r| r.reward >= 1.0).collect(),
            answers: records.iter().map(|r| r.answer.clone()).collect(),
        });
        Ok::<_, spiral_eval::EvalError>(())
    })?;
    let ks = powers_of_two_up_to(options.k_max);
    let pass_at_k = pass_at_k_curve("pass@k", &samples, &ks, &bootstrap)?;
    let maj_at_k = maj_at_k_curve("maj@k", &samples, &ks, &bootstrap, &MajorityOptions::default())?;

    let scaling_options = ScalingOptions {
        n_max: options.n_max,
        aggregations: options.aggregations,
        budgets: options.budgets.clone(),
        style,
    };
    step(&format!("parallel and sequential scaling, N up to {}", options.n_max));
    let scaling = run_scaling("model", model, tokenizer, &settings, problems, &scaling_options)?;

    let rsa_options = RsaOptions {
        population: options.rsa_population,
        rsa: RsaConfig {
            rounds: options.rsa_rounds,
            k: options.rsa_k,
            seed: options.seed,
            ..Default::default()
        },
        style,
    };
    step(&format!("RSA: population {}, {} rounds", options.rsa_population, options.rsa_rounds));
    let rsa = run_rsa(&sampler, problems, &rsa_options)?;
    step("done");
    let [rsa_pass_at_1, _, _] = rsa_curves(&rsa.run, &bootstrap);
    let spent = rsa_token_curve("RSA", &rsa.run);
    let tokens_rsa = Curve {
        label: "RSA".into(),
        points: spent
            .points
            .iter()
            .zip(&rsa_pass_at_1.points)
            .map(|(spent, round)| CurvePoint { x: spent.x, ..*round })
            .collect(),
    };

    let n = options.pipeline_n;
    let at_n = scaling_options.ns().iter().position(|&x| x == n);
    let per_problem = match at_n {
        Some(i) if options.k_max > n => Some(PerProblem {
            n,
            agg_at_n: scaling.agg_per_problem[i].clone(),
            maj_at_n_plus_1: maj_at_k_per_problem(&samples, n + 1, &MajorityOptions::default())?,
            pass_at_1: pass_at_k_per_problem(&samples, 1)?,
        }),
        _ => None,
    };

    Ok(ModelCurves {
        pass_at_k,
        maj_at_k,
        parallel_majority: scaling.maj,
        parallel_aggregation: scaling.agg,
        tokens_majority: scaling.maj_tokens,
        tokens_aggregation: scaling.agg_tokens,
        sequential: scaling.sequential,
        rsa_pass_at_1,
        per_problem,
        tokens_rsa: Some(tokens_rsa),
    })
}

/// 1, 2, 4, ... below `max`, then `max`.
pub fn powers_of_two_up_to(max: usize) -> Vec<usize> {
    let mut ks: Vec<usize> = std::iter::successors(Some(1usize), |k| k.checked_mul(2))
        .take_while(|&k| k < max)
        .collect();
    ks.push(max);
    ks
}
