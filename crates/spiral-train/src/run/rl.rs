//! The RL phase: [`prepare`] attaches LoRA adapters when configured, saves the policy RL starts
//! from (`checkpoints/warm-start`) and loads the KL penalty's reference model; [`train`] runs the
//! loop, each step rollout -> reward -> advantage (`crate::collect`) -> clipped policy-gradient
//! update (`Learner::policy_step`), with periodic evaluations and checkpoints.

use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use spiral_model::{CausalLm, Checkpoint};
use spiral_rollout::stream_seed;

use super::rounds::StepCollection;
use super::{PhaseEnd, Run, purpose, summary};
use crate::checkpoint::{self, TrainerState};
use crate::collect::Collected;
use crate::distributed::World;
use crate::evaluate::{EvalMetrics, MadeUpCandidates};
use crate::learner::{Learner, StepStats};
use crate::metrics::{Record, TrainRecord};

/// The learner RL trains through, and the frozen reference of its KL penalty.
pub(super) struct Prepared<Train: AutodiffBackend> {
    learner: Learner<Train>,
    reference: Option<CausalLm<Train::InnerBackend>>,
}

/// Sets up RL on `model`: adapters, the optimiser (restored on resume), the `warm-start`
/// checkpoint on a fresh start, and the reference model.
pub(super) fn prepare<Train: AutodiffBackend>(
    run: &Run<'_, Train>,
    state: &mut TrainerState,
    model: CausalLm<Train>,
) -> anyhow::Result<Prepared<Train>> {
    let (config, tr) = (run.config, &run.config.train);
    let rl_seed = tr.seed.unwrap_or(config.run.seed);
    let model = with_adapters(run, state, model, rl_seed)?;
    if config.rollout.top_p < 1.0 && run.control.world.is_root() {
        eprintln!(
            "warning: rollout.top_p = {} cuts the distribution the rollouts draw from, but the \
             policy RL trains is the uncut softmax(logits / temperature) (as in TRL and verl): \
             ratios and KL estimates ignore the cut",
            config.rollout.top_p
        );
    }
    let learner = Learner::new(model, config.rl_optim())
        .with_micro_batch(tr.micro_batch)
        .with_activation_checkpointing(tr.activation_checkpointing)
        .with_temperature(config.scoring_temperature())
        .with_world(run.control.world.0.clone());
    let learner = if state.step > 0 { run.restore(learner, state)? } else { learner };
    if state.step == 0 {
        run.save(&learner, "warm-start", state)?;
        // `latest` now names the finished warm start; an interrupted one is no longer needed.
        let partial = run.checkpoints.join("warm-start-partial");
        if partial.exists() && run.control.world.is_root() {
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
            let path = run.checkpoints.join("warm-start");
            let model = Checkpoint::<Train::InnerBackend>::load(&path, run.device)
                .with_context(|| format!("the KL reference, {}", path.display()))?
                .model;
            Some(model.merge_lora().for_inference_in(config.model.precision))
        }
    };
    Ok(Prepared { learner, reference })
}

/// `model` with the configured LoRA adapters: attached (its base frozen and saved once) at the
/// first RL step, checked against the checkpoint's on resume.
fn with_adapters<Train: AutodiffBackend>(
    run: &Run<'_, Train>,
    state: &mut TrainerState,
    model: CausalLm<Train>,
    rl_seed: u64,
) -> anyhow::Result<CausalLm<Train>> {
    let config = run.config;
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
            state.base_model =
                Some(match (&config.model.checkpoint, config.warm_start.total_steps()) {
                    (Some(name), 0) => base_folder(name)?,
                    // Rank 0 writes the run folder; the others record the same (relative) name.
                    _ if !run.control.world.is_root() => checkpoint::base_name(),
                    _ => checkpoint::save_base(&run.checkpoints, &model, &run.data.tokenizer)?,
                });
            let model = model.with_lora(&lora, stream_seed(rl_seed, purpose::LORA_INIT, 0))?;
            eprintln!("{}", lora_summary(&model));
            Ok(model)
        }
        (None, Some(_)) => anyhow::bail!(
            "the checkpoint holds LoRA adapters but lora.enabled = false; resume it with \
             --set lora.enabled=true"
        ),
        (Some(wanted), Some(found)) => {
            anyhow::ensure!(
                wanted == found,
                "[lora] asks for {wanted:?} but the checkpoint's adapters are {found:?}"
            );
            if state.base_model.is_none() {
                // A `model.adapter` loaded onto `model.checkpoint`: RL goes on training it, and
                // its checkpoints name that base.
                let base = config.model.checkpoint.as_ref().context("model.adapter's base")?;
                state.base_model = Some(base_folder(base)?);
            }
            Ok(model)
        }
        (None, None) => Ok(model),
    }
}

