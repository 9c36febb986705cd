//! Measuring scaling curves with a checkpoint: the library side of `spiral-eval scaling`.
//!
//! - **Parallel**: `n_max` traces per problem, sampled once (as [`sample_problems`] does). For
//!   N = 1, 2, 4, ..., n_max: pass@N and maj@N (the unbiased estimators over all `n_max` traces)
//!   and agg@1, the mean reward of `aggregations` aggregation traces over the problem's first N
//!   traces, each over its own shuffle of them (one batched engine call per N through an
//!   [`EngineAggregator`]).
//! - **Token efficiency**: maj@N and agg@1 against the generated tokens spent per problem (mean
//!   over problems): the first N traces' tokens, plus the aggregation trace's for agg@1.
//! - **Sequential**: the mean reward of one trace per problem under each max-new-tokens budget
//!   (one engine run per budget, seeded like the parallel run).
//!
//! [`scaling_efficiencies`] compares two models' curves with [`max_scaling_efficiency`].

use burn::tensor::backend::Backend;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use spiral_aggregation::{AggregationConfig, Aggregator, PromptBuilder};
use spiral_model::{CausalLm, TextTokenizer};
use spiral_rewards::{PromptStyle, Reward, TaskReward};
use spiral_rollout::stream_seed;
use spiral_set_rl::mean;

use crate::error::EvalError;
use crate::generation::{
    DatasetProblem, EngineAggregator, ModelSampler, SampleRecord, SamplerSettings, purpose,
    sample_problems,
};
use crate::metrics::bootstrap::{BootstrapOptions, bootstrap_mean_ci};
use crate::metrics::majority::MajorityOptions;
use crate::metrics::samples::ProblemSamples;
use crate::report::{Figure, Report, Scale, Section, Table};
use crate::scaling::{
    Curve, CurvePoint, Efficiency, SCALING_EFFICIENCY_DEFINITION, maj_at_k_curve,
    max_scaling_efficiency, pass_at_k_curve,
};

/// What to measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalingOptions {
    /// Traces per problem for the parallel curves (N runs over 1, 2, 4, ... up to it).
    pub n_max: usize,
    /// Aggregation traces per problem and N, each over its own shuffle of the same N traces;
    /// agg@1 is their mean reward (more than one narrows agg@1's interval).
    pub aggregations: usize,
    /// Max-new-tokens budgets of the sequential curve.
    pub budgets: Vec<usize>,
    /// How problems are worded; `compact` also picks the compact aggregation wording.
    pub style: PromptStyle,
}

impl ScalingOptions {
    /// N = 1, 2, 4, ... below `n_max`, then `n_max`.
    pub fn ns(&self) -> Vec<usize> {
        let mut ns: Vec<usize> = std::iter::successors(Some(1usize), |n| n.checked_mul(2))
            .take_while(|&n| n < self.n_max)
            .collect();
        ns.push(self.n_max);
        ns
    }

    /// The budgets sorted, without repeats.
    pub fn sorted_budgets(&self) -> Vec<usize> {
        let mut budgets = self.budgets.clone();
        budgets.sort_unstable();
        budgets.dedup();
        budgets
    }

    fn check(&self) -> Result<(), EvalError> {
        if self.n_max == 0 {
            return Err(EvalError::Settings("n_max must be at least 1".into()));
        }
        if self.aggregations == 0 {
            return Err(EvalError::Settings("aggregations must be at least 1".into()));
        }
        if self.budgets.is_empty() || self.budgets.contains(&0) {
            return Err(EvalError::Settings(
                "budgets must be a non-empty list of positive token counts".into(),
            ));
        }
        Ok(())
    }
}

