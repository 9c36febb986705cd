//! Measured models, and the measurements a study keeps between invocations.
//!
//! A measurement is written once, to `<work>/measure/<name>.json`, and every one is also kept in
//! the report's `results.json` together with the config its model was trained under, its
//! held-out evaluations during training, and the commit that measured it. A later invocation
//! reads `results.json` back: a run whose measurement is kept there, under the same config and
//! measured the same way, is neither trained nor measured again, even from an empty work folder.
//! So a study that takes many hours is built up over several invocations, work folders or
//! machines (each adding algorithms or seeds with `--algorithms` and `--seeds`), and its report
//! always holds every model measured so far. A report folder holding another study's models
//! (another warm start or measurement) is refused, so that no call's report replaces them
//! ([`carried_over`]).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use spiral_eval::DatasetProblem;
use spiral_model::Checkpoint;
use spiral_train::{EvalRecord, Record, RunConfig, checkout_commit, read_metrics};

use crate::measure::{MeasureOptions, ModelCurves, measure};
use crate::training::TrainingSummary;

/// One trained (or warm-start) model of the reproduction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Run folder name (`spiral-seed1`, `warm-start`).
    pub name: String,
    /// The setting's config stem ([`crate::VARIANTS`]), `None` for the warm start.
    pub variant: Option<String>,
    /// The checkpoint measured.
    pub checkpoint: PathBuf,
    /// How, and on how many problems: a saved measurement is reused only if these match.
    pub options: MeasureOptions,
    /// Held-out problems measured.
    pub problems: usize,
    /// Its curves.
    pub curves: ModelCurves,
    /// The config the model was trained under (the warm start's own for the warm start). A
    /// kept measurement is carried over only under the same config; measurements written
    /// without one are never carried over.
    #[serde(default)]
    pub config: Option<RunConfig>,
    /// Parameters of the model.
    #[serde(default)]
    pub parameters: Option<usize>,
    /// The run's held-out evaluations (`metrics.jsonl`): the warm start's evaluation before RL
    /// (step 0), which the aggregator gate reads, and each RL run's evaluations during
    /// training, which tell whether a baseline has stopped improving.
    #[serde(default)]
    pub evals: Vec<EvalRecord>,
    /// The commit of the code that trained and measured it, where known.
    #[serde(default)]
    pub commit: Option<String>,
    /// What its RL run did while it trained (`None` for the warm start, and for runs measured
    /// before this was kept).
    #[serde(default)]
    pub training: Option<TrainingSummary>,
}

impl Measured {
    /// The models of `measured` trained under setting `stem` ([`crate::VARIANTS`]), every seed
    /// of it; never the warm start.
    pub fn of_setting<'a>(
        measured: &'a [Measured],
        stem: &str,
    ) -> impl Iterator<Item = &'a Measured> {
        measured.iter().filter(move |m| m.variant.as_deref() == Some(stem))
    }

    /// The RL seed of the run (`train.seed`), `None` for the warm start or without a config.
    pub fn seed(&self) -> Option<u64> {
        self.variant.as_ref()?;
        self.config.as_ref()?.train.seed
    }

    /// Whether this measurement stands for the model `config` trains, measured as `options`
    /// says on `problems` problems.
    fn stands_for(&self, config: &RunConfig, options: &MeasureOptions, problems: usize) -> bool {
        self.config.as_ref() == Some(config)
            && &self.options == options
            && self.problems == problems
    }
}

/// The measurements kept in `out/results.json`; none when there is no such file.
pub fn read_kept(out: &Path) -> anyhow::Result<Vec<Measured>> {
    let path = out.join("results.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    #[derive(Deserialize)]
    struct Results {
        #[serde(default)]
        measured: Vec<Measured>,
    }
    let results: Results = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not the results of a study (expected a `measured` list of models); move it \
             away or report to another --out",
            path.display()
        )
    })?;
    Ok(results.measured)
}

/// The measurements of `kept` (read from `out/results.json`) that belong to the study whose warm
/// start `warm` configures: if its warm start is kept under that config and measured as
/// `options` says on `problems` problems, every model measured so whose config is among
/// `current` (the configs the code would now train each setting and seed under), saying on
/// stderr which it leaves out.
///
/// A report of another study is refused before anything runs, since this call's report would
/// replace it and with it the record of every model it measured: a study whose models kept their
/// configs could be continued by the call that matches it. A report from before models kept
/// their configs can never be continued, so a call that trains replaces it (saying so); one that
/// trains nothing (`rewrite_only`, which only rewrites a report from its kept models) is refused
/// too, as it would leave nothing but a new warm start.
pub fn carried_over(
    kept: Vec<Measured>,
    warm: &RunConfig,
    current: &[&RunConfig],
    options: &MeasureOptions,
    problems: usize,
    out: &Path,
    rewrite_only: bool,
) -> anyhow::Result<Vec<Measured>> {
    let (carried, left) = split_kept(kept, warm, current, options, problems);
    if carried.is_empty() && !left.is_empty() {
        let path = out.join("results.json");
        let legacy = left.iter().all(|m| m.config.is_none());
        anyhow::ensure!(
            legacy && !rewrite_only,
            "{}: holds {} models measured by a study with other settings (another warm-start \
             config, measurement or number of problems{}); this call's report would replace \
             them, so nothing was run: move the folder away or pass another --out",
            path.display(),
            left.len(),
            if legacy { ", measured before models kept their configs" } else { "" },
        );
        eprintln!(
            "{}: its {} models were measured before models kept their configs and cannot be \
             carried over; the new report replaces them",
            path.display(),
            left.len()
        );
        return Ok(Vec::new());
    }
    for m in &left {
        eprintln!(
            "{}: kept from before but trained or measured otherwise; not carried over",
            m.name
        );
    }
    Ok(carried)
}

