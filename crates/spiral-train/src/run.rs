//! A whole run: task data and tokenizer, a model from scratch, the warm start, the RL loop
//! (rollout -> reward -> advantage -> loss -> step), periodic evaluation, checkpoints, resume,
//! and the run folder (`config.toml`, `metrics.jsonl`, `checkpoints/`, `report.md` with plots).
//!
//! Resume is exact: every random draw is seeded by (run seed, purpose, step), the data cursor is
//! a function of the step, and checkpoints hold the model, the AdamW moments and the position in
//! `metrics.jsonl`, so a resumed run writes the same metrics as an uninterrupted one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use spiral_model::{BackendJob, CausalLm, DeviceSpec, ModelConfig};

use crate::checkpoint::{self, Phase, TrainerState, stream_seed};
use crate::collect::collect;
use crate::config::RunConfig;
use crate::evaluate::{EvalMetrics, evaluate};
use crate::learner::{Learner, StepStats};
use crate::report::write_report;
use crate::schedule::OptimConfig;
use crate::task::{CONTEXT, TaskData};

/// Purposes of the run's random streams (see [`stream_seed`]).
const WARM_START_DATA: u64 = 1;
const PROBLEM_ORDER: u64 = 2;
const COLLECT: u64 = 3;
const ROLLOUT: u64 = 4;
const EVAL: u64 = 5;
const LORA_INIT: u64 = 6;
const DROPOUT: u64 = 7;

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
}

/// How a run ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Every step ran; the last evaluation.
    Finished(EvalMetrics),
    /// Stopped on request after a step; resume from this checkpoint.
    Stopped(PathBuf),
}

/// Appends one JSON object per line to `metrics.jsonl`, flushed after each line so a crash
/// loses nothing already measured.
struct Metrics {
    file: std::fs::File,
    bytes: u64,
}

impl Metrics {
    /// Opens `path` keeping its first `keep` bytes (0: a new file).
    fn open(path: &Path, keep: u64) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let len = file.metadata()?.len();
        anyhow::ensure!(
            keep <= len,
            "{} has {len} bytes but the checkpoint recorded {keep}: it was truncated after the \
             checkpoint was taken",
            path.display()
        );
        file.set_len(keep)?;
        Ok(Self { file, bytes: keep })
    }

    fn log(&mut self, value: serde_json::Value) -> anyhow::Result<()> {
        let line = format!("{value}\n");
        self.file.write_all(line.as_bytes())?;
        self.file.flush()?;
        self.bytes += line.len() as u64;
        Ok(())
    }
}

fn bar(len: usize, done: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta} {prefix}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar.set_position(done as u64);
    bar
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

