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
//! - `measure/<name>.json`: one model's curves, written once measured.
//!
//! A run or a measurement that exists is not redone, and a run interrupted half-way resumes
//! exactly, so an interrupted reproduction is continued by running it again.

pub mod decision;
pub mod measure;
pub mod primary;
mod report;
pub mod summary;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use spiral_eval::DatasetProblem;
use spiral_model::{Checkpoint, DeviceSpec};
use spiral_rewards::Task;

use spiral_train::gate;
use spiral_train::{
    Outcome, Phase, RunConfig, RunControl, TaskData, TrainerState, checkout_commit,
    latest_checkpoint, run,
};

use measure::{MeasureOptions, ModelCurves, measure};

/// One compared setting: the `[algorithm]` section of `configs/<stem>.toml`, and its name in
/// the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// The config's file stem, and the run folders' prefix.
    pub stem: &'static str,
    /// Its name in the report.
    pub label: &'static str,
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
///   up to 120 tokens, 3,000 warm-start steps: the search stops where it should, but the
///   aggregator copies a checking try too rarely for the gate
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
            "warm_start.steps=3000",
            "warm_start.aggregation_fraction=0.5",
            "warm_start.aggregator_steps=0",
        ],
        _ => &[],
    };
    settings.iter().map(|s| s.to_string()).collect()
}

/// One trained (or warm-start) model of the reproduction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Run folder name (`spiral-seed1`, `warm-start`).
    pub name: String,
    /// The setting's config stem ([`VARIANTS`]), `None` for the warm start.
    pub variant: Option<String>,
    /// The checkpoint measured.
    pub checkpoint: PathBuf,
    /// How, and on how many problems: a saved measurement is reused only if these match.
    pub options: MeasureOptions,
    /// Held-out problems measured.
    pub problems: usize,
    /// Its curves.
    pub curves: ModelCurves,
}

/// Runs (or resumes) the reproduction in `work` and writes the report into `out`; returns the
/// report's path.
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
    run_once(&warm_config, &warm, stop)?;

    // Measurements, on the warm start's held-out problems; the warm start's first, for its gate.
    let data = TaskData::new(&base.task, None, base.run.seed)?;
    let problems: Vec<DatasetProblem> = data
        .test
        .iter()
        .take(options.problems)
        .enumerate()
        .map(|(i, p)| DatasetProblem { id: i.to_string(), line: i + 1, problem: p.clone() })
        .collect();
    let measure_dir = work.join("measure");
    std::fs::create_dir_all(&measure_dir)?;
    let mut measured = vec![measure_once(
        "warm-start",
        None,
        &warm.join("checkpoints/warm-start"),
        &problems,
        options,
        &measure_dir,
    )?];
    let (gate, gate_diagnosis) = warm_start_gate(&warm, &measured[0])?;
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

    // Every algorithm and seed from a copy of its checkpoint.
    let mut runs = Vec::new();
    let variants = if rl_skipped { &[][..] } else { &options.variants[..] };
    for stem in variants {
        let setting = variant(stem)?;
        let config_path = configs.join(format!("{stem}.toml"));
        let shipped = RunConfig::from_file(&config_path, &[])?;
        for &seed in &options.seeds {
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
            config.run.name = run_name(&base, &dir);
            if !dir.exists() {
                fork_warm_start(&warm, &dir)?;
            }
            run_once(&config, &dir, stop)?;
            runs.push((setting, dir, config));
        }
    }

    for (setting, dir, config) in &runs {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("run").to_string();
        let checkpoint = dir.join(format!("checkpoints/step-{}", config.train.steps));
        measured.push(measure_once(
            &name,
            Some(setting.stem.to_string()),
            &checkpoint,
            &problems,
            options,
            &measure_dir,
        )?);
    }
    let configs: Vec<(String, RunConfig)> = runs
        .iter()
        .filter(|(_, _, c)| c.train.seed == options.seeds.first().copied())
        .map(|(v, _, c)| (run_prefix(*v).to_string(), c.clone()))
        .collect();
    // A model folder, or with LoRA an adapter folder over `checkpoints/base`.
    let warm_checkpoint = warm.join("checkpoints/warm-start");
    let parameters =
        Checkpoint::<burn::backend::Flex>::load(&warm_checkpoint, &Default::default())?
            .model
            .config()
            .num_parameters();
    let plateaued = baselines_plateaued(&runs)?;
    let inputs = report::Inputs {
        options,
        base: &base,
        configs: &configs,
        measured: &measured,
        problems: problems.len(),
        parameters,
        gate: &gate,
        gate_diagnosis,
        rl_skipped,
        baselines_plateaued: plateaued,
    };
    report::write(&inputs, out)
}

