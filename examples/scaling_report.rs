//! `spiral-eval`'s metrics and reports on synthetic samples: pass@k and maj@k with bootstrap
//! intervals for two simulated models, the scaling efficiency of one over the other, RSA curves
//! (from a mock aggregator), and a markdown report with PNG and SVG plots.
//!
//! `cargo run --release -p spiral-examples --example scaling_report [OUT_DIR]`
//! (default `target/scaling-report`).

use std::path::PathBuf;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use spiral_aggregation::{
    AggregationConfig, AggregationPrompt, BoxError, Generation, PromptBuilder, RsaConfig,
    RsaDriver, RsaInput, RsaRun,
};
use spiral_eval::{
    BootstrapOptions, Figure, MajorityOptions, PasskOptions, ProblemSamples, Report, SampleSet,
    Scale, Section, Table, git_commit, maj_at_k_curve, max_scaling_efficiency, pass_at_k_curve,
    rsa_curves, summarize_samples,
};
use spiral_rewards::{MathProblem, MathReward};

fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("target/scaling-report"), PathBuf::from);
    let ks = [1, 2, 4, 8, 16, 32];
    let bootstrap = BootstrapOptions::default();
    let majority = MajorityOptions::default();

    // 200 problems, 32 samples each. The "model" is right more often on every problem.
    let baseline = simulate(200, 32, 0.0, 7);
    let model = simulate(200, 32, 0.8, 7);
    let options = PasskOptions { ks: ks.to_vec(), bootstrap, majority };
    println!("baseline: {}\n", summarize_samples(&baseline, &options)?);
    println!("model: {}\n", summarize_samples(&model, &options)?);

    let curves = vec![
        pass_at_k_curve("baseline pass@k", &baseline.problems, &ks, &bootstrap)?,
        maj_at_k_curve("baseline maj@k", &baseline.problems, &ks, &bootstrap, &majority)?,
        pass_at_k_curve("model pass@k", &model.problems, &ks, &bootstrap)?,
        maj_at_k_curve("model maj@k", &model.problems, &ks, &bootstrap, &majority)?,
    ];
    let efficiency = max_scaling_efficiency(&curves[1], &curves[3], "samples")?;
    if let Some(e) = &efficiency {
        println!("model over baseline, maj@k: {e}\n");
    }

    // RSA on the model's first 16 samples per problem, with a mock aggregator that answers
    // right with a probability that grows with the share of right candidates it is shown.
    let rsa = mock_rsa(&model)?;
    let rsa_lines = rsa_curves(&rsa, &bootstrap).to_vec();
    let rsa_section = Section {
        heading: "Recursive self-aggregation".into(),
        text: "16 traces per problem, sets of K = 4, a mock aggregator.".into(),
        table: Some(Table::from_curves("round", &rsa_lines)),
        figures: vec![Figure {
            name: "rsa".into(),
            title: "Recursive self-aggregation".into(),
            x_label: "aggregation round".into(),
            y_label: "accuracy".into(),
            x_scale: Scale::Linear,
            curves: rsa_lines,
        }],
        ..Section::default()
    };
    let report = Report {
        title: "Parallel scaling on synthetic samples".into(),
        commit: git_commit(std::path::Path::new(".")),
        command: Some(std::env::args().collect::<Vec<_>>().join(" ")),
        config: Some(format!(
            "problems = 200\nsamples = 32\nks = {ks:?}\nbootstrap = {bootstrap:?}"
        )),
        sections: vec![
            Section {
                heading: "pass@k and maj@k".into(),
                text: "Unbiased pass@k and maj@k (expected over k-subsets) with 95% bootstrap \
                       intervals over problems."
                    .into(),
                table: Some(Table::from_curves("k", &curves)),
                efficiencies: efficiency
                    .into_iter()
                    .map(|e| ("model vs baseline, maj@k".to_owned(), e))
                    .collect(),
                figures: vec![Figure {
                    name: "parallel".into(),
                    title: "Parallel scaling".into(),
                    x_label: "samples k".into(),
                    y_label: "accuracy".into(),
                    x_scale: Scale::Log2,
                    curves,
                }],
            },
            rsa_section,
        ],
    };
    let path = report.write(&out)?;
    println!("wrote {} and {}/{{parallel,rsa}}.{{png,svg}}", path.display(), out.display());
    Ok(())
}

/// Samples of a simulated model: problem i has a latent difficulty, and the model answers right
/// with probability `sigmoid(skill - difficulty)`; wrong answers spread over three distractors,
/// one of them more likely, so majority vote has something to get wrong.
fn simulate(problems: usize, samples: usize, skill: f64, seed: u64) -> SampleSet {
    let mut difficulty_rng = StdRng::seed_from_u64(seed);
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(skill.to_bits()));
    let problems = (0..problems)
        .map(|i| {
            let difficulty: f64 = difficulty_rng.random_range(-2.5..3.5);
            let p = 1.0 / (1.0 + (difficulty - skill).exp());
            let (mut correct, mut answers) = (Vec::new(), Vec::new());
            for _ in 0..samples {
                let right = rng.random_bool(p);
                let answer =
                    if right { "42" } else { ["41", "43", "40"][rng.random_range(0..4).min(2)] };
                correct.push(right);
                answers.push(Some(answer.to_owned()));
            }
            ProblemSamples { id: format!("p{i}"), correct, answers }
        })
        .collect();
    SampleSet { problems, has_answers: true }
}

/// Three RSA rounds over the first 16 samples of each problem (reference answer 42).
fn mock_rsa(samples: &SampleSet) -> anyhow::Result<RsaRun> {
    let problem = MathProblem::new("q", "42");
    let inputs: Vec<RsaInput<'_, MathProblem>> = samples
        .problems
        .iter()
        .map(|p| {
            let population = p.answers[..16]
                .iter()
                .map(|a| Generation {
                    text: format!("\\boxed{{{}}}", a.as_deref().unwrap_or("")),
                    tokens: 50,
                })
                .collect();
            RsaInput { question: "q", problem: &problem, population }
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(3);
    let mut aggregator = |prompts: &[AggregationPrompt]| -> Result<Vec<Generation>, BoxError> {
        Ok(prompts
            .iter()
            .map(|p| {
                // The share of the four candidates shown that say 42.
                let right = p.text.matches("\\boxed{42}").count() as f64 / 4.0;
                let answer = if rng.random_bool((0.15 + right).min(1.0)) { "42" } else { "40" };
                Generation { text: format!("\\boxed{{{answer}}}"), tokens: 30 }
            })
            .collect())
    };
    let builder = PromptBuilder::new(AggregationConfig::default())?;
    let count = |s: &str| s.split_whitespace().count();
    let driver =
        RsaDriver::new(RsaConfig { rounds: 3, k: 4, ..RsaConfig::default() }, &builder, &count)?;
    Ok(driver.run(&inputs, &MathReward::default(), &mut aggregator)?)
}