/// One model's scaling curves.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelScaling {
    /// The model's name in legends.
    pub label: String,
    /// pass@N against N.
    pub pass: Curve,
    /// maj@N against N.
    pub maj: Curve,
    /// agg@1 (one aggregation trace over the first N traces) against N.
    pub agg: Curve,
    /// maj@N against generated tokens per problem.
    pub maj_tokens: Curve,
    /// agg@1 against generated tokens per problem, the aggregation trace included.
    pub agg_tokens: Curve,
    /// Mean reward of one trace against its max-new-tokens budget.
    pub sequential: Curve,
    /// The aggregation prompts' config, with the token budget that was used.
    pub aggregation: AggregationConfig,
    /// Prompts per aggregation engine call (one call per N).
    pub aggregation_calls: Vec<usize>,
    /// Per N (in the order of [`ScalingOptions::ns`]): mean generated tokens per problem of the
    /// first N traces, and with the aggregation trace.
    pub tokens: Vec<(f64, f64)>,
    /// Per N (in the order of [`ScalingOptions::ns`]): each problem's agg@1, for comparisons
    /// paired by problem.
    pub agg_per_problem: Vec<Vec<f64>>,
}

/// Measures `model`'s curves on `problems` (module docs). `settings.max_new_tokens` bounds the
/// parallel and aggregation traces; the sequential runs replace it by each budget.
pub fn run_scaling<B: Backend>(
    label: impl Into<String>,
    model: &CausalLm<B>,
    tokenizer: &TextTokenizer,
    settings: &SamplerSettings,
    problems: &[DatasetProblem],
    options: &ScalingOptions,
) -> Result<ModelScaling, EvalError> {
    options.check()?;
    let label = label.into();
    let bootstrap = BootstrapOptions::default();
    let sampler = ModelSampler::new(model, tokenizer, settings)?;
    let mut traces: Vec<Vec<SampleRecord>> = Vec::with_capacity(problems.len());
    sample_problems(&sampler, problems, options.n_max, options.style, |records| {
        traces.push(records);
        Ok::<_, EvalError>(())
    })?;
    let samples: Vec<ProblemSamples> = problems
        .iter()
        .zip(&traces)
        .map(|(p, records)| ProblemSamples {
            id: p.id.clone(),
            correct: records.iter().map(|r| r.reward >= 1.0).collect(),
            answers: records.iter().map(|r| r.answer.clone()).collect(),
        })
        .collect();
    let ns = options.ns();
    let pass = pass_at_k_curve("pass@N", &samples, &ns, &bootstrap)?;
    let maj = maj_at_k_curve("maj@N", &samples, &ns, &bootstrap, &MajorityOptions::default())?;

    // Aggregation: one trace per problem over its first N traces, one engine call per N.
    let aggregation = sampler.aggregation_config(options.style)?;
    let builder = PromptBuilder::new(aggregation.clone())?;
    let counter = |s: &str| sampler.count_tokens(s);
    let reward = TaskReward::default();
    let mut aggregator = EngineAggregator::new(&sampler);
    let (mut agg, mut maj_tokens, mut agg_tokens) = (Vec::new(), Vec::new(), Vec::new());
    let mut tokens = Vec::new();
    let mut agg_per_problem = Vec::with_capacity(ns.len());
    for &n in &ns {
        let mut rng = StdRng::seed_from_u64(stream_seed(
            settings.sampling.seed,
            purpose::AGGREGATION_SHUFFLE,
            n as u64,
        ));
        // `aggregations` prompts per problem, consecutive, each with its own candidate order.
        let a = options.aggregations;
        let mut prompts = Vec::with_capacity(problems.len() * a);
        for (p, records) in problems.iter().zip(&traces) {
            let texts: Vec<&str> = records[..n].iter().map(|r| r.response.as_str()).collect();
            for _ in 0..a {
                prompts.push(builder.build(
                    &p.problem.prompt(options.style),
                    &texts,
                    &counter,
                    &mut rng,
                )?);
            }
        }
        let generations = aggregator
            .generate(&prompts)
            .map_err(|e| EvalError::Settings(format!("aggregation failed: {e}")))?;
        let per_problem: Vec<&[_]> = generations.chunks(a).collect();
        let rewards: Vec<f64> = problems
            .iter()
            .zip(&per_problem)
            .map(|(p, gs)| {
                gs.iter().map(|g| reward.score(&p.problem, &g.text).reward).sum::<f64>() / a as f64
            })
            .collect();
        let search: Vec<f64> = traces
            .iter()
            .map(|records| records[..n].iter().map(|r| r.tokens as f64).sum())
            .collect();
        // Tokens of the search traces plus one (the mean) aggregation trace.
        let total: Vec<f64> = search
            .iter()
            .zip(&per_problem)
            .map(|(s, gs)| s + gs.iter().map(|g| g.tokens as f64).sum::<f64>() / a as f64)
            .collect();
        let point = CurvePoint {
            x: n as f64,
            y: mean(&rewards),
            ci: Some(bootstrap_mean_ci(&rewards, &bootstrap)),
        };
        agg.push(point);
        agg_per_problem.push(rewards.clone());
        let maj_point = maj.points[agg.len() - 1];
        maj_tokens.push(CurvePoint { x: mean(&search), ..maj_point });
        agg_tokens.push(CurvePoint { x: mean(&total), ..point });
        tokens.push((mean(&search), mean(&total)));
    }

    // Sequential: one trace per problem under each budget.
    let mut sequential = Vec::new();
    for budget in options.sorted_budgets() {
        let settings = SamplerSettings { max_new_tokens: budget, ..settings.clone() };
        let sampler = ModelSampler::new(model, tokenizer, &settings)?;
        let mut rewards = Vec::with_capacity(problems.len());
        sample_problems(&sampler, problems, 1, options.style, |records| {
            rewards.extend(records.iter().map(|r| r.reward));
            Ok::<_, EvalError>(())
        })?;
        let ci = Some(bootstrap_mean_ci(&rewards, &bootstrap));
        sequential.push(CurvePoint { x: budget as f64, y: mean(&rewards), ci });
    }

    Ok(ModelScaling {
        label,
        pass,
        maj,
        agg: Curve { label: "agg@1".into(), points: agg },
        maj_tokens: by_compute("maj@N", maj_tokens),
        agg_tokens: by_compute("agg@1", agg_tokens),
        sequential: Curve { label: "accuracy".into(), points: sequential },
        aggregation,
        aggregation_calls: aggregator.calls,
        tokens,
        agg_per_problem,
    })
}

