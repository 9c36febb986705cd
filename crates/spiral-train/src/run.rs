//! A whole run, top to bottom: [`start`] (task data, tokenizer, and the model from a checkpoint,
//! a pretrained folder or scratch), [`warm_start`] (supervised steps, then an evaluation), the RL
//! phase ([`rl::prepare`]: LoRA adapters and the KL reference; [`rl::train`]: rollout -> reward
//! -> advantage -> loss -> step, evaluations and checkpoints), and the report. The run folder
//! holds `config.toml`, `metrics.jsonl`, `checkpoints/`, `samples/` and `report.md` with plots.
//!
//! Resume is exact: every random draw is seeded by (run seed, purpose, step), the data cursor is
//! a function of the step, and checkpoints hold the model, the AdamW moments and the position in
//! `metrics.jsonl`, so a resumed run writes the same metrics as an uninterrupted one.

mod aggregator_start;
mod rl;
mod rounds;
mod start;
mod warm_start;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;
use spiral_model::{BackendJob, DeviceSpec};
use spiral_rollout::stream_seed;

use crate::checkpoint::{self, TrainerState};
use crate::config::RunConfig;
use crate::distributed::World;
use crate::evaluate::{EvalMetrics, MadeUpCandidates, evaluate_on};
use crate::learner::Learner;
use crate::metrics::{EvalRecord, MetricsWriter, Record};
use crate::progress::Progress;
use crate::task::TaskData;

/// Purposes of the run's random streams (see [`stream_seed`]).
mod purpose {
    pub(super) const WARM_START_DATA: u64 = 1;
    pub(super) const PROBLEM_ORDER: u64 = 2;
    pub(super) const COLLECT: u64 = 3;
    pub(super) const ROLLOUT: u64 = 4;
    pub(super) const EVAL: u64 = 5;
    pub(super) const LORA_INIT: u64 = 6;
    pub(super) const DROPOUT: u64 = 7;
    pub(super) const DYNAMIC_SAMPLING: u64 = 8;
    pub(super) const AGGREGATOR_START: u64 = 9;
}

/// How a run is started and stopped.
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    /// Continue from the newest checkpoint in the run folder (from scratch if there is none).
    pub resume: bool,
    /// Set (by a Ctrl-C handler) to finish the current step, checkpoint and return.
    pub stop: Arc<AtomicBool>,
    /// Where the model runs (`--device`). Not part of the config: a run may resume on another
    /// device, with results equal to float rounding.
    pub device: DeviceSpec,
    /// The ranks of a data-parallel run ([`crate::distributed`]): each collects and trains on
    /// its share of every step's problems, and rank 0 alone writes the run folder. A world of
    /// one by default.
    pub world: World,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Every step ran; the last evaluation.
    Finished(EvalMetrics),
    /// Stopped on request after a step; resume from this checkpoint.
    Stopped(PathBuf),
}

/// Runs the configured job in `out` (writing the resolved `config.toml` there) on
/// `control.device`, and returns how it ended.
pub fn run(config: &RunConfig, out: &Path, control: &RunControl) -> anyhow::Result<Outcome> {
    // The report names the code that ran, read now rather than when it is written.
    crate::report::checkout_commit();
    control.device.run(RunJob { config, out, control })
}

/// [`run`]'s arguments, handed to the backend `control.device` selects.
struct RunJob<'a> {
    config: &'a RunConfig,
    out: &'a Path,
    control: &'a RunControl,
}

impl BackendJob for RunJob<'_> {
    type Output = anyhow::Result<Outcome>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        run_on::<B>(self.config, self.out, self.control, &device)
    }
}

/// What every phase of a run reads, and the run folder it writes.
struct Run<'a, Train: AutodiffBackend> {
    config: &'a RunConfig,
    out: &'a Path,
    control: &'a RunControl,
    device: &'a Train::Device,
    data: TaskData,
    /// `<out>/checkpoints`.
    checkpoints: PathBuf,
    /// The checkpoint a resumed run continues from.
    resume_from: Option<PathBuf>,
    metrics: MetricsWriter,
}

/// How a phase ended: on to the next, or stopped on request with a checkpoint.
enum PhaseEnd<T> {
    /// The phase ran to its end; what the next phase starts from.
    Done(T),
    /// A stop was asked for; the checkpoint to resume from.
    Stopped(PathBuf),
}