/// The folder a LoRA run's checkpoints name as their base when it is `model.checkpoint` itself:
/// absolute, and for a hub id its snapshot, so that a resumed run reads the weights it started
/// from whatever the cache's refs say by then.
fn base_folder(name: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    Ok(std::path::absolute(spiral_model::resolve_model(name)?)?)
}

/// The RL steps left in `state`, then the report; returns the last evaluation (`last_eval`, the
/// warm start's, when no step is left to evaluate).
pub(super) fn train<Train: AutodiffBackend>(
    run: &mut Run<'_, Train>,
    state: &mut TrainerState,
    prepared: Prepared<Train>,
    mut last_eval: Option<EvalMetrics>,
) -> anyhow::Result<PhaseEnd<EvalMetrics>> {
    let Prepared { mut learner, reference } = prepared;
    let (config, tr) = (run.config, &run.config.train);
    let rl_seed = tr.seed.unwrap_or(config.run.seed);
    let mut order: Vec<usize> = (0..run.data.train.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(stream_seed(rl_seed, purpose::PROBLEM_ORDER, 0)));
    let peak_flops = crate::mfu::peak_flops(&run.control.device, config.run.peak_flops);
    let mut progress = run.progress(tr.steps, state.step, "RL");
    for step in state.step + 1..=tr.steps {
        let cursor = (step - 1) * tr.problems_per_step;
        let problems: Vec<_> = (0..tr.problems_per_step)
            .map(|i| &run.data.train[order[(cursor + i) % order.len()]])
            .collect();
        let policy = learner.inference_model();
        let world = &run.control.world;
        let (mut collected, rounds) = StepCollection {
            policy: &policy,
            reference: reference.as_ref(),
            data: &run.data,
            config,
            world,
            rl_seed,
            step,
        }
        .run(&problems)?;
        let started = Instant::now();
        let mut s = StepStats::default();
        // Adapter dropout draws from the backend's generator, which is process-wide: seeded per
        // step for exact resume, and only when it is used, so that other runs in the process
        // are left alone (two runs with adapter dropout must not share a process).
        if learner.model().lora().is_some_and(|l| l.dropout > 0.0) {
            <Train as burn::tensor::backend::Backend>::seed(
                run.device,
                stream_seed(rl_seed, purpose::DROPOUT, step as u64),
            );
        }
        // Every rank steps when any has sequences: the update is the whole step's.
        let mut trained = [collected.batch.len() as f64];
        world.0.sum_f64(&mut trained);
        // What the first epoch measured before any update: the rollout-learner mismatch.
        let mut before_update = None;
        if trained[0] > 0.0 {
            if tr.loss.recompute_old_logprobs {
                learner.recompute_old_logprobs(&mut collected.batch)?;
            }
            for _ in 0..tr.epochs {
                s = learner.policy_step(&collected.batch, &tr.loss)?;
                before_update.get_or_insert(s);
                if s.skipped {
                    break;
                }
            }
        }
        if let Some(first) = before_update {
            s.rollout_mismatch_kl = first.rollout_mismatch_kl;
            s.rollout_mismatch_max_ratio = first.rollout_mismatch_max_ratio;
        }
        let learn_seconds = world.sum_and_max(started.elapsed().as_secs_f64());
        let totals = StepTotals::over_ranks(world, &collected, collected.problems);
        state.skipped_in_a_row = if s.skipped { state.skipped_in_a_row + 1 } else { 0 };
        progress.step(rewards_headline(totals.search_reward, totals.aggregation_reward));
        let mut record = train_record(step, &totals, &s, learn_seconds);
        (record.dynamic_rounds, record.dynamic_dropped) = (rounds.rounds, rounds.dropped);
        record.search_credit_correlation = credit_correlation(world, &collected.search_credit);
        (record.mfu_rollout, record.mfu_learn) =
            utilisation(learner.model().config(), &collected.batch, &record, peak_flops);
        run.metrics.log(Record::Train(record))?;
        anyhow::ensure!(
            state.skipped_in_a_row < tr.max_skipped_updates,
            "{} updates in a row had a NaN or infinite loss or gradient (step {step}); stopping. \
             The last good checkpoint is {}",
            state.skipped_in_a_row,
            checkpoint::latest(&run.checkpoints)?
                .map_or("none".into(), |p| p.display().to_string())
        );
        if step % config.eval.every == 0 || step == tr.steps {
            let e = run.evaluate(&learner.inference_model(), MadeUpCandidates::Skip)?;
            run.log_eval(step, &e)?;
            progress.println(format!("step {step}: {}", summary(&e)));
            last_eval = Some(e);
        }
        // Every rank stops at the same step when any was interrupted.
        let stop = run.control.world.any(run.control.stop.load(Ordering::SeqCst));
        if step % tr.checkpoint_every == 0 || step == tr.steps || stop {
            state.step = step;
            state.optimizer_steps = learner.steps();
            state.metrics_bytes = run.metrics.bytes;
            run.save(&learner, &format!("step-{step}"), state)?;
        }
        if stop && step < tr.steps {
            progress.abandon();
            run.write_report()?;
            return Ok(PhaseEnd::Stopped(run.checkpoints.join(format!("step-{step}"))));
        }
    }
    progress.finish();
    run.write_report()?;
    let last = match last_eval {
        Some(e) => e,
        // Resumed after the last step: evaluate the final model again (same seed, same numbers).
        None => run.evaluate(&learner.inference_model(), MadeUpCandidates::Skip)?,
    };
    Ok(PhaseEnd::Done(last))
}