/// A curve with its points sorted by compute; of points with equal compute the most accurate is
/// kept (token counts need not grow with N when aggregation traces shorten).
fn by_compute(label: &str, mut points: Vec<CurvePoint>) -> Curve {
    points.sort_by(|a, b| a.x.total_cmp(&b.x).then(b.y.total_cmp(&a.y)));
    points.dedup_by(|later, kept| later.x == kept.x);
    Curve { label: label.into(), points }
}

impl ModelScaling {
    /// The curves compared by [`scaling_efficiencies`]: name, unit, curve.
    pub fn compared(&self) -> [(&'static str, &'static str, &Curve); 5] {
        [
            ("parallel maj@N", "samples", &self.maj),
            ("parallel agg@1", "samples", &self.agg),
            ("token-efficiency maj@N", "tokens", &self.maj_tokens),
            ("token-efficiency agg@1", "tokens", &self.agg_tokens),
            ("sequential", "tokens", &self.sequential),
        ]
    }

    /// All curves as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "label": self.label,
            "parallel": { "pass@N": self.pass, "maj@N": self.maj, "agg@1": self.agg },
            "tokens": { "maj@N": self.maj_tokens, "agg@1": self.agg_tokens },
            "sequential": self.sequential,
            "aggregation_calls": self.aggregation_calls,
            "tokens_per_n": self.tokens,
        })
    }

    fn labelled(&self, curve: &Curve) -> Curve {
        Curve { label: format!("{} {}", self.label, curve.label), ..curve.clone() }
    }
}

/// One comparison of a model with a baseline on one kind of curve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// What is compared, e.g. `parallel maj@N`.
    pub curve: String,
    /// The compute unit.
    pub unit: String,
    /// The largest scaling efficiency; `None` when the curves share no accuracy.
    pub efficiency: Option<Efficiency>,
    /// The efficiency with its definition, or why there is none.
    pub text: String,
}

