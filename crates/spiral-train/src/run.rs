//! A whole run: task data and tokenizer, a model from scratch, the warm start, the RL loop
//! (rollout -> reward -> advantage -> loss -> step), periodic evaluation, checkpoints and the
//! run folder (`config.toml`, `metrics.jsonl`, `checkpoints/`, `report.md`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use spiral_model::{CausalLm, ModelConfig, save_pretrained};

use crate::collect::collect;
use crate::config::RunConfig;
use crate::evaluate::{EvalMetrics, evaluate};
use crate::learner::Learner;
use crate::schedule::OptimConfig;
use crate::task::TaskData;

type Train = Autodiff<Flex>;

/// Appends one JSON object per line to `metrics.jsonl`, flushed after each line so a crash
/// loses nothing already measured.
struct Metrics {
    file: std::fs::File,
}

impl Metrics {
    fn log(&mut self, value: serde_json::Value) -> anyhow::Result<()> {
        writeln!(self.file, "{value}")?;
        self.file.flush()?;
        Ok(())
    }
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta} {prefix}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Runs the configured job in `out` and returns the final evaluation.
pub fn run(config: &RunConfig, out: &Path) -> anyhow::Result<EvalMetrics> {
    std::fs::create_dir_all(out.join("checkpoints"))?;
    std::fs::write(out.join("config.toml"), config.to_toml())?;
    let mut metrics = Metrics { file: std::fs::File::create(out.join("metrics.jsonl"))? };
    let seed = config.run.seed;
    let mut rng = StdRng::seed_from_u64(seed);

    let t = &config.task;
    let data = TaskData::new(&t.countdown, t.train_problems, t.test_problems, seed)?;
    let m = &config.model;
    let mut model_config =
        ModelConfig::small(data.tokenizer.vocab_size(), m.hidden_size, m.num_layers, m.num_heads);
    model_config.max_position_embeddings = 1024;
    let model =
        CausalLm::<Train>::random(model_config.clone(), seed, m.init_std, &Default::default())?;
    eprintln!(
        "model: {} parameters, vocabulary {}",
        model_config.num_parameters(),
        model_config.vocab_size
    );

    // Warm start: supervised on solution traces and aggregation examples.
    let w = &config.warm_start;
    let optim = OptimConfig {
        lr: w.lr,
        warmup_steps: w.steps / 10,
        total_steps: w.steps,
        ..Default::default()
    };
    let mut learner = Learner::new(model, optim).with_micro_batch(config.train.micro_batch);
    let progress = bar(w.steps, "warm start");
    for step in 0..w.steps {
        let batch = data.warm_start_examples(
            w.batch_size,
            config.algorithm.n,
            w.aggregation_fraction,
            &mut rng,
        );
        let stats = learner.sft_step(&batch)?;
        progress.set_prefix(format!("loss {:.3}", stats.loss));
        progress.inc(1);
        if step % 10 == 0 || step + 1 == w.steps {
            metrics.log(serde_json::json!({"kind": "warm_start", "step": step, "loss": stats.loss, "lr": stats.lr, "grad_norm": stats.grad_norm, "tokens": stats.tokens}))?;
        }
    }
    progress.finish();
    let warm = learner.inference_model();
    let warm_eval = evaluate(&warm, &data, config, seed ^ 0xE)?;
    log_eval(&mut metrics, 0, &warm_eval)?;
    eprintln!("warm start: {}", summary(&warm_eval));
    save_checkpoint(&warm, &data, &out.join("checkpoints"), "warm-start")?;

    // RL.
    let tr = &config.train;
    let optim = OptimConfig { total_steps: tr.steps * tr.epochs, ..tr.optim };
    let mut learner = Learner::new(learner.model().clone(), optim).with_micro_batch(tr.micro_batch);
    let mut order: Vec<usize> = (0..data.train.len()).collect();
    order.shuffle(&mut rng);
    let mut cursor = 0;
    let mut evals = vec![(0, warm_eval.clone())];
    let progress = bar(tr.steps, "RL");
    let mut skipped_in_a_row = 0;
    for step in 1..=tr.steps {
        let problems: Vec<_> = (0..tr.problems_per_step)
            .map(|i| &data.train[order[(cursor + i) % order.len()]])
            .collect();
        cursor += tr.problems_per_step;
        let policy = learner.inference_model();
        let collected =
            collect(&policy, &data, &problems, config, seed.wrapping_add(step as u64), &mut rng)?;
        let started = Instant::now();
        let mut s = crate::learner::StepStats::default();
        if !collected.batch.is_empty() {
            for _ in 0..tr.epochs {
                s = learner.policy_step(&collected.batch, &tr.loss)?;
                if s.skipped {
                    break;
                }
            }
        }
        let learn_seconds = started.elapsed().as_secs_f64();
        skipped_in_a_row = if s.skipped { skipped_in_a_row + 1 } else { 0 };
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
            "loss": s.loss, "clip_fraction": s.clip_fraction, "approx_kl": s.approx_kl, "entropy": s.entropy,
            "lr": s.lr, "grad_norm": s.grad_norm, "skipped_update": s.skipped, "generated_tokens": collected.generated_tokens, "trained_tokens": s.tokens,
            "rollout_seconds": collected.rollout_seconds, "reward_seconds": collected.reward_seconds, "learn_seconds": learn_seconds,
            "rollout_tokens_per_s": collected.generated_tokens as f64 / collected.rollout_seconds.max(1e-9),
            "learn_tokens_per_s": s.tokens as f64 / learn_seconds.max(1e-9),
        }))?;
        anyhow::ensure!(
            skipped_in_a_row < tr.max_skipped_updates,
            "{skipped_in_a_row} updates in a row had a NaN or infinite loss or gradient (step {step}); stopping. The last good checkpoint is in {}",
            out.join("checkpoints").display()
        );
        if step % config.eval.every == 0 || step == tr.steps {
            let model = learner.inference_model();
            let e = evaluate(&model, &data, config, seed ^ 0xE)?;
            log_eval(&mut metrics, step, &e)?;
            progress.println(format!("step {step}: {}", summary(&e)));
            save_checkpoint(&model, &data, &out.join("checkpoints"), &format!("step-{step}"))?;
            prune_checkpoints(&out.join("checkpoints"), tr.keep_checkpoints)?;
            evals.push((step, e));
        }
    }
    progress.finish();
    let last = evals.last().expect("the warm start is evaluated").1.clone();
    write_report(out, config, &evals)?;
    Ok(last)
}