/// [`carried_over`]'s split of `kept`, silently: what belongs to the study, and what does not.
pub fn split_kept(
    kept: Vec<Measured>,
    warm: &RunConfig,
    current: &[&RunConfig],
    options: &MeasureOptions,
    problems: usize,
) -> (Vec<Measured>, Vec<Measured>) {
    let same_study =
        kept.iter().any(|m| m.variant.is_none() && m.stands_for(warm, options, problems));
    if !same_study {
        return (Vec::new(), kept);
    }
    kept.into_iter().partition(|m| {
        let trained_so =
            m.variant.is_none() || current.iter().any(|c| m.config.as_ref() == Some(*c));
        m.config.is_some() && trained_so && &m.options == options && m.problems == problems
    })
}

/// The kept measurement of the model `config` trains in the run folder `name`, if any.
pub fn find<'a>(
    kept: &'a [Measured],
    name: &str,
    config: &RunConfig,
    options: &MeasureOptions,
    problems: usize,
) -> Option<&'a Measured> {
    kept.iter().find(|m| m.name == name && m.stands_for(config, options, problems))
}

/// What `run/metrics.jsonl` says of a run: its held-out evaluations and, for an RL run, a
/// summary of its training steps ([`crate::training::summarize`]).
pub fn run_history(run: &Path) -> anyhow::Result<(Vec<EvalRecord>, Option<TrainingSummary>)> {
    let records = read_metrics(&run.join("metrics.jsonl"))?;
    let evals = records
        .iter()
        .filter_map(|r| match r {
            Record::Eval(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    Ok((evals, crate::training::summarize(&records)))
}

/// What identifies one model to measure: its run folder name, setting, checkpoint, config,
/// evaluations during training and training summary.
pub struct Model<'a> {
    /// Its run folder's name, which names its measurement file.
    pub name: &'a str,
    /// Its setting's config stem; `None` for the warm start.
    pub variant: Option<&'a str>,
    /// The checkpoint to measure.
    pub checkpoint: PathBuf,
    /// The config it was trained under.
    pub config: &'a RunConfig,
    /// Its held-out evaluations during training ([`run_history`]).
    pub evals: Vec<EvalRecord>,
    /// Its RL run's training ([`run_history`]); `None` for the warm start.
    pub training: Option<TrainingSummary>,
}

/// The curves of `model`, read from `dir/<name>.json` when measured before (from the same
/// checkpoint, the same way), else measured now and saved there.
pub fn measure_once(
    model: Model<'_>,
    problems: &[DatasetProblem],
    options: &MeasureOptions,
    dir: &Path,
) -> anyhow::Result<Measured> {
    let path = dir.join(format!("{}.json", model.name));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let saved = serde_json::from_str::<Measured>(&text).ok().filter(|done| {
        done.checkpoint == model.checkpoint
            && &done.options == options
            && done.problems == problems.len()
    });
    let load = || {
        Checkpoint::<burn::backend::Flex>::load(&model.checkpoint, &Default::default())
            .with_context(|| format!("loading {}", model.checkpoint.display()))
    };
    let mut measured = match saved {
        Some(done) => done,
        None => {
            eprintln!("== measuring {}", model.name);
            let ckpt = load()?;
            Measured {
                name: model.name.into(),
                variant: model.variant.map(String::from),
                checkpoint: model.checkpoint.clone(),
                options: options.clone(),
                problems: problems.len(),
                curves: measure(&ckpt.model, &ckpt.tokenizer, problems, options)?,
                config: None,
                parameters: Some(ckpt.model.config().num_parameters()),
                evals: Vec::new(),
                commit: checkout_commit(),
                training: None,
            }
        }
    };
    // Saved by a version that kept less: the run is here to say it.
    if measured.parameters.is_none() {
        measured.parameters = Some(load()?.model.config().num_parameters());
    }
    measured.config = Some(model.config.clone());
    measured.evals = model.evals;
    measured.training = model.training;
    // Compared as text: a measurement holding NaN never equals itself.
    let json = serde_json::to_string_pretty(&measured)?;
    if json != text {
        spiral_model::write_atomically(&path, json.as_bytes())?;
    }
    Ok(measured)
}