fn run_on<Train: AutodiffBackend>(
    config: &RunConfig,
    out: &Path,
    control: &RunControl,
    device: &Train::Device,
) -> anyhow::Result<Outcome> {
    let checkpoints = out.join("checkpoints");
    std::fs::create_dir_all(&checkpoints)
        .with_context(|| format!("creating {}", checkpoints.display()))?;
    let resume_from = if control.resume { checkpoint::latest(&checkpoints)? } else { None };
    // Rewritten on resume too, so `--set` changes made then are kept for the next resume.
    std::fs::write(out.join("config.toml"), config.to_toml())?;
    let seed = config.run.seed;
    let source = |dir: &Path| format!("model.checkpoint = {}", dir.display());
    // A pretrained model's weights are read only when starting; a resumed run takes them from
    // its own checkpoint and needs only the tokenizer.
    let pretrained = match (&config.model.checkpoint, &resume_from) {
        (Some(dir), None) => Some(
            spiral_model::Checkpoint::<Train>::load(dir, device).with_context(|| source(dir))?,
        ),
        _ => None,
    };
    let tokenizer = match (&pretrained, &config.model.checkpoint) {
        (Some(c), _) => Some(c.tokenizer.clone()),
        (None, Some(dir)) => {
            let eos = ModelConfig::from_file(dir.join("config.json"))
                .with_context(|| source(dir))?
                .eos_token_ids;
            Some(spiral_model::TextTokenizer::from_dir(dir, &eos).with_context(|| source(dir))?)
        }
        (None, None) => None,
    };
    let data = TaskData::new(&config.task, tokenizer, seed)?;

    let (mut state, model) = match &resume_from {
        Some(path) => {
            let (state, model) = checkpoint::load::<Train>(path, device)?;
            anyhow::ensure!(
                state.seed == seed,
                "{}: the checkpoint was taken with run.seed {} but the config says {seed}",
                path.display(),
                state.seed
            );
            eprintln!("resuming from {} ({:?}, step {})", path.display(), state.phase, state.step);
            (state, model)
        }
        None if pretrained.is_some() => {
            (fresh_state(seed), pretrained.expect("checked by the guard").model)
        }
        None => {
            let m = &config.model;
            let mut model_config = ModelConfig::small(
                data.tokenizer.vocab_size(),
                m.hidden_size,
                m.num_layers,
                m.num_heads,
            );
            model_config.num_kv_heads = m.num_kv_heads.unwrap_or(model_config.num_kv_heads);
            model_config.head_dim = m.head_dim.unwrap_or(model_config.head_dim);
            model_config.intermediate_size =
                m.intermediate_size.unwrap_or(model_config.intermediate_size);
            model_config.max_position_embeddings = CONTEXT;
            let model = CausalLm::<Train>::random(model_config, seed, m.init_std, device)?;
            (fresh_state(seed), model)
        }
    };
    let model = model.with_precision(config.model.precision);
    check_context(&data, config, model.config().max_position_embeddings)?;
    eprintln!(
        "model: {} parameters, vocabulary {}",
        model.config().num_parameters(),
        model.config().vocab_size
    );
    let mut metrics = Metrics::open(&out.join("metrics.jsonl"), state.metrics_bytes)?;
    let restore = |learner: Learner<Train>, state: &TrainerState| match &resume_from {
        Some(path) => learner.restore(&checkpoint::optimizer_path(path), state.optimizer_steps),
        None => Ok(learner),
    };
    let keep = config.train.keep_checkpoints;
    let save = |learner: &Learner<Train>, name: &str, state: &TrainerState| {
        checkpoint::save(&checkpoints, name, learner, &data.tokenizer, state, keep)
    };

    let mut model = Some(model);
    let mut last_eval = None;
    if state.phase == Phase::WarmStart {
        let w = &config.warm_start;
        let optim = OptimConfig {
            lr: w.lr,
            warmup_steps: w.steps / 10,
            total_steps: w.steps,
            ..Default::default()
        };
        let learner = Learner::new(model.take().expect("set above"), optim)
            .with_micro_batch(config.train.micro_batch);
        let mut learner = restore(learner, &state)?;
        let progress = bar(w.steps, state.step, "warm start");
        for step in state.step..w.steps {
            let mut rng = StdRng::seed_from_u64(stream_seed(seed, WARM_START_DATA, step as u64));
            let batch = data.warm_start_examples(
                w.batch_size,
                config.algorithm.n,
                w.aggregation_fraction,
                &mut rng,
            );
            // The step reads its loss back to the host, so the clock covers the device's work.
            let started = Instant::now();
            let stats = learner.sft_step(&batch)?;
            let seconds = started.elapsed().as_secs_f64();
            progress.set_prefix(format!("loss {:.3}", stats.loss));
            progress.inc(1);
            if step % 10 == 0 || step + 1 == w.steps {
                metrics.log(serde_json::json!({"kind": "warm_start", "step": step, "loss": stats.loss, "lr": stats.lr, "grad_norm": stats.grad_norm, "tokens": stats.tokens, "step_seconds": seconds, "tokens_per_s": stats.tokens as f64 / seconds.max(1e-9)}))?;
            }
            if control.stop.load(Ordering::SeqCst) && step + 1 < w.steps {
                progress.abandon();
                state.step = step + 1;
                state.optimizer_steps = learner.steps();
                state.metrics_bytes = metrics.bytes;
                save(&learner, "warm-start-partial", &state)?;
                write_report(out, config)?;
                return Ok(Outcome::Stopped(checkpoints.join("warm-start-partial")));
            }
        }
        progress.finish();
        let warm = learner.inference_model();
        let warm_eval = evaluate(&warm, &data, config, stream_seed(seed, EVAL, 0))?;
        log_eval(&mut metrics, out, 0, &warm_eval)?;
        eprintln!("warm start: {}", summary(&warm_eval));
        last_eval = Some(warm_eval);
        model = Some(learner.model().clone());
        // The RL phase starts from here with a fresh optimiser; every algorithm trained from
        // this run's warm start starts from this checkpoint.
        state = TrainerState {
            phase: Phase::Rl,
            step: 0,
            optimizer_steps: 0,
            metrics_bytes: metrics.bytes,
            ..state
        };
    }

    // RL.
    let tr = &config.train;
    let rl_seed = tr.seed.unwrap_or(seed);
    let mut model = model.take().expect("set above");
    match (config.lora.config(), model.lora().cloned()) {
        (Some(lora), None) => {
            anyhow::ensure!(
                state.step == 0,
                "lora.enabled = true, but the checkpoint of RL step {} trained every weight; \
                 resume it with --set lora.enabled=false",
                state.step
            );
            // The base stays frozen from here on; it is saved once, unless it is the
            // pretrained folder itself.
            state.base_model = Some(match (&config.model.checkpoint, config.warm_start.steps) {
                (Some(dir), 0) => std::path::absolute(dir)?,
                _ => checkpoint::save_base(&checkpoints, &model, &data.tokenizer)?,
            });
            model = model.with_lora(&lora, stream_seed(rl_seed, LORA_INIT, 0))?;
            eprintln!("{}", lora_summary(&model));
        }
        (None, Some(_)) => anyhow::bail!(
            "the checkpoint holds LoRA adapters but lora.enabled = false; resume it with \
             --set lora.enabled=true"
        ),
        (Some(wanted), Some(found)) => anyhow::ensure!(
            wanted == found,
            "[lora] asks for {wanted:?} but the checkpoint's adapters are {found:?}"
        ),
        (None, None) => {}
    }
    let learner = Learner::new(model, config.rl_optim()).with_micro_batch(tr.micro_batch);
    let mut learner = if state.step > 0 { restore(learner, &state)? } else { learner };
    if state.step == 0 {
        save(&learner, "warm-start", &state)?;
        // `latest` now names the finished warm start; an interrupted one is no longer needed.
        let partial = checkpoints.join("warm-start-partial");
        if partial.exists() {
            std::fs::remove_dir_all(&partial)
                .with_context(|| format!("removing {}", partial.display()))?;
        }
    }
    // The KL penalty's reference is the policy RL starts from (the warm start or the pretrained
    // model); a resumed run reads it back from the `warm-start` checkpoint, saved above before
    // the first RL step, bit for bit what it was.
    let reference = match (tr.loss.kl_beta > 0.0, state.step) {
        (false, _) => None,
        (true, 0) => Some(learner.inference_model()),
        (true, _) => {
            let path = checkpoints.join("warm-start");
            let model = spiral_model::Checkpoint::<Train::InnerBackend>::load(&path, device)
                .with_context(|| format!("the KL reference, {}", path.display()))?
                .model;
            Some(model.merge_lora().for_inference_in(config.model.precision))
        }
    };
    let mut order: Vec<usize> = (0..data.train.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(stream_seed(rl_seed, PROBLEM_ORDER, 0)));
    let progress = bar(tr.steps, state.step, "RL");
    for step in state.step + 1..=tr.steps {
        let cursor = (step - 1) * tr.problems_per_step;
        let problems: Vec<_> = (0..tr.problems_per_step)
            .map(|i| &data.train[order[(cursor + i) % order.len()]])
            .collect();
        let policy = learner.inference_model();
        let mut rng = StdRng::seed_from_u64(stream_seed(rl_seed, COLLECT, step as u64));
        let rollout_seed = stream_seed(rl_seed, ROLLOUT, step as u64);
        let collected =
            collect(&policy, reference.as_ref(), &data, &problems, config, rollout_seed, &mut rng)?;
        let started = Instant::now();
        let mut s = StepStats::default();
        // Adapter dropout draws from the backend's generator, which is process-wide: seeded per
        // step for exact resume, and only when it is used, so that other runs in the process
        // are left alone (two runs with adapter dropout must not share a process).
        if learner.model().lora().is_some_and(|l| l.dropout > 0.0) {
            <Train as burn::tensor::backend::Backend>::seed(
                device,
                stream_seed(rl_seed, DROPOUT, step as u64),
            );
        }
        if !collected.batch.is_empty() {
            for _ in 0..tr.epochs {
                s = learner.policy_step(&collected.batch, &tr.loss)?;
                if s.skipped {
                    break;
                }
            }
        }
        let learn_seconds = started.elapsed().as_secs_f64();
        state.skipped_in_a_row = if s.skipped { state.skipped_in_a_row + 1 } else { 0 };
        progress.set_prefix(format!(
            "search {:.2} agg {:.2}",
            collected.search_reward,
            collected.aggregation_reward.unwrap_or(f64::NAN)
        ));
        progress.inc(1);
        metrics.log(serde_json::json!({
            "kind": "train", "step": step,
            "search_reward": collected.search_reward, "aggregation_reward": collected.aggregation_reward,
            "mean_abs_advantage": collected.mean_abs_advantage, "zero_signal_fraction": collected.zero_signal_fraction,
            "trained_sequences": collected.batch.len(),
            "loss": s.loss, "clip_fraction": s.clip_fraction, "approx_kl": s.approx_kl, "ref_kl": s.ref_kl, "entropy": s.entropy,
            "lr": s.lr, "grad_norm": s.grad_norm, "skipped_update": s.skipped, "generated_tokens": collected.generated_tokens, "trained_tokens": s.tokens,
            "rollout_seconds": collected.rollout_seconds, "reward_seconds": collected.reward_seconds, "reference_seconds": collected.reference_seconds, "learn_seconds": learn_seconds,
            "rollout_tokens_per_s": collected.generated_tokens as f64 / collected.rollout_seconds.max(1e-9),
            "learn_tokens_per_s": s.tokens as f64 / learn_seconds.max(1e-9),
        }))?;
        anyhow::ensure!(
            state.skipped_in_a_row < tr.max_skipped_updates,
            "{} updates in a row had a NaN or infinite loss or gradient (step {step}); stopping. \
             The last good checkpoint is {}",
            state.skipped_in_a_row,
            checkpoint::latest(&checkpoints)?.map_or("none".into(), |p| p.display().to_string())
        );
        if step % config.eval.every == 0 || step == tr.steps {
            let e =
                evaluate(&learner.inference_model(), &data, config, stream_seed(seed, EVAL, 0))?;
            log_eval(&mut metrics, out, step, &e)?;
            progress.println(format!("step {step}: {}", summary(&e)));
            last_eval = Some(e);
        }
        let stop = control.stop.load(Ordering::SeqCst);
        if step % tr.checkpoint_every == 0 || step == tr.steps || stop {
            state.step = step;
            state.optimizer_steps = learner.steps();
            state.metrics_bytes = metrics.bytes;
            save(&learner, &format!("step-{step}"), &state)?;
        }
        if stop && step < tr.steps {
            progress.abandon();
            write_report(out, config)?;
            return Ok(Outcome::Stopped(checkpoints.join(format!("step-{step}"))));
        }
    }
    progress.finish();
    write_report(out, config)?;
    let last = match last_eval {
        Some(e) => e,
        // Resumed after the last step: evaluate the final model again (same seed, same numbers).
        None => evaluate(&learner.inference_model(), &data, config, stream_seed(seed, EVAL, 0))?,
    };
    Ok(Outcome::Finished(last))
}