/// Applies the decision rule to `dir/study-<task>/results.json` for the three tasks, writes
/// `dir/study-verdict.md` and returns its text.
pub fn write_verdict(dir: &Path) -> anyhow::Result<String> {
    let read = |task: &str| -> anyhow::Result<Option<decision::TaskEvidence>> {
        let path = dir.join(format!("study-{task}/results.json"));
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
        Ok(Some(decision::TaskEvidence::from_results(&json)?))
    };
    let (comb, count, arith) = (read("combination")?, read("countdown")?, read("arith")?);
    let verdict = decision::verdict(comb.as_ref(), count.as_ref(), arith.as_ref());
    let mut text = String::from(
        "# Study verdict\n\nThe decision rule of `docs/study.md`, applied by `cargo xtask repro -- --verdict docs/results`.\n\n",
    );
    for (task, e) in [("combination", &comb), ("countdown", &count), ("arith", &arith)] {
        match e {
            None => text.push_str(&format!("- {task}: not run\n")),
            Some(e) => text.push_str(&format!(
                "- {task}: gate {}, {} primary comparisons, RSA {}, baselines {}\n",
                if e.gate_passes { "passed" } else { "failed" },
                e.primary.len(),
                match e.rsa_rises {
                    Some(true) => "rises",
                    Some(false) => "does not rise",
                    None => "not measured",
                },
                match e.baselines_plateaued {
                    Some(true) => "plateaued",
                    Some(false) => "still moving",
                    None => "not measured",
                },
            )),
        }
    }
    text.push_str(&format!(
        "\n**Verdict: {}**\n",
        match &verdict {
            decision::Verdict::Confirms => "confirms SPIRAL's advantage at this scale".to_string(),
            decision::Verdict::Refutes => "refutes SPIRAL's advantage at this scale".to_string(),
            decision::Verdict::Inconclusive(why) => format!("inconclusive ({why})"),
        }
    ));
    spiral_model::write_atomically(&dir.join("study-verdict.md"), text.as_bytes())?;
    Ok(text)
}

/// The aggregator gate of the warm start in `warm` (its evaluation before RL, and the RSA rounds
/// measured on it), and its diagnosis.
fn warm_start_gate(
    warm: &Path,
    measured: &Measured,
) -> anyhow::Result<(Vec<gate::Criterion>, Option<String>)> {
    let records = spiral_train::read_metrics(&warm.join("metrics.jsonl"))?;
    let before = records
        .iter()
        .rev()
        .find_map(|r| match r {
            spiral_train::Record::Eval(e) if e.step == 0 => Some(e.clone()),
            _ => None,
        })
        .with_context(|| format!("{}: no evaluation before RL", warm.display()))?;
    let rsa: Vec<f64> = measured.curves.rsa_pass_at_1.points.iter().map(|p| p.y).collect();
    Ok((gate::gate(&before, Some(&rsa)), gate::diagnosis(&before)))
}