/// The run on backend `Train`, phase by phase: start (or resume), the warm start unless the run
/// is past it, then RL.
fn run_on<Train: AutodiffBackend>(
    config: &RunConfig,
    out: &Path,
    control: &RunControl,
    device: &Train::Device,
) -> anyhow::Result<Outcome> {
    let (mut run, mut state, model) = start::start::<Train>(config, out, control, device)?;
    let mut last_eval = None;
    let model = if state.phase == checkpoint::Phase::WarmStart {
        match warm_start::warm_start(&mut run, &mut state, model)? {
            PhaseEnd::Done((model, eval)) => {
                last_eval = Some(eval);
                model
            }
            PhaseEnd::Stopped(path) => return Ok(Outcome::Stopped(path)),
        }
    } else {
        model
    };
    let prepared = rl::prepare(&run, &mut state, model)?;
    match rl::train(&mut run, &mut state, prepared, last_eval)? {
        PhaseEnd::Done(last) => Ok(Outcome::Finished(last)),
        PhaseEnd::Stopped(path) => Ok(Outcome::Stopped(path)),
    }
}

impl<Train: AutodiffBackend> Run<'_, Train> {
    /// Saves checkpoint `name` of `learner` with `state` (see [`checkpoint::save`]).
    fn save(
        &self,
        learner: &Learner<Train>,
        name: &str,
        state: &TrainerState,
    ) -> anyhow::Result<()> {
        self.check_same_weights(learner, name)?;
        if !self.control.world.is_root() {
            return Ok(());
        }
        let keep = self.config.train.keep_checkpoints;
        checkpoint::save(&self.checkpoints, name, learner, &self.data.tokenizer, state, keep)
    }

    /// Refuses to go on when the ranks' weights differ at a checkpoint (a rank that diverged
    /// would otherwise train on silently), naming the ranks.
    fn check_same_weights(&self, learner: &Learner<Train>, name: &str) -> anyhow::Result<()> {
        let world = &self.control.world;
        if world.0.world_size() == 1 {
            return Ok(());
        }
        let sums = world.gather(crate::distributed::weight_checksum(learner.model()));
        let differ: Vec<usize> = (0..sums.len()).filter(|&r| sums[r] != sums[0]).collect();
        anyhow::ensure!(
            differ.is_empty(),
            "checkpoint {name}: the weights of ranks {differ:?} differ from rank 0's (checksums \
             {sums:?}); data-parallel ranks must take identical steps"
        );
        Ok(())
    }

    /// A phase's progress, shown by rank 0 only.
    fn progress(&self, len: usize, done: usize, what: &str) -> Progress {
        if self.control.world.is_root() {
            Progress::new(len, done, what)
        } else {
            Progress::hidden()
        }
    }

    /// Writes `report.md` (rank 0 only).
    fn write_report(&self) -> anyhow::Result<()> {
        if self.control.world.is_root() {
            crate::report::write_report(self.out, self.config)?;
        }
        Ok(())
    }

    /// `learner` with the optimiser state of the checkpoint a resumed run continues from.
    fn restore(
        &self,
        learner: Learner<Train>,
        state: &TrainerState,
    ) -> anyhow::Result<Learner<Train>> {
        match &self.resume_from {
            Some(path) => {
                Ok(learner.restore(&checkpoint::optimizer_path(path), state.optimizer_steps)?)
            }
            None => Ok(learner),
        }
    }

    /// Evaluates `model` on the held-out problems (always the same draws, so evaluations compare
    /// across steps and runs); `reference` as [`evaluate_on`] takes it.
    fn evaluate(
        &self,
        model: &spiral_model::CausalLm<Train::InnerBackend>,
        reference: MadeUpCandidates,
    ) -> anyhow::Result<EvalMetrics> {
        let seed = stream_seed(self.config.run.seed, purpose::EVAL, 0);
        evaluate_on(model, &self.data, self.config, seed, &self.control.world, reference)
    }

    /// Records evaluation `e` at RL step `step` and writes what the model wrote to
    /// `samples/eval-step-<step>.jsonl` (one problem per line).
    fn log_eval(&mut self, step: usize, e: &EvalMetrics) -> anyhow::Result<()> {
        if !self.control.world.is_root() {
            return Ok(());
        }
        let dir = self.out.join("samples");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut text = String::new();
        for t in &e.transcripts {
            text.push_str(&serde_json::to_string(t)?);
            text.push('\n');
        }
        let path = dir.join(format!("eval-step-{step}.jsonl"));
        spiral_model::write_atomically(&path, text.as_bytes())?;
        self.metrics.log(Record::Eval(EvalRecord::new(step, e)))
    }
}

/// One line: the headline numbers of an evaluation.
pub fn summary(e: &EvalMetrics) -> String {
    format!("pass@1 {:.3}  maj@{} {:.3}  agg@1 {:.3}", e.pass_at_1, e.n, e.maj_at_n, e.agg_at_1)
}

/// `runs/<name>-<unix seconds>`.
pub fn default_out_dir(config: &RunConfig) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    PathBuf::from("runs").join(format!("{}-{secs}", config.run.name))
}