/// The state of a run that has not started.
fn fresh_state(seed: u64) -> TrainerState {
    TrainerState {
        phase: Phase::WarmStart,
        step: 0,
        optimizer_steps: 0,
        seed,
        metrics_bytes: 0,
        skipped_in_a_row: 0,
        base_model: None,
    }
}

/// Refuses a run whose longest search prompt plus trace, or aggregation prompt plus trace,
/// would not fit the model's context.
fn check_context(data: &TaskData, config: &RunConfig, context: usize) -> anyhow::Result<()> {
    let length = config.train_max_new_tokens().max(config.rollout.max_new_tokens);
    let (mut longest, mut which) = (0, None);
    for (i, p) in data.train.iter().chain(&data.test).enumerate() {
        let tokens = data.encode(&data.search_prompt(p)).len();
        if tokens > longest {
            (longest, which) = (tokens, Some(i));
        }
    }
    // An aggregation prompt holds the problem and n traces of at most `length` tokens each.
    let aggregation = longest + config.algorithm.n.max(config.eval.n) * (length + 16);
    anyhow::ensure!(
        aggregation + length <= context,
        "problem {} has a {longest}-token prompt: with {} candidates of up to {length} tokens an \
         aggregation prompt may reach {aggregation} tokens, and with its trace exceed the model's \
         context of {context} (lower rollout.max_new_tokens, algorithm.tokens_per_problem, \
         algorithm.n or eval.n)",
        which.unwrap_or(0),
        config.algorithm.n.max(config.eval.n)
    );
    Ok(())
}