/// The largest scaling efficiency of `model` over `baseline` on each compared curve
/// ([`ModelScaling::compared`]), each displayed with [`SCALING_EFFICIENCY_DEFINITION`].
pub fn scaling_efficiencies(baseline: &ModelScaling, model: &ModelScaling) -> Vec<Comparison> {
    baseline
        .compared()
        .into_iter()
        .zip(model.compared())
        .map(|((curve, unit, b), (_, _, m))| {
            let (efficiency, text) = match max_scaling_efficiency(b, m, unit) {
                Ok(Some(e)) => {
                    let text = e.to_string();
                    (Some(e), text)
                }
                Ok(None) => (
                    None,
                    format!("none: the curves share no accuracy ({SCALING_EFFICIENCY_DEFINITION})"),
                ),
                Err(e) => (None, format!("none: {e} ({SCALING_EFFICIENCY_DEFINITION})")),
            };
            Comparison { curve: curve.into(), unit: unit.into(), efficiency, text }
        })
        .collect()
}

/// A report of the curves (each model's, side by side) and, with a baseline, the efficiencies.
pub fn scaling_report(
    models: &[&ModelScaling],
    comparisons: &[Comparison],
    title: impl Into<String>,
    config: String,
    command: Option<String>,
    commit: Option<String>,
) -> Report {
    let all = |f: &dyn Fn(&ModelScaling) -> Vec<&Curve>| -> Vec<Curve> {
        models
            .iter()
            .flat_map(|m| f(m).into_iter().map(|c| m.labelled(c)).collect::<Vec<_>>())
            .collect()
    };
    let figure = |name: &str, title: &str, x_label: &str, curves: Vec<Curve>| Figure {
        name: name.into(),
        title: title.into(),
        x_label: x_label.into(),
        y_label: "accuracy (mean over problems)".into(),
        x_scale: Scale::Log2,
        curves,
    };
    let parallel = all(&|m| vec![&m.pass, &m.maj, &m.agg]);
    let tokens = all(&|m| vec![&m.maj_tokens, &m.agg_tokens]);
    let sequential = all(&|m| vec![&m.sequential]);
    let mut sections = vec![
        Section {
            heading: "Parallel scaling".into(),
            text: "pass@N and maj@N are unbiased estimates over all sampled traces; agg@1 is the \
                   reward of one aggregation trace over the first N traces. Intervals are 95% \
                   percentile bootstrap over problems."
                .into(),
            table: Some(Table::from_curves("N", &parallel)),
            figures: vec![figure("parallel", "Parallel scaling", "traces per problem N", parallel)],
            ..Default::default()
        },
        Section {
            heading: "Token efficiency".into(),
            text: "Accuracy against generated tokens per problem (mean): the first N traces, plus \
                   the aggregation trace for agg@1."
                .into(),
            figures: vec![figure(
                "tokens",
                "Token efficiency",
                "generated tokens per problem",
                tokens,
            )],
            ..Default::default()
        },
        Section {
            heading: "Sequential scaling".into(),
            text: "Mean reward of one trace per problem under a max-new-tokens budget.".into(),
            table: Some(Table::from_curves("max new tokens", &sequential)),
            figures: vec![figure(
                "sequential",
                "Sequential scaling",
                "max new tokens per trace",
                sequential,
            )],
            ..Default::default()
        },
    ];
    if !comparisons.is_empty() {
        let text =
            comparisons.iter().map(|c| format!("- {}: {}\n", c.curve, c.text)).collect::<String>();
        let efficiencies = comparisons
            .iter()
            .filter_map(|c| Some((c.curve.clone(), c.efficiency.clone()?)))
            .collect();
        sections.push(Section {
            heading: "Scaling efficiency".into(),
            text,
            efficiencies,
            ..Default::default()
        });
    }
    Report { title: title.into(), commit, command, config: Some(config), sections }
}
