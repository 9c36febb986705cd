//! The reproduction study behind `cargo xtask repro` and the `spiral-repro` binary: SPIRAL against GRPO, Dr.GRPO and ParaGator at
//! small scale, from one shared warm start, with matched generated tokens per problem and
//! several RL seeds, every model measured on the same held-out problems ([`measure`]), and a
//! report with means and 95% intervals over seeds ([`summary`]).
//!
//! Work folder layout (`runs/repro` by default; everything resumes):
//! - `warm-start/`: a `spiral-train` run of the base config with `train.steps = 0`;
//! - `<algorithm>-seed<s>/`: a run started from a copy of that warm-start checkpoint, with the
//!   algorithm's `[algorithm]` section from `configs/<algorithm>.toml` and `train.seed = s`
//!   (the run seed, hence the task data and evaluation problems, stays the warm start's);
//! - `measure/<name>.json`: one model's curves, written once measured;
//! - `<run>.lock`: the lock of a run folder while a process trains it ([`lock`]).
//!
//! A run stopped half-way is also kept beside the report (`<out>/unfinished/<run>/`, see
//! [`unfinished`]), so that a later call resumes it even from an empty work folder.
//!
//! A run or a measurement that exists is not redone, and a run interrupted half-way resumes
//! exactly, so an interrupted reproduction is continued by running it again. Several
//! invocations may share a work folder and a report folder at once, each with its own settings
//! or seeds: they wait for one another's warm start and merge their models into one report.

pub mod decision;
pub mod envelope;
mod lock;
pub mod measure;
pub mod measured;
mod paired;
pub mod primary;
mod report;
pub mod summary;
pub mod training;
mod unfinished;
mod warm_start;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use spiral_eval::DatasetProblem;
use spiral_model::DeviceSpec;
use spiral_rewards::Task;

use spiral_train::gate;
use spiral_train::{Outcome, RunConfig, RunControl, TaskData, checkout_commit, run};

pub use decision::write_verdict;
use measure::MeasureOptions;
pub use measured::Measured;
use measured::measure_once;

/// One compared setting: the `[algorithm]` section of `configs/<stem>.toml`, and its name in
/// the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// The config's file stem, and the run folders' prefix.
    pub stem: &'static str,
    /// Its name in the report.
    pub label: &'static str,
}

impl Variant {
    /// Whether the decision rule compares SPIRAL with it as a baseline: neither a SPIRAL
    /// setting nor the multitask control, which answers another question.
    pub fn is_baseline(&self) -> bool {
        !self.label.starts_with("SPIRAL") && self.stem != "multitask"
    }
}

/// Every setting the study knows, baselines first. `default` is SPIRAL as the default run
/// trains it (K = 8 sets, N2 = 2); `spiral_k4` is the paper's (K = 4, N2 = 4).
pub const VARIANTS: [Variant; 6] = [
    Variant { stem: "grpo", label: "GRPO" },
    Variant { stem: "dr_grpo", label: "Dr.GRPO" },
    Variant { stem: "paragator", label: "ParaGator" },
    Variant { stem: "multitask", label: "Multitask" },
    Variant { stem: "spiral_k4", label: "SPIRAL K=4" },
    Variant { stem: "default", label: "SPIRAL" },
];