/// Logs the evaluation's numbers and writes what the model wrote to
/// `samples/eval-step-<step>.jsonl` (one problem per line).
fn log_eval(metrics: &mut Metrics, out: &Path, step: usize, e: &EvalMetrics) -> anyhow::Result<()> {
    let dir = out.join("samples");
    std::fs::create_dir_all(&dir)?;
    let mut text = String::new();
    for t in &e.transcripts {
        text.push_str(&serde_json::to_string(t)?);
        text.push('\n');
    }
    spiral_model::write_atomically(&dir.join(format!("eval-step-{step}.jsonl")), text.as_bytes())?;
    let mut line = serde_json::json!({"kind": "eval", "step": step, "pass@1": e.pass_at_1, "maj@n": e.maj_at_n, "agg@1": e.agg_at_1, "agg@1|some_correct": e.agg_given_correct, "agg@1|none_correct": e.agg_given_none, "n": e.n, "problems": e.problems});
    for (k, v) in &e.pass_at_k {
        line[format!("pass@{k}")] = serde_json::json!(v);
    }
    metrics.log(line)
}

/// What LoRA trains, against full fine-tuning: parameters and AdamW's two float32 moments.
fn lora_summary<B: AutodiffBackend>(model: &CausalLm<B>) -> String {
    let lora = model.lora().expect("called on adapted models");
    let (trainable, all) = (model.lora_parameters(), model.config().num_parameters());
    let moments = |n: usize| (2 * 4 * n) as f64 / (1 << 20) as f64;
    let targets: Vec<&str> = lora.targets.iter().map(|p| p.name()).collect();
    format!(
        "LoRA r = {} (scaling {:.3}) on {targets:?}: {trainable} trainable parameters, {:.2}% of \
         {all}; AdamW state {:.2} MiB instead of {:.2} MiB",
        lora.rank,
        lora.scaling(),
        100.0 * trainable as f64 / all as f64,
        moments(trainable),
        moments(all)
    )
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