/// What one step collected over every rank: the ranks' means weighted by their problems (or
/// trained sequences), their counts summed, and their seconds as the mean and the slowest.
struct StepTotals {
    search_reward: f64,
    aggregation_reward: Option<f64>,
    mean_abs_advantage: f64,
    zero_signal_fraction: f64,
    trained_sequences: usize,
    generated_tokens: usize,
    /// `[mean, slowest]` over ranks.
    rollout_seconds: [f64; 2],
    reward_seconds: f64,
    reference_seconds: f64,
    world_size: usize,
}

impl StepTotals {
    /// `c`, collected here for `problems` problems, combined with the other ranks'.
    fn over_ranks(world: &World, c: &Collected, problems: usize) -> Self {
        let size = world.0.world_size();
        let [rollout_sum, rollout_slowest] = world.sum_and_max(c.rollout_seconds);
        if size == 1 {
            return Self {
                search_reward: c.search_reward,
                aggregation_reward: c.aggregation_reward,
                mean_abs_advantage: c.mean_abs_advantage,
                zero_signal_fraction: c.zero_signal_fraction,
                trained_sequences: c.batch.len(),
                generated_tokens: c.generated_tokens,
                rollout_seconds: [c.rollout_seconds; 2],
                reward_seconds: c.reward_seconds,
                reference_seconds: c.reference_seconds,
                world_size: 1,
            };
        }
        let (n, b) = (problems as f64, c.batch.len() as f64);
        // A rank without problems or sequences has NaN means, which must weigh nothing.
        let weighted = |x: f64, w: f64| if w > 0.0 { x * w } else { 0.0 };
        let mut sums = [
            n,
            b,
            weighted(c.search_reward, n),
            weighted(c.aggregation_reward.unwrap_or(0.0), n),
            weighted(c.mean_abs_advantage, b),
            weighted(c.zero_signal_fraction, n),
            c.generated_tokens as f64,
            c.reward_seconds,
            c.reference_seconds,
        ];
        world.0.sum_f64(&mut sums);
        let [n, b, search, aggregation, advantage, zero, tokens, reward, reference] = sums;
        // A mean over nothing is 0, as `spiral_set_rl::mean` has it for one process.
        let mean = |sum: f64, count: f64| if count > 0.0 { sum / count } else { 0.0 };
        Self {
            search_reward: mean(search, n),
            aggregation_reward: c.aggregation_reward.map(|_| mean(aggregation, n)),
            mean_abs_advantage: mean(advantage, b),
            zero_signal_fraction: mean(zero, n),
            trained_sequences: b as usize,
            generated_tokens: tokens as usize,
            rollout_seconds: [rollout_sum / size as f64, rollout_slowest],
            reward_seconds: reward / size as f64,
            reference_seconds: reference / size as f64,
            world_size: size,
        }
    }
}

