//! The reproduction's report: per algorithm, the mean over seeds of every curve with its 95%
//! interval, as tables and PNG/SVG figures; SPIRAL's scaling efficiency over GRPO; a headline
//! that states SPIRAL minus GRPO with the intervals, whichever way it points; the resolved config
//! of each algorithm and every measured number (`results.json`).

use std::fmt::Write;
use std::path::{Path, PathBuf};

use spiral_eval::{
    Curve, Efficiency, Figure, Report, SCALING_EFFICIENCY_DEFINITION, Scale, Section, Table,
    max_scaling_efficiency,
};

use super::envelope;
use super::measure::{ModelCurves, Pick};
use super::paired::{self, PrimaryComparison};
use super::primary;
use super::summary::mean_curve;
use super::training;
use super::{Measured, ReproOptions, VARIANTS};
use spiral_train::{RunConfig, checkout_commit};

/// One curve of every algorithm (and the warm start), reduced over seeds.
struct Compared {
    curves: Vec<Curve>,
}

fn compare(measured: &[Measured], pick: Pick) -> Compared {
    let mut curves = Vec::new();
    if let Some(w) = measured.iter().find(|m| m.variant.is_none()) {
        curves.push(Curve { label: "warm start".into(), ..pick(&w.curves).clone() });
    }
    for setting in VARIANTS {
        let seeds: Vec<&Curve> =
            Measured::of_setting(measured, setting.stem).map(|m| pick(&m.curves)).collect();
        if !seeds.is_empty() {
            curves.push(mean_curve(setting.label, &seeds));
        }
    }
    Compared { curves }
}

impl Compared {
    fn get(&self, label: &str) -> Option<&Curve> {
        self.curves.iter().find(|c| c.label == label)
    }

    fn figure(&self, name: &str, title: &str, x_label: &str, scale: Scale) -> Figure {
        Figure {
            name: name.into(),
            title: title.into(),
            x_label: x_label.into(),
            y_label: "accuracy".into(),
            x_scale: scale,
            curves: self.curves.clone(),
        }
    }

    /// SPIRAL's largest scaling efficiency over GRPO on this curve, when both reach a shared
    /// accuracy above zero (every curve "reaches" zero at its first point).
    fn efficiency(&self, unit: &str) -> Option<Efficiency> {
        let (grpo, spiral) = (self.get("GRPO")?, self.get("SPIRAL")?);
        max_scaling_efficiency(grpo, spiral, unit).ok().flatten().filter(|e| e.target > 0.0)
    }
}

/// The task in words, with its generator's settings.
fn task_description(base: &RunConfig) -> String {
    let t = &base.task;
    match t.kind {
        spiral_rewards::Task::Countdown => format!(
            "Countdown ({} numbers in {}..={}, targets {}..={})",
            t.countdown.max_numbers,
            t.countdown.min_number,
            t.countdown.max_number,
            t.countdown.min_target,
            t.countdown.max_target
        ),
        spiral_rewards::Task::Combination => format!(
            "Combination ({} independent congruences a x + b = c (mod {}) per problem, reward 1 \
             only if every part is right)",
            t.combination.parts, t.combination.modulus
        ),
        spiral_rewards::Task::Arith => format!(
            "Arithmetic ({}..={} operands up to {}, operators {})",
            t.arith.min_operands, t.arith.max_operands, t.arith.max_operand, t.arith.operators
        ),
        spiral_rewards::Task::Math => "Math problems".into(),
    }
}

/// Everything the report is written from.
pub struct Inputs<'a> {
    /// What was run and measured.
    pub options: &'a ReproOptions,
    /// The base config every run started from.
    pub base: &'a RunConfig,
    /// Each setting's resolved config (its first seed's), by run prefix.
    pub configs: &'a [(String, RunConfig)],
    /// Every measured model, the warm start first.
    pub measured: &'a [Measured],
    /// Held-out problems measured.
    pub problems: usize,
    /// Parameters of the model.
    pub parameters: usize,
    /// The aggregator gate before RL.
    pub gate: &'a [spiral_train::gate::Criterion],
    /// Why the aggregator falls short, when the evaluation counted its picks.
    pub gate_diagnosis: Option<String>,
    /// Whether the RL settings asked for were not started because the gate failed.
    pub rl_skipped: bool,
    /// Whether the baselines' accuracy stopped moving ([`crate::decision`]).
    pub baselines_plateaued: Option<bool>,
}