/// The variant of config stem `stem`.
pub fn variant(stem: &str) -> anyhow::Result<Variant> {
    VARIANTS.iter().copied().find(|v| v.stem == stem).ok_or_else(|| {
        let known: Vec<&str> = VARIANTS.iter().map(|v| v.stem).collect();
        anyhow::anyhow!("unknown algorithm setting {stem:?}; expected one of {known:?}")
    })
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReproOptions {
    /// `quick` or `full`, for the report.
    pub mode: String,
    /// RL seeds (`train.seed`) per algorithm.
    pub seeds: Vec<u64>,
    /// The compared settings, by config stem ([`VARIANTS`]).
    pub variants: Vec<String>,
    /// Overrides of the base config (`section.key=value`), applied to every run.
    pub overrides: Vec<String>,
    /// Held-out problems every model is measured on (the first of the run's test problems).
    pub problems: usize,
    /// What is measured on each model.
    pub measure: MeasureOptions,
    /// RL steps between a run's held-out evaluations; `None` evaluates at its last step only
    /// (every model is measured afterwards anyway).
    #[serde(default)]
    pub eval_every: Option<usize>,
    /// Run the RL settings even when the warm start fails the aggregator gate. By default they
    /// are not started then: the verdict of such a study is inconclusive whatever they measure,
    /// and they are most of its CPU time.
    #[serde(default)]
    pub ignore_gate: bool,
    /// A finished warm-start run folder to start from instead of training the warm start
    /// (refused unless trained under the same settings).
    #[serde(default)]
    pub warm_start: Option<PathBuf>,
}

impl ReproOptions {
    /// These options measuring traces as `run` samples them: its `rollout.max_new_tokens` and
    /// temperature, the sequential curve's budgets scaled by the same factor as the length, and
    /// aggregation over at most the `algorithm.n` traces its sets hold (an aggregator is not
    /// judged on prompts longer than any it was trained on), the primary budget at that size.
    pub fn sampling_as(&self, run: &RunConfig) -> Self {
        let mut out = self.clone();
        out.measure.n_max = self.measure.n_max.min(run.algorithm.n);
        out.measure.pipeline_n = run.algorithm.n;
        let (from, to) = (self.measure.max_new_tokens.max(1), run.rollout.max_new_tokens);
        out.measure.budgets = self.measure.budgets.iter().map(|b| (b * to / from).max(1)).collect();
        out.measure.budgets.dedup();
        out.measure.max_new_tokens = to;
        out.measure.temperature = run.rollout.temperature;
        out
    }

    /// The full reproduction: 3 seeds, the default run's warm start and RL steps, 200
    /// problems, pass@k to k = 64, RSA over 5 rounds.
    pub fn full() -> Self {
        Self {
            mode: "full".into(),
            seeds: vec![1, 2, 3],
            variants: ["grpo", "dr_grpo", "paragator", "default"].map(String::from).to_vec(),
            overrides: vec![],
            problems: 200,
            measure: MeasureOptions {
                k_max: 64,
                n_max: 16,
                aggregations: 4,
                budgets: vec![12, 24, 36, 48],
                rsa_population: 8,
                rsa_k: 4,
                rsa_rounds: 5,
                max_new_tokens: 48,
                temperature: 1.0,
                seed: 7,
                pipeline_n: 4,
            },
            eval_every: None,
            ignore_gate: false,
            warm_start: None,
        }
    }

    /// The study that can answer whether SPIRAL beats GRPO at this scale: an aggregator warm
    /// start (its gate in the report), every setting of [`VARIANTS`] (the multitask control and
    /// both SPIRAL settings included), 300 RL steps of 32 problems, RL seeds 1 to 5, 500
    /// held-out problems, evaluation every 50 steps. Hours of CPU per task: build it up with
    /// `--algorithms` and `--seeds`, running again to continue.
    pub fn study() -> Self {
        let full = Self::full();
        Self {
            mode: "study".into(),
            seeds: vec![1, 2, 3, 4, 5],
            variants: VARIANTS.iter().map(|v| v.stem.to_string()).collect(),
            overrides: [
                "warm_start.aggregator_steps=200",
                "train.steps=300",
                "task.test_problems=500",
                "eval.problems=500",
            ]
            .map(String::from)
            .to_vec(),
            problems: 500,
            eval_every: Some(50),
            ..full
        }
    }

    /// A smoke check under 20 minutes on 2 cores: one seed, a shorter warm start, 8 RL steps,
    /// 64 problems, smaller k, N and RSA.
    pub fn quick() -> Self {
        let full = Self::full();
        Self {
            mode: "quick".into(),
            seeds: vec![1],
            variants: full.variants.clone(),
            overrides: ["warm_start.steps=150", "train.steps=8", "eval.problems=64"]
                .map(String::from)
                .to_vec(),
            problems: 64,
            measure: MeasureOptions {
                k_max: 16,
                n_max: 8,
                aggregations: 2,
                budgets: vec![24, 48],
                rsa_population: 4,
                rsa_k: 2,
                rsa_rounds: 2,
                ..full.measure
            },
            eval_every: None,
            ignore_gate: false,
            warm_start: None,
        }
    }

    /// Studies `task`: its kind, its settings ([`task_overrides`]) and then `extra` (the command
    /// line's `--set`s), each overriding what comes before. A task's settings override a study's
    /// but not a quick check's, which keeps its short warm start and few steps whatever the task.
    pub fn set_task(&mut self, task: &str, extra: &[String]) {
        self.overrides.push(format!("task.kind={task:?}"));
        let at = if self.mode == "quick" { 0 } else { self.overrides.len() };
        self.overrides.splice(at..at, task_overrides(task));
        self.overrides.extend_from_slice(extra);
    }
}

/// The settings a task is studied with, applied before the command line's `--set`s: trial
/// traces and a warm start with half of its examples aggregation examples, without a second
/// stage, the best measured on each task:
/// - combination: problems of 2 parts whose warm-start traces try up to 4 values per part (a
///   part is solved 40% of the time and a wrong line shows its failed check), traces of up to
///   120 tokens, 2,000 warm-start steps; the first warm start measured to learn both when a
///   trace should stop and how to copy the try that checks, and to pass the aggregator gate
///   (`docs/results/trial-traces-2026-12-03.md`);
/// - countdown: traces of up to 4 tries over all the numbers (one problem in five solved),
///   up to 120 tokens, 5,000 warm-start steps: at 3,000 the aggregator copied a checking try
///   too rarely for the gate, at 5,000 it copies one whenever it has one
///   (`docs/results/countdown-trial-traces-2026-12-03.md`).
pub fn task_overrides(task: &str) -> Vec<String> {
    let settings: &[&str] = match task {
        "combination" => &[
            "task.combination.parts=2",
            "task.combination.tries=4",
            "rollout.max_new_tokens=120",
            "warm_start.steps=2000",
            "warm_start.aggregation_fraction=0.5",
            "warm_start.aggregator_steps=0",
        ],
        "countdown" => &[
            "task.countdown.tries=4",
            "rollout.max_new_tokens=120",
            "warm_start.steps=5000",
            "warm_start.aggregation_fraction=0.5",
            "warm_start.aggregator_steps=0",
        ],
        _ => &[],
    };
    settings.iter().map(|s| s.to_string()).collect()
}

/// Runs (or resumes) the reproduction in `work` and writes the report into `out`; returns the
/// report's path. Models measured before and kept in `out/results.json` under the same
/// settings are carried over ([`measured`]): not trained again, and in the report beside the
/// new ones. The report is rewritten after each model measured, so an interrupted study keeps
/// what it measured.
/// Setting `stop` (a Ctrl-C handler) makes the current run checkpoint and the reproduction
/// return an error saying how to continue.
pub fn reproduce(
    options: &ReproOptions,
    configs: &Path,
    work: &Path,
    out: &Path,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<PathBuf> {
    // The report names the code that ran, read now rather than when it is written.
    checkout_commit();
    let mut base = RunConfig::default_with(&options.overrides)?;
    // The report prints this config: named for what it sets up, not the default run's name.
    base.run.name = format!("{}-{}", base.task.kind.name(), options.mode);
    let options = &options.sampling_as(&base);
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;

    // The shared warm start.
    let warm = work.join("warm-start");
    let mut warm_config = base.clone();
    warm_config.train.steps = 0;
    warm_config.run.name = run_name(&base, &warm);

    // Measurements, on the warm start's held-out problems; the warm start's first, for its gate.
    let data = TaskData::new(&base.task, None, base.run.seed)?;
    let problems: Vec<DatasetProblem> = data
        .test
        .iter()
        .take(options.problems)
        .enumerate()
        .map(|(i, p)| DatasetProblem { id: i.to_string(), line: i + 1, problem: p.clone() })
        .collect();
    // Every setting at every seed asked for or kept from before, as this code would train it:
    // a kept model stays only while its config is among these (the shipped configs unchanged).
    let kept = measured::read_kept(out)?;
    let mut seeds = options.seeds.clone();
    seeds.extend(kept.iter().filter_map(Measured::seed));
    seeds.sort_unstable();
    seeds.dedup();
    let every_stem: Vec<String> = VARIANTS.iter().map(|v| v.stem.to_string()).collect();
    let every_run = plan_runs(&base, options, &every_stem, &seeds, configs, work)?;
    let current: Vec<&RunConfig> = every_run.iter().map(|(_, _, c)| c).collect();
    let kept = measured::carried_over(
        kept,
        &warm_config,
        &current,
        &options.measure,
        problems.len(),
        out,
        options.variants.is_empty(),
    )?;
    let kept_as = |name: &str, config: &RunConfig| {
        measured::find(&kept, name, config, &options.measure, problems.len()).cloned()
    };
    let measure_dir = work.join("measure");
    std::fs::create_dir_all(&measure_dir)?;
    // Trained here, or copied from a finished warm start: the one `--warm-start` names, else
    // one kept beside the report (`<out>/warm-start`) if trained under these settings. Another
    // process training it is waited for; the returned claim keeps it until dropped.
    let train_warm_start = || -> anyhow::Result<std::fs::File> {
        let claim = lock::wait_for_run(&warm, stop)?;
        let beside = out.join("warm-start");
        match &options.warm_start {
            Some(from) => warm_start::adopt(from, &warm, &warm_config)?,
            None if beside.is_dir() && !warm_start::finished(&warm, 0) => {
                if let Err(e) = warm_start::adopt(&beside, &warm, &warm_config) {
                    eprintln!("not starting from {}: {e:#}", beside.display());
                }
            }
            None => {}
        }
        run_once(&warm_config, &warm, stop)?;
        Ok(claim)
    };
    let warm_measured = match kept_as("warm-start", &warm_config) {
        Some(kept) => kept,
        None => {
            // Held while measuring: a process that waited for it finds the measurement saved.
            let _claim = train_warm_start()?;
            let (evals, training) = measured::run_history(&warm)?;
            let model = measured::Model {
                name: "warm-start",
                variant: None,
                checkpoint: warm.join("checkpoints/warm-start"),
                config: &warm_config,
                evals,
                training,
            };
            measure_once(model, &problems, &options.measure, &measure_dir)?
        }
    };
    let (gate, gate_diagnosis) = warm_start_gate(&warm_measured)?;
    // Arith, the control, is studied whatever its gate: there checking a candidate is as hard
    // as writing one, and the decision rule asks of it only that SPIRAL not win.
    let gated = base.task.kind != Task::Arith;
    let rl_skipped =
        gated && !options.variants.is_empty() && !options.ignore_gate && !gate::passes(&gate);
    if rl_skipped {
        eprintln!(
            "the warm start fails the aggregator gate, so the RL runs are not started (the \
             verdict would be inconclusive whatever they measure); --ignore-gate runs them"
        );
    }
    let report = |measured: &[Measured]| {
        // Another invocation may have measured models into the same report since this one
        // read it: read it again under the folder's lock, so that neither drops the other's.
        let _lock = lock::ReportLock::acquire(out)?;
        let (kept, _) = measured::split_kept(
            measured::read_kept(out)?,
            &warm_config,
            &current,
            &options.measure,
            problems.len(),
        );
        report_study(
            options,
            &base,
            &kept,
            measured,
            problems.len(),
            &gate,
            &gate_diagnosis,
            rl_skipped,
            out,
        )
    };

    // Every algorithm and seed from a copy of the warm start's checkpoint, each measured once
    // trained; one kept from before (and not begun here since) is carried over as it is.
    let mut measured = vec![warm_measured];
    let mut planned = Vec::new();
    for stem in options.variants.iter().filter(|_| !rl_skipped) {
        let setting = variant(stem)?;
        for &seed in &options.seeds {
            let at =
                every_run.iter().position(|(v, _, c)| *v == setting && c.train.seed == Some(seed));
            planned.push(&every_run[at.expect("every setting and seed asked for is planned")]);
        }
    }
    for (setting, dir, config) in planned {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("run");
        if let Some(kept) = kept_as(name, config).filter(|_| !dir.exists()) {
            measured.push(kept);
            continue;
        }
        drop(train_warm_start()?);
        let claim = lock::claim_run(dir)?;
        if !dir.exists() && !unfinished::restore(out, dir, config)? {
            warm_start::fork(&warm, dir)?;
        }
        if let Err(e) = run_once(config, dir, stop) {
            // Stopped: kept beside the report too, so that any later call resumes it.
            if stop.load(Ordering::SeqCst) {
                unfinished::keep(dir, out)?;
            }
            return Err(e);
        }
        drop(claim);
        let (evals, training) = measured::run_history(dir)?;
        let model = measured::Model {
            name,
            variant: Some(setting.stem),
            checkpoint: dir.join(format!("checkpoints/step-{}", config.train.steps)),
            config,
            evals,
            training,
        };
        measured.push(measure_once(model, &problems, &options.measure, &measure_dir)?);
        report(&measured)?;
        unfinished::discard(out, dir)?;
    }
    report(&measured)
}

/// Every setting of `stems` at every seed of `seeds`: its setting, run folder and config (the
/// base config with the setting's `[algorithm]` section, the seed and `options`' evaluations).
fn plan_runs(
    base: &RunConfig,
    options: &ReproOptions,
    stems: &[String],
    seeds: &[u64],
    configs: &Path,
    work: &Path,
) -> anyhow::Result<Vec<(Variant, PathBuf, RunConfig)>> {
    let mut planned = Vec::new();
    for stem in stems {
        let setting = variant(stem)?;
        let config_path = configs.join(format!("{stem}.toml"));
        let shipped = RunConfig::from_file(&config_path, &[])?;
        for &seed in seeds {
            let mut config = base.clone();
            config.algorithm = shipped.algorithm.clone();
            // The shipped budgets are sized for the shipped trace length: scaled with it, a
            // setting still generates at most the tokens of its traces at full length.
            config.algorithm.tokens_per_problem = shipped
                .algorithm
                .tokens_per_problem
                .map(|t| t * base.rollout.max_new_tokens / shipped.rollout.max_new_tokens.max(1));
            config.train.seed = Some(seed);
            config.eval.every = options.eval_every.unwrap_or(config.train.steps).max(1);
            config.validate()?;
            let dir = work.join(format!("{}-seed{seed}", run_prefix(setting)));
            config.run.name = run_name(base, &dir);
            planned.push((setting, dir, config));
        }
    }
    Ok(planned)
}

/// Writes the report of `measured` (first the warm start) and of the models kept from before
/// that it does not hold (measured again, a model replaces its kept measurement), in setting
/// and seed order.
#[allow(clippy::too_many_arguments)]
fn report_study(
    options: &ReproOptions,
    base: &RunConfig,
    kept: &[Measured],
    measured: &[Measured],
    problems: usize,
    gate: &[gate::Criterion],
    gate_diagnosis: &Option<String>,
    rl_skipped: bool,
    out: &Path,
) -> anyhow::Result<PathBuf> {
    let mut measured = measured.to_vec();
    for m in kept {
        if m.variant.is_some() && !measured.iter().any(|n| n.name == m.name) {
            measured.push(m.clone());
        }
    }
    let order = |m: &Measured| {
        let setting = m.variant.as_deref().map(|v| VARIANTS.iter().position(|s| s.stem == v));
        (setting, m.seed())
    };
    measured.sort_by_key(order);
    // What the report holds: the settings asked for now and those carried over, and the seeds
    // measured (those asked for only while none is: a report over one seed must not read as
    // one over the five the study registers).
    let mut shown = options.clone();
    let seeds: Vec<u64> = measured.iter().filter_map(Measured::seed).collect();
    if !seeds.is_empty() {
        shown.seeds = seeds;
    }
    for m in measured.iter() {
        if let Some(v) = &m.variant
            && !shown.variants.contains(v)
        {
            shown.variants.push(v.clone());
        }
    }
    shown.variants.sort_by_key(|v| VARIANTS.iter().position(|s| s.stem == v));
    shown.seeds.sort_unstable();
    shown.seeds.dedup();
    // Each setting's config, that of its first seed.
    let mut configs: Vec<(String, RunConfig)> = Vec::new();
    for m in measured.iter() {
        let (Some(stem), Some(config)) = (&m.variant, &m.config) else { continue };
        let prefix = run_prefix(variant(stem)?);
        if !configs.iter().any(|(name, _)| name == prefix) {
            configs.push((prefix.to_string(), config.clone()));
        }
    }
    let parameters = measured[0].parameters.context("the warm start's parameter count")?;
    let inputs = report::Inputs {
        options: &shown,
        base,
        configs: &configs,
        measured: &measured,
        problems,
        parameters,
        gate,
        gate_diagnosis: gate_diagnosis.clone(),
        rl_skipped,
        baselines_plateaued: decision::baseline_moves(
            measured.iter().filter_map(|m| Some((m.variant.as_deref()?, m.evals.as_slice()))),
        )
        .map(|moves| decision::plateaued(&moves)),
    };
    report::write(&inputs, out)
}

/// The aggregator gate of the warm start (its evaluation before RL, and the RSA rounds
/// measured on it), and its diagnosis.
fn warm_start_gate(warm: &Measured) -> anyhow::Result<(Vec<gate::Criterion>, Option<String>)> {
    let before = warm
        .evals
        .iter()
        .rev()
        .find(|e| e.step == 0)
        .with_context(|| format!("{}: no evaluation before RL", warm.checkpoint.display()))?;
    let rsa: Vec<f64> = warm.curves.rsa_pass_at_1.points.iter().map(|p| p.y).collect();
    Ok((gate::gate(before, Some(&rsa)), gate::diagnosis(before)))
}

/// The run folders' prefix of a setting: its algorithm's name for the default config.
fn run_prefix(setting: Variant) -> &'static str {
    if setting.stem == "default" { "spiral" } else { setting.stem }
}

/// Runs `config` in `dir` to its end, resuming whatever is there; a finished run is left alone.
fn run_once(config: &RunConfig, dir: &Path, stop: &Arc<AtomicBool>) -> anyhow::Result<()> {
    if warm_start::finished(dir, config.train.steps) {
        return Ok(());
    }
    eprintln!("== {} ({})", dir.display(), config.algorithm.name.as_str());
    // The study runs on the CPU: its measurements load models with the CPU backend too.
    let control = RunControl {
        resume: true,
        stop: stop.clone(),
        device: DeviceSpec::Cpu,
        ..Default::default()
    };
    match run(config, dir, &control).with_context(|| format!("run {}", dir.display()))? {
        Outcome::Finished(_) => Ok(()),
        Outcome::Stopped(at) => {
            anyhow::bail!("stopped at {}; run the same command again to continue", at.display())
        }
    }
}

/// The name a run's report is titled with: the task and the run folder (`combination-grpo-seed1`),
/// not the base config's name, which names the default task.
fn run_name(base: &RunConfig, dir: &Path) -> String {
    let folder = dir.file_name().and_then(|n| n.to_str()).unwrap_or("run");
    format!("{}-{folder}", base.task.kind.name())
}