/// The record of RL step `step`: what collection measured, what the update did, and the time
/// each took (`learn_seconds`: summed and slowest over ranks).
fn train_record(
    step: usize,
    c: &StepTotals,
    s: &StepStats,
    [learn_sum, learn_slowest]: [f64; 2],
) -> TrainRecord {
    let learn_seconds = learn_sum / c.world_size as f64;
    TrainRecord {
        step,
        search_reward: c.search_reward,
        aggregation_reward: c.aggregation_reward,
        mean_abs_advantage: c.mean_abs_advantage,
        zero_signal_fraction: c.zero_signal_fraction,
        trained_sequences: c.trained_sequences,
        loss: s.loss,
        clip_fraction: s.clip_fraction,
        approx_kl: s.approx_kl,
        ref_kl: s.ref_kl,
        entropy: s.entropy,
        lr: s.lr,
        grad_norm: s.grad_norm,
        skipped_update: s.skipped,
        generated_tokens: c.generated_tokens,
        trained_tokens: s.tokens,
        rollout_seconds: c.rollout_seconds[0],
        reward_seconds: c.reward_seconds,
        reference_seconds: c.reference_seconds,
        learn_seconds,
        rollout_tokens_per_s: c.generated_tokens as f64 / c.rollout_seconds[0].max(1e-9),
        learn_tokens_per_s: s.tokens as f64 / learn_seconds.max(1e-9),
        rollout_mismatch_kl: s.rollout_mismatch_kl,
        rollout_mismatch_max_ratio: s.rollout_mismatch_max_ratio,
        corrected_fraction: s.corrected_fraction,
        dynamic_rounds: 1,
        dynamic_dropped: 0,
        mfu_rollout: None,
        mfu_learn: None,
        search_credit_correlation: None,
        world_size: c.world_size,
        slowest_rollout_seconds: c.rollout_seconds[1],
        slowest_learn_seconds: learn_slowest,
        learner_shards: (s.shards > 0).then_some(s.shards),
    }
}

/// A step's mean rewards for its progress line: the aggregation's only where the algorithm
/// samples aggregation traces (GRPO and Dr.GRPO have none, and "agg NaN" would read as a fault).
fn rewards_headline(search: f64, aggregation: Option<f64>) -> String {
    match aggregation {
        Some(agg) => format!("search {search:.2} agg {agg:.2}"),
        None => format!("search {search:.2}"),
    }
}

/// The Pearson correlation over every rank's search traces of a trace's advantage with its own
/// reward; `None` when either does not vary (or the algorithm credits no search trace through
/// aggregation). Every rank takes part.
fn credit_correlation(world: &World, pairs: &[(f64, f64)]) -> Option<f64> {
    let mut sums = [0.0f64; 6];
    for &(x, y) in pairs {
        for (s, v) in sums.iter_mut().zip([1.0, x, y, x * x, y * y, x * y]) {
            *s += v;
        }
    }
    world.0.sum_f64(&mut sums);
    let [n, sx, sy, sxx, syy, sxy] = sums;
    let (vx, vy) = (sxx - sx * sx / n, syy - sy * sy / n);
    (n > 1.0 && vx > 1e-12 && vy > 1e-12).then(|| (sxy - sx * sy / n) / (vx * vy).sqrt())
}

/// `[mfu_rollout, mfu_learn]` of a step, with the keys a token attends to averaged over
/// `batch`: a generated token reads its prompt and half its completion on average, a trained
/// token half its sequence.
fn utilisation(
    model: &spiral_model::ModelConfig,
    batch: &[crate::learner::TrainSequence],
    record: &TrainRecord,
    peak: f64,
) -> (Option<f64>, Option<f64>) {
    use crate::mfu::{forward_flops_per_token, mfu, training_flops_per_token};
    if batch.is_empty() {
        return (None, None);
    }
    let count = batch.len() as f64;
    let generating = batch
        .iter()
        .map(|s| s.prompt_len as f64 + (s.tokens.len() - s.prompt_len) as f64 / 2.0)
        .sum::<f64>()
        / count;
    let training = batch.iter().map(|s| s.tokens.len() as f64 / 2.0).sum::<f64>() / count;
    (
        mfu(forward_flops_per_token(model, generating), record.rollout_tokens_per_s, peak),
        mfu(training_flops_per_token(model, training), record.learn_tokens_per_s, peak),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_names_only_the_rewards_an_algorithm_has() {
        assert_eq!(rewards_headline(0.154, Some(0.8)), "search 0.15 agg 0.80");
        assert_eq!(rewards_headline(0.5, None), "search 0.50");
    }

    #[test]
    fn credit_correlation_is_pearsons_r() {
        let world = World::default();
        let line: Vec<(f64, f64)> = (0..5).map(|i| (i as f64 * 0.5 - 1.0, i as f64)).collect();
        assert!((credit_correlation(&world, &line).unwrap() - 1.0).abs() < 1e-12);
        let against: Vec<(f64, f64)> = line.iter().map(|&(x, y)| (-x, y)).collect();
        assert!((credit_correlation(&world, &against).unwrap() + 1.0).abs() < 1e-12);
        // r of (1,0), (0,1), (1,1), (0,0): uncorrelated.
        let square = [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.0, 0.0)];
        assert!(credit_correlation(&world, &square).unwrap().abs() < 1e-12);
        assert_eq!(credit_correlation(&world, &[(0.0, 1.0), (0.0, 0.0)]), None);
        assert_eq!(credit_correlation(&world, &[]), None);
    }
}