/// Writes `out/report.md`, its figures, `out/results.json` and `out/configs/*.toml`.
pub fn write(inputs: &Inputs<'_>, out: &Path) -> anyhow::Result<PathBuf> {
    let Inputs { options, base, configs, measured, problems, parameters, gate, .. } = *inputs;
    let gate_diagnosis = inputs.gate_diagnosis.as_deref().unwrap_or_default();
    let m = &options.measure;
    let primary = paired::primary_differences(measured);
    let mut primary_text = format!(
        "Pipeline accuracy at a budget of {n} search traces and one aggregation: SPIRAL's agg@1 \
         over {n} traces minus each setting's best method at that budget (the best of its agg@1 \
         over {n}, maj@{n1} and pass@1), paired by seed and problem, with a 95% hierarchical \
         bootstrap interval (seeds, then problems; {r} resamples) over the seeds both were \
         measured at. Pre-registered in `docs/study.md`.\n\n| against | seeds paired | its best \
         method | SPIRAL minus it | 95% interval |\n|---|---|---|---|---|\n",
        n = m.pipeline_n,
        n1 = m.pipeline_n + 1,
        r = primary::RESAMPLES
    );
    for PrimaryComparison { against, seeds, difference: d } in &primary {
        let seeds: Vec<String> = seeds.iter().map(u64::to_string).collect();
        let _ = writeln!(
            primary_text,
            "| {against} | {} | {} | {:+.3} | [{:+.3}, {:+.3}] |",
            seeds.join(", "),
            d.method.name(m.pipeline_n),
            d.mean,
            d.lo,
            d.hi
        );
    }
    if primary.is_empty() {
        primary_text.push_str(
            "| - | none | not measured (SPIRAL and a setting measured at a shared seed are needed) \
             | | |\n",
        );
    }
    let per_seed = paired::per_seed_table(measured, &primary, m.pipeline_n);
    if !per_seed.is_empty() {
        let _ = write!(
            primary_text,
            "\nEach setting at that budget, seed by seed (on the method above; SPIRAL on its agg@1 \
             over {} traces):\n\n{per_seed}",
            m.pipeline_n
        );
    }
    let pass = compare(measured, |c| &c.pass_at_k);
    let maj = compare(measured, |c| &c.parallel_majority);
    let agg = compare(measured, |c| &c.parallel_aggregation);
    let maj_tokens = compare(measured, |c| &c.tokens_majority);
    let agg_tokens = compare(measured, |c| &c.tokens_aggregation);
    let sequential = compare(measured, |c| &c.sequential);
    let rsa = compare(measured, |c| &c.rsa_pass_at_1);
    let envelopes = envelope::envelopes(measured);
    let envelope_comparisons = envelope::comparisons(&envelopes)?;
    let last = |c: &ModelCurves, f: Pick| f(c).points.len() - 1;
    let first = measured.first().map(|w| &w.curves);

    let mut headline = String::new();
    let intervals = paired::intervals_text(measured);
    let _ = writeln!(headline, "{intervals}; SPIRAL minus GRPO, paired by seed:\n");
    if let Some(c) = first {
        let rows: [(&str, Pick, usize); 5] = [
            ("pass@1", |c| &c.pass_at_k, 0),
            ("pass@k_max", |c| &c.pass_at_k, last(c, |c| &c.pass_at_k)),
            ("agg@1 over N_max", |c| &c.parallel_aggregation, last(c, |c| &c.parallel_aggregation)),
            ("maj@N_max", |c| &c.parallel_majority, last(c, |c| &c.parallel_majority)),
            ("RSA pass@1, last round", |c| &c.rsa_pass_at_1, last(c, |c| &c.rsa_pass_at_1)),
        ];
        for (what, pick, index) in rows {
            let _ = writeln!(headline, "- {what}: {}", paired::difference(measured, pick, index));
        }
    }
    let efficiency = |e: Option<Efficiency>| e.into_iter().map(|e| ("SPIRAL over GRPO".into(), e));

    let setup = format!(
        "Mode `{mode}`. {task} with a character-level tokenizer and a {params:.2}M-parameter \
         Qwen3-style model trained from scratch. One warm start ({ws} supervised steps on \
         solution traces and aggregation examples{stage_two}) is shared by every run; each \
         algorithm then trains {steps} RL steps of {pps} \
         problems from it with RL seeds {seeds:?} (`train.seed`; the task data and the held-out \
         problems stay the warm start's). Compute is matched: every algorithm generates {budget} \
         tokens per training problem (SPIRAL N1 = {n1}, n = {n}, K = {k}, N2 = {n2}{grpo_n}; \
         ParaGator the same sampling as SPIRAL). Every model is measured on \
         the same {problems} held-out problems at temperature {temp} with max {mnt} new tokens.\n\n\
         Why this task and size: the warm start must leave room between pass@1 and pass@8 \
         (pass@1 {p1:.3}, pass@8 {p8}) so that parallel search has something to find, and the \
         aggregator must be able to use its candidates: at the warm start, one aggregation over \
         {nmax} traces scores {a:.3} against majority vote's {mj:.3}. A larger model or a longer \
         warm start would not fit the CPU budget of {runs}.",
        mode = options.mode,
        task = task_description(base),
        stage_two = if base.warm_start.aggregator_steps > 0 {
            format!(
                ", then {} steps training the aggregator on the model's own candidates",
                base.warm_start.aggregator_steps
            )
        } else {
            String::new()
        },
        params = parameters as f64 / 1e6,
        ws = base.warm_start.steps,
        steps = base.train.steps,
        pps = base.train.problems_per_step,
        seeds = options.seeds,
        budget = configs
            .iter()
            .find_map(|(_, c)| c.algorithm.tokens_per_problem)
            .unwrap_or(base.traces_per_problem() * base.rollout.max_new_tokens),
        grpo_n = configs.iter().find(|(name, _)| name == "grpo").map_or(
            String::new(),
            |(_, c)| format!("; GRPO and Dr.GRPO {} traces", c.algorithm.n1)
        ),
        n1 = base.algorithm.n1,
        n = base.algorithm.n,
        k = base.algorithm.k,
        n2 = base.algorithm.n2,
        problems = problems,
        temp = m.temperature,
        mnt = m.max_new_tokens,
        p1 = first.map_or(f64::NAN, |c| c.pass_at_k.points[0].y),
        p8 = first
            .and_then(|c| c.pass_at_k.points.iter().find(|p| p.x == 8.0))
            .map_or("n/a".into(), |p| format!("{:.3}", p.y)),
        nmax = m.n_max,
        a = first.map_or(f64::NAN, |c| c.parallel_aggregation.points.last().map_or(0.0, |p| p.y)),
        mj = first.map_or(f64::NAN, |c| c.parallel_majority.points.last().map_or(0.0, |p| p.y)),
        runs = if options.variants.is_empty() {
            "the RL runs that start from it"
        } else {
            "a study that trains a model per setting and seed"
        },
    );

    let sections = vec![
        Section { heading: "Headline".into(), text: headline, ..Default::default() },
        Section { heading: "Setup and choices".into(), text: setup, ..Default::default() },
        Section { heading: "Primary metric".into(), text: primary_text, ..Default::default() },
        Section {
            heading: "Aggregator gate".into(),
            text: format!(
                "Measured on the warm start before any RL (its evaluation over `eval.n` traces \
                 per problem, and RSA's rounds above). A study whose warm start fails the gate \
                 cannot tell set RL from no set RL: its verdict is inconclusive whatever the RL \
                 numbers.\n\n{}\nThe gate {}. {gate_diagnosis}{}",
                spiral_train::gate::markdown(gate),
                if spiral_train::gate::passes(gate) { "passes" } else { "does not pass" },
                if inputs.rl_skipped {
                    "\n\nThe RL settings asked for were therefore not started (`--ignore-gate` \
                     runs them anyway)."
                } else {
                    ""
                }
            ),
            ..Default::default()
        },
        Section {
            heading: "pass@k".into(),
            text: format!(
                "Unbiased pass@k from {} traces per problem. Scaling efficiency: {}.",
                m.k_max, SCALING_EFFICIENCY_DEFINITION
            ),
            table: Some(Table::from_curves("k", &pass.curves)),
            efficiencies: efficiency(pass.efficiency("samples")).collect(),
            figures: vec![pass.figure("pass_at_k", "pass@k", "k (samples)", Scale::Log2)],
        },
        Section {
            heading: "Recursive self-aggregation".into(),
            text: format!(
                "pass@1 of the population after each round of RSA (population {}, K = {}); \
                 round 0 is the initial sample.",
                m.rsa_population, m.rsa_k
            ),
            table: Some(Table::from_curves("round", &rsa.curves)),
            figures: vec![rsa.figure("rsa", "RSA pass@1 by round", "round", Scale::Linear)],
            ..Default::default()
        },
        Section {
            heading: "Parallel scaling: majority vote against model aggregation".into(),
            text: format!(
                "maj@N votes over N traces; agg@1 is the mean reward of {} aggregation traces \
                 written over the same N traces (each with its own candidate order). Below, \
                 the same against generated tokens per problem (one aggregation trace \
                 included).",
                m.aggregations
            ),
            table: Some(Table::from_curves(
                "N",
                &[maj.curves.clone(), agg.curves.clone()]
                    .concat()
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut c)| {
                        c.label = format!(
                            "{} {}",
                            c.label,
                            if i < maj.curves.len() { "maj@N" } else { "agg@1" }
                        );
                        c
                    })
                    .collect::<Vec<_>>(),
            )),
            efficiencies: efficiency(agg_tokens.efficiency("tokens"))
                .chain(efficiency(maj_tokens.efficiency("tokens")))
                .collect(),
            figures: vec![
                maj.figure("majority", "maj@N", "N (samples)", Scale::Log2),
                agg.figure("aggregation", "agg@1 over N traces", "N (samples)", Scale::Log2),
                agg_tokens.figure(
                    "aggregation_tokens",
                    "agg@1 against tokens",
                    "generated tokens per problem",
                    Scale::Log2,
                ),
            ],
        },
        Section {
            heading: "Scaling efficiency at fixed accuracy targets".into(),
            text: format!(
                "Pre-registered: each setting's best-method envelope, the best accuracy any of \
                 maj@N, agg@1 over N and RSA's rounds reaches within a number of generated \
                 tokens per problem (means over seeds), and SPIRAL's scaling efficiency over \
                 each other setting on those envelopes at accuracies fixed before the runs \
                 ({}). Brackets: the ratios between the envelopes of the points' 95% intervals, \
                 a conservative interval (`0` or `inf`: that band never reaches the accuracy); \
                 `-`: an envelope never reaches it; `>=`: SPIRAL's first point already \
                 reaches it, so its tokens are an upper bound and the ratio a lower one; `<=`: \
                 the same for the other setting.\n\n{}",
                SCALING_EFFICIENCY_DEFINITION,
                envelope::table(&envelope_comparisons)
            ),
            figures: vec![Figure {
                name: "envelope".into(),
                title: "best-method envelope".into(),
                x_label: "generated tokens per problem".into(),
                y_label: "accuracy".into(),
                x_scale: Scale::Log2,
                curves: envelopes.clone(),
            }],
            ..Default::default()
        },
        Section {
            heading: "Sequential budget".into(),
            text: "Accuracy of one trace against its max-new-tokens budget.".into(),
            table: Some(Table::from_curves("max new tokens", &sequential.curves)),
            efficiencies: efficiency(sequential.efficiency("tokens")).collect(),
            figures: vec![sequential.figure(
                "sequential",
                "accuracy against the token budget",
                "max new tokens",
                Scale::Log2,
            )],
        },
        training::section(measured),
    ];
    let report = Report {
        title: format!(
            "SPIRAL against the baselines ({} run, {})",
            options.mode,
            base.task.kind.name()
        ),
        commit: checkout_commit(),
        command: Some(format!(
            "cargo xtask repro{} --task {} --algorithms {} --seeds {} (overrides in the config \
             below)",
            match options.mode.as_str() {
                "quick" => " --quick",
                "study" => " -- --study",
                _ => " --",
            },
            base.task.kind.name(),
            if options.variants.is_empty() { "none".into() } else { options.variants.join(",") },
            options.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
        )),
        config: Some(base.to_toml()),
        sections,
    };
    let path = report.write(out)?;
    let config_dir = out.join("configs");
    std::fs::create_dir_all(&config_dir)?;
    for (name, config) in configs {
        std::fs::write(config_dir.join(format!("{name}.toml")), config.to_toml())?;
    }
    let primary: Vec<_> = primary
        .iter()
        .map(|p| {
            serde_json::json!({ "against": p.against, "seeds": p.seeds, "difference": p.difference })
        })
        .collect();
    let results = serde_json::json!({
        "options": options,
        "gate": gate.iter().map(|c| serde_json::json!({
            "criterion": c.name, "measured": c.measured, "holds": c.passes()
        })).collect::<Vec<_>>(),
        "primary": primary,
        "baselines_plateaued": inputs.baselines_plateaued,
        "envelope_efficiency": envelope_comparisons,
        "measured": measured,
    });
    // Every measurement kept so far is in this one file: a crash while writing must not lose it.
    spiral_model::write_atomically(
        &out.join("results.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    Ok(path)
}