/// Whether every baseline run's held-out pass@1, averaged over its seeds, moved by under a
/// point between its last two evaluations; `None` with fewer than two evaluations.
fn baselines_plateaued(runs: &[(Variant, PathBuf, RunConfig)]) -> anyhow::Result<Option<bool>> {
    let mut last_two: std::collections::BTreeMap<&str, Vec<[f64; 2]>> = Default::default();
    for (setting, dir, _) in runs {
        if setting.label.starts_with("SPIRAL") || setting.stem == "multitask" {
            continue;
        }
        let evals: Vec<f64> = spiral_train::read_metrics(&dir.join("metrics.jsonl"))?
            .into_iter()
            .filter_map(|r| match r {
                spiral_train::Record::Eval(e) if e.step > 0 => Some(e.pass_at_1),
                _ => None,
            })
            .collect();
        let [.., before, last] = evals[..] else { return Ok(None) };
        last_two.entry(setting.stem).or_default().push([before, last]);
    }
    if last_two.is_empty() {
        return Ok(None);
    }
    Ok(Some(last_two.values().all(|seeds| {
        let n = seeds.len() as f64;
        let moved = seeds.iter().map(|[b, l]| l - b).sum::<f64>() / n;
        moved.abs() < 0.01
    })))
}

/// The run folders' prefix of a setting: its algorithm's name for the default config.
fn run_prefix(setting: Variant) -> &'static str {
    if setting.stem == "default" { "spiral" } else { setting.stem }
}

/// Runs `config` in `dir` to its end, resuming whatever is there; a finished run is left alone.
fn run_once(config: &RunConfig, dir: &Path, stop: &Arc<AtomicBool>) -> anyhow::Result<()> {
    if finished(dir, config.train.steps) {
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

/// Whether the run in `dir` has checkpointed its last RL step.
fn finished(dir: &Path, steps: usize) -> bool {
    let Ok(Some(latest)) = latest_checkpoint(&dir.join("checkpoints")) else { return false };
    let state = std::fs::read_to_string(latest.join("trainer_state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<TrainerState>(&t).ok());
    state.is_some_and(|s| s.phase == Phase::Rl && s.step >= steps)
}

/// A new run folder that starts at `warm`'s finished warm start: its checkpoint (and, with
/// LoRA, the frozen base it adapts), `latest` naming it, and the metrics up to it.
fn fork_warm_start(warm: &Path, dir: &Path) -> anyhow::Result<()> {
    for name in ["warm-start", "base"] {
        let from = warm.join("checkpoints").join(name);
        if from.is_dir() {
            let to = dir.join("checkpoints").join(name);
            std::fs::create_dir_all(&to)?;
            for entry in
                std::fs::read_dir(&from).with_context(|| format!("reading {}", from.display()))?
            {
                let entry = entry?;
                std::fs::copy(entry.path(), to.join(entry.file_name()))?;
            }
        }
    }
    std::fs::write(dir.join("checkpoints/latest"), "warm-start")?;
    let state_path = dir.join("checkpoints/warm-start/trainer_state.json");
    let state: TrainerState = serde_json::from_str(&std::fs::read_to_string(state_path)?)?;
    let metrics = std::fs::read(warm.join("metrics.jsonl"))?;
    let keep = (state.metrics_bytes as usize).min(metrics.len());
    std::fs::write(dir.join("metrics.jsonl"), &metrics[..keep])?;
    Ok(())
}

/// The curves of the model in `checkpoint`, read from `dir/<name>.json` when measured before.
fn measure_once(
    name: &str,
    variant: Option<String>,
    checkpoint: &Path,
    problems: &[DatasetProblem],
    options: &ReproOptions,
    dir: &Path,
) -> anyhow::Result<Measured> {
    let path = dir.join(format!("{name}.json"));
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(done) = serde_json::from_str::<Measured>(&text)
        && done.checkpoint == checkpoint
        && done.options == options.measure
        && done.problems == problems.len()
    {
        return Ok(done);
    }
    eprintln!("== measuring {name}");
    let ckpt = Checkpoint::<burn::backend::Flex>::load(checkpoint, &Default::default())
        .with_context(|| format!("loading {}", checkpoint.display()))?;
    let curves = measure(&ckpt.model, &ckpt.tokenizer, problems, &options.measure)?;
    let measured = Measured {
        name: name.into(),
        variant,
        checkpoint: checkpoint.to_path_buf(),
        options: options.measure.clone(),
        problems: problems.len(),
        curves,
    };
    spiral_model::write_atomically(&path, serde_json::to_string_pretty(&measured)?.as_bytes())?;
    Ok(measured)
}