/// Writes `checkpoints/<name>` atomically: into `<name>.tmp`, then renamed, so an interrupted
/// save never leaves a half-written checkpoint under a real name.
fn save_checkpoint<B: burn::tensor::backend::Backend>(
    model: &CausalLm<B>,
    data: &TaskData,
    dir: &Path,
    name: &str,
) -> anyhow::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let target = dir.join(name);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    save_pretrained(model, &data.tokenizer, &tmp)?;
    if target.exists() {
        std::fs::remove_dir_all(&target)?;
    }
    std::fs::rename(&tmp, &target)?;
    Ok(())
}

/// Keeps the newest `keep` `step-N` checkpoints (the warm start is always kept).
fn prune_checkpoints(dir: &Path, keep: usize) -> anyhow::Result<()> {
    let mut steps: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let n = p.file_name()?.to_str()?.strip_prefix("step-")?.parse().ok()?;
            Some((n, p))
        })
        .collect();
    steps.sort();
    let excess = steps.len().saturating_sub(keep.max(1));
    for (_, path) in steps.into_iter().take(excess) {
        std::fs::remove_dir_all(path)?;
    }
    Ok(())
}

fn log_eval(metrics: &mut Metrics, step: usize, e: &EvalMetrics) -> anyhow::Result<()> {
    let mut line = serde_json::json!({"kind": "eval", "step": step, "pass@1": e.pass_at_1, "maj@n": e.maj_at_n, "agg@1": e.agg_at_1, "n": e.n, "problems": e.problems});
    for (k, v) in &e.pass_at_k {
        line[format!("pass@{k}")] = serde_json::json!(v);
    }
    metrics.log(line)
}

/// One line: the headline numbers of an evaluation.
pub fn summary(e: &EvalMetrics) -> String {
    format!("pass@1 {:.3}  maj@{} {:.3}  agg@1 {:.3}", e.pass_at_1, e.n, e.maj_at_n, e.agg_at_1)
}

fn write_report(
    out: &Path,
    config: &RunConfig,
    evals: &[(usize, EvalMetrics)],
) -> anyhow::Result<()> {
    let mut md = format!(
        "# {} ({:?})\n\nEvaluated on {} held-out Countdown problems, {} traces each.\n\n",
        config.run.name, config.algorithm.name, config.eval.problems, config.eval.n
    );
    md.push_str("| step | pass@1 | maj@n | agg@1 |\n|---|---|---|---|\n");
    for (step, e) in evals {
        md.push_str(&format!(
            "| {} | {:.3} | {:.3} | {:.3} |\n",
            if *step == 0 { "warm start".to_string() } else { step.to_string() },
            e.pass_at_1,
            e.maj_at_n,
            e.agg_at_1
        ));
    }
    md.push_str("\n`pass@1`: mean accuracy of single search traces. `maj@n`: accuracy of the majority answer of the n traces. `agg@1`: accuracy of one aggregation trace that reads the same n traces.\n\n## Config\n\n```toml\n");
    md.push_str(&config.to_toml());
    md.push_str("```\n");
    std::fs::write(out.join("report.md"), md)?;
    Ok(())
}

/// `runs/<name>-<unix seconds>`.
pub fn default_out_dir(config: &RunConfig) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    PathBuf::from("runs").join(format!("{}-{secs}", config.run.name))
}
